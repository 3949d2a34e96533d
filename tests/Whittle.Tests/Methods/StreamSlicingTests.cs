using Whittle.Compression;
using Whittle.Data;
using Whittle.Import;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Evaluation;
using Whittle.Tests.Fixtures;
using Whittle.Tests.Import;

namespace Whittle.Tests.Methods;

/// <summary>SliceGPT-style slicing of the residual stream (<see cref="StreamSlicing"/>) on the trained Llama fixture and the real stories260K.</summary>
public class StreamSlicingTests
{
    private static readonly OnnxModel Llama = OnnxModel.Load(RepoFixtures.Path("text", "llama.onnx"));

    internal static BatchSet Text(OnnxModel model, string file, int windows) =>
        ModelData.Load(model, new DataSource(Text: RepoFixtures.Path("text", file)) { WindowLength = 64 }).Batches(4, new DataSelection(Limit: windows));

    /// <summary>Mean KL(original ‖ model) per position and the largest logit difference, from ORT's logits.</summary>
    internal static (double Kl, double MaxDiff) Compare(OnnxModel original, OnnxModel model, BatchSet data)
    {
        using var a = TappedSession.Create(original, []);
        using var b = TappedSession.Create(model, []);
        double kl = 0, max = 0;
        long rows = 0;
        foreach (var batch in data)
        {
            var p = a.Run(batch)["logits"];
            var q = b.Run(batch)["logits"];
            int v = p.Shape[^1];
            var (pf, qf) = (p.AsFloats(), q.AsFloats());
            for (int r = 0; r < pf.Length / v; r++, rows++) kl += EvalTestModels.Kl(pf.AsSpan(r * v, v), qf.AsSpan(r * v, v));
            for (int i = 0; i < pf.Length; i++) max = Math.Max(max, Math.Abs(pf[i] - qf[i]));
        }
        return (kl / rows, max);
    }

    [Fact]
    public void AtFullWidthTheRotatedModelComputesWhatTheOriginalDoes()
    {
        // A tolerance below every residual keeps all d directions: the model is only rotated, its norms' scales folded.
        // GPT-2's LayerNorms become RMSNorms on a centred stream, their β folded into the readers' biases.
        foreach (var (model, centred) in new[] { (Llama, false), (Stories(), false), (OnnxModel.Load(RepoFixtures.Path("text", "gpt2.onnx")), true) })
        {
            var batches = Text(model, "calib-excerpt.txt", 8);
            var result = Assert.Single(new StreamSlicing().Compress(new CompressionJob(model, batches), [CompressionBudget.Tolerance(1e-12)]));
            var details = Assert.IsType<StreamSlicingDetails>(result.Report.Details);
            Assert.Equal(details.Width, details.Kept);
            Assert.Equal(centred, details.Centred);
            if (centred) Assert.DoesNotContain(result.Model.Graph.Proto.Node, n => n.OpType == "LayerNormalization");
            var (kl, maxDiff) = Compare(model, result.Model, Text(model, "heldout-excerpt.txt", 8));
            Assert.True(kl < 1e-6 && maxDiff < 1e-2, $"KL {kl:G3}, largest logit difference {maxDiff:G3}");
        }
    }

    private static OnnxModel Stories() => Llama2cImporter.Import(SharedModels.Stories260K("stories260K.bin"), SharedModels.Stories260K("tok512.bin"));

    [Fact]
    public void SlicingMeetsTheBudgetAndLosesMoreAsItCutsMore()
    {
        var calibration = Text(Llama, "calib-excerpt.txt", 16);
        CompressionBudget[] budgets = [.. new[] { 0.9, 0.7 }.Select(f => CompressionBudget.KeepParameters(f) with { Scope = BudgetScope.Model })];
        var results = new StreamSlicing(align: 1).Compress(new CompressionJob(Llama, calibration), budgets);
        var heldOut = Text(Llama, "heldout-excerpt.txt", 8);
        double lastKl = 0, lastRatio = 0;
        int d = 0;
        foreach (var (budget, result) in budgets.Zip(results))
        {
            var details = Assert.IsType<StreamSlicingDetails>(result.Report.Details);
            d = details.Width;
            Assert.True(result.Report.After.Parameters <= budget.Value * result.Report.Before.Parameters, $"{result.Report.After.Parameters} > {budget}");
            // The widest k that fits: one more dimension would not.
            Assert.True(result.Report.After.Parameters + (result.Report.Sites[0].ParametersAfter / details.Kept) > budget.Value * result.Report.Before.Parameters);
            // Every layer that touches the stream is k wide there.
            var graph = result.Model.Graph;
            var embedding = graph.GetInitializer("model.embed_tokens.weight");
            Assert.Equal(details.Kept, embedding.Proto.Dims[1]);
            int blocks = Whittle.Analysis.ModelStructure.Analyze(Llama).Blocks.Count;
            Assert.Equal(5 * blocks + 1, details.Readers.Count); // q, k, v, gate, up per block and the LM head
            Assert.Equal(2 * blocks, details.Writers.Count);     // attention output and MLP down per block
            var (kl, _) = Compare(Llama, result.Model, heldOut);
            Assert.True(kl > lastKl && details.ResidualRatio > lastRatio, $"{budget}: KL {kl:G3}, ε_k {details.ResidualRatio:G3}");
            (lastKl, lastRatio) = (kl, details.ResidualRatio);
        }
        Assert.True(d > 0);
    }

    [Fact]
    public void APostNormModelIsRefusedSayingWhy()
    {
        // BERT normalizes after each residual Add: the next Add reads the norm's output, so no rotation passes through it.
        var bert = TransformerGraphs.Build(Family.Bert, 2, d: 16, heads: 2, seed: 3);
        var ex = Assert.Throws<ArgumentException>(() => new StreamSlicing().Compress(new CompressionJob(bert, TransformerGraphs.Batches(1, 2, 6, mask: true, seed: 4)),
            [CompressionBudget.KeepParameters(0.8)]));
        Assert.StartsWith("slice: ", ex.Message);
        Assert.Contains("post-norm", ex.Message);
    }
}
