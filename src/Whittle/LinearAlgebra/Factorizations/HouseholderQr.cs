// Blocked Householder QR: A = Q·R.
//
// Contract
//   A is m × n (any shape, including empty). With p = min(m, n):
//     R  p × n upper trapezoidal (r_ij = 0 for i > j);
//     Q  m × m orthogonal, Q = H₀H₁…H_{p−1} with H_j = I − τ_j·v_j·v_jᵀ, v_j[j] = 1, v_j[0..j) = 0;
//        the thin Q is its first p columns, and A = Q_thin·R.
//   The input is never modified. Q is formed only on request (orgqr); ApplyQ / ApplyQTranspose
//   apply it without forming it (ormqr); Solve gives the least-squares solution for m ≥ n and full
//   column rank.
//
// Reference
//   Golub & Van Loan, Matrix Computations (4th ed.), Alg. 5.2.1 (Householder QR) and §5.2.3
//   (block Householder QR with the compact WY representation); mirrors LAPACK dgeqrf (panel
//   dgeqr2, block reflector dlarft, trailing update dlarfb), dorgqr and dormqr.
//
// Layout
//   The factors are kept transposed (n × m row-major: row j holds column j of the working matrix),
//   so every Householder vector and every panel column is contiguous; the trailing update is two
//   GEMMs on views.
//
// Numerical caveats
//   Backward stable: the computed factors are the exact QR of A + E with ‖E‖ = O(ε·‖A‖) and Q
//   orthogonal to O(ε) (GVL §5.2.2). No pivoting: on rank-deficient A, R has tiny diagonal entries in
//   unpredictable places and the factorization reveals nothing about rank; use PivotedQr for that.
//   Solve refuses R with |r_ii| ≤ max(m, n)·ε·max_j |r_jj| (numerically singular), since the
//   solution would be dominated by rounding.

using System.Diagnostics;
using System.Numerics;
using Whittle.LinearAlgebra.Kernels;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>Blocked Householder QR factorization (LAPACK geqrf); see <see cref="HouseholderQr{T}"/>.</summary>
public static class HouseholderQr
{
    /// <summary>Columns per panel: factored one reflector at a time, then applied to the rest with GEMM.</summary>
    internal const int BlockSize = 32;

    /// <summary>Factors <c>A = Q·R</c>. The input is not modified.</summary>
    /// <param name="a">The m × n matrix to factor; every entry must be finite.</param>
    /// <exception cref="ArgumentException"><paramref name="a"/> contains NaN or infinity.</exception>
    public static HouseholderQr<T> Compute<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        MatrixChecks.RequireFinite(a, nameof(a));
        return FactorTransposed(QrInput.TransposedCopy(a));
    }

    /// <summary>
    /// Factors the m × n matrix whose transpose is <paramref name="factorsT"/> (n × m row-major, row j = column j),
    /// in place: <paramref name="factorsT"/> becomes the factors' storage. For callers that build the transposed
    /// matrix themselves (streaming TSQR); entries must be finite.
    /// </summary>
    internal static HouseholderQr<T> FactorTransposed<T>(Matrix<T> factorsT) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = factorsT.Cols, n = factorsT.Rows, p = Math.Min(m, n);
        var at = factorsT.Transpose(); // m × n view of the working matrix, columns contiguous
        var tau = new T[p];
        for (int j0 = 0; j0 < p; j0 += BlockSize)
        {
            int jb = Math.Min(BlockSize, p - j0);
            FactorPanel(factorsT, m, j0, jb, tau);
            int rest = n - j0 - jb;
            if (rest > 0)
            {
                // A[j0:m, j0+jb:n] ← (H_{j0}…H_{j0+jb−1})ᵀ·A[j0:m, j0+jb:n] = (I − V·Tᵀ·Vᵀ)·A.
                var v = Householder.UnitLowerTrapezoid(at.Slice(j0, j0, m - j0, jb));
                var t = Householder.TriangularFactor(v, tau.AsSpan(j0, jb));
                Householder.ApplyBlockLeft(v, t, at.Slice(j0, j0 + jb, m - j0, rest), transpose: true);
            }
        }
        return new HouseholderQr<T>(factorsT, tau);
    }

    /// <summary>Unblocked QR (dgeqr2) of columns j0..j0+jb of the transposed working matrix, rows j0..m.</summary>
    private static void FactorPanel<T>(Matrix<T> factorsT, int m, int j0, int jb, T[] tau) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var at = factorsT.Transpose();
        for (int j = j0; j < j0 + jb; j++)
        {
            T tj = Householder.Generate(at.Slice(j, j, m - j, 1));
            tau[j] = tj;
            if (tj == T.Zero) continue;
            var v = factorsT.Row(j).Slice(j);
            T beta = v[0];
            v[0] = T.One;
            for (int c = j + 1; c < j0 + jb; c++)
            {
                var col = factorsT.Row(c).Slice(j);
                T s = VectorKernels.Dot<T>(v, col);
                VectorKernels.Axpy<T>(-tj * s, v, col);
            }
            v[0] = beta;
        }
    }
}

