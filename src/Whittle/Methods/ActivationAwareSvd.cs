// Activation-aware SVD, ASVD (METHODS.md §4; Yuan et al., arXiv 2312.05821): scale W's columns by d_j = a_j^α with a_j
// the RMS of input feature j on the calibration data, truncate the SVD of W·diag(d), unscale R. Inputs that are large
// in practice are approximated better. For a convolution the features are the im2col patch entries (channel × kernel
// offset), whose RMS comes from the patch Gram matrix.

using Whittle.Calibration;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;

namespace Whittle.Methods;

/// <summary>The activation-aware SVD baseline (<c>asvd</c>): SVD of <c>W·diag(a^α)</c>, unscaled.</summary>
public sealed class ActivationAwareSvd : LowRankBaseline
{
    /// <summary>ASVD's default exponent.</summary>
    public const double DefaultAlpha = 0.5;

    /// <summary>An ASVD baseline with exponent <paramref name="alpha"/> and <paramref name="options"/> (null: defaults).</summary>
    /// <exception cref="ArgumentOutOfRangeException">α is negative or not finite.</exception>
    public ActivationAwareSvd(double alpha = DefaultAlpha, LowRankBaselineOptions? options = null) : base(options)
    {
        if (!double.IsFinite(alpha) || alpha < 0) ThrowHelper.ArgumentOutOfRange(nameof(alpha), alpha, "a finite exponent α ≥ 0 (ASVD uses 0.5)");
        AlphaExponent = alpha;
    }

    /// <summary>The exponent α of the column scaling.</summary>
    public double AlphaExponent { get; }

    /// <inheritdoc/>
    public override string Name => "asvd";

    /// <inheritdoc/>
    protected override bool NeedsInputs => true;

    /// <inheritdoc/>
    protected override double? Alpha => AlphaExponent;

    /// <inheritdoc/>
    protected override LowRankFactors<double> Factorize(Matrix<double> w, GramMatrix? inputs, int rank) =>
        LowRank.ActivationAware<double>(w, inputs!.Rms(), rank, AlphaExponent);

    /// <inheritdoc/>
    protected override double[] Spectrum(Matrix<double> w, GramMatrix? inputs) => LowRank.ActivationAwareSpectrum<double>(w, inputs!.Rms(), AlphaExponent);
}
