using Xunit.Abstractions;
using Whittle.Analysis;
using Whittle.Import;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Text;

namespace Whittle.Tests.Import;

/// <summary>
/// Checkpoints in Hugging Face layout written by <c>scripts/make_hf_import_fixtures.py</c> import to graphs whose
/// outputs in ONNX Runtime match the script's float64 PyTorch reference to 1e-4 (max |difference| / max |reference|).
/// </summary>
public class HfImportTests(ITestOutputHelper output)
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Import", "Fixtures", "hf", name);

    /// <summary>max |a − b| / max |b|.</summary>
    public static double RelativeError(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return diff / scale;
    }

    private static (long[] Values, long[] Shape) Ints(NpyArray a) => (a.ToInt64Array(), [.. a.Shape.Select(d => (long)d)]);

    [Theory]
    [InlineData("llama", "LlamaForCausalLM")]
    [InlineData("qwen2", "Qwen2ForCausalLM")]
    [InlineData("gpt2", "GPT2LMHeadModel")]
    public void LanguageModel_MatchesPyTorchReference(string fixture, string architecture) =>
        AssertImportMatchesReference(Fixture(fixture), architecture, fixture);

    /// <summary>Imports <paramref name="dir"/> and checks its logits on reference.npz's ids to 1e-4 relative.</summary>
    private void AssertImportMatchesReference(string dir, string architecture, string label)
    {
        var result = HfImporter.Import(dir);
        Assert.Equal(architecture, result.Architecture);
        Assert.Equal(TokenizerMetadata.LanguageModelTask, TokenizerMetadata.ReadTask(result.Model));
        var reference = Npz.Read(Path.Combine(dir, "reference.npz"));
        var (ids, shape) = Ints(reference["input_ids"]);
        var (logits, logitShape) = LanguageModelRunner.Run(result.Model, [("input_ids", ids, shape)])["logits"];
        Assert.Equal(reference["logits"].Shape.Select(d => (long)d), logitShape);
        double error = RelativeError(logits, reference["logits"].AsSpan<float>().ToArray());
        output.WriteLine($"{label}: logits relative error {error:E2}");
        Assert.InRange(error, 0, 1e-4);
    }

    /// <summary>The trained byte-level fixtures (fixtures/hf, written by scripts/train_text_fixtures.py from the same weights as fixtures/text).</summary>
    [Theory]
    [InlineData("llama", "LlamaForCausalLM")]
    [InlineData("gpt2", "GPT2LMHeadModel")]
    public void TrainedFixture_MatchesPyTorchReference(string fixture, string architecture) =>
        AssertImportMatchesReference(Whittle.Tests.Fixtures.RepoFixtures.Path("hf", fixture), architecture, "trained " + fixture);

    [Fact]
    public void Bert_MatchesPyTorchReference_WithPaddingAndTokenTypes()
    {
        var result = HfImporter.Import(Fixture("bert"));
        Assert.Equal(("BertModel", TokenizerMetadata.EncoderTask), (result.Architecture, result.Task));
        var reference = Npz.Read(Path.Combine(Fixture("bert"), "reference.npz"));
        var inputs = new[] { "input_ids", "attention_mask", "token_type_ids" }.Select(n =>
        {
            var (v, s) = Ints(reference[n]);
            return (n, v, s);
        }).ToList();
        var outputs = LanguageModelRunner.Run(result.Model, inputs);
        double hidden = RelativeError(outputs["last_hidden_state"].Values, reference["last_hidden_state"].AsSpan<float>().ToArray());
        double pooled = RelativeError(outputs["pooler_output"].Values, reference["pooler_output"].AsSpan<float>().ToArray());
        output.WriteLine($"bert: last_hidden_state relative error {hidden:E2}, pooler_output {pooled:E2}");
        Assert.InRange(hidden, 0, 1e-4);
        Assert.InRange(pooled, 0, 1e-4);
        Assert.Equal([2L, 32], outputs["pooler_output"].Shape);
    }

    [Fact]
    public void Llama_AnalysisFindsBlocksProjectionsAndHeads()
    {
        var s = ModelStructure.Analyze(HfImporter.Import(Fixture("llama")).Model);
        Assert.Equal(2, s.Blocks.Count);
        foreach (var block in s.Blocks)
        {
            string p = $"layers.{block.Index}.";
            var a = block.Attention!;
            Assert.Equal((p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj", p + "self_attn.o_proj"), (a.Q, a.K, a.V, a.Output));
            Assert.Equal((4, 2, 8), (a.Heads, a.KvHeads, a.HeadSize));
            Assert.Equal((p + "mlp.gate_proj", p + "mlp.up_proj", p + "mlp.down_proj"), (block.Mlp!.Gate, block.Mlp.Up, block.Mlp.Down));
        }
        Assert.Equal(2 * 7 + 1, s.LinearSites.Count);
        Assert.All(s.LinearSites, l => Assert.Equal(WeightLayout.InOut, l.Layout));
    }

    [Fact]
    public void Qwen2_AnalysisSeesBiasesAndExplicitHeadSize()
    {
        var s = ModelStructure.Analyze(HfImporter.Import(Fixture("qwen2")).Model);
        Assert.Equal(2, s.Blocks.Count);
        var a = s.Blocks[1].Attention!;
        Assert.Equal((4, 1, 16, 4), (a.Heads, a.KvHeads, a.HeadSize, a.KvGroupSize));
        var q = s.LinearSites.Single(l => l.Name == a.Q);
        Assert.Equal((64, 32, "model.layers.1.self_attn.q_proj.bias"), (q.OutFeatures, q.InFeatures, q.Bias));
        Assert.Null(s.LinearSites.Single(l => l.Name == a.Output).Bias);
    }

    [Fact]
    public void Gpt2_AnalysisFindsSplitQkvAndPlainMlp()
    {
        var s = ModelStructure.Analyze(HfImporter.Import(Fixture("gpt2")).Model);
        Assert.Equal(2, s.Blocks.Count);
        foreach (var block in s.Blocks)
        {
            string p = $"h.{block.Index}.";
            var a = block.Attention!;
            Assert.Equal((p + "attn.q_proj", p + "attn.k_proj", p + "attn.v_proj", p + "attn.c_proj"), (a.Q, a.K, a.V, a.Output));
            Assert.Equal((4, 4, 8), (a.Heads, a.KvHeads, a.HeadSize));
            Assert.Equal(NormKind.LayerNorm, a.Norm.Kind);
            Assert.Equal((null, p + "mlp.c_fc", p + "mlp.c_proj"), (block.Mlp!.Gate, block.Mlp.Up, block.Mlp.Down));
        }
        Assert.Equal(["h.0.mlp.c_fc", "h.1.mlp.c_fc"], s.Chains.Select(c => c.Id));
    }

    [Fact]
    public void Bert_AnalysisFindsPostNormBlocks()
    {
        var s = ModelStructure.Analyze(HfImporter.Import(Fixture("bert")).Model);
        Assert.Equal(2, s.Blocks.Count);
        foreach (var block in s.Blocks)
        {
            string p = $"encoder.layer.{block.Index}.";
            var a = block.Attention!;
            Assert.Equal((p + "attention.self.query", p + "attention.self.key", p + "attention.self.value", p + "attention.output.dense"), (a.Q, a.K, a.V, a.Output));
            Assert.Equal((4, 4, 8), (a.Heads, a.KvHeads, a.HeadSize));
            Assert.Equal((p + "intermediate.dense", p + "output.dense"), (block.Mlp!.Up, block.Mlp.Down));
        }
    }
}
