// Weight-only quantization (`whittle quantize`, `compress --quantize`): every MatMul/Gemm weight becomes ONNX Runtime's
// MatMulNBits (4 or 8 bits, blocks of B weights along K, a scale and zero point per block, round to nearest) and every
// convolution kernel int8 per output channel behind DequantizeLinear. Activations stay float.
//
// With calibration data (ActivationAware), the layers reading one input share AWQ-style scales chosen block by block on
// the model as quantized so far (ActivationAwareScales: α on a grid, the calibration output error as the criterion;
// α = 0 is round to nearest, so it never does worse on the calibration data); the report gives both errors per layer.

using System.Globalization;
using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Quantization;
using Whittle.Rewriting;

namespace Whittle.Methods;

/// <summary>Options of <see cref="WeightQuantization"/>. Immutable.</summary>
public sealed record WeightQuantizationOptions
{
    /// <summary>Bits per MatMul/Gemm weight: 4 or 8 (convolutions are int8 either way). Default 4.</summary>
    public int Bits { get; init; } = 4;

    /// <summary>Weights per block along K: a power of two ≥ 16. Default 32.</summary>
    public int BlockSize { get; init; } = 32;

    /// <summary>
    /// The default block for <paramref name="bits"/>: 32 for int4, 128 for int8 (a float32 scale and a zero point per 32
    /// weights add 0.16 bytes to each, 16 % of an int8 weight's byte; at 128, 4 %).
    /// </summary>
    public static int DefaultBlockSize(int bits) => bits == 8 ? 128 : 32;

    /// <summary>Choose AWQ-style input scales on the calibration data (else round to nearest, no calibration pass). Default true.</summary>
    public bool ActivationAware { get; init; } = true;

    /// <summary>Points of the α grid beyond 0 (α ∈ {0, 1/n, …, 1}). Default 10.</summary>
    public int Grid { get; init; } = ActivationAwareScales.DefaultGrid;

    /// <summary>Quantize convolution kernels (int8 per output channel). Default true.</summary>
    public bool IncludeConvolutions { get; init; } = true;

    /// <summary>The format of linear weights.</summary>
    public QuantizationFormat Format => QuantizationFormat.Create(Bits, BlockSize);
}

/// <summary>What quantization did to one layer (<see cref="SiteReport.Details"/>).</summary>
/// <param name="Format"><c>int4, block 32</c> or <c>int8 per channel</c>.</param>
/// <param name="Alpha">The AWQ exponent chosen for the layer's input, or null without calibration.</param>
/// <param name="InputScaling">How the input was scaled (folded into a norm, a Mul node), or null when it was not.</param>
/// <param name="BytesBefore">Bytes of the float weight.</param>
/// <param name="BytesAfter">Bytes of the codes, scales and zero points.</param>
public sealed record QuantizedSiteDetails(string Format, double? Alpha, string? InputScaling, long BytesBefore, long BytesAfter);

/// <summary>Method-wide facts of a quantization run (<see cref="CompressionReport.Details"/>).</summary>
/// <param name="Weights"><c>int4</c> or <c>int8</c>.</param>
/// <param name="BlockSize">Weights per block.</param>
/// <param name="Scales"><c>activation-aware</c> or <c>round-to-nearest</c>.</param>
/// <param name="Layers">Layers quantized.</param>
/// <param name="WeightBytesBefore">Bytes of their float weights.</param>
/// <param name="WeightBytesAfter">Bytes of their quantized weights.</param>
public sealed record WeightQuantizationDetails(string Weights, int BlockSize, string Scales, int Layers, long WeightBytesBefore, long WeightBytesAfter);

