namespace Whittle.Methods;

/// <summary>One candidate rank of one layer (<see cref="JointLowRankSiteDetails.Candidates"/>).</summary>
/// <param name="Rank">The rank c.</param>
/// <param name="Parameters">The layer's weight and bias elements at this rank, c·(m + n) + bias.</param>
/// <param name="PredictedChange">The first-order loss change <c>⟨∇_W f, Ŵ_c − W⟩</c> (exact or central difference), or null when not computed.</param>
/// <param name="MeasuredLoss">The calibration loss of the model with this layer at rank c (earlier layers as chosen), or null when not measured.</param>
/// <param name="MeasuredChange"><see cref="MeasuredLoss"/> minus the loss before this layer, or null.</param>
/// <param name="Chosen">Whether this rank was kept.</param>
public sealed record RankCandidate(int Rank, long Parameters, double? PredictedChange, double? MeasuredLoss, double? MeasuredChange, bool Chosen);

/// <summary>What the rank search did at one layer (<see cref="Compression.SiteReport.Details"/>).</summary>
/// <param name="Layer"><c>linear</c> or <c>conv</c>.</param>
/// <param name="OutFeatures">m.</param>
/// <param name="InFeatures">n (Cin·kernel for a convolution).</param>
/// <param name="MaxSavingRank">The largest rank that saves parameters.</param>
/// <param name="Gradient">How the first-order term was obtained here: <c>exact</c> or <c>central-difference</c>.</param>
/// <param name="LossBefore">The calibration loss before this layer was considered (earlier layers as chosen).</param>
/// <param name="LossAfter">After (equal to <paramref name="LossBefore"/> when the layer was left alone).</param>
/// <param name="Candidates">Every candidate rank, ascending, with what was computed for it.</param>
/// <param name="Decision">Why this rank (or none) was kept.</param>
public sealed record JointLowRankSiteDetails(
    string Layer,
    int OutFeatures,
    int InFeatures,
    int MaxSavingRank,
    string Gradient,
    double LossBefore,
    double LossAfter,
    IReadOnlyList<RankCandidate> Candidates,
    string Decision);

/// <summary>Method-wide facts of a joint low-rank run (<see cref="Compression.CompressionReport.Details"/>).</summary>
/// <param name="Mode"><c>lossless</c> or <c>compact</c>.</param>
/// <param name="Order">The layer order: <c>graph</c> or <c>largest-first</c>.</param>
/// <param name="Loss">The calibration loss (<c>cross-entropy</c>, <c>next-token cross-entropy</c>, <c>KL(reference ‖ model)</c>).</param>
/// <param name="Task">The task the loss follows from, and why.</param>
/// <param name="Gradient">The gradient option (<c>exact</c> with central-difference fallback, or <c>central-difference</c>).</param>
/// <param name="DifferenceStep">The central-difference step h.</param>
/// <param name="RankGrid">Candidates per layer, N.</param>
/// <param name="LossTolerance">The tolerance added to the original loss.</param>
/// <param name="OriginalLoss">The original model's calibration loss.</param>
/// <param name="Threshold">The largest loss a kept candidate may have: original + tolerance + relative tolerance × |original|.</param>
/// <param name="FinalLoss">The compressed model's calibration loss, measured again on the written graph.</param>
/// <param name="SelectionData">The calibration (selection) data: where it came from.</param>
/// <param name="SelectionExamples">Examples in the selection data.</param>
/// <param name="LayersConsidered">Layers the search visited.</param>
/// <param name="LayersFactorized">Layers now factorized.</param>
/// <param name="ForwardPasses">Passes over the calibration set (candidate losses, central differences, gradient taps).</param>
public sealed record JointLowRankDetails(
    string Mode,
    string Order,
    string Loss,
    string Task,
    string Gradient,
    double DifferenceStep,
    int RankGrid,
    double LossTolerance,
    double OriginalLoss,
    double Threshold,
    double FinalLoss,
    string? SelectionData,
    int SelectionExamples,
    int LayersConsidered,
    int LayersFactorized,
    int ForwardPasses)
{
    /// <summary>The tolerance in proportion to the original loss (see <see cref="JointLowRankOptions.RelativeLossTolerance"/>).</summary>
    public double RelativeLossTolerance { get; init; }

    /// <summary>Compact mode: the threshold t on each layer's loss increase alone that every layer shares (null: none kept the combined loss within the threshold; lossless mode).</summary>
    public double? SharedThreshold { get; init; }
}
