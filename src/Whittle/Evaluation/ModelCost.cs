using Whittle.Analysis;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>Parameters, stored bytes and MACs per example of a model.</summary>
/// <param name="Parameters">Elements of floating-point and quantized weights.</param>
/// <param name="StoredBytes">Bytes of initializer data, inline and external.</param>
/// <param name="MacsPerExample">MACs per example over the layers whose shapes are known.</param>
/// <param name="UnknownLayers">Layers whose MACs stay unknown.</param>
public sealed record ModelCost(long Parameters, long StoredBytes, double MacsPerExample, int UnknownLayers)
{
    /// <summary>
    /// Measures <paramref name="model"/>. MACs come from <see cref="ModelStructure.Analyze"/> on the shapes the graph
    /// records; when some layer's shapes are missing there, from a <see cref="ShapeProbe"/> run on
    /// <paramref name="example"/> (one real example), so a symbolic sequence length takes the data's value.
    /// </summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="example">One example of every model input (e.g. <see cref="Data.BatchSet.FirstExample"/>).</param>
    /// <param name="options">Session settings for the probe.</param>
    /// <exception cref="OnnxModelException">ONNX Runtime cannot run the model.</exception>
    public static ModelCost Measure(OnnxModel model, IReadOnlyDictionary<string, HostTensor> example, RuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(example);
        options ??= RuntimeOptions.Default;
        var recorded = GraphShapes.Collect(model.Graph, batchSize: 1);
        var structure = ModelStructure.Analyze(model, recorded, batchSize: 1);
        if (structure.Macs.Unknown.Count > 0)
        {
            var shapes = new Dictionary<string, int[]>(recorded, StringComparer.Ordinal);
            foreach (var (name, shape) in ShapeProbe.Run(model, example, options).Shapes) shapes[name] = shape;
            structure = ModelStructure.Analyze(model, shapes, batchSize: 1);
        }
        return new ModelCost(structure.Parameters, OnnxModelSummary.Of(model).InitializerBytes, structure.Macs.PerExample, structure.Macs.Unknown.Count);
    }
}
