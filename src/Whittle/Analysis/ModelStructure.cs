using Whittle.Onnx;

namespace Whittle.Analysis;

/// <summary>
/// The structure of a model, detected from its graph (never from node names): weight sites, prunable channel
/// chains (and rejected candidates with reasons), the residual stream and transformer blocks, parameters and
/// MACs per example. Immutable records and lists, ready for System.Text.Json.
/// </summary>
/// <param name="LinearSites">Fully connected layers, in topological order.</param>
/// <param name="ConvSites">Convolutions, in topological order.</param>
/// <param name="Chains">Prunable neuron/channel chains.</param>
/// <param name="Rejected">Candidate producers whose channels are not prunable, with the reason.</param>
/// <param name="ResidualStream">The main residual stream, or null.</param>
/// <param name="Blocks">Transformer blocks along the stream.</param>
/// <param name="HiddenStates">Block boundary values: the stream before the first block (embedding output), then after each block.</param>
/// <param name="Parameters">Elements of all floating-point and quantized-integer initializers.</param>
/// <param name="SiteParameters">Weights and biases of all sites.</param>
/// <param name="Macs">MACs per example.</param>
/// <param name="Warnings">Ops the analysis does not know, with the conservative choice made, and what it could not link.</param>
public sealed record ModelStructure(
    IReadOnlyList<LinearSite> LinearSites,
    IReadOnlyList<ConvSite> ConvSites,
    IReadOnlyList<PrunableChain> Chains,
    IReadOnlyList<RejectedChain> Rejected,
    ResidualStream? ResidualStream,
    IReadOnlyList<TransformerBlock> Blocks,
    IReadOnlyList<string> HiddenStates,
    long Parameters,
    long SiteParameters,
    MacReport Macs,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Analyses <paramref name="model"/> (not modified).</summary>
    /// <param name="model">The model.</param>
    /// <param name="shapes">Tensor shapes by value name (from a runtime probe, or <see cref="GraphShapes.Collect"/>); null collects those the graph records.</param>
    /// <param name="batchSize">The batch the shapes describe; null takes the first dimension of the first graph input with a known shape (1 if none).</param>
    /// <param name="residualStreams">Find a CNN's residual streams as chains (one channel set across its residual Adds) instead of rejecting the channels that meet at them.</param>
    /// <exception cref="OnnxModelException">The graph has a cycle.</exception>
    public static ModelStructure Analyze(OnnxModel model, IReadOnlyDictionary<string, int[]>? shapes = null, int? batchSize = null, bool residualStreams = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (batchSize is < 1) ThrowHelper.ArgumentOutOfRange(nameof(batchSize), batchSize, "a positive batch size");
        var graph = model.Graph;
        shapes ??= GraphShapes.Collect(graph);
        var q = new GraphQuery(graph, shapes);
        var (linear, conv, nodes) = SiteFinder.Find(q);
        var chains = new ChainFinder(q, linear, conv, nodes, residualStreams);
        chains.Run();
        var blocks = new TransformerFinder(q, linear, nodes);
        blocks.Run();
        int batch = batchSize ?? graph.Inputs.Where(i => !graph.TryGetInitializer(i.Name, out _))
            .Select(i => shapes.TryGetValue(i.Name, out var s) && s.Length > 0 ? s[0] : 0).FirstOrDefault(b => b > 0, 1);
        var macs = MacCounter.Count(q, linear, conv, nodes, batch);
        long parameters = CountParameters(graph);
        IReadOnlyList<string> hidden = blocks.Blocks.Count == 0 ? [] : [blocks.Blocks[0].Input, .. blocks.Blocks.Select(b => b.Output)];
        return new ModelStructure(linear, conv, chains.Chains, chains.Rejected, blocks.Stream, blocks.Blocks, hidden, parameters,
            linear.Sum(s => s.Parameters) + conv.Sum(s => s.Parameters), macs, [.. chains.Warnings, .. blocks.Warnings, .. FusedOps(graph)]);
    }

    /// <summary>
    /// ONNX Runtime's fused transformer ops, which hold what the analysis looks for inside one node: what each hides, so
    /// a user knows why those layers are not offered for compression. (The fused GELUs are understood: their bias shrinks
    /// with the channels.)
    /// </summary>
    private static readonly (string Op, string Hides)[] Fused =
    [
        ("Attention", "the Q/K/V projections and heads (one packed weight)"),
        ("MultiHeadAttention", "the attention heads"),
        ("GroupQueryAttention", "the attention heads and KV groups"),
        ("PackedAttention", "the Q/K/V projections and heads"),
        ("SkipLayerNormalization", "a residual add and its LayerNorm (blocks are not linked across it)"),
        ("SkipSimplifiedLayerNormalization", "a residual add and its RMSNorm (blocks are not linked across it)"),
        ("EmbedLayerNormalization", "the embeddings and their LayerNorm"),
        ("QAttention", "quantized attention"),
    ];

    private static IEnumerable<string> FusedOps(OnnxGraph graph)
    {
        int quantized = graph.Nodes.Count(n => n.OpType == "MatMulNBits" && n.Domain == "com.microsoft");
        if (quantized > 0)
            yield return $"{quantized} MatMulNBits node(s) hold quantized weights: those layers are not compressible; compress the float model, "
                + "then quantize (whittle compress --quantize, or whittle quantize).";
        foreach (var (op, hides) in Fused)
        {
            int count = graph.Nodes.Count(n => n.OpType == op && n.Domain == "com.microsoft");
            if (count > 0)
                yield return $"{count} ONNX Runtime fused {op} node(s): the analysis does not see inside them ({hides}), so those layers are "
                    + "not compressible; export without ONNX Runtime's transformer fusions (e.g. optimization level basic) to compress them.";
        }
    }

    /// <summary>
    /// Elements of the weights: a <c>MatMulNBits</c> weight counts its K × N logical weights (not its packed bytes), and the
    /// scales and zero points of quantized weights are not counted (their bytes are in the stored size).
    /// </summary>
    private static long CountParameters(OnnxGraph graph)
    {
        var logical = new Dictionary<string, long>(StringComparer.Ordinal);
        var metadata = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in graph.Nodes)
        {
            if (n.OpType == "MatMulNBits" && n.Domain == "com.microsoft" && n.Input.Count > 1)
            {
                logical[n.Input[1]] = GraphQuery.Int(n, "K", 0) * GraphQuery.Int(n, "N", 0);
                metadata.UnionWith(n.Input.Skip(2));
            }
            else if (n.OpType == "DequantizeLinear") metadata.UnionWith(n.Input.Skip(1));
        }
        return graph.Proto.Initializer.Where(t => !metadata.Contains(t.Name))
            .Sum(t => logical.TryGetValue(t.Name, out long weights) ? weights
                : IsParameter((OnnxDataType)t.DataType) ? t.Dims.Aggregate(1L, (a, d) => a * d) : 0);
    }

    private static bool IsParameter(OnnxDataType t) => t is OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16
        or OnnxDataType.Double or OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.UInt4 or (OnnxDataType)22
        or OnnxDataType.Float8E4M3FN or OnnxDataType.Float8E4M3FNUZ or OnnxDataType.Float8E5M2 or OnnxDataType.Float8E5M2FNUZ;
}
