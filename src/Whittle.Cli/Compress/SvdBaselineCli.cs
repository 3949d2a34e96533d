using System.CommandLine;
using Whittle.Compression;
using Whittle.Methods;

namespace Whittle.Cli.Compress;

/// <summary>
/// <c>whittle compress --method svd|asvd|whitened-svd</c>: the SVD baselines, with <c>--keep-params F</c> (per-layer ranks of a
/// global allocation, or with <c>--allocation uniform</c> one ratio for every layer) or <c>--tolerance ε</c> (per-layer ranks
/// from the relative truncation error).
/// </summary>
internal sealed class SvdBaselineCli : IMethodCli
{
    private readonly Option<double> _alpha = new("--asvd-alpha")
    {
        Description = "ASVD's exponent α: columns scaled by RMS^α before the SVD.",
        DefaultValueFactory = _ => ActivationAwareSvd.DefaultAlpha,
    };

    private readonly Option<bool> _noOutputError = new("--no-output-error")
    {
        Description = "Do not report each layer's output error on the calibration data (svd then runs no calibration pass).",
    };

    private readonly Option<bool> _outputLayer = new("--factorize-output-layer")
    {
        Description = "Also factorize the layer that writes the model's output (classifier layer, language-model head); by default it is kept.",
    };

    private readonly Option<string> _allocation = AllocationOption();

    public IReadOnlyList<string> Names { get; } = ["svd", "asvd", "whitened-svd"];

    public string Description => "Baselines: plain truncated SVD, activation-aware SVD (ASVD) and whitened SVD (SVD-LLM) of every layer, at --keep-params (global or uniform allocation) or --tolerance.";

    public IReadOnlyList<Option> Options => [_alpha, _noOutputError, _outputLayer, _allocation, MethodCatalog.Align];

    public bool TakesBudgets => true;

    private static Option<string> AllocationOption()
    {
        var o = new Option<string>("--allocation")
        {
            Description = "Ranks of a --keep-params budget: auto (sensitivity for a classifier or language model whose measurements take at most ~5e12 multiply-adds, else global), global (the ranks minimizing Σ ‖error‖²/‖matrix‖ over the layers for the budget — for "
                + "whitened-svd, each layer's squared output error on the calibration data over its output's norm), uniform (every layer keeps the same fraction of its weights) "
                + "or sensitivity (the global rule on each layer's measured effect: KL to the original with that layer alone truncated at 4 ranks — one calibration pass per layer and rank, for small models).",
            DefaultValueFactory = _ => "auto",
        };
        o.AcceptOnlyFromAmong("auto", "global", "uniform", "sensitivity");
        return o;
    }

    public ICompressionMethod Create(string name, ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var options = new LowRankBaselineOptions
        {
            MeasureOutputError = !parse.GetValue(_noOutputError),
            IncludeOutputLayer = parse.GetValue(_outputLayer),
            Allocation = parse.GetValue(_allocation) switch
            {
                "uniform" => RankAllocation.Uniform,
                "sensitivity" => RankAllocation.Sensitivity,
                "global" => RankAllocation.Global,
                _ => RankAllocation.Auto,
            },
            Align = MethodCatalog.AlignOf(parse, HardwareAlignment.Default),
        };
        double alpha = parse.GetValue(_alpha);
        if (!double.IsFinite(alpha) || alpha < 0) throw new ArgumentException($"--asvd-alpha {alpha}: expected a finite exponent ≥ 0 (ASVD uses 0.5).");
        if (name != "asvd" && parse.GetResult(_alpha) is { Implicit: false })
            throw new ArgumentException($"--asvd-alpha applies to --method asvd, not {name}.");
        return name.ToLowerInvariant() switch
        {
            "asvd" => new ActivationAwareSvd(alpha, options),
            "whitened-svd" => new WhitenedSvd(options),
            _ => new PlainSvd(options),
        };
    }
}
