using Whittle.Evaluation;

namespace Whittle.Methods;

/// <summary>What the joint low-rank rank search optimizes (METHODS.md §3).</summary>
public enum LowRankMode
{
    /// <summary>
    /// Maximize quality while compressing: among the parameter-saving ranks whose predicted first-order loss change is ≤ 0,
    /// keep the one with the lowest measured calibration loss (if that loss is within the threshold).
    /// </summary>
    Lossless,

    /// <summary>Minimize size while staying lossless: the smallest candidate rank whose measured calibration loss is within the threshold.</summary>
    Compact,
}

/// <summary>How the first-order term <c>⟨∇_W f, δ⟩</c> is obtained.</summary>
public enum GradientSource
{
    /// <summary>
    /// The exact gradient where it is available in closed form: a linear layer whose output is the logits the loss reads,
    /// <c>∇_W f = α·Σ_t g_t x_tᵀ</c> with <c>g</c> the loss's gradient w.r.t. the logits (one tapped pass scores every rank
    /// through one SVD). Every other layer falls back to <see cref="CentralDifference"/>: ONNX Runtime runs inference only,
    /// and a backward graph for every op type is out of scope. The report says which each layer used.
    /// </summary>
    Exact,

    /// <summary>
    /// Central differences along the factorization error δ = Ŵ_c − W of each candidate:
    /// <c>[f(W + hδ) − f(W − hδ)] / 2h</c>, two forward passes per candidate (with h = 1 one of them is the candidate's
    /// measured loss). Exact for a quadratic loss; the error is third order in ‖hδ‖.
    /// </summary>
    CentralDifference,
}

/// <summary>The order in which <see cref="JointLowRank"/> visits the layers (each later layer sees the earlier ones as chosen).</summary>
public enum LayerOrder
{
    /// <summary>Graph (topological) order, input to output: the paper's layer-by-layer pass.</summary>
    Graph,

    /// <summary>
    /// Most parameters first (ties in graph order): the layers where a rank saves most get the loss headroom first — in
    /// compact mode with a tolerance, graph order lets small early layers spend it for little saving.
    /// </summary>
    LargestFirst,
}

/// <summary>Which loss the rank search measures on the calibration data.</summary>
public enum LowRankLoss
{
    /// <summary>
    /// KL(original ‖ compressed) of the output distributions, whatever the task: what the compressed model is asked to
    /// preserve. Labelled cross-entropy lets a rank that fits the calibration labels better than the original pass as
    /// "lossless" while it moves away from the original — which does not hold on held-out data.
    /// </summary>
    Divergence,

    /// <summary>The task's own loss: cross-entropy against the calibration labels, next-token cross-entropy for a language model (KL where there are no labels).</summary>
    Task,
}

/// <summary>Options of <see cref="JointLowRank"/>. Immutable; defaults follow the paper's lossless algorithm, on KL to the original.</summary>
public sealed record JointLowRankOptions
{
    /// <summary>Default number of candidate ranks per layer.</summary>
    public const int DefaultRankGrid = 16;

    /// <summary>Lossless (default) or compact.</summary>
    public LowRankMode Mode { get; init; } = LowRankMode.Lossless;

    /// <summary>
    /// How far above the original model's calibration loss (in nats, mean per item) a chosen candidate may be; default 0
    /// (the loss may not rise at all). Applies to both modes.
    /// </summary>
    public double LossTolerance { get; init; }

    /// <summary>
    /// A tolerance in proportion to the loss's scale: the threshold is <c>f₀ + LossTolerance + RelativeLossTolerance·s</c>, s
    /// the original loss f₀ for the cross-entropies, and for KL to the original (f₀ = 0) the mean entropy of the original's
    /// output distributions — so one value suits losses of any scale (0.01: 1 % of it). Default (null): 0 when a
    /// <see cref="LossTolerance"/> is given; else 0.01 with KL to the original (which starts at 0, so nothing would pass at 0)
    /// or in compact mode, and 0 for the paper's lossless mode on the task loss.
    /// </summary>
    public double? RelativeLossTolerance { get; init; }

