namespace Whittle.Methods;

/// <summary>How per-site widths are chosen for a size budget.</summary>
public enum PruningSchedule
{
    /// <summary>One global tolerance ε, every site keeping <c>k(ε) = min{k : ε_k ≤ ε}</c>; ε found by bisection to meet the budget (one calibration for every budget).</summary>
    Bisection,

    /// <summary>
    /// <see cref="Bisection"/> on each unit's error mapped onto its measured effect on the output (<c>SensitivityCurve</c>):
    /// every unit alone is pruned at a few tolerances (<see cref="PruningOptions.SensitivityGrid"/>) and the KL of the
    /// original against that model measured on the calibration data, so a unit whose errors travel far (a residual stream)
    /// keeps more. Costs one model evaluation per unit and grid point, and holds every unit's factorization until then.
    /// </summary>
    Sensitivity,

    /// <summary>The reference schedule: repeatedly shrink the site with the smallest <c>ε_k</c> per MAC (or parameter) saved by <see cref="PruningOptions.GreedyFactor"/>, recalibrating the pruned network after each step.</summary>
    Greedy,
}

/// <summary>Which kinds of structure may be pruned.</summary>
[Flags]
public enum PruningTargets
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>Neurons of fully connected chains (MLP hidden layers, transformer FFNs, gated MLPs).</summary>
    FullyConnected = 1,

    /// <summary>Convolution channels (with BatchNorm, pooling, depthwise convolutions and the flatten boundary).</summary>
    Convolution = 2,

    /// <summary>Attention heads (whole key/value groups under grouped-query attention).</summary>
    AttentionHeads = 4,

    /// <summary>
    /// The channels of a CNN's residual streams: one index set for the stem, every block's last convolution and projection
    /// shortcut writing the stream and every layer reading it, chosen by ID of the stream's values at all its join points
    /// stacked. Opt-in: the model is then calibrated with each stream in one segment.
    /// </summary>
    ResidualStream = 8,

    /// <summary>Neurons, convolution channels and attention heads (residual streams are opt-in: <see cref="ResidualStream"/>).</summary>
    All = FullyConnected | Convolution | AttentionHeads,
}

/// <summary>Whether a site's activation columns are weighted by the norms of the next layer's columns before ranking (STAT).</summary>
public enum ColumnScaling
{
    /// <summary>On for transformer sites (FFN neurons, attention heads), off elsewhere, as the papers do.</summary>
    Auto,

    /// <summary>Always: rank <c>Z·diag(‖W_next[:, j]‖)</c>.</summary>
    On,

    /// <summary>Never: rank Z itself.</summary>
    Off,
}

/// <summary>The statistic of each site's activation Z that calibration accumulates; memory is bounded whatever the number of samples.</summary>
public enum ActivationStatistic
{
    /// <summary>
    /// <see cref="RFactor"/> for units of up to <see cref="PruningOptions.AutoGramColumns"/> columns (2048 by default), <see cref="Gram"/> for wider
    /// ones (a transformer's MLP): the TSQR and column-pivoted QR of a c × c factor cost far more than the Gram matrix and its
    /// blocked pivoted Cholesky, and squaring the condition number costs nothing at the errors pruning works at.
    /// </summary>
    Auto,

    /// <summary>The TSQR factor R (h × h, RᵀR = ZᵀZ): exact pivots and errors.</summary>
    RFactor,

    /// <summary>The Gram matrix ZᵀZ (pivoted Cholesky): exact in exact arithmetic, squares the condition number.</summary>
    Gram,

    /// <summary>A seeded Gaussian row sketch S·Z (<see cref="PruningOptions.SketchRows"/> rows): approximate pivots and errors.</summary>
    Sketch,
}

/// <summary>The per-site error proxy ε_k that one global tolerance (and the greedy score) compares across sites.</summary>
public enum ErrorProxy
{
    /// <summary>The paper's <c>|r_kk| / |r_00|</c>: the largest remaining column norm relative to the first pivot's (for magnitude pruning, the (k+1)-th largest norm relative to the largest).</summary>
    DiagonalRatio,

