// Plain truncated SVD of every layer's weight (METHODS.md §4): W = U·Σ·Vᵀ, L = U_c·Σ_c^{1/2}, R = Σ_c^{1/2}·V_cᵀ.
// The weight error ‖W − LR‖_F is the smallest possible at rank c (Eckart–Young); the data are not looked at, so the
// output error on real inputs can be far larger than the weight error suggests (SVD-LLM reports LLaMA-7B perplexity
// 20061 at 20 % of the parameters removed). Calibration runs only to report each site's output error.

using Whittle.Calibration;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Methods;

/// <summary>The plain truncated-SVD baseline (<c>svd</c>): every linear and ungrouped convolution site becomes <c>L·R</c>.</summary>
public sealed class PlainSvd : LowRankBaseline
{
    /// <summary>A plain SVD baseline with <paramref name="options"/> (null: defaults).</summary>
    public PlainSvd(LowRankBaselineOptions? options = null) : base(options) { }

    /// <inheritdoc/>
    public override string Name => "svd";

    /// <inheritdoc/>
    protected override bool NeedsInputs => false;

    /// <inheritdoc/>
    protected override LowRankFactors<double> Factorize(Matrix<double> w, GramMatrix? inputs, int rank) => LowRank.Svd<double>(w, rank);

    /// <inheritdoc/>
    protected override double[] Spectrum(Matrix<double> w, GramMatrix? inputs) => GramSvd.SingularValues<double>(w);
}
