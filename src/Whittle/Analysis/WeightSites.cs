using Whittle.Onnx.Proto;

namespace Whittle.Analysis;

/// <summary>How a stored weight matrix maps onto the normalised <c>W</c> (out × in, <c>y = W x + b</c>).</summary>
public enum WeightLayout
{
    /// <summary>Stored as out × in (Gemm with <c>transB = 1</c>, PyTorch's <c>nn.Linear.weight</c>): rows are output features.</summary>
    OutIn,

    /// <summary>Stored as in × out (MatMul <c>x · W</c>, Gemm with <c>transB = 0</c>): columns are output features.</summary>
    InOut,
}

/// <summary>Where a weight comes from: the initializer and the ops between it and the layer.</summary>
/// <param name="Initializer">The initializer (or <c>Constant</c> output) holding the stored data.</param>
/// <param name="Path">Op types from the initializer to the layer, in order (e.g. <c>DequantizeLinear</c>, <c>Transpose</c>); empty when read directly.</param>
/// <param name="StoredShape">The dims of the stored tensor.</param>
/// <param name="QuantizationScale">The <c>DequantizeLinear</c> scale operand, when the path has one.</param>
/// <param name="QuantizationZeroPoint">The <c>DequantizeLinear</c> zero-point operand, when the path has one.</param>
public sealed record WeightSource(
    string Initializer,
    IReadOnlyList<string> Path,
    IReadOnlyList<long> StoredShape,
    string? QuantizationScale,
    string? QuantizationZeroPoint);

/// <summary>
/// A fully connected layer: a <c>MatMul</c> or <c>Gemm</c> with a constant weight, normalised to
/// <c>y = W x + b</c> with <c>W</c> of shape <see cref="OutFeatures"/> × <see cref="InFeatures"/>.
/// </summary>
/// <param name="Name">The node's name (its first output where it has none); the site's id.</param>
/// <param name="OpType"><c>MatMul</c> or <c>Gemm</c>.</param>
/// <param name="Input">The activation operand.</param>
/// <param name="ProductOutput">The node's output (before a separate bias <c>Add</c>).</param>
/// <param name="Output">The layer's output: after the bias <c>Add</c> where there is one, else <see cref="ProductOutput"/>.</param>
/// <param name="Weight">Where the weight is stored.</param>
/// <param name="Layout">How the stored matrix (after the transposes on <see cref="WeightSource.Path"/>) maps onto <c>W</c>; see <see cref="StoredOutAxis"/>.</param>
/// <param name="WeightIsLeftOperand">True for <c>W · x</c> (MatMul with a constant left operand): features then lie on the second-to-last axis of the activation.</param>
/// <param name="OutFeatures"><c>m</c>.</param>
/// <param name="InFeatures"><c>n</c>.</param>
/// <param name="Bias">The bias vector (Gemm's C or the initializer of the bias <c>Add</c>), or null.</param>
/// <param name="BiasNode">The separate bias <c>Add</c> node, or null.</param>
/// <param name="StoredOutAxis">The axis of the stored initializer that indexes output features (0 or 1).</param>
/// <param name="Parameters">Weight plus bias element count.</param>
public sealed record LinearSite(
    string Name,
    string OpType,
    string Input,
    string ProductOutput,
    string Output,
    WeightSource Weight,
    WeightLayout Layout,
    bool WeightIsLeftOperand,
    int OutFeatures,
    int InFeatures,
    string? Bias,
    string? BiasNode,
    int StoredOutAxis,
    long Parameters);

/// <summary>A convolution with a constant weight <c>[Cout, Cin/groups, kh, kw…]</c> (NCHW).</summary>
/// <param name="Name">The node's name (its first output where it has none); the site's id.</param>
/// <param name="Input">The activation input.</param>
/// <param name="Output">The output.</param>
/// <param name="Weight">Where the weight is stored.</param>
/// <param name="OutChannels">Cout.</param>
/// <param name="InChannels">Cin (the input's channels, <c>groups</c> × the kernel's second dim).</param>
/// <param name="Groups">The <c>group</c> attribute.</param>
/// <param name="Kernel">Kernel spatial dims.</param>
/// <param name="Strides">Strides (1 per spatial axis when absent).</param>
/// <param name="Pads">Pads, begin values then end values (zeros when absent; <c>auto_pad</c> not resolved).</param>
/// <param name="Dilations">Dilations (1 per spatial axis when absent).</param>
/// <param name="Bias">The bias initializer, or null.</param>
/// <param name="Parameters">Weight plus bias element count.</param>
public sealed record ConvSite(
    string Name,
    string Input,
    string Output,
    WeightSource Weight,
    int OutChannels,
    int InChannels,
    int Groups,
    IReadOnlyList<long> Kernel,
    IReadOnlyList<long> Strides,
    IReadOnlyList<long> Pads,
    IReadOnlyList<long> Dilations,
    string? Bias,
    long Parameters)
{
    /// <summary>Whether every group has one input and one output channel (depthwise).</summary>
    public bool IsDepthwise => Groups > 1 && Groups == InChannels && Groups == OutChannels;
}

/// <summary>Finds linear and convolution sites.</summary>
internal static class SiteFinder
{
    private static readonly HashSet<string> WeightPathOps = ["Transpose", "Cast", "DequantizeLinear", "Identity"];

