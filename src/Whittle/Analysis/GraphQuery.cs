using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Analysis;

/// <summary>
/// Read-only lookups the analysis passes share: constants (initializers and <c>Constant</c> nodes),
/// attributes, node display names, known shapes, and a topological position per node.
/// </summary>
internal sealed class GraphQuery
{
    private readonly Dictionary<NodeProto, int> _position = new(ReferenceEqualityComparer.Instance);

    public GraphQuery(OnnxGraph graph, IReadOnlyDictionary<string, int[]> shapes)
    {
        Graph = graph;
        Shapes = shapes;
        Order = graph.TopologicalOrder();
        for (int i = 0; i < Order.Count; i++) _position[Order[i]] = i;
    }

    public OnnxGraph Graph { get; }

    public IReadOnlyDictionary<string, int[]> Shapes { get; }

    public IReadOnlyList<NodeProto> Order { get; }

    public int Position(NodeProto node) => _position.TryGetValue(node, out int p) ? p : -1;

    /// <summary>The name reports use for a node: its name, or its first output where it has none.</summary>
    public static string NameOf(NodeProto node) => node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault() ?? node.OpType;

    /// <summary>The node of <paramref name="graph"/> called <paramref name="name"/> (<see cref="NameOf"/>), or null.</summary>
    public static NodeProto? FindNode(OnnxGraph graph, string name)
    {
        foreach (var n in graph.Nodes)
            if (NameOf(n) == name) return n;
        return null;
    }

    public int[]? Shape(string value) => Shapes.TryGetValue(value, out var s) ? s : null;

    /// <summary>The tensor behind <paramref name="value"/> when it is an initializer or a <c>Constant</c> node's output.</summary>
    public TensorProto? ConstantTensor(string value) => ConstantTensor(Graph, value);

    /// <summary>
    /// The initializer <paramref name="value"/> is, or that it widens through one <c>Cast</c> to float (16-bit storage,
    /// <see cref="OnnxGraphBuilder.MatrixStorage"/>), or null.
    /// </summary>
    public static string? StoredInitializer(OnnxGraph graph, string value)
    {
        if (graph.TryGetInitializer(value, out _)) return value;
        return graph.Producer(value) is { OpType: "Cast" } cast && Int(cast, "to", 0) == (long)OnnxDataType.Float
            && graph.TryGetInitializer(cast.Input[0], out _) ? cast.Input[0] : null;
    }

    /// <summary>The tensor behind <paramref name="value"/> in <paramref name="graph"/> when it is an initializer or a <c>Constant</c> node's output.</summary>
    public static TensorProto? ConstantTensor(OnnxGraph graph, string value)
    {
        if (value.Length == 0) return null;
        if (graph.TryGetInitializer(value, out var t)) return t.Proto;
        var p = graph.Producer(value);
        if (p is { OpType: "Constant" })
        {
            var a = p.Attribute.FirstOrDefault(a => a.Name == "value");
            if (a?.T is { } tp) return tp;
            var ints = p.Attribute.FirstOrDefault(a => a.Name == "value_ints");
            if (ints is not null)
            {
                var proto = new TensorProto { DataType = (int)OnnxDataType.Int64 };
                proto.Dims.Add(ints.Ints.Count);
                proto.Int64Data.Add(ints.Ints);
                return proto;
            }
            var i = p.Attribute.FirstOrDefault(a => a.Name == "value_int");
            if (i is not null) return new TensorProto { DataType = (int)OnnxDataType.Int64, Int64Data = { i.I } };
            var f = p.Attribute.FirstOrDefault(a => a.Name == "value_float");
            if (f is not null) return new TensorProto { DataType = (int)OnnxDataType.Float, FloatData = { f.F } };
        }
        return null;
    }

    /// <summary>Whether <paramref name="value"/> is a constant: an initializer, a <c>Constant</c> output, or a cast/unsqueeze/dequantize of one.</summary>
    public bool IsConstant(string value)
    {
        for (int depth = 0; depth < 8; depth++)
        {
            if (ConstantTensor(value) is not null) return true;
            var p = Graph.Producer(value);
            if (p is null || p.OpType is not ("Cast" or "Identity" or "Unsqueeze" or "Reshape" or "DequantizeLinear" or "Expand")) return false;
            if (p.Input.Skip(1).Any(i => i.Length > 0 && ConstantTensor(i) is null)) return false;
            value = p.Input[0];
        }
        return false;
    }

    /// <summary>The element count of a constant, or null.</summary>
    public long? ConstantElementCount(string value)
    {
        var t = ConstantTensor(value);
        return t?.Dims.Aggregate(1L, (a, d) => a * d);
    }

    /// <summary>The dims of a constant (following casts), or null.</summary>
    public IReadOnlyList<long>? ConstantDims(string value)
    {
        for (int depth = 0; depth < 8; depth++)
        {
            if (ConstantTensor(value) is { } t) return t.Dims;
            var p = Graph.Producer(value);
            if (p is null || p.OpType is not ("Cast" or "Identity" or "DequantizeLinear")) return null;
            value = p.Input[0];
        }
        return null;
    }

    /// <summary>The values of an integer constant (shape tensors, axes), or null.</summary>
    public long[]? ConstantInts(string value)
    {
        var t = ConstantTensor(value);
        if (t is null) return null;
        var data = OnnxTensor.Of(t).ToArray<double>();
        return [.. data.Select(d => (long)d)];
    }

    /// <summary>
    /// The target of a Reshape-like shape operand: constant, or a <c>Concat</c> whose pieces are constants
    /// (unknown pieces read as null).
    /// </summary>
    public long?[]? ShapeOperand(string value)
    {
        if (ConstantInts(value) is { } c) return [.. c.Select(v => (long?)v)];
        var p = Graph.Producer(value);
        if (p is { OpType: "Cast" }) return ShapeOperand(p.Input[0]);
        if (p is not { OpType: "Concat" }) return null;
        var result = new List<long?>();
        foreach (var piece in p.Input)
        {
            if (ConstantInts(piece) is { } k) result.AddRange(k.Select(v => (long?)v));
            else if (ConstantInts(UnsqueezedSource(piece)) is { } u) result.AddRange(u.Select(v => (long?)v));
            else result.Add(null);
        }
        return [.. result];
    }

    private string UnsqueezedSource(string value) => Graph.Producer(value) is { OpType: "Unsqueeze" } u ? u.Input[0] : "";

    public static long Int(NodeProto node, string name, long fallback)
    {
        var a = node.Attribute.FirstOrDefault(a => a.Name == name);
        return a is null ? fallback : a.I;
    }

    public static float Float(NodeProto node, string name, float fallback)
    {
        var a = node.Attribute.FirstOrDefault(a => a.Name == name);
        return a is null ? fallback : a.F;
    }

    public static long[]? Ints(NodeProto node, string name)
    {
        var a = node.Attribute.FirstOrDefault(a => a.Name == name);
        return a is null ? null : [.. a.Ints];
    }

    /// <summary>Whether <paramref name="ancestor"/> is read, directly or transitively, to compute <paramref name="value"/>.</summary>
    public bool DependsOn(string value, string ancestor, int limit = 100_000)
    {
        var seen = new HashSet<string>();
        var stack = new Stack<string>();
        stack.Push(value);
        while (stack.Count > 0 && seen.Count < limit)
        {
            var v = stack.Pop();
            if (v == ancestor) return true;
            if (!seen.Add(v)) continue;
            if (Graph.Producer(v) is { } p)
                foreach (var i in p.Input)
                    if (i.Length > 0) stack.Push(i);
        }
        return false;
    }
}
