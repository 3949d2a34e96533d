// The input statistics of factor sites: the Gram matrix G = XᵀX of what each layer reads (linear: its input rows;
// 2-D convolution: its im2col patches), collected in one pass of the segment that holds the sites.

using Whittle.Calibration;
using Whittle.Compression;
using Whittle.Onnx;
using Whittle.Rewriting;

namespace Whittle.Methods;

/// <summary>Which statistic gives a factor site's input Gram, and the sites whose inputs calibration cannot describe.</summary>
internal static class SiteInputs
{
    /// <summary>Why the inputs of <paramref name="site"/> cannot be collected, or null.</summary>
    public static string? Unavailable(FactorSite site) => site switch
    {
        LinearFactorSite { Site.WeightIsLeftOperand: true } => "its input features lie on the second-to-last axis (W·x), which calibration does not collect",
        ConvFactorSite c when c.Site.Kernel.Count != 2 => $"patch statistics are collected for 2-D convolutions only (this kernel is {c.Site.Kernel.Count}-D)",
        _ => null,
    };

    /// <summary>The input Gram of every site in <paramref name="sites"/> (all available) from one pass of <paramref name="step"/>'s segment.</summary>
    public static Dictionary<string, GramMatrix> Grams(SegmentStep step, IReadOnlyList<FactorSite> sites)
    {
        var linear = new Dictionary<string, GramStatistic>(StringComparer.Ordinal); // one per distinct input
        var conv = new Dictionary<string, ConvPatchStatistic>(StringComparer.Ordinal);
        foreach (var s in sites)
        {
            if (s is ConvFactorSite c) conv[c.Name] = new ConvPatchStatistic(step.Source, c.Site);
            else if (!linear.ContainsKey(s.Input)) linear[s.Input] = new GramStatistic(s.Input);
        }
        step.Calibrate([.. linear.Values, .. conv.Values]);
        var byInput = linear.ToDictionary(p => p.Key, p => p.Value.Finish(), StringComparer.Ordinal);
        return sites.ToDictionary(s => s.Name, s => s is ConvFactorSite ? conv[s.Name].Finish() : byInput[s.Input], StringComparer.Ordinal);
    }

    /// <summary>A report entry for a site left alone.</summary>
    public static SiteReport Unchanged(this SkippedSite s) =>
        new(s.Name, "low-rank", s.FullRank, s.FullRank) { ParametersBefore = s.Parameters, ParametersAfter = s.Parameters, Skipped = s.Reason };

    /// <summary>W as float64.</summary>
    public static LinearAlgebra.Matrix<double> WeightOf(FactorSite site, OnnxModel model) => LowRankBaseline.Widen(site.Weight(model));
}
