// Whitened SVD, SVD-LLM (METHODS.md §4; Wang et al., arXiv 2403.07378): with the calibration inputs' Gram G = XᵀX = S·Sᵀ
// (Cholesky, S lower; eigendecomposition and pseudo-inverse square root when G is numerically singular), truncate the
// SVD of W·S and unwhiten: Ŵ = U_c·Σ_c·V_cᵀ·S⁻¹. The truncation error then equals the output error on the calibration
// data, ‖(W − Ŵ)Xᵀ‖_F = sqrt(Σ_{j>c} σ_j(W·S)²), the smallest possible at rank c — so a --tolerance ε bounds the relative
// calibration output error of every layer. For a convolution, X holds the im2col patches.

using Whittle.Calibration;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;

namespace Whittle.Methods;

/// <summary>The whitened SVD baseline (<c>whitened-svd</c>, SVD-LLM): SVD of <c>W·S</c> with <c>G = S·Sᵀ</c>, unwhitened.</summary>
public sealed class WhitenedSvd : LowRankBaseline
{
    /// <summary>A whitened SVD baseline with <paramref name="options"/> (null: defaults).</summary>
    public WhitenedSvd(LowRankBaselineOptions? options = null) : base(options) { }

    /// <inheritdoc/>
    public override string Name => "whitened-svd";

    /// <inheritdoc/>
    protected override bool NeedsInputs => true;

    /// <inheritdoc/>
    protected override LowRankFactors<double> Factorize(Matrix<double> w, GramMatrix? inputs, int rank) =>
        LowRank.Whitened<double>(w, inputs!.Gram, rank);

    /// <inheritdoc/>
    protected override double[] Spectrum(Matrix<double> w, GramMatrix? inputs) => LowRank.WhitenedSpectrum<double>(w, inputs!.Gram);
}
