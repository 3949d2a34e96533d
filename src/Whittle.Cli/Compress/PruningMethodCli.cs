using System.CommandLine;
using System.Globalization;
using Whittle.Compression;
using Whittle.Methods;

namespace Whittle.Cli.Compress;

/// <summary>
/// <c>--method id</c> (structured pruning by interpolative decomposition, METHODS.md §2) and <c>--method magnitude</c> (its
/// baseline: the same surgery, units ranked by activation norm, no correction). Flags mirror <see cref="PruningOptions"/>.
/// </summary>
internal sealed class PruningMethodCli : IMethodCli
{
    private readonly Option<string> Schedule = Choice("--schedule", "bisection",
        "Per-site widths: bisection (one global tolerance found by bisection to meet the budget), sensitivity (the same on each site's error mapped onto "
        + "its measured effect on the output: every site alone is pruned at a few tolerances and its KL to the original measured) or greedy (the reference "
        + "schedule, recalibrating after each step).",
        "bisection", "sensitivity", "greedy");

    private readonly Option<double> GreedyFactor = new("--greedy-factor")
    {
        Description = "With --schedule greedy: each step shrinks one site to this fraction of its width.",
        DefaultValueFactory = _ => PruningOptions.Default.GreedyFactor,
    };

    private readonly Option<string> Targets = new("--prune")
    {
        Description = "What may be pruned, comma-separated: fc (fully connected neurons, also ffn), conv (convolution channels), heads (attention heads), "
            + "all (those three), stream (a CNN's residual streams: one channel set per stream, opt-in, e.g. all,stream).",
        DefaultValueFactory = _ => "all",
    };

    private readonly Option<string> Scaling = Choice("--stat-scaling", "auto",
        "Weight each activation column by the norm of the next layer's weights reading it (STAT): auto (transformer sites only), on, off.",
        "auto", "on", "off");

    private readonly Option<string> Proxy = Choice("--error-proxy", "residual",
        "The per-site error ε_k that one global tolerance (and the greedy score) compares: residual (‖Z − Z[:, I]T‖/‖Z‖) or diagonal (|r_kk|/|r_00|, the paper's).",
        "residual", "diagonal");

    private readonly Option<string> Statistic = Choice("--id-source", "auto",
        "The activation statistic calibration keeps (memory bounded in the sample count): rfactor (TSQR, exact), gram (ZᵀZ), sketch (Gaussian row sketch), "
        + "auto (rfactor up to 2048 columns, gram beyond).",
        "auto", "rfactor", "gram", "sketch");

    private readonly Option<int?> SketchRows = new("--sketch-rows") { Description = "Rows of the sketch with --id-source sketch (default: twice each site's width)." };

    private readonly Option<int> MinWidth = new("--min-width")
    {
        Description = "The fewest neurons, channels or head groups a site keeps.",
        DefaultValueFactory = _ => PruningOptions.Default.MinimumWidth,
    };

    private readonly Option<bool> NoSiteErrors = new("--no-site-errors")
    {
        Description = "Skip measuring each site's output error on the calibration data (one pass per model saved).",
    };

    /// <inheritdoc/>
    public IReadOnlyList<string> Names { get; } = ["id", "magnitude"];

    /// <inheritdoc/>
    public string Description =>
        "id: prune neurons, channels and attention heads by interpolative decomposition, folding the interpolation matrix into the next layer; "
        + "magnitude: the same surgery keeping the units of largest activation norm, without correction.";

    /// <inheritdoc/>
    public IReadOnlyList<Option> Options => [Schedule, GreedyFactor, Targets, Scaling, Proxy, Statistic, SketchRows, MinWidth, NoSiteErrors, MethodCatalog.Align];

    /// <inheritdoc/>
    public bool TakesBudgets => true;

    /// <inheritdoc/>
    public ICompressionMethod Create(string name, ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var options = Parse(parse);
        return name.ToLowerInvariant() switch
        {
            "id" => new InterpolativePruning(options),
            "magnitude" => new MagnitudePruning(options),
            _ => throw new ArgumentException($"--method {name}: this entry builds id or magnitude."),
        };
    }

    /// <summary>The options record from the parsed flags.</summary>
    /// <exception cref="ArgumentException">A value out of range (the message names the flag).</exception>
    internal PruningOptions Parse(ParseResult parse)
    {
        double factor = parse.GetValue(GreedyFactor);
        if (!(factor >= 0.5 && factor < 1))
            throw new ArgumentException($"--greedy-factor {factor.ToString(CultureInfo.InvariantCulture)}: expected a fraction in [0.5, 1), e.g. 0.9.");
        int minWidth = parse.GetValue(MinWidth);
        if (minWidth < 1) throw new ArgumentException($"--min-width {minWidth}: expected at least 1.");
        if (parse.GetValue(SketchRows) is < 1 and var rows) throw new ArgumentException($"--sketch-rows {rows}: expected a positive number of rows.");
        return new PruningOptions
        {
            Schedule = parse.GetValue(Schedule) switch
            {
                "greedy" => PruningSchedule.Greedy,
                "sensitivity" => PruningSchedule.Sensitivity,
                _ => PruningSchedule.Bisection,
            },
            GreedyFactor = factor,
            Targets = ParseTargets(parse.GetValue(Targets)!),
            Scaling = parse.GetValue(Scaling) switch { "on" => ColumnScaling.On, "off" => ColumnScaling.Off, _ => ColumnScaling.Auto },
            Proxy = parse.GetValue(Proxy) == "diagonal" ? ErrorProxy.DiagonalRatio : ErrorProxy.RelativeResidual,
            Statistic = parse.GetValue(Statistic) switch
            {
                "gram" => ActivationStatistic.Gram,
                "sketch" => ActivationStatistic.Sketch,
                "rfactor" => ActivationStatistic.RFactor,
                _ => ActivationStatistic.Auto,
            },
            SketchRows = parse.GetValue(SketchRows),
            MinimumWidth = minWidth,
            Align = MethodCatalog.AlignOf(parse, PruningOptions.Default.Align),
            MeasureErrors = !parse.GetValue(NoSiteErrors),
        };
    }

    /// <summary><c>fc,heads</c> → the flags; one line naming the bad item otherwise.</summary>
    internal static PruningTargets ParseTargets(string text)
    {
        var targets = PruningTargets.None;
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            targets |= item.ToLowerInvariant() switch
            {
                "fc" or "ffn" or "linear" or "neurons" => PruningTargets.FullyConnected,
                "conv" or "channels" => PruningTargets.Convolution,
                "heads" or "attention" => PruningTargets.AttentionHeads,
                "stream" or "residual" => PruningTargets.ResidualStream,
                "all" => PruningTargets.All,
                _ => throw new ArgumentException($"--prune {text}: '{item}' is not a target; use fc (or ffn), conv, heads, stream or all, comma-separated."),
            };
        if (targets == PruningTargets.None) throw new ArgumentException($"--prune '{text}' names no target; use fc, conv, heads or all.");
        return targets;
    }

    private static Option<string> Choice(string name, string fallback, string description, params string[] values)
    {
        var o = new Option<string>(name) { Description = description, DefaultValueFactory = _ => fallback };
        o.AcceptOnlyFromAmong(values);
        return o;
    }
}
