using Whittle.Analysis;

namespace Whittle.Tests.Analysis;

public class ChainTests
{
    private static readonly long[] Batch = [2];

    private static ModelStructure Analyze(GraphBuilder b) => ModelStructure.Analyze(b.Build(), b.Shapes);

    /// <summary>x → fc1 (+b) → <paramref name="between"/> → fc2 → y, widths 16 → 32 → 8, batch 2.</summary>
    private static GraphBuilder Mlp(Func<GraphBuilder, string, string> between)
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 2, 16);
        var h = b.Linear("fc1", x, 16, 32, Batch);
        var z = between(b, h);
        var y = b.Linear("fc2", z, 32, 8, Batch);
        b.Output(y);
        return b;
    }

    [Fact]
    public void ReluMlp_OneLinearChain_WithSlicesAndMacs()
    {
        var s = Analyze(Mlp((b, h) => b.Shape(b.Node("Relu", "relu", [h]), 2, 32)));

        Assert.Equal(2, s.LinearSites.Count);
        var fc1 = s.LinearSites[0];
        Assert.Equal((32, 16, WeightLayout.InOut, 1), (fc1.OutFeatures, fc1.InFeatures, fc1.Layout, fc1.StoredOutAxis));
        Assert.Equal("fc1.bias", fc1.Bias);
        Assert.Equal("fc1_bias_out", fc1.Output);
        var chain = Assert.Single(s.Chains);
        Assert.Equal(ChainKind.Linear, chain.Kind);
        Assert.Equal(["fc1"], chain.Producers);
        Assert.Equal(["fc2"], chain.Consumers);
        Assert.Equal(32, chain.Channels);
        Assert.Equal("relu_out", chain.Activation);
        Assert.Equal(["Relu"], chain.Ops.Select(o => o.OpType));
        Assert.Contains(new SliceTarget("fc1.weight", 1, SliceRole.ProducerWeight, "fc1", 1), chain.SliceTogether);
        Assert.Contains(new SliceTarget("fc1.bias", 0, SliceRole.ProducerBias, "fc1", 1), chain.SliceTogether);
        Assert.Contains(new SliceTarget("fc2.weight", 0, SliceRole.ConsumerWeight, "fc2", 1), chain.SliceTogether);
        var rejected = Assert.Single(s.Rejected);
        Assert.Equal("fc2", rejected.Producer);
        Assert.Contains("graph output", rejected.Reason);
        Assert.Equal(16 * 32 + 32 * 8, s.Macs.PerExample);
        Assert.Equal(2, s.Macs.BatchSize);
        Assert.Equal(16 * 32 + 32 + 32 * 8 + 8, s.Parameters);
        Assert.Empty(s.Warnings);
    }

    [Fact]
    public void OrtFastGelu_ItsBiasShrinksWithTheChannels()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 2, 16);
        var h = b.Linear("fc1", x, 16, 32, Batch, bias: false);
        var gelu = b.NodeMulti("FastGelu", "gelu", [h, b.Weight("gelu.bias", 32)], ["gelu_out"]);
        gelu.Domain = "com.microsoft";
        b.Shape("gelu_out", 2, 32);
        b.Output(b.Linear("fc2", "gelu_out", 32, 8, Batch));
        var s = Analyze(b);

        var chain = Assert.Single(s.Chains);
        Assert.Contains(new SliceTarget("gelu.bias", 0, SliceRole.PerChannelParameter, "gelu", 1), chain.SliceTogether);
        Assert.Empty(s.Warnings);
    }

    [Fact]
    public void OrtFusedAttention_IsListedAsNotCompressible_WithWhatItHides()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 2, 4, 16);
        var att = b.NodeMulti("Attention", "attention", [x, b.Weight("qkv", 16, 48), b.Weight("qkv.bias", 48)], ["att_out"], ("num_heads", 2L));
        att.Domain = "com.microsoft";
        b.Shape("att_out", 2, 4, 16);
        b.Output(b.Linear("o", "att_out", 16, 16, [2, 4]));
        var s = Analyze(b);

        var warning = Assert.Single(s.Warnings, w => w.Contains("fused Attention", StringComparison.Ordinal));
        Assert.Contains("1 ONNX Runtime fused Attention node(s)", warning);
        Assert.Contains("Q/K/V projections and heads", warning);
    }

    [Fact]
    public void GemmTransB_IsOutIn()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 2, 16);
        var w = b.Weight("w", 32, 16);
        var c = b.Weight("c", 32);
        var h = b.Shape(b.Node("Gemm", "gemm", [x, w, c], ("transB", 1L)), 2, 32);
        var r = b.Node("Tanh", "tanh", [h]);
        var wt = b.Node("Transpose", "wt", [b.Weight("w2", 8, 32)], ("perm", new long[] { 1, 0 }));
        var y = b.Shape(b.Node("MatMul", "fc2", [r, wt]), 2, 8);
        b.Output(y);
        var s = Analyze(b);

        var gemm = s.LinearSites[0];
        Assert.Equal((WeightLayout.OutIn, 0, 32, 16, "c"), (gemm.Layout, gemm.StoredOutAxis, gemm.OutFeatures, gemm.InFeatures, gemm.Bias));
        var fc2 = s.LinearSites[1];
        Assert.Equal((WeightLayout.OutIn, 8, 32), (fc2.Layout, fc2.OutFeatures, fc2.InFeatures));
        Assert.Equal(["Transpose"], fc2.Weight.Path);
        var chain = Assert.Single(s.Chains);
        Assert.Contains(new SliceTarget("w", 0, SliceRole.ProducerWeight, "gemm", 1), chain.SliceTogether);
        Assert.Contains(new SliceTarget("w2", 1, SliceRole.ConsumerWeight, "fc2", 1), chain.SliceTogether);
    }

    [Fact]
    public void ExportedGeluErfForm_IsOneChain()
    {
        var s = Analyze(Mlp((b, h) =>
        {
            var d = b.Node("Div", "gelu_div", [h, b.Scalar("sqrt2", 1.4142135f)]);
            var e = b.Node("Erf", "gelu_erf", [d]);
            var a = b.Node("Add", "gelu_add", [e, b.Scalar("one", 1f)]);
            var m = b.Node("Mul", "gelu_mul", [h, a]);
            return b.Node("Mul", "gelu_half", [m, b.Scalar("half", 0.5f)]);
        }));
        var chain = Assert.Single(s.Chains);
        Assert.Equal(["Div", "Erf", "Add", "Mul", "Mul"], chain.Ops.Select(o => o.OpType));
        Assert.Equal("gelu_half_out", chain.Activation);
    }

    [Fact]
    public void ExportedGeluTanhForm_IsOneChain()
    {
        var s = Analyze(Mlp((b, h) =>
        {
            var p = b.Node("Pow", "p", [h, b.Scalar("three", 3f)]);
            var m1 = b.Node("Mul", "m1", [p, b.Scalar("c", 0.044715f)]);
            var a1 = b.Node("Add", "a1", [h, m1]);
            var m2 = b.Node("Mul", "m2", [a1, b.Scalar("k", 0.7978846f)]);
            var t = b.Node("Tanh", "t", [m2]);
            var a2 = b.Node("Add", "a2", [t, b.Scalar("one", 1f)]);
            var m3 = b.Node("Mul", "m3", [h, a2]);
            return b.Node("Mul", "m4", [m3, b.Scalar("half", 0.5f)]);
        }));
        Assert.Equal(8, Assert.Single(s.Chains).Ops.Count);
    }

    [Fact]
    public void SiluAsMulSigmoid_IsOneChain()
    {
        var s = Analyze(Mlp((b, h) => b.Node("Mul", "silu", [h, b.Node("Sigmoid", "sig", [h])])));
        var chain = Assert.Single(s.Chains);
        Assert.Equal(["Sigmoid", "Mul"], chain.Ops.Select(o => o.OpType));
    }

    [Fact]
    public void GatedMlp_GateAndUpSliceTogether()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 4, 16);
        long[] p = [1, 4];
        var gate = b.Linear("gate", x, 16, 24, p, bias: false);
        var up = b.Linear("up", x, 16, 24, p, bias: false);
        var act = b.Node("Mul", "silu", [gate, b.Node("Sigmoid", "sig", [gate])]);
        var h = b.Node("Mul", "gated", [act, up]);
        var y = b.Linear("down", h, 24, 16, p, bias: false);
        b.Output(y);
        var s = Analyze(b);

        var chain = Assert.Single(s.Chains);
        Assert.Equal(ChainKind.GatedLinear, chain.Kind);
        Assert.Equal(["gate", "up"], chain.Producers);
        Assert.Equal(["down"], chain.Consumers);
        Assert.Equal(24, chain.Channels);
        Assert.Contains(chain.SliceTogether, t => t is { Tensor: "up.weight", Role: SliceRole.ProducerWeight, Axis: 1 });
        Assert.Contains(chain.SliceTogether, t => t is { Tensor: "gate.weight", Role: SliceRole.ProducerWeight });
        Assert.DoesNotContain(s.Rejected, r => r.Producer is "gate" or "up");
        Assert.Equal(4.0 * (16 * 24 * 2 + 24 * 16), s.Macs.PerExample);
    }

    [Fact]
    public void MatMulOfTwoActivations_IsNoSite()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 2, 16);
        var y = b.Input("y", 16, 4);
        var z = b.Shape(b.Node("MatMul", "mm", [x, y]), 2, 4);
        b.Output(z);
        var s = Analyze(b);
        Assert.Empty(s.LinearSites);
        var layer = Assert.Single(s.Macs.Layers);
        Assert.False(layer.IsSite);
        Assert.Equal(4 * 16, layer.PerExample);
    }

    [Fact]
    public void ResidualAdd_IsRejected()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 2, 16);
        var h = b.Linear("fc1", x, 16, 16, Batch);
        var r = b.Node("Add", "residual", [h, x]);
        var y = b.Linear("fc2", r, 16, 8, Batch);
        b.Output(y);
        var s = Analyze(b);
        Assert.Empty(s.Chains);
        var rej = s.Rejected.Single(r => r.Producer == "fc1");
        Assert.Contains("residual", rej.Reason);
        Assert.Equal("residual", rej.Node);
    }

    [Theory]
    [InlineData("Softmax")]
    [InlineData("LayerNormalization")]
    public void NormalizingOpBetweenLinears_IsRejected(string op)
    {
        var s = Analyze(Mlp((b, h) => op == "Softmax"
            ? b.Node(op, "mix", [h], ("axis", -1L))
            : b.Node(op, "mix", [h, b.Weight("g", 32), b.Weight("beta", 32)], ("axis", -1L))));
        Assert.Empty(s.Chains);
        var rej = s.Rejected.Single(r => r.Producer == "fc1");
        Assert.Contains(op, rej.Reason);
        Assert.Equal("mix", rej.Node);
        Assert.Empty(s.Warnings);
    }

    [Fact]
    public void ReshapeMixingTheAxis_IsRejected_ButRebatchingIsNot()
    {
        var mixing = Analyze(Mlp((b, h) =>
        {
            var r = b.Shape(b.Node("Reshape", "split_heads", [h, b.Ints("s1", 2, 4, 8)]), 2, 4, 8);
            return b.Shape(b.Node("Reshape", "merge", [r, b.Ints("s2", 2, 32)]), 2, 32);
        }));
        Assert.Empty(mixing.Chains);
        Assert.Contains("mixes", mixing.Rejected.Single(r => r.Producer == "fc1").Reason);

        var keeping = Analyze(Mlp((b, h) => b.Shape(b.Node("Reshape", "rebatch", [h, b.Ints("s", -1, 32)]), 2, 32)));
        Assert.Single(keeping.Chains);
    }

    [Fact]
    public void UnknownOp_IsConservative_WithWarning()
    {
        var s = Analyze(Mlp((b, h) => b.Node("FrobnicateChannels", "weird", [h])));
        Assert.Empty(s.Chains);
        Assert.Contains("weird", s.Rejected.Single(r => r.Producer == "fc1").Reason);
        var warning = Assert.Single(s.Warnings);
        Assert.Contains("FrobnicateChannels", warning);
    }
}
