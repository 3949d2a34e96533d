using Whittle.Analysis;

namespace Whittle.Tests.Analysis;

public class ConvChainTests
{
    private static string BatchNorm(GraphBuilder b, string name, string x, int c, long[] shape)
    {
        var y = b.Node("BatchNormalization", name, [x, b.Weight(name + ".scale", c), b.Weight(name + ".bias", c), b.Weight(name + ".mean", c), b.Weight(name + ".var", c)]);
        return b.Shape(y, shape);
    }

    [Fact]
    public void ConvBnReluMaxPoolConv_IsOneConvChain()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 3, 8, 8);
        var c1 = b.Conv("conv1", x, 3, 4, 3, [1, 4, 8, 8], pad: 1);
        var bn = BatchNorm(b, "bn1", c1, 4, [1, 4, 8, 8]);
        var r = b.Shape(b.Node("Relu", "relu1", [bn]), 1, 4, 8, 8);
        var p = b.Shape(b.Node("MaxPool", "pool1", [r], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 })), 1, 4, 4, 4);
        var c2 = b.Conv("conv2", p, 4, 6, 3, [1, 6, 2, 2]);
        b.Output(c2);
        var s = ModelStructure.Analyze(b.Build(), b.Shapes);

        Assert.Equal(2, s.ConvSites.Count);
        Assert.Equal((4, 3, 1), (s.ConvSites[0].OutChannels, s.ConvSites[0].InChannels, s.ConvSites[0].Groups));
        Assert.Equal([3L, 3], s.ConvSites[0].Kernel);
        var chain = Assert.Single(s.Chains);
        Assert.Equal(ChainKind.Conv, chain.Kind);
        Assert.Equal((4, 1, 1), (chain.Channels, chain.ChannelAxis, chain.ChannelFactor));
        Assert.Equal(["BatchNormalization", "Relu", "MaxPool"], chain.Ops.Select(o => o.OpType));
        Assert.Equal("pool1_out", chain.Activation);
        foreach (var t in new[] { "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var" })
            Assert.Contains(new SliceTarget(t, 0, SliceRole.PerChannelParameter, "bn1", 1), chain.SliceTogether);
        Assert.Contains(new SliceTarget("conv1.weight", 0, SliceRole.ProducerWeight, "conv1", 1), chain.SliceTogether);
        Assert.Contains(new SliceTarget("conv1.bias", 0, SliceRole.ProducerBias, "conv1", 1), chain.SliceTogether);
        Assert.Contains(new SliceTarget("conv2.weight", 1, SliceRole.ConsumerWeight, "conv2", 1), chain.SliceTogether);
        // conv1: 4·8·8 outputs × 3·3·3; conv2: 6·2·2 outputs × 4·3·3.
        Assert.Equal(4 * 64 * 27 + 6 * 4 * 36, s.Macs.PerExample);
    }

    [Fact]
    public void FlattenBoundary_RecordsChannelMajorFactor()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 2, 3, 8, 8);
        var c1 = b.Conv("conv1", x, 3, 4, 3, [2, 4, 8, 8], pad: 1);
        var r = b.Shape(b.Node("Relu", "relu1", [c1]), 2, 4, 8, 8);
        var p = b.Shape(b.Node("MaxPool", "pool1", [r], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 })), 2, 4, 4, 4);
        var f = b.Shape(b.Node("Flatten", "flatten", [p], ("axis", 1L)), 2, 64);
        var w = b.Weight("fc.weight", 10, 64);
        var y = b.Shape(b.Node("Gemm", "fc", [f, w, b.Weight("fc.bias", 10)], ("transB", 1L)), 2, 10);
        b.Output(y);
        var s = ModelStructure.Analyze(b.Build(), b.Shapes);

        var chain = Assert.Single(s.Chains);
        Assert.Equal(ChainKind.ConvToLinear, chain.Kind);
        Assert.Equal((4, 16), (chain.Channels, chain.ChannelFactor));
        Assert.Equal("pool1_out", chain.Activation);
        Assert.Equal(["fc"], chain.Consumers);
        Assert.Contains(new SliceTarget("fc.weight", 1, SliceRole.ConsumerWeight, "fc", 16), chain.SliceTogether);
        Assert.Equal(4 * 64 * 27 + 10 * 64, s.Macs.PerExample);
    }

    [Fact]
    public void FlattenBoundary_WithoutShapes_TakesFactorFromConsumer()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 3, 4, 4);
        var c1 = b.Conv("conv1", x, 3, 5, 1, [1, 5, 4, 4]);
        var f = b.Node("Reshape", "flatten", [c1, b.Ints("shape", 0, -1)]);
        var y = b.Node("MatMul", "fc", [f, b.Weight("fc.weight", 80, 10)]);
        b.Output(y);
        var s = ModelStructure.Analyze(b.Build(), new Dictionary<string, int[]>());
        var chain = Assert.Single(s.Chains);
        Assert.Equal((ChainKind.ConvToLinear, 16), (chain.Kind, chain.ChannelFactor));
        Assert.Contains("fc", s.Macs.Unknown);
    }

    /// <summary>stem conv + BN + ReLU → [conv1 + BN + ReLU → conv2 + BN] + identity → ReLU → 1 × 1 head; 8 channels, 6 × 6. Returns the builder and the stream's two values.</summary>
    private static (GraphBuilder Builder, string Stem, string BlockOutput) BasicBlock()
    {
        var b = new GraphBuilder();
        long[] shape = [1, 8, 6, 6];
        var x = b.Input("x", 1, 3, 6, 6);
        var stem = b.Shape(b.Node("Relu", "stem_relu", [BatchNorm(b, "bn0", b.Conv("stem", x, 3, 8, 3, shape, pad: 1), 8, shape)]), shape);
        var c1 = b.Conv("conv1", stem, 8, 8, 3, shape, pad: 1);
        var r1 = b.Shape(b.Node("Relu", "relu1", [BatchNorm(b, "bn1", c1, 8, shape)]), shape);
        var c2 = b.Conv("conv2", r1, 8, 8, 3, shape, pad: 1);
        var sum = b.Shape(b.Node("Add", "residual", [BatchNorm(b, "bn2", c2, 8, shape), stem]), shape);
        var outp = b.Shape(b.Node("Relu", "relu2", [sum]), shape);
        var head = b.Conv("head", outp, 8, 2, 1, [1, 2, 6, 6]);
        b.Output(head);
        return (b, stem, outp);
    }

    [Fact]
    public void ResNetBasicBlock_InternalChannelPrunable_BlockOutputNot()
    {
        var (b, _, _) = BasicBlock();
        var s = ModelStructure.Analyze(b.Build(), b.Shapes);

        var chain = Assert.Single(s.Chains);
        Assert.Equal(["conv1"], chain.Producers);
        Assert.Equal(["conv2"], chain.Consumers);
        var conv2 = s.Rejected.Single(r => r.Producer == "conv2");
        Assert.Contains("residual", conv2.Reason);
        Assert.Equal("residual", conv2.Node);
        Assert.Contains("residual", s.Rejected.Single(r => r.Producer == "stem").Reason);
        Assert.Contains("graph output", s.Rejected.Single(r => r.Producer == "head").Reason);
        Assert.Null(s.ResidualStream);
        Assert.Empty(s.Blocks);
    }

    [Fact]
    public void ResNetBasicBlock_WithResidualStreams_TheStemAndTheBlocksLastConvWriteOneStreamReadByEveryReader()
    {
        var (b, stem, outp) = BasicBlock();
        var model = b.Build();

        var s = ModelStructure.Analyze(model, b.Shapes, residualStreams: true);
        var stream = s.Chains.Single(c => c.IsStream);
        Assert.Equal(["stem", "conv2"], stream.Producers);
        Assert.Equal(["conv1", "head"], stream.Consumers);
        // Z stacks the stream where each reader reads it: after the stem, after the residual join.
        Assert.Equal([stem, outp], stream.Activations);
        // Both writers' rows and their BatchNorms shrink with the stream; the readers' input channels take the correction.
        Assert.Contains(stream.SliceTogether, t => t.Owner == "conv2" && t.Role == SliceRole.ProducerWeight);
        Assert.Equal(4, stream.SliceTogether.Count(t => t.Owner == "bn2"));
        Assert.Equal(["conv1", "head"], stream.SliceTogether.Where(t => t.Role == SliceRole.ConsumerWeight).Select(t => t.Owner));
        // The block's internal channels are still their own chain; nothing is rejected for the residual join.
        Assert.Equal(["conv1"], s.Chains.Single(c => !c.IsStream).Producers);
        Assert.DoesNotContain(s.Rejected, r => r.Reason.Contains("residual"));
        // Without the option, the stream is rejected as before.
        Assert.DoesNotContain(ModelStructure.Analyze(model, b.Shapes).Chains, c => c.IsStream);
    }

    [Fact]
    public void DepthwiseSeparable_DepthwiseSlicesWithTheChannel()
    {
        var b = new GraphBuilder();
        long[] shape = [1, 6, 5, 5];
        var x = b.Input("x", 1, 3, 5, 5);
        var c1 = b.Conv("pw1", x, 3, 6, 1, shape);
        var r = b.Shape(b.Node("Relu", "relu", [c1]), shape);
        var dw = b.Conv("dw", r, 6, 6, 3, shape, pad: 1, group: 6);
        var c2 = b.Conv("pw2", dw, 6, 4, 1, [1, 4, 5, 5]);
        b.Output(c2);
        var s = ModelStructure.Analyze(b.Build(), b.Shapes);
        var chain = Assert.Single(s.Chains);
        Assert.Equal(["pw2"], chain.Consumers);
        Assert.Contains(new SliceTarget("dw.weight", 0, SliceRole.PerChannelParameter, "dw", 1), chain.SliceTogether);
        Assert.Contains(s.Rejected, r => r.Producer == "dw" && r.Reason.Contains("group"));
        Assert.True(s.ConvSites.Single(c => c.Name == "dw").IsDepthwise);
    }
}
