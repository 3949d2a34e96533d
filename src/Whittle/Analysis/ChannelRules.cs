namespace Whittle.Analysis;

/// <summary>How an op treats a channel (feature) axis that runs through it.</summary>
internal enum ChannelBehavior
{
    /// <summary>Elementwise on its first input (constant extra operands: exponents, clip bounds): the channel passes through.</summary>
    Unary,

    /// <summary>Elementwise on two operands (Add, Mul…): passes through when the other operand is a constant or carries the same channels.</summary>
    Binary,

    /// <summary>Per-channel with constant parameters (BatchNormalization, PRelu): passes through; the parameters are sliced with the channel.</summary>
    PerChannel,

    /// <summary>Spatial pooling (NCHW): channels pass through.</summary>
    Pool,

    /// <summary>Flatten / Reshape: channel × spatial at the conv → fully connected boundary, or a pure re-batching that keeps the last axis.</summary>
    Reshape,

    /// <summary>Reads only the value's shape (Shape, Size): not a data dependency; the walk does not follow it.</summary>
    ShapeOnly,

    /// <summary>Known to mix the channel axis (Softmax, normalizations, reductions, transposes…): the chain stops here.</summary>
    Mixes,
}

/// <summary>
/// The per-op-type rules of the channel dependency walk, all registered here. An op not in the table is
/// treated as <see cref="ChannelBehavior.Mixes"/> and reported with a warning naming it.
/// </summary>
internal static class ChannelRules
{
    private static readonly Dictionary<string, (ChannelBehavior Behavior, string? Why)> Table = Build();

    private static Dictionary<string, (ChannelBehavior, string?)> Build()
    {
        var t = new Dictionary<string, (ChannelBehavior, string?)>(StringComparer.Ordinal);
        foreach (var op in new[]
        {
            "Relu", "LeakyRelu", "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu",
            "Softplus", "Softsign", "Mish", "Swish", "Erf", "Identity", "Cast", "Dropout", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal",
            "Sin", "Cos", "Clip", "ThresholdedRelu", "Shrink", "Floor", "Ceil", "Round", "Sign",
        })
            t[op] = (ChannelBehavior.Unary, null);
        foreach (var op in new[] { "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min" }) t[op] = (ChannelBehavior.Binary, null);
        foreach (var op in new[] { "BatchNormalization", "PRelu", "InstanceNormalization" }) t[op] = (ChannelBehavior.PerChannel, null);
        foreach (var op in new[] { "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool" }) t[op] = (ChannelBehavior.Pool, null);
        foreach (var op in new[] { "Flatten", "Reshape" }) t[op] = (ChannelBehavior.Reshape, null);
        void Mix(string why, params string[] ops)
        {
            foreach (var op in ops) t[op] = (ChannelBehavior.Mixes, why);
        }
        Mix("normalizes across the pruned axis", "Softmax", "LogSoftmax", "LayerNormalization", "SimplifiedLayerNormalization",
            "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "RMSNormalization", "GroupNormalization", "LpNormalization", "Hardmax");
        Mix("reduces or reorders the pruned axis", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
            "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin", "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements",
            "TopK", "CumSum", "Squeeze", "Unsqueeze", "Expand", "Tile", "Pad", "DepthToSpace", "SpaceToDepth", "Resize", "Upsample");
        Mix("multiplies two activations (not a weight layer)", "MatMul", "Gemm", "Einsum");
        Mix("is a layer of another kind", "Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "Attention", "MultiHeadAttention");
        t["Shape"] = (ChannelBehavior.ShapeOnly, null);
        t["Size"] = (ChannelBehavior.ShapeOnly, null);
        return t;
    }

    /// <summary>The rule for <paramref name="opType"/>; <paramref name="known"/> is false for ops the table lacks.</summary>
    public static (ChannelBehavior Behavior, string? Why) For(string opType, out bool known)
    {
        known = Table.TryGetValue(opType, out var rule);
        return known ? rule : (ChannelBehavior.Mixes, "is not known to the channel rules");
    }

    /// <summary>Whether an op is a pointwise nonlinearity (used to tell a gate projection from an up projection).</summary>
    public static bool IsActivation(string opType) => opType is "Relu" or "LeakyRelu" or "Gelu" or "FastGelu" or "QuickGelu" or "Sigmoid"
        or "HardSigmoid" or "HardSwish" or "Tanh" or "Elu" or "Selu" or "Celu" or "Softplus" or "Mish" or "Swish" or "Erf" or "PRelu";
}
