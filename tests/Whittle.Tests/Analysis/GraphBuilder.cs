using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Analysis;

/// <summary>Builds small ONNX graphs in code for the analysis tests, with explicit value_info shapes.</summary>
internal sealed class GraphBuilder
{
    private readonly GraphProto _g = new() { Name = "analysis" };
    private readonly Dictionary<string, int[]> _shapes = [];
    private int _next;

    public IReadOnlyDictionary<string, int[]> Shapes => _shapes;

    public string Input(string name, params long[] dims)
    {
        _g.Input.Add(Info(name, dims));
        _shapes[name] = [.. dims.Select(d => (int)d)];
        return name;
    }

    public void Output(string name)
    {
        var dims = _shapes.TryGetValue(name, out var s) ? s.Select(d => (long)d).ToArray() : [];
        _g.Output.Add(Info(name, dims));
    }

    /// <summary>Records <paramref name="dims"/> as the shape of <paramref name="value"/> (value_info).</summary>
    public string Shape(string value, params long[] dims)
    {
        _g.ValueInfo.Add(Info(value, dims));
        _shapes[value] = [.. dims.Select(d => (int)d)];
        return value;
    }

    public string Weight(string name, params long[] dims)
    {
        long count = dims.Aggregate(1L, (a, d) => a * d);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++) values[i] = 0.01f * ((i * 7 + 3) % 11 - 5);
        _g.Initializer.Add(OnnxTensors.FromArray<float>(name, values, dims, OnnxDataType.Float));
        return name;
    }

    public string Initializer(TensorProto tensor)
    {
        _g.Initializer.Add(tensor);
        return tensor.Name;
    }

    public string Scalar(string name, float value)
    {
        _g.Initializer.Add(OnnxTensors.FromArray<float>(name, [value], [], OnnxDataType.Float));
        return name;
    }

    public string Ints(string name, params long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)OnnxDataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.Add(values);
        _g.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a node with one output; attributes are (name, long | long[] | float | string).</summary>
    public string Node(string op, string name, string[] inputs, params (string Name, object Value)[] attributes)
    {
        string output = name + "_out";
        NodeMulti(op, name, inputs, [output], attributes);
        return output;
    }

    public NodeProto NodeMulti(string op, string name, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        foreach (var (an, av) in attributes)
        {
            var a = new AttributeProto { Name = an };
            switch (av)
            {
                case long l: a.Type = AttributeProto.Types.AttributeType.Int; a.I = l; break;
                case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
                case long[] ls: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.Add(ls); break;
                case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
                case string str: a.Type = AttributeProto.Types.AttributeType.String; a.S = Google.Protobuf.ByteString.CopyFromUtf8(str); break;
                default: throw new ArgumentException($"attribute {an}");
            }
            n.Attribute.Add(a);
        }
        _g.Node.Add(n);
        return n;
    }

    /// <summary>x·W (+ b) with W stored [in, out]; records the output shape as <paramref name="prefix"/> + [out].</summary>
    public string Linear(string name, string x, int inF, int outF, long[] prefix, bool bias = true)
    {
        var w = Weight(name + ".weight", inF, outF);
        var y = Node("MatMul", name, [x, w]);
        Shape(y, [.. prefix, outF]);
        if (!bias) return y;
        var b = Weight(name + ".bias", outF);
        return Shape(Node("Add", name + "_bias", [y, b]), [.. prefix, outF]);
    }

    public string Conv(string name, string x, int cin, int cout, int k, long[] outShape, int pad = 0, int group = 1)
    {
        var w = Weight(name + ".weight", cout, cin / group, k, k);
        var b = Weight(name + ".bias", cout);
        var y = Node("Conv", name, [x, w, b], ("pads", new long[] { pad, pad, pad, pad }), ("group", (long)group),
            ("kernel_shape", new long[] { k, k }));
        return Shape(y, outShape);
    }

    public string Unique(string prefix) => $"{prefix}{_next++}";

    public OnnxModel Build()
    {
        var m = new ModelProto { IrVersion = 8, ProducerName = "whittle-tests", Graph = _g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return OnnxModel.FromProto(m);
    }

    private static ValueInfoProto Info(string name, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)OnnxDataType.Float, Shape = shape } } };
    }
}
