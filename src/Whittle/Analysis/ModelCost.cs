using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Analysis;

/// <summary>Parameters, stored bytes and MACs per example of a model.</summary>
/// <param name="Parameters">Elements of floating-point and quantized weights.</param>
/// <param name="StoredBytes">Bytes of initializer data, inline and external.</param>
/// <param name="MacsPerExample">MACs per example over the layers whose shapes are known.</param>
/// <param name="UnknownLayers">Layers whose MACs stay unknown.</param>
public sealed record ModelCost(long Parameters, long StoredBytes, double MacsPerExample, int UnknownLayers)
{
    /// <summary>
    /// Measures <paramref name="model"/>: MACs from <see cref="ModelStructure.Analyze"/> with the shapes
    /// <see cref="AnalysisShapes.Resolve"/> finds for the input shapes of <paramref name="example"/> (the graph's own, else
    /// an ONNX Runtime probe), so a symbolic sequence length takes the data's value.
    /// </summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="example">One example of every model input (e.g. <see cref="Data.BatchSet.FirstExample"/>).</param>
    /// <param name="options">Session settings for the probe.</param>
    public static ModelCost Measure(OnnxModel model, IReadOnlyDictionary<string, HostTensor> example, RuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(example);
        // A model with a fixed batch axis runs at that batch; MACs are still per example.
        var declared = Data.ModelInput.FromModel(model);
        int batch = declared.Select(i => i.Shape is [{ Value: { } b and > 0 and <= int.MaxValue }, ..] ? (int)b : 1).DefaultIfEmpty(1).Max();
        var given = example.ToDictionary(p => p.Key, p => p.Value.Shape is [_, .. var rest] ? (int[])[batch, .. rest] : p.Value.Shape, StringComparer.Ordinal);
        var shapes = AnalysisShapes.Resolve(model, given, batchSize: batch, options: options);
        return FromShapes(model, shapes.Values, batch);
    }

    /// <summary>The size and cost of <paramref name="model"/> from runtime shapes already probed (for a batch of <paramref name="batch"/> examples).</summary>
    public static ModelCost FromShapes(OnnxModel model, IReadOnlyDictionary<string, int[]> shapes, int batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(shapes);
        var structure = ModelStructure.Analyze(model, shapes, batchSize: batch);
        return new ModelCost(structure.Parameters, OnnxModelSummary.Of(model).InitializerBytes, structure.Macs.PerExample, structure.Macs.Unknown.Count);
    }
}
