using System.CommandLine;
using Whittle.Compression;
using Whittle.Evaluation;
using Whittle.Methods;

namespace Whittle.Cli.Compress;

/// <summary><c>whittle compress --method lowrank</c>: the flags of <see cref="JointLowRankOptions"/>, defaults the paper's lossless algorithm.</summary>
internal sealed class LowRankCli : IMethodCli
{
    private static readonly string[] ModeNames = ["lossless", "compact"];
    private static readonly string[] GradientNames = ["exact", "central-difference"];
    private static readonly string[] OrderNames = ["graph", "largest-first"];

    private readonly Option<string> _mode = new("--mode")
    {
        Description = "lossless: per layer, the lowest measured calibration loss among ranks predicted not to raise it; compact: the smallest ranks "
            + "whose combined loss stays within the threshold, from one threshold on each layer's loss increase shared by every layer.",
        DefaultValueFactory = _ => ModeNames[0],
    };

    private readonly Option<string> _order = new("--order")
    {
        Description = "Layer order of lossless mode: graph (input to output, the paper's) or largest-first (the layers with most parameters get the loss "
            + "headroom first). Compact mode shares one threshold across layers, so no order.",
        DefaultValueFactory = _ => OrderNames[0],
    };

    private readonly Option<double> _tolerance = new("--loss-tolerance")
    {
        Description = "How far (nats per item) a kept layer's calibration loss may exceed the original model's.",
        DefaultValueFactory = _ => new JointLowRankOptions().LossTolerance,
    };

    private readonly Option<double?> _relative = new("--relative-tolerance")
    {
        Description = "How far the calibration loss may rise in proportion to its scale (the original's cross-entropy; for KL, the mean entropy of "
            + "the original's outputs), added to --loss-tolerance. Default: 0.01 with KL or in compact mode when --loss-tolerance is not given, else 0.",
    };

    private readonly Option<string> _loss = new("--loss")
    {
        Description = "What the ranks are chosen on: divergence (KL from the original's outputs: what compression should preserve) or task "
            + "(cross-entropy on the calibration labels, next-token cross-entropy for a language model).",
        DefaultValueFactory = _ => "divergence",
    };

    private readonly Option<string> _gradient = new("--gradient")
    {
        Description = "First-order term: exact (closed form at a linear layer writing the logits, central differences elsewhere) or central-difference (two passes per candidate everywhere).",
        DefaultValueFactory = _ => GradientNames[0],
    };

    private readonly Option<int> _grid = new("--rank-grid")
    {
        Description = "Candidate ranks per layer, N: ⌈i·r_max/N⌉ for i = 1..N (r_max the largest parameter-saving rank), equally spaced in parameters.",
        DefaultValueFactory = _ => JointLowRankOptions.DefaultRankGrid,
    };

    private readonly Option<double> _step = new("--difference-step")
    {
        Description = "Central-difference step h along the factorization error δ: [f(W + hδ) − f(W − hδ)]/2h (1 reuses the candidate's measured loss).",
        DefaultValueFactory = _ => new JointLowRankOptions().DifferenceStep,
    };

    public LowRankCli()
    {
        _mode.AcceptOnlyFromAmong(ModeNames);
        _gradient.AcceptOnlyFromAmong(GradientNames);
        _order.AcceptOnlyFromAmong(OrderNames);
        _loss.AcceptOnlyFromAmong("divergence", "task");
    }

    public IReadOnlyList<string> Names { get; } = ["lowrank"];

    public string Description => "Joint low-rank factorization: each layer's rank chosen on the measured calibration loss (KL to the original by default), "
        + "lossless (layer by layer) or compact (one threshold shared by every layer) (Zhang et al. 2024).";

    public IReadOnlyList<Option> Options => [_mode, _loss, _order, _tolerance, _relative, _gradient, _grid, _step];

    public bool TakesBudgets => false;

    public ICompressionMethod Create(string name, ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        double tolerance = parse.GetValue(_tolerance);
        if (!(tolerance >= 0) || !double.IsFinite(tolerance)) throw new ArgumentException($"--loss-tolerance {tolerance}: expected a finite tolerance ≥ 0 (nats).");
        bool compact = parse.GetValue(_mode) == "compact";
        // An explicit --loss-tolerance alone (0 too) means exactly that tolerance; otherwise the relative default applies.
        double? relative = parse.GetValue(_relative) ?? (parse.GetResult(_tolerance) is { Implicit: false } ? 0 : null);
        if (relative is { } rel && (!(rel >= 0) || !double.IsFinite(rel))) throw new ArgumentException($"--relative-tolerance {rel}: expected a finite tolerance ≥ 0.");
        int grid = parse.GetValue(_grid);
        if (grid < 1) throw new ArgumentException($"--rank-grid {grid}: expected at least 1 candidate rank per layer.");
        double step = parse.GetValue(_step);
        if (!(step > 0) || !double.IsFinite(step)) throw new ArgumentException($"--difference-step {step}: expected a positive step (1 reuses the measured loss).");
        return new JointLowRank(new JointLowRankOptions
        {
            Mode = compact ? LowRankMode.Compact : LowRankMode.Lossless,
            Loss = parse.GetValue(_loss) == "task" ? LowRankLoss.Task : LowRankLoss.Divergence,
            RelativeLossTolerance = relative,
            Order = parse.GetValue(_order) == "largest-first" ? LayerOrder.LargestFirst : LayerOrder.Graph,
            LossTolerance = tolerance,
            Gradient = parse.GetValue(_gradient) == "central-difference" ? GradientSource.CentralDifference : GradientSource.Exact,
            RankGrid = grid,
            DifferenceStep = step,
            // compress's --task: with --loss task the loss follows it (cross-entropy with labels, next-token, else KL to the original).
            Task = parse.CommandResult.Command.Options.OfType<Option<string?>>().FirstOrDefault(o => o.Name == "--task") is { } option
                && parse.GetValue(option) is { } t ? DetectedTask.Parse(t) : null,
        });
    }
}
