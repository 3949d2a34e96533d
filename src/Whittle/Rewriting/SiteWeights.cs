using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Rewriting;

/// <summary>
/// Reads a linear site's weight and bias in the orientation of METHODS.md: <c>y = W x + b</c> with <c>W</c> of shape
/// out × in, whatever the stored layout (MatMul <c>x·W</c>, Gemm with <c>transB</c>, transposes on the weight's path).
/// </summary>
public static class SiteWeights
{
    /// <summary>The site's <c>W</c> (<see cref="LinearSite.OutFeatures"/> × <see cref="LinearSite.InFeatures"/>), a new float32 matrix.</summary>
    /// <exception cref="NotSupportedException">The weight is quantized (a <c>DequantizeLinear</c> on its path).</exception>
    /// <exception cref="OnnxModelException">The weight is missing from the graph or its data cannot be read.</exception>
    public static Matrix<float> Weight(OnnxModel model, LinearSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        if (site.Weight.Path.Contains("DequantizeLinear"))
            throw new NotSupportedException($"Site '{site.Name}': its weight '{site.Weight.Initializer}' is quantized (DequantizeLinear); dequantize the model first.");
        var stored = Constant(model, site.Weight.Initializer, site.Name).ToMatrix<float>();
        return site.StoredOutAxis == 0 ? stored : stored.Transpose().ToMatrix();
    }

    /// <summary>The site's bias <c>b</c> (length <see cref="LinearSite.OutFeatures"/>), or null when it has none.</summary>
    /// <exception cref="OnnxModelException">The bias cannot be read or does not hold one value per output feature.</exception>
    public static float[]? Bias(OnnxModel model, LinearSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        if (site.Bias is null) return null;
        var values = Constant(model, site.Bias, site.Name).ToArray<float>();
        if (values.Length != site.OutFeatures)
            throw new OnnxModelException($"{OnnxModelException.Describe(model.FilePath)}: bias '{site.Bias}' of site '{site.Name}' holds {values.Length} values; "
                + $"expected one per output feature ({site.OutFeatures}).", model.FilePath, site.Bias);
        return values;
    }

    /// <summary>The element type the site's product computes in: the stored weight's type, or the target of a <c>Cast</c> on its path.</summary>
    public static OnnxDataType ComputeType(OnnxModel model, LinearSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        var node = SiteNode(model, site);
        string value = node.Input[site.WeightIsLeftOperand ? 0 : 1];
        for (int depth = 0; depth < 8; depth++)
        {
            if (GraphQuery.ConstantTensor(model.Graph, value) is { } t) return (OnnxDataType)t.DataType;
            var p = model.Graph.Producer(value);
            if (p is null) break;
            if (p.OpType == "Cast") return (OnnxDataType)GraphQuery.Int(p, "to", (long)OnnxDataType.Float);
            value = p.Input[0];
        }
        return OnnxDataType.Float;
    }

    /// <summary>
    /// The element type a rewrite stores <paramref name="site"/>'s new weights in: the stored weight's 16-bit type when the site
    /// widens it to float32 through a <c>Cast</c> (see <see cref="OnnxGraphBuilder.MatrixStorage"/>), else <see cref="ComputeType"/>.
    /// </summary>
    public static OnnxDataType StorageType(OnnxModel model, LinearSite site)
    {
        var compute = ComputeType(model, site);
        return compute == OnnxDataType.Float && model.Graph.TryGetInitializer(site.Weight.Initializer, out var t)
            && t.DataType is OnnxDataType.Float16 or OnnxDataType.BFloat16 ? t.DataType : compute;
    }

    /// <summary>
    /// Adds to <paramref name="initializers"/> (and <paramref name="nodes"/>) what makes <paramref name="value"/> hold
    /// <paramref name="values"/> in <paramref name="compute"/>: an initializer of that name, or, when <paramref name="storage"/> is
    /// narrower, an initializer of <paramref name="storage"/> and a <c>Cast</c> to <paramref name="compute"/> producing the value.
    /// </summary>
    /// <returns>The initializer's name.</returns>
    public static string AddWeight(OnnxGraph graph, string value, Matrix<float> values, OnnxDataType compute, OnnxDataType storage,
        List<TensorProto> initializers, List<NodeProto> nodes, IReadOnlyList<long>? shape = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(initializers);
        ArgumentNullException.ThrowIfNull(nodes);
        if (storage == compute)
        {
            initializers.Add(OnnxTensors.FromMatrix(value, values, compute, shape));
            return value;
        }
        string stored = graph.UniqueName(value + "." + OnnxDataTypes.Name(storage));
        initializers.Add(OnnxTensors.FromMatrix(stored, values, storage, shape));
        nodes.Add(new NodeProto
        {
            OpType = "Cast", Name = graph.UniqueName(value + "/widen"), Input = { stored }, Output = { value },
            Attribute = { new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)compute } },
        });
        return stored;
    }

    /// <summary>The MatMul or Gemm node of <paramref name="site"/>.</summary>
    /// <exception cref="ArgumentException">The graph has no such node (the site belongs to another model, or the node was replaced).</exception>
    public static NodeProto SiteNode(OnnxModel model, LinearSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        var node = model.Graph.Producer(site.ProductOutput);
        if (node is null || node.OpType != site.OpType)
            ThrowHelper.Argument(nameof(site), $"Site '{site.Name}': the graph has no {site.OpType} producing '{site.ProductOutput}' (was it rewritten already?).");
        return node;
    }

    private static OnnxTensor Constant(OnnxModel model, string name, string site)
    {
        var proto = GraphQuery.ConstantTensor(model.Graph, name)
            ?? throw new OnnxModelException($"{OnnxModelException.Describe(model.FilePath)}: site '{site}' reads '{name}', which is neither an initializer nor a Constant.", model.FilePath, name);
        return model.Tensor(proto);
    }
}
