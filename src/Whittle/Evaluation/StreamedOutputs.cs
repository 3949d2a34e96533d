// The outputs of a model too large to run whole, computed one segment at a time.
//
// Memory contract
//   One segment's weights in ONNX Runtime at a time and the boundary values of every batch between segments (the
//   calibration stream's cache: in memory up to the spill budget, in an unlinked file beyond it). After the last
//   segment the cache holds the model's outputs for every batch, read back batch by batch for scoring.

using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Data;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>The outputs of one model on a batch set, by batch: from a whole-model session or segment by segment.</summary>
internal interface IBatchOutputs : IDisposable
{
    /// <summary>The model's file, or null.</summary>
    string? Source { get; }

    /// <summary>The model's outputs, in graph order.</summary>
    IReadOnlyList<string> OutputNames { get; }

    /// <summary>Every output of batch <paramref name="batch"/>.</summary>
    IReadOnlyDictionary<string, HostTensor> Run(int batch);
}

/// <summary>A model run segment by segment over every batch (see the file header).</summary>
internal sealed class StreamedOutputs : IBatchOutputs
{
    private readonly CalibrationStream _stream;

    private StreamedOutputs(CalibrationStream stream, string? source, IReadOnlyList<string> outputs)
    {
        _stream = stream;
        Source = source;
        OutputNames = outputs;
    }

    public string? Source { get; }

    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>The segments <paramref name="model"/> runs in: its transformer blocks or residual stretches (from the graph alone).</summary>
    public static Segmentation Segments(OnnxModel model) => Segmentation.Find(model, ModelStructure.Analyze(model));

    /// <summary>Runs every segment of <paramref name="model"/> over <paramref name="data"/>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="data">The batches.</param>
    /// <param name="context">Runtime, spill budget, clock, progress (told per segment and batch), cancellation; its batches and segmentation are replaced.</param>
    public static StreamedOutputs Run(OnnxModel model, BatchSet data, StreamContext context)
    {
        var segments = Segments(model);
        var stream = new CalibrationStream(context with { Batches = data, Segmentation = segments, KeepOutputs = true }, model, frozen: true);
        try
        {
            stream.MoveTo(segments.Count);
            return new StreamedOutputs(stream, model.FilePath, [.. model.Graph.Outputs.Select(o => o.Name)]);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The runtime shapes of every value of <paramref name="model"/> for <paramref name="example"/>, probed segment by segment.</summary>
    public static IReadOnlyDictionary<string, int[]> ProbeShapes(OnnxModel model, InputBatch example, StreamContext context)
    {
        using var stream = new CalibrationStream(context with { Batches = new BatchSet([example]), Segmentation = Segments(model), Progress = null }, model, frozen: true);
        return stream.Probe().Shapes;
    }

    public IReadOnlyDictionary<string, HostTensor> Run(int batch) =>
        OutputNames.ToDictionary(name => name, name => _stream.Held(batch, name), StringComparer.Ordinal);

    public void Dispose() => _stream.Dispose();
}
