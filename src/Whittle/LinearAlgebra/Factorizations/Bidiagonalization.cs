using System.Diagnostics;
using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// Blocked Householder bidiagonalization <c>A = Q·B·Pᵀ</c> of an m × n matrix with m ≥ n
/// (callers transpose wide matrices): B is n × n upper bidiagonal (diagonal d, superdiagonal e),
/// <c>Q = H₀…H_{n−1}</c> (m × n, orthonormal columns), <c>P = G₀…G_{n−2}</c> (n × n orthogonal).
/// </summary>
/// <remarks>
/// <para>Mirrors LAPACK dgebrd with dlabrd panels (Golub and Van Loan §5.4.8; Dongarra, Sorensen and
/// Hammarling 1989): a panel of <see cref="BlockSize"/> columns and rows is reduced with matrix-vector
/// products against the not-yet-updated trailing matrix, accumulating X (m × nb) and Y (n × nb); the
/// trailing matrix is then updated with two GEMMs, <c>A ← A − V·Yᵀ − X·Uᵀ</c>. Half the flops stay in
/// the two GEMVs per column (memory bound), as in LAPACK.</para>
/// <para>On return the working matrix holds the reflectors LAPACK style: column reflector j below the
/// diagonal of column j, row reflector j right of the superdiagonal of row j.
/// <see cref="FormQ{T}"/> and <see cref="FormPt{T}"/> (dorgbr) build the factors explicitly.</para>
/// <para>Numerics: backward stable, <c>B = Qᵀ(A + E)P</c> with ‖E‖ = O(ε‖A‖). X and Y are stored
/// transposed (nb × m, nb × n) so their columns are contiguous.</para>
/// </remarks>
internal static class Bidiagonalization
{
    public const int BlockSize = 32;

