using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Analysis;

/// <summary>Multiply-accumulates of one layer or activation product.</summary>
/// <param name="Name">The site (or node) name.</param>
/// <param name="OpType">MatMul, Gemm or Conv.</param>
/// <param name="IsSite">True for a weight site; false for a product of two activations (attention scores, context).</param>
/// <param name="PerExample">MACs per example (total over the batch divided by <see cref="MacReport.BatchSize"/>), or null when the shapes needed are unknown.</param>
public sealed record LayerMacs(string Name, string OpType, bool IsSite, double? PerExample);

/// <summary>MACs per example, per layer and for the whole model.</summary>
/// <param name="BatchSize">The batch the shapes describe; totals are divided by it.</param>
/// <param name="Layers">Every MatMul, Gemm and Conv, in topological order.</param>
/// <param name="PerExample">Sum over the layers whose MACs are known.</param>
/// <param name="SitesPerExample">Sum over weight sites only.</param>
/// <param name="Unknown">Layers whose MACs could not be computed (shapes missing).</param>
public sealed record MacReport(int BatchSize, IReadOnlyList<LayerMacs> Layers, double PerExample, double SitesPerExample, IReadOnlyList<string> Unknown);

/// <summary>Collects tensor shapes already recorded in a graph, for <see cref="ModelStructure.Analyze"/>.</summary>
public static class GraphShapes
{
    /// <summary>
    /// Shapes of graph inputs, outputs, <c>value_info</c> entries and initializers. A symbolic dimension takes its value
    /// from <paramref name="dimensions"/>; an unresolved first dimension is taken as the batch (<paramref name="batchSize"/>);
    /// a value with any other unresolved dimension is left out.
    /// </summary>
    /// <param name="graph">The graph (not modified).</param>
    /// <param name="dimensions">Values of symbolic dimensions by name (e.g. <c>sequence</c> → 128), or null.</param>
    /// <param name="batchSize">The value of an unresolved leading dimension.</param>
    public static Dictionary<string, int[]> Collect(OnnxGraph graph, IReadOnlyDictionary<string, int>? dimensions = null, int batchSize = 1)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (batchSize < 1) ThrowHelper.ArgumentOutOfRange(nameof(batchSize), batchSize, "a positive batch size");
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var t in graph.Proto.Initializer) shapes[t.Name] = [.. t.Dims.Select(d => (int)d)];
        foreach (var v in graph.Proto.Input.Concat(graph.Proto.Output).Concat(graph.Proto.ValueInfo))
        {
            if (v.Type?.TensorType?.Shape is not { } shape) continue;
            var dims = new int[shape.Dim.Count];
            bool ok = true;
            for (int i = 0; i < dims.Length && ok; i++)
            {
                var d = shape.Dim[i];
                if (d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue > 0) dims[i] = (int)d.DimValue;
                else if (d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam && dimensions is not null
                         && dimensions.TryGetValue(d.DimParam, out int dv)) dims[i] = dv;
                else if (i == 0) dims[i] = batchSize;
                else ok = false;
            }
            if (ok) shapes.TryAdd(v.Name, dims);
        }
        return shapes;
    }
}

/// <summary>Counts MACs from known shapes.</summary>
internal static class MacCounter
{
    public static MacReport Count(GraphQuery q, IReadOnlyList<LinearSite> linear, IReadOnlyList<ConvSite> conv,
        Dictionary<string, NodeProto> siteNodes, int batch)
    {
        var linearByNode = linear.ToDictionary<LinearSite, NodeProto, LinearSite>(s => siteNodes[s.Name], s => s, ReferenceEqualityComparer.Instance);
        var convByNode = conv.ToDictionary<ConvSite, NodeProto, ConvSite>(s => siteNodes[s.Name], s => s, ReferenceEqualityComparer.Instance);
        var layers = new List<LayerMacs>();
        foreach (var n in q.Order)
        {
            if (n.OpType is not ("MatMul" or "Gemm" or "Conv" or "MatMulNBits")) continue;
            double? total = null;
            bool isSite = true;
            if (linearByNode.TryGetValue(n, out var l)) total = Linear(q, l);
            else if (convByNode.TryGetValue(n, out var c)) total = Conv(q, c);
            else
            {
                isSite = false;
                if (n.OpType == "MatMulNBits") total = q.Shape(n.Output[0]) is { } y ? Product(y) * GraphQuery.Int(n, "K", 0) : null;
                else if (q.Shape(n.Output[0]) is { } o && Reduction(q, n) is { } k) total = Product(o) * k;
            }
            layers.Add(new LayerMacs(GraphQuery.NameOf(n), n.OpType, isSite, total / batch));
        }
        double sum = layers.Sum(x => x.PerExample ?? 0), sites = layers.Where(x => x.IsSite).Sum(x => x.PerExample ?? 0);
        return new MacReport(batch, layers, sum, sites, [.. layers.Where(x => x.PerExample is null).Select(x => x.Name)]);
    }

    /// <summary>The reduced dimension of an activation MatMul/Gemm, from either operand's shape.</summary>
    private static int? Reduction(GraphQuery q, NodeProto n)
    {
        bool gemm = n.OpType == "Gemm";
        if (q.Shape(n.Input[0]) is { Length: > 0 } a) return gemm && GraphQuery.Int(n, "transA", 0) != 0 ? a[0] : a[^1];
        if (q.Shape(n.Input[1]) is { Length: > 0 } b)
            return gemm ? (GraphQuery.Int(n, "transB", 0) != 0 ? b[^1] : b[0]) : b.Length >= 2 ? b[^2] : b[0];
        return null;
    }

    private static double Product(IEnumerable<int> dims) => dims.Aggregate(1.0, (a, d) => a * d);

    private static double? Linear(GraphQuery q, LinearSite s)
    {
        if (q.Shape(s.ProductOutput) is { } o) return Product(o) * s.InFeatures;
        if (q.Shape(s.Input) is { Length: > 0 } i)
            return s.WeightIsLeftOperand ? Product(i) / s.InFeatures * s.OutFeatures * s.InFeatures : Product(i[..^1]) * s.OutFeatures * s.InFeatures;
        return null;
    }

    private static double? Conv(GraphQuery q, ConvSite s)
    {
        double perOutput = (double)s.InChannels / s.Groups * s.Kernel.Aggregate(1L, (a, d) => a * d);
        if (q.Shape(s.Output) is { } o) return Product(o) * perOutput;
        if (q.Shape(s.Input) is { } i && i.Length == s.Kernel.Count + 2)
        {
            double outputs = (double)i[0] * s.OutChannels;
            int k = s.Kernel.Count;
            for (int a = 0; a < k; a++)
                outputs *= (i[a + 2] + s.Pads[a] + s.Pads[a + k] - s.Dilations[a] * (s.Kernel[a] - 1) - 1) / s.Strides[a] + 1;
            return outputs * perOutput;
        }
        return null;
    }
}
