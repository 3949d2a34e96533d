using Whittle.Onnx;

namespace Whittle.Import;

/// <summary>The shape of a Llama-family decoder (Llama, Mistral, Qwen2, llama2.c).</summary>
/// <param name="Dim">Model width D.</param>
/// <param name="HiddenDim">MLP width F.</param>
/// <param name="Layers">Number of blocks.</param>
/// <param name="Heads">Query heads H.</param>
/// <param name="KvHeads">Key/value heads Hkv (divides H).</param>
/// <param name="Vocab">Vocabulary size V.</param>
/// <param name="HeadDim">Head size hd (usually D / H).</param>
/// <param name="RmsEps">The RMSNorm epsilon.</param>
/// <param name="InverseFrequencies">RoPE inverse frequencies, hd / 2 of them (scaling already applied).</param>
/// <param name="Rope">How RoPE pairs features.</param>
/// <param name="AttentionBias">Whether q/k/v projections have biases (Qwen2).</param>
/// <param name="TiedEmbeddings">Whether the classifier is the token embedding (no <c>lm_head.weight</c> is read).</param>
/// <param name="Activation">The MLP gate activation (<c>silu</c>).</param>
public sealed record LlamaSpec(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int Vocab, int HeadDim, float RmsEps,
    float[] InverseFrequencies, RopeStyle Rope, bool AttentionBias = false, bool TiedEmbeddings = false, string Activation = "silu");

/// <summary>
/// Builds the ONNX graph of a Llama-family decoder: token embedding (Gather), per block RMSNorm → q/k/v projections
/// → RoPE → grouped-query causal attention → output projection → residual, RMSNorm → SwiGLU MLP (gate, up, down)
/// → residual; final RMSNorm and classifier. Input <c>input_ids</c> int64 [batch, sequence]; output
/// <c>logits</c> float32 [batch, sequence, vocab].
/// </summary>
/// <remarks>
/// Tensors are read by their Hugging Face names (<c>model.embed_tokens.weight</c>,
/// <c>model.layers.{i}.self_attn.q_proj.weight</c>, …, <c>lm_head.weight</c>) in PyTorch's [out, in] layout and stored
/// transposed, [in, out], under the same names. A tied classifier reads the one stored embedding through a
/// Transpose, so shared weights are stored and counted once.
/// </remarks>
public static class LlamaGraph
{
    /// <summary>Builds the graph (metadata is left to the caller).</summary>
    /// <param name="spec">The shape.</param>
    /// <param name="tensors">The checkpoint's tensors, read one at a time.</param>
    /// <param name="matrixStorage">The element type of stored matrices (see <see cref="OnnxGraphBuilder.MatrixStorage"/>).</param>
    /// <param name="weights">Where the weights go as they are read (see <see cref="OnnxGraphBuilder"/>), or null to keep them in memory.</param>
    /// <exception cref="CheckpointException">A tensor is missing or has the wrong shape.</exception>
    public static OnnxGraphBuilder Build(LlamaSpec spec, ICheckpointTensors tensors, StreamedModelWriter? weights = null,
        OnnxDataType matrixStorage = OnnxDataType.Float)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(tensors);
        int d = spec.Dim, f = spec.HiddenDim, h = spec.Heads, kvh = spec.KvHeads, hd = spec.HeadDim, v = spec.Vocab;
        if (h % kvh != 0) throw new CheckpointException($"{tensors.Source}: {h} query heads are not a multiple of {kvh} key/value heads.", tensors.Source);
        if (hd % 2 != 0 || spec.InverseFrequencies.Length != hd / 2)
            throw new CheckpointException($"{tensors.Source}: head size {hd} needs {hd / 2} RoPE frequencies (an even head size); got {spec.InverseFrequencies.Length}.", tensors.Source);
        var b = new OnnxGraphBuilder("llama", weights: weights, matrixStorage: matrixStorage);
        var ids = b.Input("input_ids", OnnxDataType.Int64, "batch", "sequence");
        var t = new TransformerGraph(b, ids);
        var embedding = tensors.Read("model.embed_tokens.weight", v, d);
        var x = b.Node("Gather", [b.Weight("model.embed_tokens.weight", embedding, v, d), ids], "embed_tokens");
        var tables = t.RopeTables(spec.InverseFrequencies, spec.Rope);
        string Rotate(string name, string value, int heads) => t.Rope(name, value, heads, hd, tables, spec.Rope);
        for (int i = 0; i < spec.Layers; i++)
        {
            string p = $"model.layers.{i}.", n = $"layers.{i}.";
            string Proj(string module, string input, int inF, int outF, bool bias)
            {
                var w = CheckpointTensors.Transpose(tensors.Read(p + module + ".weight", outF, inF), outF, inF);
                var bv = bias ? tensors.Read(p + module + ".bias", outF) : null;
                return t.Linear(n + module, input, p + module + ".weight", w, inF, outF, bias ? p + module + ".bias" : null, bv);
            }
            var n1 = t.RmsNorm(n + "input_layernorm", x, p + "input_layernorm.weight", tensors.Read(p + "input_layernorm.weight", d), spec.RmsEps);
            var q = Proj("self_attn.q_proj", n1, d, h * hd, spec.AttentionBias);
            var k = Proj("self_attn.k_proj", n1, d, kvh * hd, spec.AttentionBias);
            var val = Proj("self_attn.v_proj", n1, d, kvh * hd, spec.AttentionBias);
            var ctx = t.Attention(n + "self_attn.", q, k, val, h, kvh, hd, Rotate, causal: true);
            var o = Proj("self_attn.o_proj", ctx, h * hd, d, bias: false);
            x = b.Node("Add", [x, o], n + "attn_residual");
            var n2 = t.RmsNorm(n + "post_attention_layernorm", x, p + "post_attention_layernorm.weight", tensors.Read(p + "post_attention_layernorm.weight", d), spec.RmsEps);
            var gate = Proj("mlp.gate_proj", n2, d, f, bias: false);
            var up = Proj("mlp.up_proj", n2, d, f, bias: false);
            var act = t.Activation(n + "mlp.act", gate, spec.Activation, tensors.Source);
            var down = Proj("mlp.down_proj", b.Node("Mul", [act, up], n + "mlp.gated"), f, d, bias: false);
            x = b.Node("Add", [x, down], n + "mlp_residual");
        }
        var final = t.RmsNorm("norm", x, "model.norm.weight", tensors.Read("model.norm.weight", d), spec.RmsEps);
        var logits = spec.TiedEmbeddings
            ? t.TiedLinear("lm_head", final, "model.embed_tokens.weight")
            : t.Linear("lm_head", final, "lm_head.weight", CheckpointTensors.Transpose(tensors.Read("lm_head.weight", v, d), v, d), d, v);
        b.Node("Identity", [logits], "logits");
        b.Output("logits", OnnxDataType.Float, "batch", "sequence", v);
        return b;
    }
}
