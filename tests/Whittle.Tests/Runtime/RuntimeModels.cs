using Google.Protobuf;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;
using static Whittle.Tests.Onnx.TestModels;

namespace Whittle.Tests.Runtime;

/// <summary>Small models for the runtime and calibration tests; intermediates carry no value_info.</summary>
internal static class RuntimeModels
{
    /// <summary>MLP X[N, w0] → (MatMul "mm{i}", Add "z{i}", Relu "h{i+1}")…, the last layer without Relu: output "y".</summary>
    public static OnnxModel Mlp(int[] widths, int seed = 1)
    {
        var g = new GraphProto { Name = "mlp" };
        g.Input.Add(Tensor("X", OnnxDataType.Float, null, widths[0]));
        string h = "X";
        int layers = widths.Length - 1;
        for (int i = 0; i < layers; i++)
        {
            var w = RandomMatrix.Gaussian<float>(widths[i], widths[i + 1], seed: seed + i);
            var span = w.AsSpan();
            float scale = 1f / MathF.Sqrt(widths[i]);
            for (int k = 0; k < span.Length; k++) span[k] *= scale;
            var b = RandomMatrix.Gaussian<float>(1, widths[i + 1], seed: seed + 100 + i);
            g.Initializer.Add(OnnxTensors.FromMatrix($"W{i}", w, OnnxDataType.Float));
            g.Initializer.Add(OnnxTensors.FromArray<float>($"B{i}", b.AsSpan(), [widths[i + 1]], OnnxDataType.Float));
            g.Node.Add(Node("MatMul", $"matmul{i}", [h, $"W{i}"], [$"mm{i}"]));
            string z = i == layers - 1 ? "y" : $"z{i}";
            g.Node.Add(Node("Add", $"add{i}", [$"mm{i}", $"B{i}"], [z]));
            if (i < layers - 1)
            {
                g.Node.Add(Node("Relu", $"relu{i}", [z], [$"h{i + 1}"]));
                h = $"h{i + 1}";
            }
        }
        g.Output.Add(Tensor("y", OnnxDataType.Float, null, widths[^1]));
        return OnnxModel.FromProto(Model(g));
    }

    /// <summary>X[N,3,8,8] → Conv 8 (3×3, pad 1) "c1" → Relu "r1" → MaxPool 2 "p1" [N,8,4,4] → Conv 16 "c2" → Relu "r2" → Flatten "f" [N,256] → MatMul "logits" [N,10].</summary>
    public static OnnxModel Conv(int seed = 3)
    {
        var g = new GraphProto { Name = "conv" };
        g.Input.Add(Tensor("X", OnnxDataType.Float, null, 3, 8, 8));
        g.Initializer.Add(Weights("K1", [8, 3, 3, 3], seed));
        g.Initializer.Add(Weights("K2", [16, 8, 3, 3], seed + 1));
        g.Initializer.Add(Weights("W3", [256, 10], seed + 2));
        var c1 = Node("Conv", "conv1", ["X", "K1"], ["c1"]);
        c1.Attribute.Add(new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1, 1, 1 } });
        var c2 = Node("Conv", "conv2", ["p1", "K2"], ["c2"]);
        c2.Attribute.Add(new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1, 1, 1 } });
        var pool = Node("MaxPool", "pool", ["r1"], ["p1"]);
        pool.Attribute.Add(new AttributeProto { Name = "kernel_shape", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 2, 2 } });
        pool.Attribute.Add(new AttributeProto { Name = "strides", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 2, 2 } });
        g.Node.Add(c1);
        g.Node.Add(Node("Relu", "relu1", ["c1"], ["r1"]));
        g.Node.Add(pool);
        g.Node.Add(c2);
        g.Node.Add(Node("Relu", "relu2", ["c2"], ["r2"]));
        g.Node.Add(Node("Flatten", "flatten", ["r2"], ["f"]));
        g.Node.Add(Node("MatMul", "fc", ["f", "W3"], ["logits"]));
        g.Output.Add(Tensor("logits", OnnxDataType.Float, null, 10));
        return OnnxModel.FromProto(Model(g));
    }

    /// <summary>ids[B, L] (int64) → Gather(E[V, w]) "emb" [B, L, w] → MatMul "h1" [B, L, w] → Relu "y".</summary>
    public static OnnxModel Sequence(int vocab, int width, int seed = 5)
    {
        var g = new GraphProto { Name = "seq" };
        g.Input.Add(Tensor("ids", OnnxDataType.Int64, null, null));
        g.Initializer.Add(Weights("E", [vocab, width], seed));
        g.Initializer.Add(Weights("W", [width, width], seed + 1));
        g.Node.Add(Node("Gather", "embed", ["E", "ids"], ["emb"]));
        g.Node.Add(Node("MatMul", "block", ["emb", "W"], ["h1"]));
        g.Node.Add(Node("Relu", "relu", ["h1"], ["y"]));
        g.Output.Add(Tensor("y", OnnxDataType.Float, null, null, width));
        return OnnxModel.FromProto(Model(g));
    }

    public static TensorProto Weights(string name, long[] shape, int seed)
    {
        int n = (int)shape.Aggregate(1L, (a, b) => a * b);
        var m = RandomMatrix.Gaussian<float>(1, n, seed: seed);
        var span = m.AsSpan();
        float scale = 1f / MathF.Sqrt(n / shape[0]);
        for (int i = 0; i < span.Length; i++) span[i] *= scale;
        return OnnxTensors.FromArray<float>(name, span, shape, OnnxDataType.Float);
    }

    public static HostTensor RandomFloats(int seed, params int[] shape)
    {
        int n = shape.Aggregate(1, (a, b) => a * b);
        return HostTensor.Float(RandomMatrix.Gaussian<float>(1, n, seed: seed).AsSpan().ToArray(), shape);
    }

    /// <summary>Rows [start, start + count) of a tensor along axis 0.</summary>
    public static HostTensor SliceRows(HostTensor t, int start, int count)
    {
        int per = t.Shape.Skip(1).Aggregate(1, (a, b) => a * b);
        int[] shape = [count, .. t.Shape.Skip(1)];
        return t.Data switch
        {
            float[] a => HostTensor.Float(a.AsSpan(start * per, count * per).ToArray(), shape),
            long[] a => HostTensor.Int64(a.AsSpan(start * per, count * per).ToArray(), shape),
            _ => throw new NotSupportedException(),
        };
    }
}
