using System.Numerics;
using Whittle.LinearAlgebra.Kernels;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>Options of <see cref="Cholesky.Compute{T}(MatrixView{T}, CholeskyOptions?)"/>.</summary>
/// <param name="AllowJitter">When the matrix is not numerically positive definite, retry with a growing shift
/// <c>A + δ·I</c> instead of throwing <see cref="NotPositiveDefiniteException"/>.</param>
/// <param name="InitialJitter">First shift, relative to the mean absolute diagonal entry of A; multiplied by 10 at each
/// further attempt.</param>
/// <param name="MaxAttempts">How many shifted factorizations to try (after the unshifted one) before giving up.</param>
public sealed record CholeskyOptions(bool AllowJitter = false, double InitialJitter = 1e-10, int MaxAttempts = 10);

/// <summary>The result of a Cholesky factorization <c>A + δ·I = L·Lᵀ</c> (δ = <see cref="Jitter"/>, usually 0).</summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed class CholeskyFactor<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    internal CholeskyFactor(Matrix<T> l, double jitter)
    {
        L = l;
        Jitter = jitter;
    }

    /// <summary>The lower-triangular factor L (n × n, positive diagonal, zeros above the diagonal).</summary>
    public Matrix<T> L { get; }

    /// <summary>The diagonal shift δ actually added to A (0 when A factored as given).</summary>
    public double Jitter { get; }

    /// <summary>Order n of the factored matrix.</summary>
    public int Size => L.Rows;

    /// <summary>Solves <c>(A + δ·I)·X = B</c> with two triangular solves; B is not modified.</summary>
    /// <param name="b">n × m right-hand sides.</param>
    /// <returns>X, n × m.</returns>
    public Matrix<T> Solve(MatrixView<T> b)
    {
        if (b.Rows != L.Rows)
            ThrowHelper.ShapeMismatch(nameof(b), "CholeskyFactor.Solve: B must have one row per row of A", $"{L.Rows}×m", $"{b.Rows}×{b.Cols}");
        var x = b.ToMatrix();
        TriangularSolve.Solve(Side.Left, Triangle.Lower, L, x, T.One);
        TriangularSolve.Solve(Side.Left, Triangle.Lower, L, x, T.One, transpose: true);
        return x;
    }

    /// <summary>Solves <c>(A + δ·I)·x = b</c> for one vector; b is not modified.</summary>
    /// <param name="b">Length n.</param>
    /// <returns>x, length n.</returns>
    public T[] Solve(ReadOnlySpan<T> b)
    {
        if (b.Length != L.Rows)
            ThrowHelper.ShapeMismatch(nameof(b), "CholeskyFactor.Solve: b must have one entry per row of A", $"{L.Rows}", $"{b.Length}");
        var x = b.ToArray();
        TriangularSolve.SolveVector(Triangle.Lower, L, x);
        TriangularSolve.SolveVector(Triangle.Lower, L, x, transpose: true);
        return x;
    }

    /// <summary><c>log det(A + δ·I) = 2·Σ log L_ii</c>, accumulated in double.</summary>
    public double LogDeterminant()
    {
        double s = 0;
        for (int i = 0; i < L.Rows; i++) s += Math.Log(double.CreateTruncating(L[i, i]));
        return 2 * s;
    }
}

/// <summary>
/// Cholesky factorization <c>A = L·Lᵀ</c> of a symmetric positive definite matrix (LAPACK potrf, lower): blocked and
/// right-looking. Each diagonal block is factored directly (recursively blocked), the panel below it with a
/// <see cref="TriangularSolve"/>, and the trailing matrix is updated on its lower triangle with matrix products, so large
/// factorizations run near <see cref="Blas.Gemm{T}"/> speed.
/// </summary>
public static class Cholesky
{
    internal const int DefaultBlockSize = 256;
    private const int UnblockedSize = 32;

    /// <summary>Factors the symmetric matrix whose lower triangle is <paramref name="a"/> (the upper triangle is never read).</summary>
    /// <param name="a">Square n × n; not modified.</param>
    /// <param name="options">Jitter settings; null for the defaults (no jitter).</param>
    /// <exception cref="ArgumentException">A is not square or its lower triangle holds NaN or ±∞; options are out of range.</exception>
    /// <exception cref="NotPositiveDefiniteException">A is not numerically positive definite (and jitter is off, or did not help).
    /// The exception names the failing pivot and its value.</exception>
    public static CholeskyFactor<T> Compute<T>(MatrixView<T> a, CholeskyOptions? options = null)
        where T : unmanaged, IFloatingPointIeee754<T> => Compute(a, options, DefaultBlockSize);