    public static (List<LinearSite> Linear, List<ConvSite> Conv, Dictionary<string, NodeProto> Nodes) Find(GraphQuery q)
    {
        var linear = new List<LinearSite>();
        var conv = new List<ConvSite>();
        var nodes = new Dictionary<string, NodeProto>();
        foreach (var node in q.Order)
        {
            if (node.OpType is "MatMul" or "Gemm" && TryLinear(q, node) is { } l)
            {
                linear.Add(l);
                nodes[l.Name] = node;
            }
            else if (node.OpType == "Conv" && TryConv(q, node) is { } c)
            {
                conv.Add(c);
                nodes[c.Name] = node;
            }
        }
        return (linear, conv, nodes);
    }

    /// <summary>Follows Transpose/Cast/DequantizeLinear back to a constant; counts the transposes that swap the two axes.</summary>
    public static WeightSource? ResolveWeight(GraphQuery q, string value, out bool transposed)
    {
        transposed = false;
        var path = new List<string>();
        string? scale = null, zeroPoint = null;
        for (int depth = 0; depth < 8; depth++)
        {
            if (q.ConstantTensor(value) is { } t)
            {
                path.Reverse();
                return new WeightSource(value, path, [.. t.Dims], scale, zeroPoint);
            }
            var p = q.Graph.Producer(value);
            if (p is null || !WeightPathOps.Contains(p.OpType)) return null;
            if (p.OpType == "Transpose")
            {
                var perm = GraphQuery.Ints(p, "perm");
                if (perm is not null && !(perm.Length == 2 && perm[0] == 1 && perm[1] == 0)) return null;
                transposed = !transposed;
            }
            if (p.OpType == "DequantizeLinear")
            {
                scale = p.Input.Count > 1 ? p.Input[1] : null;
                zeroPoint = p.Input.Count > 2 && p.Input[2].Length > 0 ? p.Input[2] : null;
            }
            path.Add(p.OpType);
            value = p.Input[0];
        }
        return null;
    }

    private static LinearSite? TryLinear(GraphQuery q, NodeProto node)
    {
        if (node.Input.Count < 2) return null;
        string name = GraphQuery.NameOf(node);
        bool gemm = node.OpType == "Gemm";
        bool left = false;
        var w = ResolveWeight(q, node.Input[1], out bool transposed);
        string input = node.Input[0];
        if (w is null && !gemm)
        {
            w = ResolveWeight(q, node.Input[0], out transposed);
            if (w is null || q.IsConstant(node.Input[1])) return null;
            left = true;
            input = node.Input[1];
        }
        if (w is null || w.StoredShape.Count != 2 || q.IsConstant(input)) return null;
        if (gemm && GraphQuery.Int(node, "transA", 0) != 0) return null;
        // Effective operand orientation: for x·B (right operand) B is in × out; for W·x (left operand) W is out × in.
        bool effectiveIsInOut = !left;
        if (gemm && GraphQuery.Int(node, "transB", 0) != 0) effectiveIsInOut = !effectiveIsInOut;
        bool storedInOut = transposed ? !effectiveIsInOut : effectiveIsInOut;
        int outAxis = storedInOut ? 1 : 0;
        int outF = (int)w.StoredShape[outAxis], inF = (int)w.StoredShape[1 - outAxis];
        string product = node.Output[0];
        string output = product;
        string? bias = null, biasNode = null;
        if (gemm && node.Input.Count > 2 && node.Input[2].Length > 0 && q.ConstantElementCount(node.Input[2]) is { } _)
            bias = node.Input[2];
        else if (!gemm && !left)
        {
            var consumers = q.Graph.Consumers(product);
            if (consumers.Count == 1 && consumers[0].OpType == "Add" && !q.Graph.IsGraphOutput(product))
            {
                var add = consumers[0];
                string other = add.Input[0] == product ? add.Input[1] : add.Input[0];
                if (q.IsConstant(other) && q.ConstantDims(other) is { } d && d.Count >= 1 && d[^1] == outF && d.Take(d.Count - 1).All(x => x == 1))
                {
                    bias = other;
                    biasNode = GraphQuery.NameOf(add);
                    output = add.Output[0];
                }
            }
        }
        long parameters = (long)outF * inF + (bias is null ? 0 : outF);
        return new LinearSite(name, node.OpType, input, product, output, w, storedInOut ? WeightLayout.InOut : WeightLayout.OutIn,
            left, outF, inF, bias, biasNode, outAxis, parameters);
    }

    private static ConvSite? TryConv(GraphQuery q, NodeProto node)
    {
        if (node.Input.Count < 2) return null;
        var w = ResolveWeight(q, node.Input[1], out bool transposed);
        if (w is null || transposed || w.StoredShape.Count < 3) return null;
        int groups = (int)GraphQuery.Int(node, "group", 1);
        int spatial = w.StoredShape.Count - 2;
        var kernel = w.StoredShape.Skip(2).ToArray();
        var strides = GraphQuery.Ints(node, "strides") ?? [.. Enumerable.Repeat(1L, spatial)];
        var pads = GraphQuery.Ints(node, "pads") ?? [.. Enumerable.Repeat(0L, 2 * spatial)];
        var dilations = GraphQuery.Ints(node, "dilations") ?? [.. Enumerable.Repeat(1L, spatial)];
        string? bias = node.Input.Count > 2 && node.Input[2].Length > 0 ? node.Input[2] : null;
        int cout = (int)w.StoredShape[0];
        long parameters = w.StoredShape.Aggregate(1L, (a, d) => a * d) + (bias is null ? 0 : cout);
        return new ConvSite(GraphQuery.NameOf(node), node.Input[0], node.Output[0], w, cout, (int)w.StoredShape[1] * groups, groups,
            kernel, strides, pads, dilations, bias, parameters);
    }
}