    /// <summary>Reduces <paramref name="a"/> (row-major, m × n, m ≥ n) in place.</summary>
    public static void Reduce<T>(MatrixView<T> a, Span<T> d, Span<T> e, Span<T> tauq, Span<T> taup)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = a.Rows, n = a.Cols;
        Debug.Assert(m >= n && a.IsRowMajor && d.Length == n && tauq.Length == n && taup.Length == n);
        Debug.Assert(e.Length == Math.Max(0, n - 1));
        if (n == 0) return;
        var xt = new Matrix<T>(BlockSize, m);
        var yt = new Matrix<T>(BlockSize, n);
        var scratch = new Scratch<T>(m, n);
        for (int k = 0; k < n; k += BlockSize)
        {
            int nb = Math.Min(BlockSize, n - k);
            var ap = a.Slice(k, k, m - k, n - k);
            var xtp = xt.Slice(0, 0, nb, m - k);
            var ytp = yt.Slice(0, 0, nb, n - k);
            xtp.Fill(T.Zero);
            ytp.Fill(T.Zero);
            Panel(ap, nb, d.Slice(k, nb), e.Slice(k, Math.Min(nb, n - 1 - k)), tauq.Slice(k, nb), taup.Slice(k, nb), xtp, ytp, scratch);
            int mm = m - k, nn = n - k;
            if (nb < nn)
            {
                // A[nb:, nb:] −= V·Yᵀ + X·Uᵀ  (the unit entries of V and U are still stored in A).
                var trailing = ap.Slice(nb, nb, mm - nb, nn - nb);
                Blas.Gemm(-T.One, ap.Slice(nb, 0, mm - nb, nb), ytp.Slice(0, nb, nb, nn - nb), T.One, trailing);
                Blas.Gemm(-T.One, xtp.Slice(0, nb, nb, mm - nb).Transpose(), ap.Slice(0, nb, nb, nn - nb), T.One, trailing);
            }
            for (int j = 0; j < nb; j++)
            {
                ap[j, j] = d[k + j];
                if (j + 1 < nn) ap[j, j + 1] = e[k + j];
            }
        }
    }

    private sealed class Scratch<T>(int m, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        public readonly T[] Col = new T[m];
        public readonly T[] Row = new T[n];
        public readonly T[] Small = new T[BlockSize + 1];
        public readonly T[] Small2 = new T[BlockSize + 1];
    }

    /// <summary>dlabrd: reduces the first nb rows and columns of <paramref name="ap"/> (mm × nn).</summary>
    private static void Panel<T>(MatrixView<T> ap, int nb, Span<T> d, Span<T> e, Span<T> tauq, Span<T> taup,
        MatrixView<T> xt, MatrixView<T> yt, Scratch<T> s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int mm = ap.Rows, nn = ap.Cols;
        for (int i = 0; i < nb; i++)
        {
            // Column i: A[i:, i] −= A[i:, :i]·Y[i, :i]ᵀ + X[i:, :i]·A[:i, i].
            var col = s.Col.AsSpan(0, mm - i);
            CopyColumn(ap.Slice(i, i, mm - i, 1), col);
            if (i > 0)
            {
                var yi = s.Small.AsSpan(0, i);
                CopyColumn(yt.Slice(0, i, i, 1), yi);
                Blas.Gemv(-T.One, ap.Slice(i, 0, mm - i, i), yi, T.One, col);
                var ai = s.Small2.AsSpan(0, i);
                CopyColumn(ap.Slice(0, i, i, 1), ai);
                Blas.Gemv(-T.One, xt.Slice(0, i, i, mm - i).Transpose(), ai, T.One, col);
                WriteColumn(col, ap.Slice(i, i, mm - i, 1));
            }
            tauq[i] = Householder.Generate(ap.Slice(i, i, mm - i, 1));
            d[i] = ap[i, i];
            if (i + 1 >= nn)
            {
                taup[i] = T.Zero;
                continue;
            }
            ap[i, i] = T.One;
            CopyColumn(ap.Slice(i, i, mm - i, 1), col); // u = A[i:, i]

            // Y[i+1:, i] = τq·(A[i:, i+1:]ᵀu − Y[i+1:, :i]·(A[i:, :i]ᵀu) − A[:i, i+1:]ᵀ·(X[i:, :i]ᵀu)).
            var ycol = yt.Slice(i, i + 1, 1, nn - i - 1).Row(0);
            Blas.Gemv(T.One, ap.Slice(i, i + 1, mm - i, nn - i - 1).Transpose(), col, T.Zero, ycol);
            if (i > 0)
            {
                var t = s.Small.AsSpan(0, i);
                Blas.Gemv(T.One, ap.Slice(i, 0, mm - i, i).Transpose(), col, T.Zero, t);
                Blas.Gemv(-T.One, yt.Slice(0, i + 1, i, nn - i - 1).Transpose(), t, T.One, ycol);
                Blas.Gemv(T.One, xt.Slice(0, i, i, mm - i), col, T.Zero, t);
                Blas.Gemv(-T.One, ap.Slice(0, i + 1, i, nn - i - 1).Transpose(), t, T.One, ycol);
            }
            Kernels.VectorKernels.Scale(tauq[i], ycol);

            // Row i: A[i, i+1:] −= Y[i+1:, :i+1]·A[i, :i+1]ᵀ + A[:i, i+1:]ᵀ·X[i, :i]ᵀ.
            var row = ap.Slice(i, i + 1, 1, nn - i - 1).Row(0);
            Blas.Gemv(-T.One, yt.Slice(0, i + 1, i + 1, nn - i - 1).Transpose(), ap.Slice(i, 0, 1, i + 1).Row(0), T.One, row);
            if (i > 0)
            {
                var xi = s.Small.AsSpan(0, i);
                CopyColumn(xt.Slice(0, i, i, 1), xi);
                Blas.Gemv(-T.One, ap.Slice(0, i + 1, i, nn - i - 1).Transpose(), xi, T.One, row);
            }
            taup[i] = Householder.Generate(ap.Slice(i, i + 1, 1, nn - i - 1).Transpose());
            e[i] = ap[i, i + 1];
            ap[i, i + 1] = T.One;

            // X[i+1:, i] = τp·(A[i+1:, i+1:]·v − A[i+1:, :i+1]·(Y[i+1:, :i+1]ᵀv) − X[i+1:, :i]·(A[:i, i+1:]·v)).
            var v = ap.Slice(i, i + 1, 1, nn - i - 1).Row(0);
            var xcol = xt.Slice(i, i + 1, 1, mm - i - 1).Row(0);
            Blas.Gemv(T.One, ap.Slice(i + 1, i + 1, mm - i - 1, nn - i - 1), v, T.Zero, xcol);
            var t1 = s.Small.AsSpan(0, i + 1);
            Blas.Gemv(T.One, yt.Slice(0, i + 1, i + 1, nn - i - 1), v, T.Zero, t1);
            Blas.Gemv(-T.One, ap.Slice(i + 1, 0, mm - i - 1, i + 1), t1, T.One, xcol);
            if (i > 0)
            {
                var t2 = s.Small2.AsSpan(0, i);
                Blas.Gemv(T.One, ap.Slice(0, i + 1, i, nn - i - 1), v, T.Zero, t2);
                Blas.Gemv(-T.One, xt.Slice(0, i + 1, i, mm - i - 1).Transpose(), t2, T.One, xcol);
            }
            Kernels.VectorKernels.Scale(taup[i], xcol);
        }
    }

    /// <summary>Q (m × n) from a reduced matrix (dorgbr 'Q').</summary>
    public static Matrix<T> FormQ<T>(MatrixView<T> reduced, ReadOnlySpan<T> tauq) where T : unmanaged, IFloatingPointIeee754<T>
        => Householder.FormQ(reduced, tauq, reduced.Cols);

    /// <summary>Pᵀ (n × n) from a reduced matrix (dorgbr 'P'): row reflector j acts on coordinates j+1 … n−1.</summary>
    public static Matrix<T> FormPt<T>(MatrixView<T> reduced, ReadOnlySpan<T> taup) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = reduced.Cols;
        if (n == 0) return new Matrix<T>(0, 0);
        // The row reflectors, transposed, are column reflectors of the (n−1) × (n−1) block.
        return Householder.FormBorderedQt(reduced.Slice(0, 1, n - 1, n - 1).Transpose(), taup[..(n - 1)]);
    }

    private static void CopyColumn<T>(MatrixView<T> column, Span<T> destination) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = column[i, 0];
    }

    private static void WriteColumn<T>(ReadOnlySpan<T> source, MatrixView<T> column) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < source.Length; i++) column[i, 0] = source[i];
    }
}
