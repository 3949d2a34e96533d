// First-order loss change of every SVD truncation rank at once (joint low-rank factorization).
//
// Contract: for W = Σ_j σ_j·u_j·v_jᵀ (r = min(m, n) terms, σ descending) and the loss gradient G = ∇_W f (same shape
// as W), returns Δ[c] = ⟨G, Ŵ_c − W⟩ = −Σ_{j≥c} σ_j·u_jᵀ·G·v_j (0-based j) for every c = 0..r, where Ŵ_c keeps the
// c leading terms; Δ[r] = 0 and Δ[0] = −⟨G, W⟩. f(Ŵ_c) − f(W) ≈ Δ[c] to first order. Inputs are never modified.
//
// Shapes: W m × n (out × in), G m × n, U m × r, Vᵀ r × n. (Here G is the gradient, not the Gram matrix XᵀX.)
//
// Paper: Zhang, Cheng, Zhang, Liu, Tian, "Lossless Model Compression via Joint Low-Rank Factorization
// Optimization", arXiv 2412.06867 (and its companion "Compression for Better", arXiv 2412.06868): factorization
// is "lossless" at rank c when Δ[c] ≤ 0 and the second-order term is small.
//
// Cost: the r numbers d_j = u_jᵀ·G·v_j are the diagonal of Uᵀ·G·V, formed as one product Uᵀ·G (r × n, O(mnr))
// followed by r dot products with the rows of Vᵀ (O(nr)); the suffix sums then give all r + 1 values. Never
// O(r·mn) per rank. Numerical caveats: the sums are accumulated in double; Δ[c] for c near r is a sum of small
// terms and is accurate relative to Σ_j σ_j·|d_j|, not to itself. For a repeated σ the individual terms depend on
// the chosen singular vectors, but Δ at ranks that do not split a cluster of equal σ does not.

using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>
/// The first-order change of a loss when a weight matrix is replaced by its rank-c truncated SVD, for every c
/// (Zhang et al., arXiv 2412.06867): one SVD and one gradient score all truncation ranks.
/// </summary>
public static class TruncationLoss
{
    /// <summary>
    /// <c>Δ[c] = ⟨G, Ŵ_c − W⟩ = −Σ_{j≥c} σ_j·u_jᵀ·G·v_j</c> for c = 0..r (r = number of singular values in
    /// <paramref name="svd"/>), from the diagonal of one product <c>Uᵀ·G·V</c>.
    /// </summary>
    /// <param name="svd">The thin SVD of W (U m × r, S length r descending, Vt r × n).</param>
    /// <param name="gradient">The loss gradient ∇_W f, m × n.</param>
    /// <returns>r + 1 values; Δ[r] = 0.</returns>
    /// <exception cref="ArgumentException">The shapes do not agree.</exception>
    public static double[] FirstOrderLossChange<T>(SvdResult<T> svd, MatrixView<T> gradient) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(svd);
        int r = svd.S.Length, m = svd.U.Rows, n = svd.Vt.Cols;
        if (svd.U.Cols != r || svd.Vt.Rows != r)
            ThrowHelper.ShapeMismatch(nameof(svd), "TruncationLoss: U must be m × r and Vt r × n with r = |S|",
                $"U {m}×{r}, Vt {r}×{n}", $"U {svd.U.Rows}×{svd.U.Cols}, Vt {svd.Vt.Rows}×{svd.Vt.Cols}");
        if (gradient.Rows != m || gradient.Cols != n)
            ThrowHelper.ShapeMismatch(nameof(gradient), "TruncationLoss: the gradient must have W's shape", $"{m}×{n}", $"{gradient.Rows}×{gradient.Cols}");

        var utg = Blas.Multiply(svd.U.Transpose(), gradient);                     // Uᵀ·G, r × n
        var delta = new double[r + 1];
        double sum = 0;
        for (int j = r - 1; j >= 0; j--)
        {
            var a = utg.Row(j);
            var v = svd.Vt.Row(j);
            double d = 0;                                                          // u_jᵀ·G·v_j
            for (int k = 0; k < n; k++) d += double.CreateTruncating(a[k]) * double.CreateTruncating(v[k]);
            sum += double.CreateTruncating(svd.S[j]) * d;
            delta[j] = -sum;
        }
        return delta;
    }

    /// <summary>
    /// <see cref="FirstOrderLossChange{T}(SvdResult{T}, MatrixView{T})"/> for W given directly: computes the dense SVD of
    /// <paramref name="w"/> first.
    /// </summary>
    /// <param name="w">The weight matrix W, m × n, finite.</param>
    /// <param name="gradient">The loss gradient ∇_W f, m × n.</param>
    /// <returns>min(m, n) + 1 values Δ[c], c = 0..min(m, n); the last is 0.</returns>
    public static double[] FirstOrderLossChange<T>(MatrixView<T> w, MatrixView<T> gradient) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (gradient.Rows != w.Rows || gradient.Cols != w.Cols)
            ThrowHelper.ShapeMismatch(nameof(gradient), "TruncationLoss: the gradient must have W's shape", $"{w.Rows}×{w.Cols}", $"{gradient.Rows}×{gradient.Cols}");
        return FirstOrderLossChange(Svd.Compute(w), gradient);
    }
}
