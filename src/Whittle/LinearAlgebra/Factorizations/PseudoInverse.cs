using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// Moore–Penrose pseudo-inverse <c>A⁺ = V·Σ⁺·Uᵀ</c> from the SVD, where singular values at or below
/// <c>cutoff·σ₁</c> count as zero (like numpy's <c>pinv(rcond)</c>).
/// </summary>
/// <remarks>
/// Shapes: A m × n, A⁺ n × m. The default relative cutoff is <c>max(m, n)·ε</c>, the level below
/// which singular values of a rounded matrix carry no information.
/// </remarks>
public static class PseudoInverse
{
    /// <summary>A⁺, with singular values ≤ <paramref name="relativeCutoff"/>·σ₁ treated as zero
    /// (default <c>max(m, n)·ε</c>).</summary>
    public static Matrix<T> Compute<T>(MatrixView<T> a, double? relativeCutoff = null) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var svd = Svd.Compute(a);
        int rank = NumericalRank(svd.S, Cutoff<T>(a, relativeCutoff));
        // A⁺ = V_r·Σ_r⁻¹·U_rᵀ: scale the rows of V_rᵀ, then one GEMM.
        var scaledVt = svd.Vt.Slice(0, 0, rank, a.Cols).ToMatrix();
        for (int i = 0; i < rank; i++)
        {
            T inv = T.One / svd.S[i];
            foreach (ref T v in scaledVt.Row(i)) v *= inv;
        }
        return Blas.Multiply(scaledVt.Transpose(), svd.U.Slice(0, 0, a.Rows, rank).Transpose());
    }

    /// <summary>The number of singular values above <paramref name="relativeCutoff"/>·σ₁ (S descending).</summary>
    public static int NumericalRank<T>(ReadOnlySpan<T> s, double relativeCutoff) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (s.Length == 0 || s[0] == T.Zero) return 0;
        T threshold = T.CreateTruncating(relativeCutoff) * s[0];
        int rank = 0;
        while (rank < s.Length && s[rank] > threshold) rank++;
        return rank;
    }

    internal static double Cutoff<T>(MatrixView<T> a, double? relativeCutoff) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double cutoff = relativeCutoff ?? Math.Max(a.Rows, a.Cols) * Precision.Epsilon<T>();
        if (!(cutoff >= 0) || double.IsInfinity(cutoff))
            ThrowHelper.ArgumentOutOfRange(nameof(relativeCutoff), relativeCutoff, "a finite, non-negative relative cutoff");
        return cutoff;
    }

}
