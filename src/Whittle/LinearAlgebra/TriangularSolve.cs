using System.Numerics;
using Whittle.LinearAlgebra.Kernels;

namespace Whittle.LinearAlgebra;

/// <summary>Which side of the unknown X a triangular matrix multiplies.</summary>
public enum Side
{
    /// <summary>Solve <c>op(T)·X = α·B</c>.</summary>
    Left,

    /// <summary>Solve <c>X·op(T) = α·B</c>.</summary>
    Right,
}

/// <summary>Which triangle of a square matrix a routine reads; the other triangle is never referenced.</summary>
public enum Triangle
{
    /// <summary>The lower triangle (diagonal included).</summary>
    Lower,

    /// <summary>The upper triangle (diagonal included).</summary>
    Upper,
}

/// <summary>
/// Triangular solves (LAPACK/BLAS trsm and trsv): <c>op(T)·X = α·B</c> or <c>X·op(T) = α·B</c> in place in B,
/// with <c>op(T)</c> = T or Tᵀ. Only the chosen triangle of T is read; with a unit diagonal the diagonal is
/// not read either. Large solves are blocked: each diagonal block is solved directly and the rest of B is
/// updated with <see cref="Blas.Gemm{T}"/>, so they run at matrix-product speed.
/// </summary>
public static class TriangularSolve
{
    /// <summary>Diagonal block size of the blocked solve.</summary>
    internal const int DefaultBlockSize = 64;

    /// <summary>
    /// Solves <c>op(T)·X = α·B</c> (<see cref="Side.Left"/>) or <c>X·op(T) = α·B</c> (<see cref="Side.Right"/>)
    /// and overwrites <paramref name="b"/> with X.
    /// </summary>
    /// <param name="side">Whether T multiplies X from the left or from the right.</param>
    /// <param name="triangle">Which triangle of <paramref name="t"/> holds the triangular matrix.</param>
    /// <param name="t">Square n × n matrix; only <paramref name="triangle"/> is read.</param>
    /// <param name="b">Right-hand sides: n × m for <see cref="Side.Left"/>, m × n for <see cref="Side.Right"/>; overwritten with X.
    /// Must not overlap <paramref name="t"/>.</param>
    /// <param name="alpha">Scale of the right-hand side; with 0, B is set to zero (old contents, even NaN, ignored).</param>
    /// <param name="transpose">Solve with Tᵀ instead of T.</param>
    /// <param name="unitDiagonal">Take the diagonal of T as ones without reading it.</param>
    /// <exception cref="ArgumentException">T is not square, the shapes do not match, or a diagonal entry of T is zero
    /// (the message names its index; B is left unchanged).</exception>
    public static void Solve<T>(Side side, Triangle triangle, MatrixView<T> t, MatrixView<T> b, T alpha,
        bool transpose = false, bool unitDiagonal = false)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Solve(side, triangle, t, b, alpha, transpose, unitDiagonal, DefaultBlockSize);

    /// <summary>Solves with the lower triangle of <paramref name="l"/>: <c>op(L)·X = B</c> or <c>X·op(L) = B</c>, X overwriting B.
    /// See <see cref="Solve{T}(Side, Triangle, MatrixView{T}, MatrixView{T}, T, bool, bool)"/>.</summary>
    /// <param name="l">Square matrix whose lower triangle is read.</param>
    /// <param name="b">Right-hand sides, overwritten with the solution.</param>
    /// <param name="side">Whether L multiplies X from the left or from the right.</param>
    /// <param name="transpose">Solve with Lᵀ instead of L.</param>
    /// <param name="unitDiagonal">Take the diagonal of L as ones without reading it.</param>
    public static void SolveLower<T>(MatrixView<T> l, MatrixView<T> b, Side side = Side.Left, bool transpose = false, bool unitDiagonal = false)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Solve(side, Triangle.Lower, l, b, T.One, transpose, unitDiagonal, DefaultBlockSize);

