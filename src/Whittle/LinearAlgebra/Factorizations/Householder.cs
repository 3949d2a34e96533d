using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// Householder reflectors <c>H = I − τ·v·vᵀ</c> with <c>v[0] = 1</c>, one at a time and in blocks
/// (compact WY form <c>H₁H₂…H_k = I − V·T·Vᵀ</c>, Schreiber and Van Loan), as in LAPACK's
/// larfg / larf / larft / larfb, and products of reflectors stored LAPACK style (reflector j in column j
/// of an m × k view, below the diagonal, implicit 1 at (j, j)) formed explicitly (<see cref="FormQ"/>:
/// orgqr / orgbr / orgtr) or applied to a matrix (<see cref="ApplyReflectors"/>: ormqr), blocked through
/// the compact WY form so the work is GEMM.
/// </summary>
/// <remarks>
/// Vectors are n × 1 views (pass a row as <c>row.Transpose()</c>). Block routines take V explicitly
/// (m × k, unit lower trapezoidal); <see cref="UnitLowerTrapezoid"/> extracts it from a factored
/// panel that stores reflectors below its diagonal, LAPACK style.
/// </remarks>
internal static class Householder
{
    /// <summary>Default number of reflectors per compact-WY block in <see cref="FormQ"/> and <see cref="ApplyReflectors"/>.</summary>
    public const int BlockSize = 32;

    /// <summary>
    /// Overwrites x (n × 1) so that x[0] = β and x[1..] = v[1..], where <c>H·x_old = β·e₁</c>;
    /// returns τ (0 when x[1..] is already zero, so H = I).
    /// </summary>
    public static T Generate<T>(MatrixView<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Rows;
        if (n <= 1) return T.Zero;
        T alpha = x[0, 0];
        T xnorm = Norm(x.Slice(1, 0, n - 1, 1));
        if (xnorm == T.Zero) return T.Zero;
        T beta = -T.CopySign(Hypot(alpha, xnorm), alpha);
        T tau = (beta - alpha) / beta;
        T scale = T.One / (alpha - beta);
        if (x.RowStride == 1) Kernels.VectorKernels.Scale<T>(scale, x.Array.AsSpan(x.Offset + 1, n - 1));
        else for (int i = 1; i < n; i++) x[i, 0] *= scale;
        x[0, 0] = beta;
        return tau;
    }