    /// <summary><c>‖Z − Z[:, I]·T‖_F / ‖Z‖_F</c>: the relative activation error the selection leaves (for magnitude pruning, the dropped columns' share).</summary>
    RelativeResidual,
}

/// <summary>Options of structured pruning (<see cref="InterpolativePruning"/> and its baseline <see cref="MagnitudePruning"/>). Immutable.</summary>
public sealed record PruningOptions
{
    /// <summary>The default options.</summary>
    public static PruningOptions Default { get; } = new();

    /// <summary>How widths are chosen for a size budget; default <see cref="PruningSchedule.Bisection"/>.</summary>
    public PruningSchedule Schedule { get; init; } = PruningSchedule.Bisection;

    /// <summary>With <see cref="PruningSchedule.Sensitivity"/>: the tolerances ε at whose widths each unit's effect is measured; default 0.05, 0.1, 0.2, 0.3, 0.45, 0.7.</summary>
    public IReadOnlyList<double> SensitivityGrid { get; init; } = [0.05, 0.1, 0.2, 0.3, 0.45, 0.7];

    /// <summary>The greedy schedule's shrink factor per step, in [0.5, 1); default 0.9 (the reference code uses 0.9–0.98).</summary>
    public double GreedyFactor { get; init; } = 0.9;

    /// <summary>What may be pruned; default everything.</summary>
    public PruningTargets Targets { get; init; } = PruningTargets.All;

    /// <summary>Column scaling by the next layer's column norms; default <see cref="ColumnScaling.Auto"/>.</summary>
    public ColumnScaling Scaling { get; init; } = ColumnScaling.Auto;

    /// <summary>
    /// The error proxy ε_k; default <see cref="ErrorProxy.RelativeResidual"/>. The paper's <see cref="ErrorProxy.DiagonalRatio"/>
    /// compares one column's norm across sites, so a site whose activation has a dominant first direction (a wide fully connected
    /// layer after ReLU) looks cheap to cut; the residual compares what each site actually loses.
    /// </summary>
    public ErrorProxy Proxy { get; init; } = ErrorProxy.RelativeResidual;

    /// <summary>The calibration statistic; default <see cref="ActivationStatistic.Auto"/>.</summary>
    public ActivationStatistic Statistic { get; init; } = ActivationStatistic.Auto;

    /// <summary>With <see cref="ActivationStatistic.Auto"/>, units wider than this many columns use the Gram matrix; default 2048.</summary>
    public int AutoGramColumns { get; init; } = 2048;

    /// <summary>Rows of the sketch for <see cref="ActivationStatistic.Sketch"/>; null: twice the site's width.</summary>
    public int? SketchRows { get; init; }

    /// <summary>The fewest units a site keeps; default 1.</summary>
    public int MinimumWidth { get; init; } = 1;

    /// <summary>
    /// Widths of neurons and channels chosen from a tolerance (bisection and tolerance budgets) rounded up to a multiple of
    /// this, so the error rule still holds (<see cref="Compression.HardwareAlignment"/>: ONNX Runtime's CPU kernels work on
    /// blocks of 16 output columns). Sites narrower than 4·N take any width; head counts and the greedy schedule are not
    /// aligned. Default 1 (off). Measured with 512 calibration / 2,000 held-out images: 16 raises the VGG fixture's
    /// agreement at 0.5 of the MACs from 96.60 to 98.45 % (the ResNet's, with streams, from 82.15 to 85.50 %) but lowers it
    /// at 0.7 (99.10 → 98.40 %, 94.65 → 93.40 %).
    /// </summary>
    public int Align { get; init; } = 1;

    /// <summary>
    /// Times candidates for <see cref="Compression.BudgetKind.KeepLatency"/> budgets: from the original, its calibration data
    /// and session settings; null (the default) times them with ONNX Runtime on this machine (<c>LatencyProbe</c>).
    /// </summary>
    internal Func<Onnx.OnnxModel, Data.BatchSet, Runtime.RuntimeOptions, Evaluation.ILatencyProbe>? LatencyProbe { get; init; }

    /// <summary>Measure each site's output error on the calibration data after pruning (one more pass per model); default true.</summary>
    public bool MeasureErrors { get; init; } = true;

