using Whittle.Analysis;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Compression;

/// <summary>Measures a model's <see cref="ModelSize"/>.</summary>
public static class ModelSizes
{
    /// <summary>
    /// Parameters and stored bytes from the initializers; MACs per example from the structure analysis with the runtime
    /// shapes of one example (a <see cref="ShapeProbe"/> run at <paramref name="exampleShapes"/>).
    /// </summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="exampleShapes">A shape for every model input, batch 1 (see <see cref="CalibrationSet.ExampleShapes"/>).</param>
    /// <param name="options">Session settings for the probe.</param>
    /// <exception cref="OnnxModelException">ONNX Runtime cannot run the model.</exception>
    public static ModelSize Measure(OnnxModel model, IReadOnlyDictionary<string, int[]> exampleShapes, RuntimeOptions? options = null)
    {
        var structure = Analyze(model, exampleShapes, options);
        return new ModelSize(structure.Parameters, structure.Macs.PerExample, OnnxModelSummary.Of(model).InitializerBytes);
    }

    /// <summary>The structure of <paramref name="model"/> with the runtime shapes of one example.</summary>
    /// <exception cref="OnnxModelException">ONNX Runtime cannot run the model.</exception>
    public static ModelStructure Analyze(OnnxModel model, IReadOnlyDictionary<string, int[]> exampleShapes, RuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(exampleShapes);
        var probe = ShapeProbe.Run(model, exampleShapes, ProbeFill.Zeros, options);
        return ModelStructure.Analyze(model, probe.Shapes, batchSize: 1);
    }
}