    /// <summary>Solves with the upper triangle of <paramref name="u"/>: <c>op(U)·X = B</c> or <c>X·op(U) = B</c>, X overwriting B.
    /// See <see cref="Solve{T}(Side, Triangle, MatrixView{T}, MatrixView{T}, T, bool, bool)"/>.</summary>
    /// <param name="u">Square matrix whose upper triangle is read.</param>
    /// <param name="b">Right-hand sides, overwritten with the solution.</param>
    /// <param name="side">Whether U multiplies X from the left or from the right.</param>
    /// <param name="transpose">Solve with Uᵀ instead of U.</param>
    /// <param name="unitDiagonal">Take the diagonal of U as ones without reading it.</param>
    public static void SolveUpper<T>(MatrixView<T> u, MatrixView<T> b, Side side = Side.Left, bool transpose = false, bool unitDiagonal = false)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Solve(side, Triangle.Upper, u, b, T.One, transpose, unitDiagonal, DefaultBlockSize);

    /// <summary>Solves <c>op(T)·x = b</c> for one vector, overwriting <paramref name="x"/> (which holds b on entry).</summary>
    /// <param name="triangle">Which triangle of <paramref name="t"/> holds the triangular matrix.</param>
    /// <param name="t">Square n × n matrix; only <paramref name="triangle"/> is read.</param>
    /// <param name="x">Length n: the right-hand side on entry, the solution on return.</param>
    /// <param name="transpose">Solve with Tᵀ instead of T.</param>
    /// <param name="unitDiagonal">Take the diagonal of T as ones without reading it.</param>
    /// <exception cref="ArgumentException">T is not square, the length does not match, or a diagonal entry is zero.</exception>
    public static void SolveVector<T>(Triangle triangle, MatrixView<T> t, Span<T> x, bool transpose = false, bool unitDiagonal = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckTriangle(t, triangle, unitDiagonal);
        if (x.Length != t.Rows)
            ThrowHelper.ShapeMismatch(nameof(x), "TriangularSolve.SolveVector: x must have one entry per row of T", $"{t.Rows}", $"{x.Length}");
        bool lower = triangle == Triangle.Lower;
        if (transpose)
        {
            t = t.Transpose();
            lower = !lower;
        }
        int n = t.Rows;
        if (n == 0) return;
        if (t.ColStride == 1)
        {
            // Rows of T are contiguous: x_i = (x_i − ⟨T[i, ·], x⟩) / T_ii.
            if (lower)
                for (int i = 0; i < n; i++)
                {
                    T s = x[i] - VectorKernels.Dot<T>(t.Array.AsSpan(t.Offset + i * t.RowStride, i), x[..i]);
                    x[i] = unitDiagonal ? s : s / t[i, i];
                }
            else
                for (int i = n - 1; i >= 0; i--)
                {
                    T s = x[i] - VectorKernels.Dot<T>(t.Array.AsSpan(t.Offset + i * t.RowStride + i + 1, n - 1 - i), x[(i + 1)..]);
                    x[i] = unitDiagonal ? s : s / t[i, i];
                }
        }
        else
        {
            // Columns of T are contiguous: x_j /= T_jj, then subtract x_j·T[·, j] from the rest.
            if (lower)
                for (int j = 0; j < n; j++)
                {
                    if (!unitDiagonal) x[j] /= t[j, j];
                    VectorKernels.Axpy<T>(-x[j], t.Array.AsSpan(t.Offset + (j + 1) + j * t.ColStride, n - 1 - j), x[(j + 1)..]);
                }
            else
                for (int j = n - 1; j >= 0; j--)
                {
                    if (!unitDiagonal) x[j] /= t[j, j];
                    VectorKernels.Axpy<T>(-x[j], t.Array.AsSpan(t.Offset + j * t.ColStride, j), x[..j]);
                }
        }
    }

