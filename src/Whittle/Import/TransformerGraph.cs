using Whittle.Onnx;
using static Whittle.Onnx.OnnxAttributes;

namespace Whittle.Import;

/// <summary>How rotary position embeddings pair the features of a head.</summary>
public enum RopeStyle
{
    /// <summary>Adjacent pairs (2i, 2i+1) rotate together: llama2.c and Meta's original Llama code.</summary>
    InterleavedPairs,

    /// <summary>Feature i rotates with i + head_dim/2 (<c>rotate_half</c>): Hugging Face Llama, Mistral, Qwen2.</summary>
    HalfRotation,
}

/// <summary>
/// The pieces every imported transformer is made of, written onto an <see cref="OnnxGraphBuilder"/> in the forms
/// <see cref="Whittle.Analysis.ModelStructure"/> recognises: linear layers as <c>MatMul(x, W)</c> with W an
/// initializer [in, out] (bias as a following <c>Add</c>), RMSNorm in its exported Pow/ReduceMean/Add/Sqrt/Div/Mul
/// form, LayerNormalization ops, and attention whose head <c>Reshape [0, 0, heads, head_dim]</c> follows each
/// projection directly.
/// </summary>
/// <remarks>
/// Shapes: B batch, S sequence (both dynamic), D model width, H query heads, Hkv key/value heads, G = H / Hkv,
/// hd head size. Grouped-query attention broadcasts K/V over G instead of repeating them: Q [B, Hkv, G, S, hd]
/// against K [B, Hkv, 1, hd, S].
/// </remarks>
internal sealed class TransformerGraph(OnnxGraphBuilder b, string inputIds)
{
    private string? _seqLen, _positions, _causal, _negInf;

    public OnnxGraphBuilder Builder => b;

    /// <summary>S as a scalar int64, from the shape of the ids.</summary>
    public string SeqLen => _seqLen ??= b.Node("Gather", [b.Node("Shape", [inputIds], "seq.shape"), b.Int64Scalar("seq.axis", 1)], "seq.length", Int("axis", 0));

    /// <summary>0, 1, …, S − 1 (int64 [S]).</summary>
    public string Positions => _positions ??= b.Node("Range", [b.Int64Scalar("seq.zero", 0), SeqLen, b.Int64Scalar("seq.one", 1)], "seq.positions");

    /// <summary>The causal mask: bool [S, S], true where key j ≤ query i.</summary>
    public string CausalMask
    {
        get
        {
            if (_causal is not null) return _causal;
            var rows = b.Node("Unsqueeze", [Positions, b.Int64s("mask.row_axes", 1)], "mask.rows");
            var cols = b.Node("Unsqueeze", [Positions, b.Int64s("mask.col_axes", 0)], "mask.cols");
            return _causal = b.Node("LessOrEqual", [cols, rows], "mask.causal");
        }
    }

    private string NegInf => _negInf ??= b.Scalar("mask.neg_inf", float.NegativeInfinity);

    /// <summary><c>x · W + bias</c>: W given [in, out]; the MatMul node is named <paramref name="name"/>.</summary>
    public string Linear(string name, string x, string weightName, float[] wInOut, int inF, int outF, string? biasName = null, float[]? bias = null)
    {
        var w = b.Weight(weightName, wInOut, inF, outF);
        var y = b.Node("MatMul", [x, w], name);
        if (bias is null) return y;
        return b.Node("Add", [y, b.Weight(biasName!, bias, outF)], name + ".bias_add");
    }

    /// <summary>
    /// A classifier tied to the token embedding <paramref name="embeddingName"/> ([vocab, d]): <c>x · Eᵀ</c> through a
    /// Transpose of the one stored tensor (ORT folds it at load), so the weights are stored, and counted, once.
    /// </summary>
    public string TiedLinear(string name, string x, string embeddingName)
    {
        var transposed = b.Node("Transpose", [embeddingName], name + ".tied_weight", Ints("perm", 1, 0));
        return b.Node("MatMul", [x, transposed], name);
    }

    /// <summary>RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · weight.</summary>
    public string RmsNorm(string name, string x, string weightName, float[] weight, float eps)
    {
        var sq = b.Node("Pow", [x, b.Scalar(name + ".two", 2f)], name + ".square");
        var mean = b.Node("ReduceMean", [sq], name + ".mean", Ints("axes", -1), Int("keepdims", 1));
        var rms = b.Node("Sqrt", [b.Node("Add", [mean, b.Scalar(name + ".eps", eps)], name + ".add_eps")], name + ".rms");
        var n = b.Node("Div", [x, rms], name + ".normalize");
        return b.Node("Mul", [n, b.Weight(weightName, weight, weight.Length)], name);
    }