    /// <summary><c>C ← H·C</c> for the reflector (v, τ); v is n × 1 and v[0] is taken as 1 whatever it holds.</summary>
    public static void ApplyLeft<T>(MatrixView<T> v, T tau, MatrixView<T> c) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (tau == T.Zero || c.IsEmpty) return;
        var vv = Explicit(v);
        var w = new T[c.Cols];
        Blas.Gemv(T.One, c.Transpose(), vv, T.Zero, w); // w = Cᵀv
        Blas.Ger(-tau, vv, w, c);                         // C −= τ·v·wᵀ
    }

    /// <summary><c>C ← C·H</c> for the reflector (v, τ); v is n × 1 and v[0] is taken as 1.</summary>
    public static void ApplyRight<T>(MatrixView<T> v, T tau, MatrixView<T> c) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (tau == T.Zero || c.IsEmpty) return;
        var vv = Explicit(v);
        var w = new T[c.Rows];
        Blas.Gemv(T.One, c, vv, T.Zero, w); // w = C·v
        Blas.Ger(-tau, w, vv, c);            // C −= τ·w·vᵀ
    }

    /// <summary>The k × k upper triangular T with <c>H₁…H_k = I − V·T·Vᵀ</c> (V explicit, m × k).</summary>
    public static Matrix<T> TriangularFactor<T>(MatrixView<T> v, ReadOnlySpan<T> tau) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int k = v.Cols;
        var gram = new Matrix<T>(k, k);
        Blas.Gemm(T.One, v.Transpose(), v, T.Zero, gram); // G = VᵀV
        var t = new Matrix<T>(k, k);
        var col = new T[k];
        for (int i = 0; i < k; i++)
        {
            // T[0:i, i] = −τᵢ · T[0:i, 0:i] · G[0:i, i]
            for (int r = 0; r < i; r++)
            {
                T s = T.Zero;
                for (int q = r; q < i; q++) s += t[r, q] * gram[q, i];
                col[r] = -tau[i] * s;
            }
            for (int r = 0; r < i; r++) t[r, i] = col[r];
            t[i, i] = tau[i];
        }
        return t;
    }

    /// <summary><c>C ← H·C</c> (or <c>Hᵀ·C</c> when <paramref name="transpose"/>) with <c>H = I − V·T·Vᵀ</c>.</summary>
    public static void ApplyBlockLeft<T>(MatrixView<T> v, MatrixView<T> t, MatrixView<T> c, bool transpose)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (c.IsEmpty || v.Cols == 0) return;
        var w = Blas.Multiply(v.Transpose(), c);                    // W = Vᵀ·C        (k × n)
        var tw = Blas.Multiply(transpose ? t.Transpose() : t, w);   // W ← T·W or Tᵀ·W
        Blas.Gemm(-T.One, v, tw, T.One, c);                         // C −= V·W
    }

    /// <summary><c>C ← C·H</c> (or <c>C·Hᵀ</c> when <paramref name="transpose"/>) with <c>H = I − V·T·Vᵀ</c>.</summary>
    public static void ApplyBlockRight<T>(MatrixView<T> v, MatrixView<T> t, MatrixView<T> c, bool transpose)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (c.IsEmpty || v.Cols == 0) return;
        var w = Blas.Multiply(c, v);                                // W = C·V          (m × k)
        var wt = Blas.Multiply(w, transpose ? t.Transpose() : t);   // W ← W·T or W·Tᵀ
        Blas.Gemm(-T.One, wt, v.Transpose(), T.One, c);             // C −= W·Vᵀ
    }

    /// <summary>
    /// Explicit V (m × k, unit lower trapezoidal: ones on the diagonal, zeros above) for the reflectors
    /// stored below the diagonal of an m × k panel, returned as the transpose view of k × m row-major
    /// storage. Fast (contiguous copies) when the panel is itself a transposed view, which is how the
    /// QR factorizations keep their factors.
    /// </summary>
    public static MatrixView<T> UnitLowerTrapezoid<T>(MatrixView<T> panel) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = panel.Rows, k = Math.Min(panel.Cols, m);
        var vt = new Matrix<T>(k, m);
        for (int j = 0; j < k; j++)
        {
            var row = vt.Row(j);
            row[j] = T.One;
            int len = m - j - 1;
            if (len <= 0) continue;
            if (panel.RowStride == 1)
                panel.Array.AsSpan(panel.Offset + (j + 1) + j * panel.ColStride, len).CopyTo(row.Slice(j + 1));
            else
                for (int i = j + 1; i < m; i++) row[i] = panel[i, j];
        }
        return vt.Transpose();
    }

    /// <summary>
    /// <c>C ← Q·C</c> or <c>C ← Qᵀ·C</c> (LAPACK ormqr, left side) where <c>Q = H₀H₁…H_{k−1}</c> is held as
    /// reflectors below the diagonal of <paramref name="factors"/> (m × k) with scalars
    /// <paramref name="tau"/>; C is m × p and is overwritten. Blocked: each block of
    /// <paramref name="blockSize"/> reflectors is applied as one compact-WY GEMM update.
    /// </summary>
    public static void ApplyReflectors<T>(MatrixView<T> factors, ReadOnlySpan<T> tau, MatrixView<T> c, bool transpose, int blockSize = BlockSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = factors.Rows, k = Math.Min(factors.Cols, m);
        System.Diagnostics.Debug.Assert(c.Rows == m && tau.Length >= k);
        if (c.IsEmpty || k == 0) return;
        int blocks = (k + blockSize - 1) / blockSize;
        for (int bi = 0; bi < blocks; bi++)
        {
            // Qᵀ = H_{k−1}…H₀ applies the first block first; Q applies the last block first.
            int b = transpose ? bi : blocks - 1 - bi;
            int j0 = b * blockSize, jb = Math.Min(blockSize, k - j0);
            var v = UnitLowerTrapezoid(factors.Slice(j0, j0, m - j0, jb));
            var t = TriangularFactor(v, tau.Slice(j0, jb));
            ApplyBlockLeft(v, t, c.Slice(j0, 0, m - j0, c.Cols), transpose);
        }
    }

    /// <summary>
    /// The first <paramref name="cols"/> columns of <c>Q = H₀H₁…H_{k−1}</c> (m × cols, cols ≥ k), as LAPACK
    /// orgqr: start from the identity and apply the blocks backwards, each to the trailing rows and
    /// columns only (the leading ones are still identity).
    /// </summary>
    public static Matrix<T> FormQ<T>(MatrixView<T> factors, ReadOnlySpan<T> tau, int cols, int blockSize = BlockSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = factors.Rows, k = Math.Min(factors.Cols, m);
        System.Diagnostics.Debug.Assert(cols >= k && cols <= m);
        var q = new Matrix<T>(m, cols);
        for (int i = 0; i < cols; i++) q[i, i] = T.One;
        int blocks = (k + blockSize - 1) / blockSize;
        for (int b = blocks - 1; b >= 0; b--)
        {
            int j0 = b * blockSize, jb = Math.Min(blockSize, k - j0);
            var v = UnitLowerTrapezoid(factors.Slice(j0, j0, m - j0, jb));
            var t = TriangularFactor(v, tau.Slice(j0, jb));
            ApplyBlockLeft(v, t, q.Slice(j0, j0, m - j0, cols - j0), transpose: false);
        }
        return q;
    }

    /// <summary>
    /// The (k+1) × (k+1) matrix <c>[1 0; 0 Qᵀ]</c> with <c>Q = H₀…H_{k−1}</c> (k × k) from the reflectors
    /// stored below the diagonal of the k × k <paramref name="reflectors"/>: the orthogonal factor of a
    /// reduction whose reflector j acts on coordinates j+1 … k (dorgtr / dorgbr 'P'), transposed.
    /// </summary>
    public static Matrix<T> FormBorderedQt<T>(MatrixView<T> reflectors, ReadOnlySpan<T> tau) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int k = reflectors.Rows;
        var qt = new Matrix<T>(k + 1, k + 1);
        qt[0, 0] = T.One;
        if (k == 0) return qt;
        FormQ(reflectors, tau, k).Transpose().CopyTo(qt.Slice(1, 1, k, k));
        return qt;
    }

    private static T[] Explicit<T>(MatrixView<T> v) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var e = new T[v.Rows];
        for (int i = 1; i < e.Length; i++) e[i] = v[i, 0];
        if (e.Length > 0) e[0] = T.One;
        return e;
    }

    private static T Norm<T>(MatrixView<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.RowStride == 1) return Kernels.VectorKernels.Norm2<T>(x.Array.AsSpan(x.Offset, x.Rows));
        var tmp = new T[x.Rows];
        for (int i = 0; i < tmp.Length; i++) tmp[i] = x[i, 0];
        return Kernels.VectorKernels.Norm2<T>(tmp);
    }

    /// <summary>√(a² + b²) without overflow.</summary>
    internal static T Hypot<T>(T a, T b) where T : unmanaged, IFloatingPointIeee754<T> => T.Hypot(a, b);
}
