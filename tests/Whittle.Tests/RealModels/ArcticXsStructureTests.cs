using Whittle.Analysis;
using Whittle.Onnx;

namespace Whittle.Tests.RealModels;

/// <summary>
/// snowflake-arctic-embed-xs as its publisher exported it (PyTorch, opset 11): post-norm BERT blocks with every
/// LayerNorm decomposed into ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add, GELU in its erf form, an additive attention mask.
/// </summary>
public class ArcticXsStructureTests
{
    [Fact]
    public void Inspect_FindsSixBlocks_TwelveHeadsEach_SixFfnChains_NoWarnings()
    {
        var model = OnnxModel.Load(RealModels.ArcticXs);
        var shapes = AnalysisShapes.Resolve(model, sequenceLength: 16, batchSize: 2);
        var s = ModelStructure.Analyze(model, shapes.Values);

        Assert.Equal(6, s.Blocks.Count);
        Assert.Equal(12, s.ResidualStream!.AddNodes.Count);
        foreach (var block in s.Blocks)
        {
            var a = block.Attention!;
            Assert.Equal((12, 12, 32), (a.Heads, a.KvHeads, a.HeadSize));
            Assert.NotNull(a.Q);
            Assert.NotNull(a.K);
            Assert.NotNull(a.V);
            Assert.NotNull(a.Output);
            Assert.NotNull(AttentionHeadWalk.Find(model, s, shapes.Values, $"block {block.Index}", a, out var reason));
            Assert.Null(reason);
            Assert.NotNull(block.Mlp!.Up);
            Assert.NotNull(block.Mlp.Down);
        }
        var ffn = s.Chains.Where(c => c.Kind == ChainKind.Linear).ToList();
        Assert.Equal(6, ffn.Count);
        Assert.All(ffn, c => Assert.Equal(1536, c.Channels));
        Assert.Empty(s.Warnings);
        // Block by block: each block is a segment of its own (calibration and streamed evaluation cut there).
        var segments = Segmentation.Find(model, s);
        Assert.Equal("transformer blocks", segments.Rule);
        Assert.Equal(["embedding", "block 0", "block 1", "block 2", "block 3", "block 4", "block 5", "head"], segments.Names);
    }
}