    /// <summary>The loss measured; default <see cref="LowRankLoss.Divergence"/> (KL to the original).</summary>
    public LowRankLoss Loss { get; init; } = LowRankLoss.Divergence;

    /// <summary>The default relative tolerance where one is needed (KL, or compact mode).</summary>
    public const double DefaultRelativeTolerance = 0.01;

    /// <summary><see cref="RelativeLossTolerance"/>, or its default for a run whose loss is KL (<paramref name="divergence"/>) or not.</summary>
    public double RelativeToleranceFor(bool divergence) =>
        RelativeLossTolerance ?? (LossTolerance == 0 && (divergence || Mode == LowRankMode.Compact) ? DefaultRelativeTolerance : 0);

    /// <summary>How the first-order term is obtained; default <see cref="GradientSource.Exact"/> (with the central-difference fallback).</summary>
    public GradientSource Gradient { get; init; } = GradientSource.Exact;

    /// <summary>
    /// N, the candidate ranks per layer: <c>⌈i·r_max/N⌉</c> for i = 1..N, r_max the largest parameter-saving rank — equally
    /// spaced in parameters, from 1/N of the break-even size up to it (every saving rank when r_max ≤ N). Default 16.
    /// </summary>
    public int RankGrid { get; init; } = DefaultRankGrid;

    /// <summary>The central-difference step h (along δ); default 1, where f(W + δ) is the candidate's own measured loss.</summary>
    public double DifferenceStep { get; init; } = 1;

    /// <summary>The order lossless mode visits the layers in; default <see cref="LayerOrder.Graph"/>. Compact mode measures every layer alone and shares one threshold, so the order does not matter there.</summary>
    public LayerOrder Order { get; init; } = LayerOrder.Graph;

    /// <summary>Factorize ungrouped convolutions too (an r-channel convolution and a 1 × 1 convolution); default true.</summary>
    public bool IncludeConvolutions { get; init; } = true;

    /// <summary>The model's task (which loss is measured); null detects it (<see cref="DetectedTask.Detect"/>).</summary>
    public ModelTask? Task { get; init; }

    /// <summary>Checks every option.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the message says which and what is allowed).</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Mode)) ThrowHelper.ArgumentOutOfRange(nameof(Mode), Mode, "lossless or compact");
        if (!Enum.IsDefined(Order)) ThrowHelper.ArgumentOutOfRange(nameof(Order), Order, "graph or largest-first");
        if (!Enum.IsDefined(Loss)) ThrowHelper.ArgumentOutOfRange(nameof(Loss), Loss, "divergence or task");
        if (RelativeLossTolerance is { } r && (!(r >= 0) || !double.IsFinite(r)))
            ThrowHelper.ArgumentOutOfRange(nameof(RelativeLossTolerance), r, "a finite relative tolerance ≥ 0");
        if (!Enum.IsDefined(Gradient)) ThrowHelper.ArgumentOutOfRange(nameof(Gradient), Gradient, "exact or central-difference");
        if (!(LossTolerance >= 0) || !double.IsFinite(LossTolerance))
            ThrowHelper.ArgumentOutOfRange(nameof(LossTolerance), LossTolerance, "a finite loss tolerance ≥ 0 (nats)");
        if (RankGrid < 1) ThrowHelper.ArgumentOutOfRange(nameof(RankGrid), RankGrid, "at least 1 candidate rank per layer");
        if (!(DifferenceStep > 0) || !double.IsFinite(DifferenceStep))
            ThrowHelper.ArgumentOutOfRange(nameof(DifferenceStep), DifferenceStep, "a positive, finite central-difference step (1 reuses the measured loss)");
        if (Task is { } t && !Enum.IsDefined(t)) ThrowHelper.ArgumentOutOfRange(nameof(Task), t, "a defined ModelTask");
    }
}