    /// <summary>The blocked solve with an explicit block size; a block size ≥ n gives the unblocked algorithm.</summary>
    internal static void Solve<T>(Side side, Triangle triangle, MatrixView<T> t, MatrixView<T> b, T alpha,
        bool transpose, bool unitDiagonal, int blockSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckTriangle(t, triangle, unitDiagonal);
        int needed = side == Side.Left ? b.Rows : b.Cols;
        if (needed != t.Rows)
            ThrowHelper.ShapeMismatch(nameof(b),
                side == Side.Left ? "TriangularSolve (left): B must have as many rows as T" : "TriangularSolve (right): B must have as many columns as T",
                side == Side.Left ? $"{t.Rows}×m" : $"m×{t.Rows}", $"{b.Rows}×{b.Cols}");

        bool lower = triangle == Triangle.Lower;
        // op(T) = Tᵀ: the transposed view reads the opposite triangle of the same storage.
        if (transpose)
        {
            t = t.Transpose();
            lower = !lower;
        }
        // X·T = B  ⇔  Tᵀ·Xᵀ = Bᵀ.
        if (side == Side.Right)
        {
            t = t.Transpose();
            lower = !lower;
            b = b.Transpose();
        }
        Blas.Scale(alpha, b);
        if (b.IsEmpty || alpha == T.Zero) return;
        SolveLeft(lower, unitDiagonal, t, b, Math.Max(1, blockSize));
    }

    /// <summary>op(T)·X = B with T already in the form to use (lower or upper), B pre-scaled.</summary>
    private static void SolveLeft<T>(bool lower, bool unit, MatrixView<T> t, MatrixView<T> b, int nb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = t.Rows;
        if (lower)
        {
            for (int k0 = 0; k0 < n; k0 += nb)
            {
                int kb = Math.Min(nb, n - k0), rest = n - k0 - kb;
                SolveDiagonalBlock(lower, unit, t.Slice(k0, k0, kb, kb), b.SliceRows(k0, kb));
                if (rest > 0)
                    Blas.Gemm(-T.One, t.Slice(k0 + kb, k0, rest, kb), b.SliceRows(k0, kb), T.One, b.SliceRows(k0 + kb, rest));
            }
        }
        else
        {
            // Backward: the last block first; blocks aligned so that the short one (if any) is at the top.
            for (int k1 = n; k1 > 0; k1 -= nb)
            {
                int kb = Math.Min(nb, k1), k0 = k1 - kb;
                SolveDiagonalBlock(lower, unit, t.Slice(k0, k0, kb, kb), b.SliceRows(k0, kb));
                if (k0 > 0)
                    Blas.Gemm(-T.One, t.Slice(0, k0, k0, kb), b.SliceRows(k0, kb), T.One, b.SliceRows(0, k0));
            }
        }
    }

    /// <summary>Unblocked solve of one diagonal block (copied once into dense row-major scratch), parallel over columns of B.</summary>
    private static void SolveDiagonalBlock<T>(bool lower, bool unit, MatrixView<T> t, MatrixView<T> b)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = t.Rows, m = b.Cols;
        // Dense copy of the referenced triangle (row-major) and the reciprocal diagonal.
        var tt = new T[n * n];
        var inv = new T[n];
        for (int i = 0; i < n; i++)
        {
            int j0 = lower ? 0 : i + 1, j1 = lower ? i : n;
            for (int j = j0; j < j1; j++) tt[i * n + j] = t[i, j];
            inv[i] = unit ? T.One : T.One / t[i, i];
        }
        long work = (long)n * n * m;
        int workers = work < 1L << 18 ? 1 : ParallelWork.DefaultWorkers;