    /// <summary>LayerNormalization over the last axis.</summary>
    public string LayerNorm(string name, string x, string gammaName, float[] gamma, string betaName, float[] beta, float eps) =>
        b.Node("LayerNormalization", [x, b.Weight(gammaName, gamma, gamma.Length), b.Weight(betaName, beta, beta.Length)], name,
            Int("axis", -1), Float("epsilon", eps));

    /// <summary>Rotary tables cos and sin for <paramref name="style"/>: [S, 1, hd/2, 1] (pairs) or [S, 1, hd/2] (halves).</summary>
    public (string Cos, string Sin) RopeTables(float[] inverseFrequencies, RopeStyle style)
    {
        int half = inverseFrequencies.Length;
        var pos = b.Node("Cast", [Positions], "rope.positions", Int("to", (long)OnnxDataType.Float));
        var col = b.Node("Unsqueeze", [pos, b.Int64s("rope.pos_axes", 1)], "rope.positions_column");
        var angles = b.Node("Mul", [col, b.Weight("rope.inv_freq", inverseFrequencies, half)], "rope.angles");
        var shape = style == RopeStyle.InterleavedPairs ? b.Int64s("rope.table_shape", -1, 1, half, 1) : b.Int64s("rope.table_shape", -1, 1, half);
        var cos = b.Node("Reshape", [b.Node("Cos", [angles], "rope.cos_flat"), shape], "rope.cos");
        var sin = b.Node("Reshape", [b.Node("Sin", [angles], "rope.sin_flat"), shape], "rope.sin");
        return (cos, sin);
    }

    /// <summary>Rotates x [B, S, heads, hd] by the tables of <see cref="RopeTables"/>.</summary>
    public string Rope(string name, string x, int heads, int hd, (string Cos, string Sin) t, RopeStyle style)
    {
        string x0, x1;
        if (style == RopeStyle.InterleavedPairs)
        {
            var pairs = b.Node("Reshape", [x, b.Int64s(name + ".pairs_shape", 0, 0, heads, hd / 2, 2)], name + ".pairs");
            var parts = b.Node("Split", [pairs, b.Int64s(name + ".split_sizes", 1, 1)], name + ".split", [name + ".even", name + ".odd"], Int("axis", -1));
            (x0, x1) = (parts[0], parts[1]);
        }
        else
        {
            var parts = b.Node("Split", [x, b.Int64s(name + ".split_sizes", hd / 2, hd / 2)], name + ".split", [name + ".first", name + ".second"], Int("axis", -1));
            (x0, x1) = (parts[0], parts[1]);
        }
        // (x0, x1) ↦ (x0·cos − x1·sin, x0·sin + x1·cos)
        var r0 = b.Node("Sub", [b.Node("Mul", [x0, t.Cos], name + ".a_cos"), b.Node("Mul", [x1, t.Sin], name + ".b_sin")], name + ".r0");
        var r1 = b.Node("Add", [b.Node("Mul", [x0, t.Sin], name + ".a_sin"), b.Node("Mul", [x1, t.Cos], name + ".b_cos")], name + ".r1");
        var joined = b.Node("Concat", [r0, r1], name + ".join", Int("axis", -1));
        return style == RopeStyle.InterleavedPairs
            ? b.Node("Reshape", [joined, b.Int64s(name + ".heads_shape", 0, 0, heads, hd)], name)
            : joined;
    }