    internal void Validate()
    {
        if (!(GreedyFactor >= 0.5 && GreedyFactor < 1)) ThrowHelper.ArgumentOutOfRange(nameof(GreedyFactor), GreedyFactor, "a greedy factor in [0.5, 1)");
        if (Align < 1) ThrowHelper.ArgumentOutOfRange(nameof(Align), Align, "an alignment ≥ 1 (1 turns it off)");
        if (MinimumWidth < 1) ThrowHelper.ArgumentOutOfRange(nameof(MinimumWidth), MinimumWidth, "a minimum width ≥ 1");
        if (SketchRows is < 1) ThrowHelper.ArgumentOutOfRange(nameof(SketchRows), SketchRows, "at least one sketch row");
        if (Targets == PruningTargets.None) ThrowHelper.Argument(nameof(Targets), "No pruning target: give at least one of fully connected, convolution or attention heads.");
        if (SensitivityGrid.Count == 0 || SensitivityGrid.Any(e => !(e > 0 && e < 1))) ThrowHelper.Argument(nameof(SensitivityGrid), "The sensitivity grid needs at least one tolerance, each in (0, 1).");
        if (!Enum.IsDefined(Schedule)) ThrowHelper.ArgumentOutOfRange(nameof(Schedule), Schedule, "a defined PruningSchedule");
        if (!Enum.IsDefined(Scaling)) ThrowHelper.ArgumentOutOfRange(nameof(Scaling), Scaling, "a defined ColumnScaling");
        if (!Enum.IsDefined(Proxy)) ThrowHelper.ArgumentOutOfRange(nameof(Proxy), Proxy, "a defined ErrorProxy");
        if (!Enum.IsDefined(Statistic)) ThrowHelper.ArgumentOutOfRange(nameof(Statistic), Statistic, "a defined ActivationStatistic");
    }
}

/// <summary>What the pruning run found, attached to <see cref="Compression.CompressionReport.Details"/>.</summary>
/// <param name="Schedule">bisection or greedy.</param>
/// <param name="Statistic">rfactor, gram or sketch.</param>
/// <param name="Tolerance">The global tolerance ε the widths come from (bisection and tolerance budgets), or null.</param>
/// <param name="BudgetMet">Whether the budget was met (false when even the smallest widths exceed it).</param>
/// <param name="GreedySteps">Greedy steps taken, or null.</param>
/// <param name="CalibrationSamples">Samples calibrated on.</param>
public sealed record PruningRunDetails(string Schedule, string Statistic, double? Tolerance, bool BudgetMet, int? GreedySteps, long CalibrationSamples)
{
    /// <summary>For a latency budget: the chosen widths' batch-1 latency over the original's, as measured during the search.</summary>
    public double? MeasuredLatency { get; init; }
}

/// <summary>
/// What was done at one pruned site, attached to <see cref="Compression.SiteReport.Details"/>. The errors are those of the
/// site's own selection on the activations it was computed from: the original network's (bisection, tolerance), or the
/// partly pruned network's at the site's last greedy step. <see cref="Compression.SiteReport.MeasuredError"/> is measured in
/// the final model, where upstream sites add their own errors.
/// </summary>
/// <param name="Kept">The kept units (neurons, channels, head groups), ascending.</param>
/// <param name="Scaled">Whether the columns were weighted by the next layer's column norms.</param>
/// <param name="RelativeActivationError"><c>‖Z − Z[:, I]·T‖_F / ‖Z‖_F</c> on the calibration data (T = the selection for magnitude pruning).</param>
/// <param name="PredictedOutputError"><c>‖(Z − Z[:, I]·T)·W_nextᵀ‖_F / ‖Z·W_nextᵀ‖_F</c> for fully connected consumers and heads; null for convolution consumers.</param>
/// <param name="UsedPseudoInverse">Whether R11 was numerically singular (dead or duplicated units).</param>
/// <param name="Edits">The graph edits made, one line each.</param>
public sealed record PrunedSiteDetails(int[] Kept, bool Scaled, double RelativeActivationError, double? PredictedOutputError, bool UsedPseudoInverse, IReadOnlyList<string> Edits);
