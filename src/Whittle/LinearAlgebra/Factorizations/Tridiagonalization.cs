using System.Diagnostics;
using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// Blocked Householder tridiagonalization of a symmetric n × n matrix, <c>A = Q·T·Qᵀ</c>: T is
/// symmetric tridiagonal (diagonal d, subdiagonal e), <c>Q = H₀…H_{n−2}</c> orthogonal, reflector j
/// acting on coordinates j+1 … n−1.
/// </summary>
/// <remarks>
/// <para>Mirrors LAPACK dsytrd / dlatrd with uplo = 'L' (Golub and Van Loan §8.3.1): a panel of
/// <see cref="BlockSize"/> columns is reduced with matrix-vector products against the trailing matrix
/// as it was at the start of the panel, accumulating W (n × nb); the trailing matrix is then updated by
/// <c>A ← A − V·Wᵀ − W·Vᵀ</c>. Unlike LAPACK the working matrix is kept FULL (both triangles), so the
/// symmetric matrix-vector product is a plain GEMV and the rank-2k update two GEMMs.</para>
/// <para>On return the strictly lower part of the working matrix holds the reflectors (reflector j in
/// column j below the subdiagonal, with an implicit 1 on the subdiagonal); <see cref="FormQ{T}"/>
/// (dorgtr) builds Q. Backward stable: <c>T = Qᵀ(A + E)Q</c>, ‖E‖ = O(ε‖A‖).</para>
/// </remarks>
internal static class Tridiagonalization
{
    public const int BlockSize = 32;

    /// <summary>Reduces the full symmetric <paramref name="a"/> (row-major, n × n) in place.</summary>
    public static void Reduce<T>(MatrixView<T> a, Span<T> d, Span<T> e, Span<T> tau) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = a.Rows;
        Debug.Assert(a.Cols == n && a.IsRowMajor && d.Length == n && e.Length == Math.Max(0, n - 1) && tau.Length == e.Length);
        if (n == 0) return;
        var wt = new Matrix<T>(BlockSize, n);
        var col = new T[n];
        var small = new T[BlockSize];
        for (int k = 0; k < n; k += BlockSize)
        {
            int nb = Math.Min(BlockSize, n - k), nn = n - k;
            var ap = a.Slice(k, k, nn, nn);
            var w = wt.Slice(0, 0, nb, nn);
            w.Fill(T.Zero);
            for (int i = 0; i < nb; i++)
            {
                // Column i: A[i:, i] −= A[i:, :i]·W[i, :i]ᵀ + W[i:, :i]·A[i, :i]ᵀ.
                if (i > 0)
                {
                    var c = col.AsSpan(0, nn - i);
                    for (int r = 0; r < c.Length; r++) c[r] = ap[i + r, i];
                    var wi = small.AsSpan(0, i);
                    for (int r = 0; r < i; r++) wi[r] = w[r, i];
                    Blas.Gemv(-T.One, ap.Slice(i, 0, nn - i, i), wi, T.One, c);
                    Blas.Gemv(-T.One, w.Slice(0, i, i, nn - i).Transpose(), ap.Slice(i, 0, 1, i).Row(0), T.One, c);
                    for (int r = 0; r < c.Length; r++) ap[i + r, i] = c[r];
                }
                d[k + i] = ap[i, i];
                if (i + 1 >= nn) break;

                var x = ap.Slice(i + 1, i, nn - i - 1, 1);
                T t = Householder.Generate(x);
                tau[k + i] = t;
                e[k + i] = ap[i + 1, i];
                ap[i + 1, i] = T.One;
                var v = col.AsSpan(0, nn - i - 1);
                for (int r = 0; r < v.Length; r++) v[r] = ap[i + 1 + r, i];

                // W[i+1:, i] = τ·(A[i+1:, i+1:]·v − V·(Wᵀv) − W·(Vᵀv)), then the symmetric correction.
                var wcol = w.Slice(i, i + 1, 1, nn - i - 1).Row(0);
                Blas.Gemv(T.One, ap.Slice(i + 1, i + 1, nn - i - 1, nn - i - 1), v, T.Zero, wcol);
                if (i > 0)
                {
                    var s = small.AsSpan(0, i);
                    Blas.Gemv(T.One, w.Slice(0, i + 1, i, nn - i - 1), v, T.Zero, s);
                    Blas.Gemv(-T.One, ap.Slice(i + 1, 0, nn - i - 1, i), s, T.One, wcol);
                    Blas.Gemv(T.One, ap.Slice(i + 1, 0, nn - i - 1, i).Transpose(), v, T.Zero, s);
                    Blas.Gemv(-T.One, w.Slice(0, i + 1, i, nn - i - 1).Transpose(), s, T.One, wcol);
                }
                Kernels.VectorKernels.Scale(t, wcol);
                T alpha = -T.CreateTruncating(0.5) * t * Kernels.VectorKernels.Dot<T>(wcol, v);
                Kernels.VectorKernels.Axpy<T>(alpha, v, wcol);
            }
            if (nb < nn)
            {
                var trailing = ap.Slice(nb, nb, nn - nb, nn - nb);
                var vb = ap.Slice(nb, 0, nn - nb, nb);
                var wb = w.Slice(0, nb, nb, nn - nb);
                Blas.Gemm(-T.One, vb, wb, T.One, trailing);
                Blas.Gemm(-T.One, wb.Transpose(), vb.Transpose(), T.One, trailing);
            }
            for (int j = 0; j < nb && j + 1 < nn; j++) ap[j + 1, j] = e[k + j];
        }
    }

    /// <summary>Qᵀ (n × n) from a reduced matrix (dorgtr 'L', transposed so that rotations act on its rows).</summary>
    public static Matrix<T> FormQt<T>(MatrixView<T> reduced, ReadOnlySpan<T> tau) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = reduced.Rows;
        if (n == 0) return new Matrix<T>(0, 0);
        return Householder.FormBorderedQt(reduced.Slice(1, 0, n - 1, n - 1), tau);
    }

    /// <summary>Q (n × n) from a reduced matrix (dorgtr 'L').</summary>
    public static Matrix<T> FormQ<T>(MatrixView<T> reduced, ReadOnlySpan<T> tau) where T : unmanaged, IFloatingPointIeee754<T>
        => FormQt(reduced, tau).Transpose().ToMatrix();
}
