using Whittle.Analysis;
using Whittle.Runtime;

namespace Whittle.Compression;

/// <summary>
/// What a compression run did: per site what changed (or why it was left alone), sizes before and after, and the wall
/// time of every stage. Immutable; serializes to JSON as is (<see cref="Details"/> by its runtime type).
/// </summary>
/// <param name="Method">The method's name.</param>
/// <param name="Budget">The budget this model was made for.</param>
/// <param name="Sites">One entry per site or group the method considered, in graph order.</param>
/// <param name="Before">The original model's size.</param>
/// <param name="After">The compressed model's size.</param>
/// <param name="Timings">Wall time per stage, in the order run.</param>
public sealed record CompressionReport(
    string Method,
    CompressionBudget Budget,
    IReadOnlyList<SiteReport> Sites,
    ModelCost Before,
    ModelCost After,
    IReadOnlyList<StageTiming> Timings)
{
    /// <summary>Method-wide findings (CURing's angular distances, the ID's global tolerance), a method-specific record; or null.</summary>
    public object? Details { get; init; }

    /// <summary>How calibration ran (mode, segments, spilled bytes), or null.</summary>
    public CalibrationReport? Calibration { get; init; }

    /// <summary>Things the user should know (overlapping selection and evaluation data, sites skipped for lack of shapes).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>The part of the model the method may touch, before and after (what a compressible-scope budget counts).</summary>
    public CompressibleSize? Compressible { get; init; }

    /// <summary>The most bytes the process held resident during any stage.</summary>
    public long PeakWorkingSetBytes => Timings.Count == 0 ? 0 : Timings.Max(t => t.PeakWorkingSetBytes);

    /// <summary>The same report with <paramref name="timing"/> appended (e.g. the writing time the caller measured).</summary>
    public CompressionReport WithTiming(StageTiming timing) => this with { Timings = [.. Timings, timing] };
}

/// <summary>
/// The parameters (and, where the method counts them, MACs per example) of the layers a method may touch, before and
/// after. Only those layers change, so "after" is "before" less what the whole model lost.
/// </summary>
/// <param name="ParametersBefore">Compressible parameters of the original.</param>
/// <param name="ParametersAfter">The same layers' parameters in the compressed model.</param>
/// <param name="MacsBefore">Compressible MACs per example of the original, or null when the method does not count them.</param>
/// <param name="MacsAfter">The same layers' MACs in the compressed model, or null.</param>
public sealed record CompressibleSize(long ParametersBefore, long ParametersAfter, double? MacsBefore, double? MacsAfter)
{
    /// <summary>Share of the compressible parameters kept.</summary>
    public double ParameterFraction => ParametersBefore > 0 ? (double)ParametersAfter / ParametersBefore : 1;

    /// <summary>Share of the compressible MACs kept, or null.</summary>
    public double? MacFraction => MacsBefore is > 0 && MacsAfter is { } after ? after / MacsBefore.Value : null;
}

/// <summary>What happened at one site (a layer, a chain of layers, an attention block).</summary>
/// <param name="Site">The site or group id (a <see cref="Analysis.LinearSite"/> or chain name, <c>block 3 attention</c>).</param>
/// <param name="Kind">What was compressed: <c>neurons</c>, <c>channels</c>, <c>heads</c>, <c>low-rank</c>, <c>cur</c>.</param>
/// <param name="OldSize">Width, head count or rank before.</param>
/// <param name="NewSize">After (equal to <paramref name="OldSize"/> when left alone).</param>
public sealed record SiteReport(string Site, string Kind, int OldSize, int NewSize)
{
    /// <summary>Parameters of the site's tensors before.</summary>
    public long ParametersBefore { get; init; }

    /// <summary>Parameters of the site's tensors after.</summary>
    public long ParametersAfter { get; init; }

    /// <summary>The method's own error estimate (ID's <c>|r_{k+1,k+1}|/|r_11|</c>, CUR's <c>‖W − CUR‖_F/‖W‖_F</c>, SVD's relative truncation error), or null.</summary>
    public double? ErrorEstimate { get; init; }

    /// <summary>Relative output error measured on calibration data (<c>‖Y − Ŷ‖_F/‖Y‖_F</c> at the site), or null.</summary>
    public double? MeasuredError { get; init; }

    /// <summary>Why the site was left alone, or null when it was compressed.</summary>
    public string? Skipped { get; init; }

    /// <summary>Method-specific facts (kept indices, candidate ranks tried), a record; or null.</summary>
    public object? Details { get; init; }
}
