using Google.Protobuf;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Onnx;

/// <summary>Small ONNX models built in memory for the tests.</summary>
internal static class TestModels
{
    public static ValueInfoProto Tensor(string name, OnnxDataType type, params long?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    public static NodeProto Node(string op, string name, string[] inputs, string[] outputs)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        return n;
    }

    public static ModelProto Model(GraphProto graph, long opset = 17)
    {
        var m = new ModelProto { IrVersion = 8, ProducerName = "whittle-tests", Graph = graph };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return m;
    }

    /// <summary>Y = Relu(X·W + B) with X [N, k], W [k, n] (random, seeded), B [n].</summary>
    public static ModelProto Dense(int k, int n, int seed = 1)
    {
        var w = RandomMatrix.Gaussian<float>(k, n, seed: seed);
        var b = RandomMatrix.Gaussian<float>(1, n, seed: seed + 1);
        var g = new GraphProto { Name = "dense" };
        g.Input.Add(Tensor("X", OnnxDataType.Float, null, k));
        g.Output.Add(Tensor("Y", OnnxDataType.Float, null, n));
        g.Initializer.Add(OnnxTensors.FromMatrix("W", w, OnnxDataType.Float));
        g.Initializer.Add(OnnxTensors.FromArray<float>("B", b.AsSpan(), [n], OnnxDataType.Float));
        g.Node.Add(Node("MatMul", "matmul", ["X", "W"], ["XW"]));
        g.Node.Add(Node("Add", "add", ["XW", "B"], ["Z"]));
        g.Node.Add(Node("Relu", "relu", ["Z"], ["Y"]));
        return Model(g);
    }

    public static TensorProto Input(string name, int rows, int cols, int seed = 7) =>
        OnnxTensors.FromMatrix(name, RandomMatrix.Gaussian<float>(rows, cols, seed: seed), OnnxDataType.Float);

    public static string Write(ModelProto model, string folder, string name = "model.onnx")
    {
        string path = Path.Combine(folder, name);
        using var f = File.Create(path);
        model.WriteTo(f);
        return path;
    }
}

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public DirectoryInfo Dir { get; } = Directory.CreateTempSubdirectory("whittle-onnx-");

    public string Path => Dir.FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string[] Entries() => [.. Directory.GetFileSystemEntries(Path).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal)!];

    public void Dispose() => Dir.Delete(recursive: true);
}