    internal static CholeskyFactor<T> Compute<T>(MatrixView<T> a, CholeskyOptions? options, int blockSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        options ??= new CholeskyOptions();
        if (a.Rows != a.Cols)
            ThrowHelper.ShapeMismatch(nameof(a), "Cholesky: A must be square", $"{a.Rows}×{a.Rows}", $"{a.Rows}×{a.Cols}");
        if (!(options.InitialJitter > 0) || !double.IsFinite(options.InitialJitter))
            ThrowHelper.ArgumentOutOfRange(nameof(options), $"InitialJitter = {options.InitialJitter}", "a finite InitialJitter > 0 (e.g. 1e-10)");
        if (options.MaxAttempts < 1)
            ThrowHelper.ArgumentOutOfRange(nameof(options), $"MaxAttempts = {options.MaxAttempts}", "MaxAttempts ≥ 1");
        int n = a.Rows;
        double diagonalSum = 0;
        MatrixChecks.RequireFinite(a, nameof(a), lowerTriangleOnly: true);
        for (int i = 0; i < n; i++)
            diagonalSum += Math.Abs(double.CreateTruncating(a[i, i]));

        var l = new Matrix<T>(n, n);
        CopyLower(a, l);
        var (pivot, value) = FactorInPlace(l.View, blockSize);
        if (pivot < 0) return new CholeskyFactor<T>(ClearUpper(l), 0);
        if (!options.AllowJitter) throw new NotPositiveDefiniteException(pivot, value);

        double meanDiagonal = n == 0 || diagonalSum == 0 ? 1 : diagonalSum / n;
        double shift = options.InitialJitter * meanDiagonal;
        for (int attempt = 1; attempt <= options.MaxAttempts; attempt++, shift *= 10)
        {
            CopyLower(a, l);
            T delta = T.CreateTruncating(shift);
            for (int i = 0; i < n; i++) l[i, i] += delta;
            (pivot, value) = FactorInPlace(l.View, blockSize);
            if (pivot < 0) return new CholeskyFactor<T>(ClearUpper(l), shift);
            if (attempt == options.MaxAttempts) break;
        }
        throw new NotPositiveDefiniteException(pivot, value, shift, options.MaxAttempts + 1);
    }

    private static Matrix<T> ClearUpper<T>(Matrix<T> l) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < l.Rows; i++) l.Row(i)[(i + 1)..].Clear();
        return l;
    }

    /// <summary>Copies the lower triangle of A into row-major L and zeros L's strict upper triangle.</summary>
    private static void CopyLower<T>(MatrixView<T> a, Matrix<T> l) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = a.Rows;
        for (int i = 0; i < n; i++)
        {
            var row = l.Row(i);
            if (a.IsRowMajor)
                a.Array.AsSpan(a.Offset + i * a.RowStride, i + 1).CopyTo(row);
            else
                for (int j = 0; j <= i; j++) row[j] = a[i, j];
            row[(i + 1)..].Clear();
        }
    }

    /// <summary>
    /// Overwrites the lower triangle of row-major A with L (the strict upper triangle is used as scratch and must be
    /// cleared by the caller). Returns (−1, 0) on success, else the first failing pivot and its value.
    /// </summary>
    internal static (int Pivot, double Value) FactorInPlace<T>(MatrixView<T> a, int nb) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = a.Rows;
        if (n <= UnblockedSize) return FactorUnblocked(a);
        nb = Math.Min(nb, n);
        for (int k0 = 0; k0 < n; k0 += nb)
        {
            int kb = Math.Min(nb, n - k0), rest = n - k0 - kb;
            var a11 = a.Slice(k0, k0, kb, kb);
            // Diagonal block: recursively, with smaller blocks, down to the unblocked kernel.
            var (p, v) = kb == n ? FactorUnblocked(a11) : FactorInPlace(a11, Math.Max(UnblockedSize, nb / 4));
            if (p >= 0) return (k0 + p, v);
            if (rest == 0) break;
            var a21 = a.Slice(k0 + kb, k0, rest, kb);
            // L21 = A21·L11⁻ᵀ.
            TriangularSolve.Solve(Side.Right, Triangle.Lower, a11, a21, T.One, transpose: true);
            // A22 ← A22 − L21·L21ᵀ on the lower triangle.
            Blas.SyrkLower(-T.One, a21, T.One, a.Slice(k0 + kb, k0 + kb, rest, rest));
        }
        return (-1, 0);
    }

    /// <summary>Row-oriented (Crout) Cholesky on contiguous rows: L_ij = (A_ij − ⟨L_i,:j, L_j,:j⟩) / L_jj.</summary>
    private static (int Pivot, double Value) FactorUnblocked<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = a.Rows;
        for (int j = 0; j < n; j++)
        {
            var rowJ = a.Array.AsSpan(a.Offset + j * a.RowStride, j);
            T d = a[j, j] - VectorKernels.Dot<T>(rowJ, rowJ);
            if (!(d > T.Zero)) return (j, double.CreateTruncating(d));
            T ljj = T.Sqrt(d);
            a[j, j] = ljj;
            T inv = T.One / ljj;
            for (int i = j + 1; i < n; i++)
            {
                var rowI = a.Array.AsSpan(a.Offset + i * a.RowStride, j);
                a[i, j] = (a[i, j] - VectorKernels.Dot<T>(rowI, rowJ)) * inv;
            }
        }
        return (-1, 0);
    }
}
