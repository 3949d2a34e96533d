using Xunit.Abstractions;
using Whittle.Analysis;
using Whittle.Import;
using Whittle.Onnx;
using Whittle.Text;

namespace Whittle.Tests.Import;

public class Llama2cImportTests(ITestOutputHelper output)
{
    private const string Sentence = "One day, a clever fox found a shiny key under the old oak tree.";

    private static readonly Lazy<OnnxModel> Stories = new(() =>
        Llama2cImporter.Import(SharedModels.Stories260K("stories260K.bin"), SharedModels.Stories260K("tok512.bin")));

    [Fact]
    public void Stories260K_TokenizesSentenceTo35TokensWithBos()
    {
        var tokenizer = Llama2cTokenizer.Load(SharedModels.Stories260K("tok512.bin"));
        var ids = tokenizer.Encode(Sentence);
        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(34, ids.Length);
        // The pieces spell the sentence back, with the dummy-prefix space first.
        Assert.Equal(" " + Sentence, string.Concat(ids.Select(tokenizer.Piece)));
    }

    [Fact]
    public void Stories260K_PerplexityOfTheKnownSentence()
    {
        var tokenizer = TokenizerMetadata.Read(Stories.Value)!;
        int[] tokens = [tokenizer.BosId!.Value, .. tokenizer.Encode(Sentence)];
        Assert.Equal(35, tokens.Length);
        var outputs = LanguageModelRunner.Run(Stories.Value, [("input_ids", tokens.Select(t => (long)t).ToArray(), [1, tokens.Length])]);
        var (logits, shape) = outputs["logits"];
        Assert.Equal([1L, 35, 512], shape);
        double nll = LanguageModelRunner.NllSum(logits, tokens, 512);
        double perplexity = Math.Exp(nll / 34);
        output.WriteLine($"stories260K: NLL sum {nll:F6}, perplexity {perplexity:F6} over 34 predicted tokens");
        Assert.InRange(nll, 54.404121 * 0.99, 54.404121 * 1.01);
        Assert.InRange(perplexity, 4.953633 * 0.99, 4.953633 * 1.01);
    }

    [Fact]
    public void Stories260K_EvaluatorReadsTheStoredTokenizerFromTheModel()
    {
        // The path a user takes: `whittle eval --text` loads text with the tokenizer the importer stored in the model.
        Assert.Equal(TokenizerSource.Llama2cKind, ModelTokenizer.FromModel(Stories.Value).Kind);
        var folder = Directory.CreateTempSubdirectory("whittle-fox-");
        try
        {
            string file = Path.Combine(folder.FullName, "fox.txt");
            File.WriteAllText(file, Sentence);
            var data = Whittle.Data.ModelData.Load(Stories.Value, new Whittle.Data.DataSource(Text: file) { WindowLength = 35 });
            var report = Whittle.Evaluation.Evaluator.Evaluate(Stories.Value, null, data.Batches(1), new Whittle.Evaluation.EvaluationOptions { LatencyRepeats = 0 });
            Assert.Equal(34, report.Data.PredictedTokens);
            Assert.InRange(report.Model.Perplexity!.Value, 4.953633 * 0.99, 4.953633 * 1.01);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Stories260K_BatchRowsAreIndependentAndCausal()
    {
        var tokenizer = TokenizerMetadata.Read(Stories.Value)!;
        int[] tokens = [1, .. tokenizer.Encode(Sentence)];
        var a = tokens.Take(12).Select(t => (long)t).ToArray();
        var b = tokens.Take(6).Concat(tokens.Skip(20).Take(6)).Select(t => (long)t).ToArray();
        var both = LanguageModelRunner.Run(Stories.Value, [("input_ids", [.. a, .. b], [2, 12])])["logits"].Values;
        var single = LanguageModelRunner.Run(Stories.Value, [("input_ids", a, [1, 12])])["logits"].Values;
        for (int i = 0; i < single.Length; i++) Assert.Equal(single[i], both[i], 1e-4f);
        // Row b shares its first 6 tokens with a: causal attention makes those positions' logits equal.
        for (int i = 0; i < 6 * 512; i++) Assert.Equal(both[i], both[12 * 512 + i], 1e-4f);
        Assert.NotEqual(both[11 * 512], both[23 * 512]);
    }

    [Fact]
    public void Stories260K_AnalysisFindsEveryBlock()
    {
        var s = ModelStructure.Analyze(Stories.Value);
        Assert.Equal(5, s.Blocks.Count);
        foreach (var block in s.Blocks)
        {
            string p = $"layers.{block.Index}.";
            var a = block.Attention!;
            Assert.Equal((p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj", p + "self_attn.o_proj"), (a.Q, a.K, a.V, a.Output));
            Assert.Equal((8, 4, 8, 2), (a.Heads, a.KvHeads, a.HeadSize, a.KvGroupSize));
            Assert.Equal(NormKind.RmsNorm, a.Norm.Kind);
            Assert.Equal($"model.layers.{block.Index}.input_layernorm.weight", a.Norm.Scale);
            var m = block.Mlp!;
            Assert.Equal((p + "mlp.gate_proj", p + "mlp.up_proj", p + "mlp.down_proj"), (m.Gate, m.Up, m.Down));
            Assert.Equal(NormKind.RmsNorm, m.Norm.Kind);
        }
        Assert.Equal("embed_tokens", s.HiddenStates[0]);
        // 7 projections per block, all MatMul(x, W) with W stored [in, out]; the shared classifier reads the one
        // embedding [vocab, dim] through a Transpose, so its weights are stored and counted once.
        Assert.Equal(5 * 7 + 1, s.LinearSites.Count);
        Assert.All(s.LinearSites.SkipLast(1), l => Assert.Equal((WeightLayout.InOut, "MatMul"), (l.Layout, l.OpType)));
        var head = s.LinearSites[^1];
        Assert.Equal(("model.embed_tokens.weight", "Transpose", WeightLayout.OutIn, 512, 64),
            (head.Weight.Initializer, string.Join(",", head.Weight.Path), head.Layout, head.OutFeatures, head.InFeatures));
        Assert.Equal(260_000, s.Parameters, tolerance: 10_000);
        var k = s.LinearSites.Single(l => l.Name == "layers.0.self_attn.k_proj");
        Assert.Equal((32, 64), (k.OutFeatures, k.InFeatures));
        Assert.Equal(5, s.Chains.Count(c => c.Kind == ChainKind.GatedLinear));
    }

    [Fact]
    public void Stories260K_SavedModelKeepsTokenizer()
    {
        string dir = Directory.CreateTempSubdirectory("whittle-import-").FullName;
        try
        {
            string path = Path.Combine(dir, "stories.onnx");
            Stories.Value.Save(path);
            var loaded = OnnxModel.Load(path);
            Assert.Equal(TokenizerMetadata.LanguageModelTask, TokenizerMetadata.ReadTask(loaded));
            Assert.Equal(TokenizerSource.Llama2cKind, TokenizerMetadata.ReadSource(loaded)!.Kind);
            Assert.Equal(Llama2cTokenizer.Load(SharedModels.Stories260K("tok512.bin")).Encode(Sentence), TokenizerMetadata.Read(loaded)!.Encode(Sentence));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