/// <summary>Weight-only quantization to <c>MatMulNBits</c> and int8 convolution kernels (see the file header).</summary>
public sealed class WeightQuantization : ICompressionMethod
{
    /// <summary>The method with <paramref name="options"/> (defaults when null).</summary>
    public WeightQuantization(WeightQuantizationOptions? options = null)
    {
        Options = options ?? new WeightQuantizationOptions();
        _ = Options.Format; // checks bits and block size now
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.Grid, 1);
    }

    /// <summary>The options.</summary>
    public WeightQuantizationOptions Options { get; }

    /// <inheritdoc/>
    public string Name => $"int{Options.Bits}";

    /// <inheritdoc/>
    public BudgetKinds Budgets => BudgetKinds.MethodDefault;

    /// <inheritdoc/>
    public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(budgets);
        var model = run.Original;
        var format = Options.Format;
        var (linear, conv, skipped) = Sites(run);
        if (linear.Count + conv.Count == 0) run.Warn($"{Name}: no layer of {model.FilePath ?? "the model"} can be quantized (see the per-site reasons).");
        var results = new List<CompressionResult>();
        foreach (var budget in budgets)
        {
            var target = run.Copy();
            var reports = skipped.Select(s => (s.Position, Report: new SiteReport(s.Name, Name, 32, 32)
            {
                ParametersBefore = s.Parameters, ParametersAfter = s.Parameters, Skipped = s.Reason,
            })).ToList();
            if (Options.ActivationAware && linear.Count > 0)
                run.Pass([target], step => QuantizeStep(run, step, linear, format, reports));
            else
                run.Time(Stages.Rewrite, () =>
                {
                    foreach (var site in linear) reports.Add((site.Position, QuantizeLinear(target, site, format, null, null)));
                });
            run.Time(Stages.Rewrite, () =>
            {
                foreach (var site in conv)
                {
                    long after = QuantizedWeights.ReplaceConv(target, site.Site);
                    long weights = (long)site.Site.OutChannels * (site.Site.InChannels / site.Site.Groups) * site.Site.Kernel.Aggregate(1L, (a, k) => a * k);
                    reports.Add((site.Position, Report(site.Name, 8, weights, "int8 per channel", null, null, after, null)));
                }
            });
            var sites = reports.OrderBy(r => r.Position).Select(r => r.Report).ToList();
            var quantized = sites.Where(s => s.Details is QuantizedSiteDetails).Select(s => (QuantizedSiteDetails)s.Details!).ToList();
            var details = new WeightQuantizationDetails(Name, format.BlockSize, Options.ActivationAware ? "activation-aware" : "round-to-nearest",
                quantized.Count, quantized.Sum(q => q.BytesBefore), quantized.Sum(q => q.BytesAfter));
            long compressible = linear.Sum(s => s.Parameters) + conv.Sum(s => s.Parameters);
            results.Add(run.Result(budget, target, sites, details, compressible: (compressible, null)));
        }
        return results;
    }

    /// <summary>One segment: the Gram of every input its layers read, AWQ scales per input, then the layers quantized.</summary>
    private void QuantizeStep(CompressionRun run, SegmentStep step, List<LinearFactorSite> sites, QuantizationFormat format, List<(int, SiteReport)> reports)
    {
        var here = sites.Where(s => step.Holds(s.Name)).ToList();
        if (here.Count == 0) return;
        var grams = run.Time(Stages.Calibration, () => SiteInputs.Grams(step, [.. here]));
        foreach (var group in here.GroupBy(s => s.Input, StringComparer.Ordinal))
        {
            run.CancellationToken.ThrowIfCancellationRequested();
            var members = group.ToList();
            run.Report(Stages.Decomposition, sites.IndexOf(members[0]), sites.Count, members[0].Name);
            var weights = members.Select(s => SiteWeights.Weight(step.Source, s.Site)).ToList();
            var scales = run.Time(Stages.Decomposition, () => ActivationAwareScales.Search(weights, grams[members[0].Name], format, Options.Grid));
            foreach (var target in step.Targets)
                run.Time(Stages.Rewrite, () =>
                {
                    string input = group.Key, how = "not scaled (α = 0: round to nearest)";
                    if (!scales.IsIdentity)
                        (input, how) = QuantizedWeights.ScaleInput(target.Model, group.Key, scales.Scales, [.. members.Select(m => m.Name)],
                            producer => step.Holds(Analysis.GraphQuery.NameOf(producer)));
                    for (int i = 0; i < members.Count; i++)
                    {
                        // A copy: with several targets each scales the original weights.
                        var w = scales.IsIdentity ? weights[i] : weights[i].Clone();
                        if (!scales.IsIdentity)
                            for (int r = 0; r < w.Rows; r++)
                                System.Numerics.Tensors.TensorPrimitives.Multiply(w.Row(r), scales.Scales, w.Row(r));
                        long after = QuantizedWeights.ReplaceLinear(target.Model, members[i].Site, w, format, input);
                        reports.Add((members[i].Position, Report(members[i].Name, format.Bits, members[i].Site.Parameters, Describe(format), scales.Alpha, how, after,
                            (scales.RoundToNearestErrors[i], scales.Errors[i]))));
                    }
                });
        }
    }

    private static SiteReport QuantizeLinear(Onnx.OnnxModel target, LinearFactorSite site, QuantizationFormat format, double? alpha, string? how)
    {
        var w = SiteWeights.Weight(target, site.Site);
        long after = QuantizedWeights.ReplaceLinear(target, site.Site, w, format, site.Input);
        return Report(site.Name, format.Bits, site.Site.Parameters, Describe(format), alpha, how, after, null);
    }

    private static SiteReport Report(string name, int bits, long parameters, string format, double? alpha, string? how, long bytesAfter, (double Rtn, double Chosen)? errors) =>
        new(name, $"int{bits}", 32, bits)
        {
            ParametersBefore = parameters,
            ParametersAfter = parameters,
            ErrorEstimate = errors?.Rtn,
            MeasuredError = errors?.Chosen,
            Details = new QuantizedSiteDetails(format, alpha, how, parameters * sizeof(float), bytesAfter),
        };

    private static string Describe(QuantizationFormat f) => $"int{f.Bits}, block {f.BlockSize.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The layers to quantize and those left alone (with the reason).</summary>
    private (List<LinearFactorSite> Linear, List<ConvFactorSite> Conv, List<SkippedSite> Skipped) Sites(CompressionRun run)
    {
        var model = run.Original;
        var position = FactorSites.Positions(model);
        var linear = new List<LinearFactorSite>();
        var conv = new List<ConvFactorSite>();
        var skipped = new List<SkippedSite>();
        foreach (var s in run.Structure.LinearSites)
        {
            var site = new LinearFactorSite(s, position.GetValueOrDefault(s.ProductOutput, int.MaxValue));
            string? reason = QuantizedWeights.Unsupported(model, s)
                ?? (FactorSites.Shared(model, s.Weight.Initializer, s.ProductOutput) ? $"its weight '{s.Weight.Initializer}' is also read elsewhere (tied)" : null)
                ?? (Options.ActivationAware ? SiteInputs.Unavailable(site) : null);
            if (reason is null) linear.Add(site);
            else skipped.Add(site.Skip(reason));
        }
        bool opset13 = (model.OpsetVersion("") ?? 0) >= 13;
        foreach (var s in run.Structure.ConvSites)
        {
            var site = new ConvFactorSite(s, position.GetValueOrDefault(s.Output, int.MaxValue));
            string? reason = !Options.IncludeConvolutions ? "convolutions are not quantized (option)"
                : !opset13 ? "per-channel DequantizeLinear needs opset 13 or later"
                : s.Weight.Path.Count > 0 ? $"its kernel is reached through {string.Join(" → ", s.Weight.Path)}"
                : FactorSites.Shared(model, s.Weight.Initializer, s.Output) ? $"its kernel '{s.Weight.Initializer}' is also read elsewhere (tied)"
                : null;
            if (reason is null) conv.Add(site);
            else skipped.Add(site.Skip(reason));
        }
        return (linear, conv, skipped);
    }
}