/// <summary>
/// The Householder QR factorization <c>A = Q·R</c> of an m × n matrix, from
/// <see cref="HouseholderQr.Compute{T}(MatrixView{T})"/>. Q is kept as min(m, n) Householder
/// reflectors and formed only when asked for.
/// </summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed class HouseholderQr<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    // Row j: column j of the factored matrix (R on and above the diagonal, v_j below it).
    private readonly Matrix<T> _factorsT;
    private readonly T[] _tau;

    internal HouseholderQr(Matrix<T> factorsT, T[] tau)
    {
        Debug.Assert(tau.Length == Math.Min(factorsT.Rows, factorsT.Cols));
        _factorsT = factorsT;
        _tau = tau;
        R = QrInput.UpperTrapezoid(factorsT, tau.Length);
    }

    /// <summary>Number of rows m of the factored matrix.</summary>
    public int Rows => _factorsT.Cols;

    /// <summary>Number of columns n of the factored matrix.</summary>
    public int Cols => _factorsT.Rows;

    /// <summary>The min(m, n) × n upper trapezoidal factor R (the same instance on every call; treat it as read-only).</summary>
    public Matrix<T> R { get; }

    /// <summary>The Householder scalars τ_j, one per reflector.</summary>
    public ReadOnlySpan<T> Tau => _tau;

    /// <summary>Forms Q (blocked, as LAPACK orgqr).</summary>
    /// <param name="thin">True: the m × min(m, n) factor with <c>A = Q·R</c>; false: the full m × m orthogonal matrix.</param>
    public Matrix<T> Q(bool thin = true)
    {
        int cols = thin ? _tau.Length : Rows;
        return Householder.FormQ(_factorsT.Transpose(), _tau, cols, HouseholderQr.BlockSize);
    }

    /// <summary><c>Qᵀ·B</c> for the full m × m Q, without forming Q (ormqr). B is not modified.</summary>
    /// <param name="b">m × p.</param>
    /// <returns>A new m × p matrix; its first min(m, n) rows are <c>Q_thinᵀ·B</c>.</returns>
    public Matrix<T> ApplyQTranspose(MatrixView<T> b)
    {
        if (b.Rows != Rows)
            ThrowHelper.ShapeMismatch(nameof(b), "ApplyQTranspose: B must have one row per row of A", $"{Rows}×{b.Cols}", $"{b.Rows}×{b.Cols}");
        var c = b.ToMatrix();
        Householder.ApplyReflectors(_factorsT.Transpose(), _tau, c, transpose: true, HouseholderQr.BlockSize);
        return c;
    }

    /// <summary><c>Q·B</c> without forming Q (ormqr). B is not modified.</summary>
    /// <param name="b">m × p (multiplied by the full Q), or min(m, n) × p (multiplied by the thin Q).</param>
    /// <returns>A new m × p matrix.</returns>
    public Matrix<T> ApplyQ(MatrixView<T> b)
    {
        int p = _tau.Length;
        if (b.Rows != Rows && b.Rows != p)
            ThrowHelper.ShapeMismatch(nameof(b), "ApplyQ: B must have m rows (full Q) or min(m, n) rows (thin Q)", $"{Rows}×{b.Cols} or {p}×{b.Cols}", $"{b.Rows}×{b.Cols}");
        var c = new Matrix<T>(Rows, b.Cols);
        b.CopyTo(c.Slice(0, 0, b.Rows, b.Cols));
        Householder.ApplyReflectors(_factorsT.Transpose(), _tau, c, transpose: false, HouseholderQr.BlockSize);
        return c;
    }

    /// <summary>
    /// The least-squares solution X (n × p) minimizing <c>‖A·X − B‖_F</c>, via <c>R·X = Q_thinᵀ·B</c>.
    /// Requires m ≥ n and a numerically nonsingular R. B is not modified.
    /// </summary>
    /// <param name="b">m × p right-hand sides.</param>
    /// <exception cref="ArgumentException">B has the wrong number of rows, or contains NaN or infinity.</exception>
    /// <exception cref="InvalidOperationException">m &lt; n, or R is numerically singular (A is rank deficient).</exception>
    public Matrix<T> Solve(MatrixView<T> b)
    {
        int m = Rows, n = Cols;
        if (b.Rows != m)
            ThrowHelper.ShapeMismatch(nameof(b), "Solve: B must have one row per row of A", $"{m}×{b.Cols}", $"{b.Rows}×{b.Cols}");
        MatrixChecks.RequireFinite(b, nameof(b));
        if (m < n)
            throw new InvalidOperationException(
                $"Solve needs at least as many rows as columns (got {m}×{n}); an underdetermined system has no unique least-squares solution.");
        T maxDiag = T.Zero;
        for (int i = 0; i < n; i++) maxDiag = T.Max(maxDiag, T.Abs(R[i, i]));
        T threshold = T.CreateTruncating(Math.Max(m, n) * Precision.UnitRoundoff<T>()) * maxDiag;
        for (int i = 0; i < n; i++)
            if (T.Abs(R[i, i]) <= threshold)
                throw new InvalidOperationException(
                    $"R is numerically singular: |r[{i},{i}]| = {R[i, i]} ≤ {threshold} (max(m, n)·ε·max|r_jj|); A is rank deficient. Use PivotedQr to find its numerical rank.");

        var qtb = ApplyQTranspose(b);
        var x = new Matrix<T>(n, b.Cols);
        for (int i = n - 1; i >= 0; i--)
        {
            var xi = x.Row(i);
            qtb.Row(i).CopyTo(xi);
            for (int k = i + 1; k < n; k++) VectorKernels.Axpy<T>(-R[i, k], x.Row(k), xi);
            VectorKernels.Scale<T>(T.One / R[i, i], xi);
        }
        return x;
    }
}
