using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Data;

/// <summary>
/// Decoders as Hugging Face exports them for generation: <c>position_ids</c> and a key/value cache
/// (<c>past_key_values.N.key/value</c> in, <c>present.N.key/value</c> out). Text feeds positions 0 … T − 1 and an empty
/// cache, so every window is scored exactly as by the same model without a cache.
/// </summary>
public class DecoderExportTests
{
    private static ValueInfoProto Tensor(string name, int type, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = type, Shape = shape } } };
    }

    private static NodeProto Node(string op, string name, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.Add(inputs);
        n.Output.Add(output);
        n.Attribute.Add(attributes);
        return n;
    }

    /// <summary>The GPT-2 text fixture with <c>position_ids</c> feeding its position embedding and a cache concatenated in front of every block's keys and values.</summary>
    private static OnnxModel WithCache(OnnxModel model)
    {
        var copy = OnnxModel.FromProto(model.Proto.Clone(), model.BaseDirectory);
        var g = copy.Graph.Proto;
        var blocks = ModelStructure.Analyze(model).Blocks;
        g.Input.Add(Tensor("position_ids", (int)OnnxDataType.Int64, "batch", "sequence"));
        g.Node.Single(n => n.Name == "/wpe/Gather").Input[1] = "position_ids";
        foreach (var block in blocks)
        {
            int i = block.Index, h = block.Attention!.Heads, d = block.Attention.HeadSize;
            string key = $"past_key_values.{i}.key", value = $"past_key_values.{i}.value";
            g.Input.Add(Tensor(key, (int)OnnxDataType.Float, "batch", h, "past_sequence", d));
            g.Input.Add(Tensor(value, (int)OnnxDataType.Float, "batch", h, "past_sequence", d));
            var scores = g.Node.Single(n => n.Name == $"/h.{i}/attn/MatMul");    // q · kᵀ, kᵀ [B, H, d, T]
            var context = g.Node.Single(n => n.Name == $"/h.{i}/attn/MatMul_1"); // p · v, v [B, H, T, d]
            var added = new[]
            {
                Node("Transpose", $"cache{i}.kt", [key], $"cache{i}.kt", OnnxAttributes.Ints("perm", 0, 1, 3, 2)),
                Node("Concat", $"cache{i}.k", [$"cache{i}.kt", scores.Input[1]], $"cache{i}.k", OnnxAttributes.Int("axis", 3)),
                Node("Concat", $"cache{i}.v", [value, context.Input[1]], $"cache{i}.v", OnnxAttributes.Int("axis", 2)),
                Node("Transpose", $"present{i}.key", [$"cache{i}.k"], $"present.{i}.key", OnnxAttributes.Ints("perm", 0, 1, 3, 2)),
                Node("Identity", $"present{i}.value", [$"cache{i}.v"], $"present.{i}.value"),
            };
            scores.Input[1] = $"cache{i}.k";
            context.Input[1] = $"cache{i}.v";
            int at = g.Node.IndexOf(scores);
            for (int k = added.Length - 1; k >= 0; k--) g.Node.Insert(at, added[k]);
            g.Output.Add(Tensor($"present.{i}.key", (int)OnnxDataType.Float, "batch", h, "total_sequence", d));
            g.Output.Add(Tensor($"present.{i}.value", (int)OnnxDataType.Float, "batch", h, "total_sequence", d));
        }
        copy.Graph.Invalidate();
        return copy;
    }

    [Fact]
    public void TextFeedsPositionsAndAnEmptyCache_AndScoresEveryWindowAsWithoutACache()
    {
        var original = OnnxModel.Load(RepoFixtures.Path("text", "gpt2.onnx"));
        var cached = WithCache(original);
        var source = new DataSource(Text: RepoFixtures.Path("text", "heldout-excerpt.txt")) { WindowLength = 48 };
        var selection = new DataSelection(Limit: 8);
        var data = ModelData.Load(cached, source).Batches(4, selection);
        var batch = data[0];
        Assert.Equal([4, 48], batch["position_ids"].Shape);
        Assert.Equal(Enumerable.Range(0, 48).Select(p => (long)p), batch["position_ids"].AsInt64().Skip(48).Take(48));
        Assert.Equal(0, batch["past_key_values.0.key"].Shape[2]);

        var options = new EvaluationOptions { LatencyRepeats = 0 };
        var withCache = Evaluator.Evaluate(cached, null, data, options);
        var without = Evaluator.Evaluate(original, null, ModelData.Load(original, source).Batches(4, selection), options);
        Assert.Equal(ModelTask.LanguageModel, withCache.Task.Task);
        Assert.Equal("logits", withCache.Task.Output);
        Assert.Equal(without.Data.PredictedTokens, withCache.Data.PredictedTokens);
        Assert.Equal(without.Model.Perplexity!.Value, withCache.Model.Perplexity!.Value, 1e-5);

        // The cache does not hide the blocks from the analysis, and the model compresses on text with an empty cache.
        Assert.Equal(ModelStructure.Analyze(original).Blocks.Count, ModelStructure.Analyze(cached).Blocks.Count);
        var calibration = ModelData.Load(cached, new DataSource(Text: RepoFixtures.Path("text", "calib-excerpt.txt")) { WindowLength = 48 })
            .Batches(4, new DataSelection(Limit: 16));
        var result = Assert.Single(new InterpolativePruning().Compress(new CompressionJob(cached, calibration), [CompressionBudget.KeepParameters(0.9)]));
        Assert.Contains(result.Report.Sites, s => s.Kind == "neurons" && s.NewSize < s.OldSize);
        var after = Evaluator.Evaluate(result.Model, cached, data, options);
        Assert.InRange(after.Comparison!.Agreement!.Value, 0.5, 1.0);
        Assert.Equal(cached.Graph.Outputs.Select(o => o.Name), result.Model.Graph.Outputs.Select(o => o.Name));
    }

    [Fact]
    public void AnInputTextCannotFeed_IsRefusedNamingItAndWhatTextFeeds()
    {
        var original = OnnxModel.Load(RepoFixtures.Path("text", "gpt2.onnx"));
        var copy = OnnxModel.FromProto(original.Proto.Clone(), original.BaseDirectory);
        copy.Graph.Proto.Input.Add(Tensor("temperature", (int)OnnxDataType.Float, 1));
        copy.Graph.Invalidate();
        var e = Assert.Throws<InputDataException>(() => ModelData.Load(copy, new DataSource(Text: RepoFixtures.Path("text", "heldout-excerpt.txt"))));
        Assert.Contains("'temperature'", e.Message);
        Assert.Contains("past_key_values", e.Message);
    }
}
