using System.Diagnostics;
using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// Products of Householder reflectors stored LAPACK style — reflector j in column j of an m × k
/// view, below the diagonal, with an implicit 1 at (j, j) — formed explicitly (orgqr / orgbr / orgtr)
/// or applied to a matrix (ormqr), in blocks of <see cref="BlockSize"/> through the compact WY form
/// (<see cref="Householder.ApplyBlockLeft{T}"/>, so the work is GEMM).
/// </summary>
/// <remarks>Reference: Golub and Van Loan, Matrix Computations (4th ed.), §5.1.7 and §5.2.3; LAPACK dorgqr, dormqr.</remarks>
internal static class ReflectorProducts
{
    public const int BlockSize = 32;

    /// <summary>The first <paramref name="cols"/> columns of <c>Q = H₀H₁…H_{k−1}</c> (m × cols, cols ≥ k).</summary>
    public static Matrix<T> Form<T>(MatrixView<T> reflectors, ReadOnlySpan<T> tau, int cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = reflectors.Rows, k = tau.Length;
        Debug.Assert(k <= reflectors.Cols && k <= cols && cols <= m);
        var q = new Matrix<T>(m, cols);
        for (int i = 0; i < cols; i++) q[i, i] = T.One;
        if (k == 0) return q;
        // Backwards over blocks: rows ≥ b of columns < b are still zero, so block b touches q[b:, b:] only.
        for (int b = (k - 1) / BlockSize * BlockSize; b >= 0; b -= BlockSize)
        {
            int kb = Math.Min(BlockSize, k - b);
            var v = Householder.UnitLowerTrapezoid(reflectors.Slice(b, b, m - b, kb));
            var t = Householder.TriangularFactor<T>(v, tau.Slice(b, kb));
            Householder.ApplyBlockLeft<T>(v, t, q.Slice(b, b, m - b, cols - b), transpose: false);
        }
        return q;
    }

    /// <summary><c>C ← Q·C</c> (or <c>Qᵀ·C</c> when <paramref name="transpose"/>), Q = H₀…H_{k−1}; C is m × any.</summary>
    public static void ApplyLeft<T>(MatrixView<T> reflectors, ReadOnlySpan<T> tau, MatrixView<T> c, bool transpose)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = reflectors.Rows, k = tau.Length;
        Debug.Assert(c.Rows == m);
        if (k == 0 || c.IsEmpty) return;
        int blocks = (k + BlockSize - 1) / BlockSize;
        for (int q = 0; q < blocks; q++)
        {
            int b = (transpose ? q : blocks - 1 - q) * BlockSize;
            int kb = Math.Min(BlockSize, k - b);
            var v = Householder.UnitLowerTrapezoid(reflectors.Slice(b, b, m - b, kb));
            var t = Householder.TriangularFactor<T>(v, tau.Slice(b, kb));
            Householder.ApplyBlockLeft<T>(v, t, c.Slice(b, 0, m - b, c.Cols), transpose);
        }
    }

    /// <summary>
    /// Blocked Householder QR in place (LAPACK geqrf): on return the upper triangle of
    /// <paramref name="a"/> (m × n, m ≥ n) holds R and the reflectors lie below the diagonal.
    /// </summary>
    public static T[] QrInPlace<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = a.Rows, n = a.Cols, k = Math.Min(m, n);
        var tau = new T[k];
        for (int b = 0; b < k; b += BlockSize)
        {
            int kb = Math.Min(BlockSize, k - b);
            for (int j = b; j < b + kb; j++)
            {
                var v = a.Slice(j, j, m - j, 1);
                tau[j] = Householder.Generate(v);
                if (j + 1 < b + kb) Householder.ApplyLeft(v, tau[j], a.Slice(j, j + 1, m - j, b + kb - j - 1));
            }
            if (b + kb < n)
            {
                var v = Householder.UnitLowerTrapezoid(a.Slice(b, b, m - b, kb));
                var t = Householder.TriangularFactor<T>(v, tau.AsSpan(b, kb));
                Householder.ApplyBlockLeft<T>(v, t, a.Slice(b, b + kb, m - b, n - b - kb), transpose: true);
            }
        }
        return tau;
    }
}
