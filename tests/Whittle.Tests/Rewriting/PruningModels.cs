using Whittle.Analysis;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;

namespace Whittle.Tests.Rewriting;

/// <summary>Helpers for pruning round trips: random weights, ORT runs, structure with runtime shapes.</summary>
internal static class PruningModels
{
    /// <summary>Replaces every float initializer by seeded uniform values in [−0.5, 0.5] (variances in [0.5, 1.5]).</summary>
    public static OnnxModel Randomize(OnnxModel model, int seed)
    {
        var rng = new Random(seed);
        foreach (var name in model.Graph.InitializerNames)
        {
            var t = model.Graph.GetInitializer(name);
            if (t.DataType != OnnxDataType.Float) continue;
            var values = new float[t.ElementCount];
            bool variance = name.EndsWith(".var", StringComparison.Ordinal);
            for (int i = 0; i < values.Length; i++) values[i] = variance ? 0.5f + (float)rng.NextDouble() : (float)rng.NextDouble() - 0.5f;
            model.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>(name, values, [.. t.Shape], OnnxDataType.Float));
        }
        return model;
    }

    /// <summary>Makes the first dimension of every graph input, output and value_info symbolic ("N"), so any batch size runs.</summary>
    public static OnnxModel DynamicBatch(OnnxModel model)
    {
        var g = model.Graph.Proto;
        foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo))
            if (v.Type?.TensorType?.Shape is { Dim.Count: > 0 } shape)
                shape.Dim[0] = new Whittle.Onnx.Proto.TensorShapeProto.Types.Dimension { DimParam = "N" };
        return model;
    }

    public static HostTensor Input(int seed, params int[] shape)
    {
        var rng = new Random(seed);
        var data = new float[shape.Aggregate(1, (a, d) => a * d)];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(2 * rng.NextDouble() - 1);
        return HostTensor.Float(data, shape);
    }

    public static OnnxModel Clone(OnnxModel model) => OnnxModel.FromProto(model.Proto.Clone(), model.BaseDirectory);

    public static PruningContext Context(OnnxModel model, IReadOnlyDictionary<string, HostTensor> feed)
    {
        var shapes = ShapeProbe.Run(model, feed).Shapes;
        int batch = feed.Values.First().Shape[0];
        return new PruningContext(model, ModelStructure.Analyze(model, shapes, batch), shapes);
    }

    public static float[] Run(OnnxModel model, IReadOnlyDictionary<string, HostTensor> feed, string? output = null, RuntimeOptions? options = null)
    {
        using var session = TappedSession.Create(model, output is null ? [] : [output], options);
        var outputs = session.Run(feed, [output ?? session.OutputNames[0]]);
        return outputs.Values.Single().AsFloats();
    }

    /// <summary>max |a − b| / max |a|.</summary>
    public static double RelativeDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs(a[i]));
        }
        return diff / scale;
    }

    /// <summary>
    /// Makes unit 2j + 1 of the chain an exact copy of unit 2j in every producer and per-channel tensor, so the chain's
    /// activation has exactly rank h/2 (identical columns, whatever the nonlinearities in between).
    /// </summary>
    public static void DuplicatePairs(OnnxModel model, PrunableChain chain)
    {
        foreach (var t in chain.SliceTogether.Where(t => t.Role != SliceRole.ConsumerWeight).DistinctBy(t => t.Tensor))
        {
            var tensor = model.Graph.GetInitializer(t.Tensor);
            var dims = tensor.Shape.ToArray();
            var values = tensor.ToArray<float>();
            long inner = 1, outer = 1;
            for (int i = t.Axis + 1; i < dims.Length; i++) inner *= dims[i];
            for (int i = 0; i < t.Axis; i++) outer *= dims[i];
            long length = dims[t.Axis];
            for (long o = 0; o < outer; o++)
                for (long c = 0; c + 1 < length; c += 2)
                    Array.Copy(values, (o * length + c) * inner, values, (o * length + c + 1) * inner, inner);
            model.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>(t.Tensor, values, dims, tensor.DataType));
        }
    }
}