    /// <summary>
    /// Scaled dot-product attention from flat projections q [B, S, H·hd], k and v [B, S, Hkv·hd] to the merged
    /// context [B, S, H·hd]. <paramref name="rotate"/> rotates q and k after the head reshape; the mask is the causal one
    /// and/or an additive [B, 1, 1, S] one.
    /// </summary>
    public string Attention(string p, string q, string k, string v, int heads, int kvHeads, int hd, Func<string, string, int, string>? rotate,
        bool causal, string? additiveMask = null)
    {
        int g = heads / kvHeads;
        q = b.Node("Reshape", [q, b.Int64s(p + "q_heads_shape", 0, 0, heads, hd)], p + "q_heads");
        k = b.Node("Reshape", [k, b.Int64s(p + "k_heads_shape", 0, 0, kvHeads, hd)], p + "k_heads");
        v = b.Node("Reshape", [v, b.Int64s(p + "v_heads_shape", 0, 0, kvHeads, hd)], p + "v_heads");
        if (rotate is not null)
        {
            q = rotate(p + "q_rope", q, heads);
            k = rotate(p + "k_rope", k, kvHeads);
        }
        q = b.Node("Transpose", [q], p + "q_t", Ints("perm", 0, 2, 1, 3));     // [B, H, S, hd]
        k = b.Node("Transpose", [k], p + "k_t", Ints("perm", 0, 2, 3, 1));     // [B, Hkv, hd, S]
        v = b.Node("Transpose", [v], p + "v_t", Ints("perm", 0, 2, 1, 3));     // [B, Hkv, S, hd]
        if (g > 1)
        {
            q = b.Node("Reshape", [q, b.Int64s(p + "q_groups_shape", 0, kvHeads, g, -1, hd)], p + "q_groups"); // [B, Hkv, G, S, hd]
            k = b.Node("Unsqueeze", [k, b.Int64s(p + "k_group_axis", 2)], p + "k_groups");                     // [B, Hkv, 1, hd, S]
            v = b.Node("Unsqueeze", [v, b.Int64s(p + "v_group_axis", 2)], p + "v_groups");                     // [B, Hkv, 1, S, hd]
        }
        var scores = b.Node("MatMul", [q, k], p + "scores");
        scores = b.Node("Div", [scores, b.Scalar(p + "sqrt_head_size", MathF.Sqrt(hd))], p + "scaled_scores");
        if (additiveMask is not null) scores = b.Node("Add", [scores, additiveMask], p + "masked_scores");
        if (causal) scores = b.Node("Where", [CausalMask, scores, NegInf], p + "causal_scores");
        var probs = b.Node("Softmax", [scores], p + "probs", Int("axis", -1));
        var ctx = b.Node("MatMul", [probs, v], p + "context");
        if (g > 1) ctx = b.Node("Reshape", [ctx, b.Int64s(p + "context_heads_shape", 0, heads, -1, hd)], p + "context_heads");
        ctx = b.Node("Transpose", [ctx], p + "context_t", Ints("perm", 0, 2, 1, 3)); // [B, S, H, hd]
        return b.Node("Reshape", [ctx, b.Int64s(p + "context_merge_shape", 0, 0, heads * hd)], p + "context_merged");
    }

    /// <summary>x·sigmoid(x).</summary>
    public string Silu(string name, string x) => b.Node("Mul", [x, b.Node("Sigmoid", [x], name + ".sigmoid")], name);

    /// <summary>GELU, exact (erf) or tanh-approximated (<c>gelu_new</c>).</summary>
    public string Gelu(string name, string x, bool tanh)
    {
        string inner;
        if (tanh)
        {
            // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
            var cube = b.Node("Pow", [x, b.Scalar(name + ".three", 3f)], name + ".cube");
            var sum = b.Node("Add", [x, b.Node("Mul", [cube, b.Scalar(name + ".c", 0.044715f)], name + ".cube_scaled")], name + ".poly");
            inner = b.Node("Tanh", [b.Node("Mul", [sum, b.Scalar(name + ".k", MathF.Sqrt(2f / MathF.PI))], name + ".poly_scaled")], name + ".tanh");
        }
        else
        {
            // 0.5·x·(1 + erf(x/√2))
            inner = b.Node("Erf", [b.Node("Div", [x, b.Scalar(name + ".sqrt2", MathF.Sqrt(2f))], name + ".scaled")], name + ".erf");
        }
        var onePlus = b.Node("Add", [inner, b.Scalar(name + ".one", 1f)], name + ".one_plus");
        var half = b.Node("Mul", [x, b.Scalar(name + ".half", 0.5f)], name + ".half_x");
        return b.Node("Mul", [half, onePlus], name);
    }

    /// <summary>An activation by its Hugging Face name.</summary>
    public string Activation(string name, string x, string kind, string source) => kind switch
    {
        "silu" or "swish" => Silu(name, x),
        "gelu" => Gelu(name, x, tanh: false),
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => Gelu(name, x, tanh: true),
        "relu" => b.Node("Relu", [x], name),
        _ => throw new CheckpointException($"{source}: activation '{kind}' is not supported (silu, gelu, gelu_new, gelu_pytorch_tanh, relu).", source),
    };

    /// <summary>The default RoPE inverse frequencies 1 / θ^(2i/hd), i = 0 … hd/2 − 1 (computed as PyTorch does, in float32 from a float64 power).</summary>
    public static float[] InverseFrequencies(int headDim, double theta)
    {
        var f = new float[headDim / 2];
        for (int i = 0; i < f.Length; i++) f[i] = (float)(1.0 / Math.Pow(theta, 2.0 * i / headDim));
        return f;
    }
}
