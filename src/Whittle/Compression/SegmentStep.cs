using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Onnx;

namespace Whittle.Compression;

/// <summary>
/// One segment of a pass (<see cref="CompressionRun.Pass"/>, <see cref="CompressionRun.Survey"/>): which sites it holds, its
/// calibration statistics on demand, and the models to edit. Valid only during the step.
/// </summary>
public sealed class SegmentStep
{
    private readonly CompressionRun _run;
    private readonly CalibrationStream _stream;
    private readonly HashSet<string> _nodes;

    internal SegmentStep(CompressionRun run, CalibrationStream stream, int index, Segment segment, IReadOnlyList<PassTarget> targets)
    {
        _run = run;
        _stream = stream;
        Index = index;
        Segment = segment;
        Targets = targets;
        _nodes = segment.Nodes.Select(GraphQuery.NameOf).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The segment's position.</summary>
    public int Index { get; }

    /// <summary>The segment's name (<c>block 3</c>).</summary>
    public string Name => Segment.Name;

    /// <summary>The segment (nodes, inputs) in <see cref="Source"/>.</summary>
    public Segment Segment { get; }

    /// <summary>
    /// The models to edit in this step: all of a parallel pass's targets; in a sequential pass those that are still
    /// identical to the original up to here (they share the step), else one; none in a survey. Edit only these, and only
    /// this segment of them.
    /// </summary>
    public IReadOnlyList<PassTarget> Targets { get; }

    /// <summary>
    /// The model whose activations calibrate this step and whose weights the segment holds now (read weights here, never
    /// edit it): the original in parallel mode, in a survey's model, and in a sequential step shared by targets still equal
    /// to the original; otherwise the one target, compressed up to here.
    /// </summary>
    public OnnxModel Source => _stream.Model;

    /// <summary>Whether the node (site) called <paramref name="node"/> runs in this segment.</summary>
    public bool Holds(string node) => _nodes.Contains(node);

    /// <summary>
    /// Runs the calibration set through this segment of <see cref="Source"/> and feeds <paramref name="statistics"/> (values the
    /// segment computes, or reads from earlier segments). Call it before editing the segment.
    /// </summary>
    public void Calibrate(params IBatchStatistic[] statistics) => Calibrate((IReadOnlyList<IBatchStatistic>)statistics);

    /// <inheritdoc cref="Calibrate(IBatchStatistic[])"/>
    public void Calibrate(IReadOnlyList<IBatchStatistic> statistics)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        if (statistics.Count == 0) return;
        _run.CancellationToken.ThrowIfCancellationRequested();
        _stream.Calibrate(Index, statistics);
    }
}
