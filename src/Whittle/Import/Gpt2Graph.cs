using Whittle.Onnx;

namespace Whittle.Import;

/// <summary>The shape of a GPT-2 decoder.</summary>
/// <param name="Dim">Model width D (<c>n_embd</c>).</param>
/// <param name="InnerDim">MLP width (<c>n_inner</c>, 4·D by default).</param>
/// <param name="Layers">Number of blocks.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="Vocab">Vocabulary size.</param>
/// <param name="Positions">Learned positions (<c>n_positions</c>).</param>
/// <param name="LayerNormEps">LayerNorm epsilon.</param>
/// <param name="Activation">MLP activation (<c>gelu_new</c>).</param>
public sealed record Gpt2Spec(int Dim, int InnerDim, int Layers, int Heads, int Vocab, int Positions, float LayerNormEps, string Activation = "gelu_new");

/// <summary>
/// Builds the ONNX graph of GPT-2 (<c>GPT2LMHeadModel</c>): token plus learned position embeddings, per block
/// LayerNorm → q/k/v (the fused <c>c_attn</c> Conv1D split into three linear layers) → causal attention → <c>c_proj</c>
/// → residual, LayerNorm → <c>c_fc</c> → GELU → <c>c_proj</c> → residual; final LayerNorm and the tied classifier.
/// Input <c>input_ids</c> int64 [batch, sequence] (at most <c>n_positions</c> long); output <c>logits</c>.
/// </summary>
/// <remarks>
/// GPT-2's Conv1D weights are stored [in, out] already, so they are used as they are. Tensors are read with or
/// without the <c>transformer.</c> prefix.
/// </remarks>
public static class Gpt2Graph
{
    /// <summary>Builds the graph (metadata is left to the caller).</summary>
    /// <param name="spec">The shape.</param>
    /// <param name="tensors">The checkpoint's tensors, read one at a time.</param>
    /// <param name="matrixStorage">The element type of stored matrices (see <see cref="OnnxGraphBuilder.MatrixStorage"/>).</param>
    /// <param name="weights">Where the weights go as they are read (see <see cref="OnnxGraphBuilder"/>), or null to keep them in memory.</param>
    /// <exception cref="CheckpointException">A tensor is missing or has the wrong shape.</exception>
    public static OnnxGraphBuilder Build(Gpt2Spec spec, ICheckpointTensors tensors, StreamedModelWriter? weights = null,
        OnnxDataType matrixStorage = OnnxDataType.Float)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(tensors);
        int d = spec.Dim, f = spec.InnerDim, h = spec.Heads, hd = d / h, v = spec.Vocab;
        if (d % h != 0) throw new CheckpointException($"{tensors.Source}: n_embd {d} is not a multiple of n_head {h}.", tensors.Source);
        string pre = tensors.Contains("transformer.wte.weight") ? "transformer." : "";
        var b = new OnnxGraphBuilder("gpt2", weights: weights, matrixStorage: matrixStorage);
        var ids = b.Input("input_ids", OnnxDataType.Int64, "batch", "sequence");
        var t = new TransformerGraph(b, ids);
        var wte = tensors.Read(pre + "wte.weight", v, d);
        var tok = b.Node("Gather", [b.Weight(pre + "wte.weight", wte, v, d), ids], "wte");
        var pos = b.Node("Gather", [b.Weight(pre + "wpe.weight", tensors.Read(pre + "wpe.weight", spec.Positions, d), spec.Positions, d), t.Positions], "wpe");
        var x = b.Node("Add", [tok, pos], "embeddings");
        for (int i = 0; i < spec.Layers; i++)
        {
            string p = $"{pre}h.{i}.", n = $"h.{i}.";
            string Ln(string module, string input) =>
                t.LayerNorm(n + module, input, p + module + ".weight", tensors.Read(p + module + ".weight", d), p + module + ".bias", tensors.Read(p + module + ".bias", d), spec.LayerNormEps);
            string Conv1D(string module, string input, int inF, int outF) =>
                t.Linear(n + module, input, p + module + ".weight", tensors.Read(p + module + ".weight", inF, outF), inF, outF, p + module + ".bias", tensors.Read(p + module + ".bias", outF));

            var n1 = Ln("ln_1", x);
            var (wq, wk, wv) = SplitColumns(tensors.Read(p + "attn.c_attn.weight", d, 3 * d), d);
            var cb = tensors.Read(p + "attn.c_attn.bias", 3 * d);
            string Part(string name, float[] w, int at) =>
                t.Linear(n + "attn." + name, n1, p + "attn." + name + ".weight", w, d, d, p + "attn." + name + ".bias", cb[(at * d)..((at + 1) * d)]);
            var q = Part("q_proj", wq, 0);
            var k = Part("k_proj", wk, 1);
            var val = Part("v_proj", wv, 2);
            var ctx = t.Attention(n + "attn.", q, k, val, h, h, hd, rotate: null, causal: true);
            x = b.Node("Add", [x, Conv1D("attn.c_proj", ctx, d, d)], n + "attn_residual");
            var n2 = Ln("ln_2", x);
            var act = t.Activation(n + "mlp.act", Conv1D("mlp.c_fc", n2, d, f), spec.Activation, tensors.Source);
            x = b.Node("Add", [x, Conv1D("mlp.c_proj", act, f, d)], n + "mlp_residual");
        }
        var final = t.LayerNorm("ln_f", x, pre + "ln_f.weight", tensors.Read(pre + "ln_f.weight", d), pre + "ln_f.bias", tensors.Read(pre + "ln_f.bias", d), spec.LayerNormEps);
        var logits = t.TiedLinear("lm_head", final, pre + "wte.weight");
        b.Node("Identity", [logits], "logits");
        b.Output("logits", OnnxDataType.Float, "batch", "sequence", v);
        return b;
    }

    /// <summary>Splits a [D, 3D] weight (columns q | k | v) into three [D, D] weights.</summary>
    private static (float[], float[], float[]) SplitColumns(float[] w, int d)
    {
        var parts = new[] { new float[d * d], new float[d * d], new float[d * d] };
        for (int r = 0; r < d; r++)
            for (int part = 0; part < 3; part++)
                Array.Copy(w, r * 3 * d + part * d, parts[part], r * d, d);
        return (parts[0], parts[1], parts[2]);
    }
}
