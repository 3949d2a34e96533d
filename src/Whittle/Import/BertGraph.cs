using Whittle.Onnx;
using static Whittle.Onnx.OnnxAttributes;

namespace Whittle.Import;

/// <summary>The shape of a BERT encoder.</summary>
/// <param name="Dim">Model width (<c>hidden_size</c>).</param>
/// <param name="InnerDim">MLP width (<c>intermediate_size</c>).</param>
/// <param name="Layers">Number of blocks.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="Vocab">Vocabulary size.</param>
/// <param name="Positions">Learned positions (<c>max_position_embeddings</c>).</param>
/// <param name="TypeVocab">Token types (<c>type_vocab_size</c>).</param>
/// <param name="LayerNormEps">LayerNorm epsilon.</param>
/// <param name="Activation">MLP activation (<c>gelu</c>).</param>
/// <param name="Pooler">Whether the checkpoint has the pooler (dense + tanh on the first token).</param>
public sealed record BertSpec(int Dim, int InnerDim, int Layers, int Heads, int Vocab, int Positions, int TypeVocab, float LayerNormEps,
    string Activation = "gelu", bool Pooler = true);

/// <summary>
/// Builds the ONNX graph of a BERT encoder (<c>BertModel</c>): word + position + token-type embeddings and LayerNorm,
/// then post-norm blocks (self-attention with the padding mask → dense → residual → LayerNorm, intermediate → GELU →
/// output → residual → LayerNorm), and the pooler. Inputs <c>input_ids</c>, <c>attention_mask</c> and
/// <c>token_type_ids</c>, int64 [batch, sequence]; outputs <c>last_hidden_state</c> [batch, sequence, hidden] and
/// <c>pooler_output</c> [batch, hidden].
/// </summary>
/// <remarks>Tensors are read with or without the <c>bert.</c> prefix (checkpoints of BERT task models import their encoder).</remarks>
public static class BertGraph
{
    /// <summary>Builds the graph (metadata is left to the caller).</summary>
    /// <param name="spec">The shape.</param>
    /// <param name="tensors">The checkpoint's tensors, read one at a time.</param>
    /// <param name="matrixStorage">The element type of stored matrices (see <see cref="OnnxGraphBuilder.MatrixStorage"/>).</param>
    /// <param name="weights">Where the weights go as they are read (see <see cref="OnnxGraphBuilder"/>), or null to keep them in memory.</param>
    /// <exception cref="CheckpointException">A tensor is missing or has the wrong shape.</exception>
    public static OnnxGraphBuilder Build(BertSpec spec, ICheckpointTensors tensors, StreamedModelWriter? weights = null,
        OnnxDataType matrixStorage = OnnxDataType.Float)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(tensors);
        int d = spec.Dim, f = spec.InnerDim, h = spec.Heads, hd = d / h;
        if (d % h != 0) throw new CheckpointException($"{tensors.Source}: hidden_size {d} is not a multiple of num_attention_heads {h}.", tensors.Source);
        string pre = tensors.Contains("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        var b = new OnnxGraphBuilder("bert", weights: weights, matrixStorage: matrixStorage);
        var ids = b.Input("input_ids", OnnxDataType.Int64, "batch", "sequence");
        var mask = b.Input("attention_mask", OnnxDataType.Int64, "batch", "sequence");
        var types = b.Input("token_type_ids", OnnxDataType.Int64, "batch", "sequence");
        var t = new TransformerGraph(b, ids);
        string Ln(string module, string input)
        {
            // Old checkpoints name LayerNorm parameters gamma/beta.
            string w = tensors.Contains(module + ".weight") ? ".weight" : ".gamma", bias = w == ".weight" ? ".bias" : ".beta";
            return t.LayerNorm(module[pre.Length..], input, module + ".weight", tensors.Read(module + w, d), module + ".bias", tensors.Read(module + bias, d), spec.LayerNormEps);
        }
        string Dense(string module, string input, int inF, int outF) =>
            t.Linear(module[pre.Length..], input, module + ".weight", CheckpointTensors.Transpose(tensors.Read(module + ".weight", outF, inF), outF, inF), inF, outF,
                module + ".bias", tensors.Read(module + ".bias", outF));
        string Table(string name, string index, int rows)
        {
            string tensor = pre + "embeddings." + name + ".weight";
            return b.Node("Gather", [b.Weight(tensor, tensors.Read(tensor, rows, d), rows, d), index], "embeddings." + name);
        }

        var words = Table("word_embeddings", ids, spec.Vocab);
        var positions = Table("position_embeddings", t.Positions, spec.Positions);
        var tokenTypes = Table("token_type_embeddings", types, spec.TypeVocab);
        var sum = b.Node("Add", [b.Node("Add", [words, positions], "embeddings.words_positions"), tokenTypes], "embeddings.sum");
        var x = Ln(pre + "embeddings.LayerNorm", sum);

        // Additive padding mask [B, 1, 1, S]: 0 where attended, the lowest float where masked (as Hugging Face does).
        var maskF = b.Node("Cast", [mask], "mask.float", Int("to", (long)OnnxDataType.Float));
        var inverted = b.Node("Sub", [b.Scalar("mask.one", 1f), maskF], "mask.inverted");
        var additive = b.Node("Mul", [inverted, b.Scalar("mask.min", float.MinValue)], "mask.additive_flat");
        var extended = b.Node("Unsqueeze", [additive, b.Int64s("mask.axes", 1, 2)], "mask.additive");

        for (int i = 0; i < spec.Layers; i++)
        {
            string p = $"{pre}encoder.layer.{i}.";
            var q = Dense(p + "attention.self.query", x, d, d);
            var k = Dense(p + "attention.self.key", x, d, d);
            var v = Dense(p + "attention.self.value", x, d, d);
            var ctx = t.Attention(p[pre.Length..] + "attention.self.", q, k, v, h, h, hd, rotate: null, causal: false, additiveMask: extended);
            var attn = b.Node("Add", [x, Dense(p + "attention.output.dense", ctx, d, d)], p[pre.Length..] + "attention.residual");
            x = Ln(p + "attention.output.LayerNorm", attn);
            var act = t.Activation(p[pre.Length..] + "intermediate.act", Dense(p + "intermediate.dense", x, d, f), spec.Activation, tensors.Source);
            var mlp = b.Node("Add", [x, Dense(p + "output.dense", act, f, d)], p[pre.Length..] + "output.residual");
            x = Ln(p + "output.LayerNorm", mlp);
        }
        b.Node("Identity", [x], "last_hidden_state");
        b.Output("last_hidden_state", OnnxDataType.Float, "batch", "sequence", d);
        if (spec.Pooler)
        {
            var first = b.Node("Gather", [x, b.Int64Scalar("pooler.first_token", 0)], "pooler.first", Int("axis", 1));
            var dense = Dense(pre + "pooler.dense", first, d, d);
            b.Node("Tanh", [dense], "pooler_output");
            b.Output("pooler_output", OnnxDataType.Float, "batch", d);
        }
        return b;
    }
}