        if (b.ColStride != 1 && b.RowStride != 1)
        {
            // A single strided row or column (neither stride is 1): plain scalar substitution.
            for (int c0 = 0; c0 < m; c0++)
                for (int step = 0; step < n; step++)
                {
                    int i = lower ? step : n - 1 - step;
                    int j0 = lower ? 0 : i + 1, j1 = lower ? i : n;
                    T s = b[i, c0];
                    for (int j = j0; j < j1; j++) s -= tt[i * n + j] * b[j, c0];
                    b[i, c0] = s * inv[i];
                }
        }
        else if (b.ColStride == 1 && (b.RowStride != 1 || n > 1))
        {
            // Rows of B are contiguous: row-oriented substitution with axpys over column chunks.
            int chunk = Math.Min(512, ParallelWork.ChunkSize(m, 2 * workers, 64));
            var view = b;
            ParallelWork.For((m + chunk - 1) / chunk, workers, (_, c) =>
            {
                int c0 = c * chunk, len = Math.Min(m, c0 + chunk) - c0;
                RowSubstitution(lower, unit, tt, inv, view.Array.AsSpan(view.Offset + c0, (n - 1) * view.RowStride + len), view.RowStride, len);
            });
        }
        else
        {
            // Columns of B are contiguous. Short dot products are slow, so gather chunks of columns into
            // row-major scratch, substitute with long axpys, and scatter back (the copies cost O(n·m), the solve O(n²·m)).
            var view = b;
            const int width = 256;
            int chunk = Math.Min(width, ParallelWork.ChunkSize(m, 2 * workers, 16));
            ParallelWork.For((m + chunk - 1) / chunk, workers, (_, c) =>
            {
                int c0 = c * chunk, len = Math.Min(m, c0 + chunk) - c0;
                var scratch = new T[n * len];
                for (int col = 0; col < len; col++)
                {
                    var x = view.Array.AsSpan(view.Offset + (c0 + col) * view.ColStride, n);
                    for (int i = 0; i < n; i++) scratch[i * len + col] = x[i];
                }
                RowSubstitution(lower, unit, tt, inv, scratch, len, len);
                for (int col = 0; col < len; col++)
                {
                    var x = view.Array.AsSpan(view.Offset + (c0 + col) * view.ColStride, n);
                    for (int i = 0; i < n; i++) x[i] = scratch[i * len + col];
                }
            });
        }
    }

    /// <summary>Row-oriented substitution on n rows of length <paramref name="len"/> (row i at i·stride in
    /// <paramref name="data"/>): row_i ← (row_i − Σ_j tt_ij·row_j) · inv_i.</summary>
    private static void RowSubstitution<T>(bool lower, bool unit, T[] tt, T[] inv, Span<T> data, int stride, int len)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = inv.Length;
        for (int step = 0; step < n; step++)
        {
            int i = lower ? step : n - 1 - step;
            int j0 = lower ? 0 : i + 1, j1 = lower ? i : n;
            var bi = data.Slice(i * stride, len);
            for (int j = j0; j < j1; j++)
            {
                T tij = tt[i * n + j];
                if (tij != T.Zero) VectorKernels.Axpy<T>(-tij, data.Slice(j * stride, len), bi);
            }
            if (!unit) VectorKernels.Scale(inv[i], bi);
        }
    }

    private static void CheckTriangle<T>(MatrixView<T> t, Triangle triangle, bool unitDiagonal)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (t.Rows != t.Cols)
            ThrowHelper.ShapeMismatch(nameof(t), "TriangularSolve: T must be square", $"{t.Rows}×{t.Rows}", $"{t.Rows}×{t.Cols}");
        if (triangle != Triangle.Lower && triangle != Triangle.Upper)
            ThrowHelper.ArgumentOutOfRange(nameof(triangle), triangle, "Triangle.Lower or Triangle.Upper");
        if (unitDiagonal) return;
        for (int i = 0; i < t.Rows; i++)
            if (t[i, i] == T.Zero)
                ThrowHelper.Argument(nameof(t),
                    $"TriangularSolve: T is singular: diagonal entry T[{i},{i}] is 0. Expected a non-zero diagonal; " +
                    "regularize T (add a small multiple of the identity) or use a least-squares solver.");
    }
}
