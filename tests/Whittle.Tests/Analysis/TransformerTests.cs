using Whittle.Analysis;

namespace Whittle.Tests.Analysis;

public class TransformerTests
{
    private const int S = 4;

    /// <summary>How a test model writes its normalizations.</summary>
    public enum NormStyle
    {
        /// <summary>The LayerNormalization op.</summary>
        LayerNormOp,

        /// <summary>RMSNorm as exported: Pow, ReduceMean, Add, Sqrt, Div, Mul.</summary>
        RmsExported,

        /// <summary>LayerNorm as PyTorch exports it at opset 11–13: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add.</summary>
        LayerNormExported,

        /// <summary>RMSNorm as Hugging Face exports it in half precision: Cast, x·x, ReduceMean, Add, Sqrt, Reciprocal, Mul, Cast, then γ·.</summary>
        RmsExportedCast,
    }

    private static string Norm(GraphBuilder b, string name, string x, int d, NormStyle style)
    {
        string Mean(string v, string n) => b.Node("ReduceMean", n, [v], ("axes", new long[] { -1 }), ("keepdims", 1L));
        switch (style)
        {
            case NormStyle.LayerNormOp:
                return b.Shape(b.Node("LayerNormalization", name, [x, b.Weight(name + ".weight", d), b.Weight(name + ".bias", d)], ("axis", -1L)), 1, S, d);
            case NormStyle.RmsExported:
            {
                var p = b.Node("Pow", name + "_pow", [x, b.Scalar(name + ".two", 2f)]);
                var a = b.Node("Add", name + "_eps", [Mean(p, name + "_mean"), b.Scalar(name + ".eps", 1e-6f)]);
                var n = b.Node("Div", name + "_div", [x, b.Node("Sqrt", name + "_sqrt", [a])]);
                return b.Shape(b.Node("Mul", name, [n, b.Weight(name + ".weight", d)]), 1, S, d);
            }
            case NormStyle.LayerNormExported:
            {
                var c = b.Node("Sub", name + "_sub", [x, Mean(x, name + "_mean")]);
                var p = b.Node("Pow", name + "_pow", [c, b.Scalar(name + ".two", 2f)]);
                var a = b.Node("Add", name + "_eps", [Mean(p, name + "_var"), b.Scalar(name + ".eps", 1e-12f)]);
                var n = b.Node("Div", name + "_div", [c, b.Node("Sqrt", name + "_sqrt", [a])]);
                var g = b.Node("Mul", name + "_gamma", [n, b.Weight(name + ".weight", d)]);
                return b.Shape(b.Node("Add", name, [g, b.Weight(name + ".bias", d)]), 1, S, d);
            }
            default:
            {
                var f = b.Node("Cast", name + "_cast", [x], ("to", 1L));
                var sq = b.Node("Mul", name + "_sq", [f, f]);
                var a = b.Node("Add", name + "_eps", [Mean(sq, name + "_mean"), b.Scalar(name + ".eps", 1e-6f)]);
                var r = b.Node("Reciprocal", name + "_rcp", [b.Node("Sqrt", name + "_sqrt", [a])]);
                var n = b.Node("Cast", name + "_back", [b.Node("Mul", name + "_scale", [f, r])], ("to", 1L));
                return b.Shape(b.Node("Mul", name, [b.Weight(name + ".weight", d), n]), 1, S, d);
            }
        }
    }

    /// <summary>Projection → Reshape [0, 0, heads, hd] → Transpose to [B, heads, S, hd].</summary>
    private static string Heads(GraphBuilder b, string name, string x, int d, int heads, int hd, bool bias)
    {
        var y = b.Linear(name, x, d, heads * hd, [1, S], bias);
        var r = b.Shape(b.Node("Reshape", name + "_heads", [y, b.Ints(name + "_shape", 0, 0, heads, hd)]), 1, S, heads, hd);
        return b.Shape(b.Node("Transpose", name + "_t", [r], ("perm", new long[] { 0, 2, 1, 3 })), 1, heads, S, hd);
    }

    /// <summary>Repeats each KV head <paramref name="groups"/> times: Unsqueeze → Expand → Reshape (the exported repeat_kv).</summary>
    private static string RepeatKv(GraphBuilder b, string name, string x, int kvHeads, int groups, int hd)
    {
        var u = b.Node("Unsqueeze", name + "_u", [x, b.Ints(name + "_axes", 2)]);
        var e = b.Node("Expand", name + "_e", [u, b.Ints(name + "_eshape", 1, kvHeads, groups, S, hd)]);
        return b.Shape(b.Node("Reshape", name + "_r", [e, b.Ints(name + "_rshape", 1, kvHeads * groups, S, hd)]), 1, kvHeads * groups, S, hd);
    }

    private static string Block(GraphBuilder b, string p, string x, int d, int heads, int kvHeads, bool llama,
        NormStyle norm, bool postNorm = false, string? mask = null)
    {
        int hd = d / heads;
        var n1 = postNorm ? x : Norm(b, p + "ln1", x, d, norm);
        var q = Heads(b, p + "q", n1, d, heads, hd, !llama);
        var k = Heads(b, p + "k", n1, d, kvHeads, hd, !llama);
        var v = Heads(b, p + "v", n1, d, kvHeads, hd, !llama);
        if (kvHeads != heads)
        {
            k = RepeatKv(b, p + "rk", k, kvHeads, heads / kvHeads, hd);
            v = RepeatKv(b, p + "rv", v, kvHeads, heads / kvHeads, hd);
        }
        var kt = b.Shape(b.Node("Transpose", p + "kt", [k], ("perm", new long[] { 0, 1, 3, 2 })), 1, heads, hd, S);
        var scores = b.Shape(b.Node("MatMul", p + "scores", [q, kt]), 1, heads, S, S);
        var scaled = b.Node("Div", p + "scale", [scores, b.Scalar(p + "sqrt_hd", MathF.Sqrt(hd))]);
        if (mask is not null) scaled = b.Shape(b.Node("Add", p + "masked", [scaled, mask]), 1, heads, S, S);
        var probs = b.Node("Softmax", p + "softmax", [scaled], ("axis", -1L));
        var ctx = b.Shape(b.Node("MatMul", p + "context", [probs, v]), 1, heads, S, hd);
        var ct = b.Node("Transpose", p + "ctx_t", [ctx], ("perm", new long[] { 0, 2, 1, 3 }));
        var merged = b.Shape(b.Node("Reshape", p + "merge", [ct, b.Ints(p + "merge_shape", 0, 0, d)]), 1, S, d);
        var o = b.Linear(p + "o", merged, d, d, [1, S], !llama);
        var h = b.Shape(b.Node("Add", p + "attn_residual", [x, o]), 1, S, d);
        // Post-norm (BERT): the sum is normalized and the normalized value is both the MLP's input and its skip.
        if (postNorm) h = Norm(b, p + "ln1", h, d, norm);
        var n2 = postNorm ? h : Norm(b, p + "ln2", h, d, norm);
        string down;
        if (llama)
        {
            var gate = b.Linear(p + "gate", n2, d, 2 * d, [1, S], false);
            var up = b.Linear(p + "up", n2, d, 2 * d, [1, S], false);
            var silu = b.Node("Mul", p + "silu", [gate, b.Node("Sigmoid", p + "sig", [gate])]);
            down = b.Linear(p + "down", b.Node("Mul", p + "gated", [silu, up]), 2 * d, d, [1, S], false);
        }
        else
        {
            var fc1 = b.Linear(p + "fc1", n2, d, 4 * d, [1, S]);
            down = b.Linear(p + "fc2", b.Node("Gelu", p + "gelu", [fc1]), 4 * d, d, [1, S]);
        }
        var sum = b.Shape(b.Node("Add", p + "mlp_residual", [h, down]), 1, S, d);
        return postNorm ? Norm(b, p + "ln2", sum, d, norm) : sum;
    }

    private static (ModelStructure Structure, string Embedding) Model(int d, int heads, int kvHeads, bool llama, NormStyle? norm = null)
    {
        var b = new GraphBuilder();
        var ids = b.Input("ids", 1, S);
        var emb = b.Shape(b.Node("Gather", "embed", [b.Weight("wte", 50, d), ids]), 1, S, d);
        var style = norm ?? (llama ? NormStyle.RmsExported : NormStyle.LayerNormOp);
        var x = Block(b, "b0.", emb, d, heads, kvHeads, llama, style);
        x = Block(b, "b1.", x, d, heads, kvHeads, llama, style);
        var logits = b.Linear("lm_head", Norm(b, "lnf", x, d, style), d, 50, [1, S], false);
        b.Output(logits);
        return (ModelStructure.Analyze(b.Build(), b.Shapes), emb);
    }

    /// <summary>A BERT-style encoder as PyTorch exports it: post-norm blocks, decomposed LayerNorms, an additive attention mask.</summary>
    private static (ModelStructure Structure, string Embedding) PostNormEncoder(int blocks, NormStyle norm, bool breakLink = false)
    {
        const int d = 8;
        var b = new GraphBuilder();
        var ids = b.Input("ids", 1, S);
        var maskIn = b.Input("mask", 1, S);
        var mask = b.Shape(b.Node("Mul", "mask_bias", [b.Node("Unsqueeze", "mask_u", [maskIn, b.Ints("mask_axes", 1, 2)]), b.Scalar("neg", -1e4f)]), 1, 1, 1, S);
        var emb = Norm(b, "emb_ln", b.Shape(b.Node("Gather", "embed", [b.Weight("wte", 50, d), ids]), 1, S, d), d, norm);
        var x = emb;
        for (int i = 0; i < blocks; i++)
        {
            x = Block(b, $"b{i}.", x, d, 2, 2, llama: false, norm, postNorm: true, mask);
            // An op the analysis does not know between two blocks hides the link from one to the next.
            if (breakLink && i == 0) x = b.Shape(b.Node("Custom", "opaque", [x]), 1, S, d);
        }
        b.Output(x);
        return (ModelStructure.Analyze(b.Build(), b.Shapes), emb);
    }

    [Theory]
    [InlineData(NormStyle.LayerNormExported)]
    [InlineData(NormStyle.LayerNormOp)]
    public void PostNormEncoder_DecomposedLayerNorm_EveryBlockFound_MaskAddIsNotResidual(NormStyle norm)
    {
        var (s, emb) = PostNormEncoder(blocks: 3, norm);

        Assert.Equal(3, s.Blocks.Count);
        Assert.Equal(emb, s.Blocks[0].Input);
        Assert.Equal(["b0.attn_residual", "b0.mlp_residual", "b1.attn_residual", "b1.mlp_residual", "b2.attn_residual", "b2.mlp_residual"],
            s.ResidualStream!.AddNodes);
        // Each block starts at the previous block's final LayerNorm output.
        Assert.Equal(s.Blocks[0].Output, AddOutput(s, "b0.mlp_residual"));
        Assert.Equal("b0.ln2_out", s.Blocks[1].Input);
        foreach (var block in s.Blocks)
        {
            string p = $"b{block.Index}.";
            Assert.Equal((p + "q", p + "k", p + "v", p + "o", 2), (block.Attention!.Q, block.Attention.K, block.Attention.V, block.Attention.Output, block.Attention.Heads));
            Assert.Equal((p + "fc1", p + "fc2"), (block.Mlp!.Up, block.Mlp.Down));
        }
        Assert.Empty(s.Warnings);

        static string AddOutput(ModelStructure s, string add) => s.ResidualStream!.Values[s.ResidualStream.AddNodes.ToList().IndexOf(add)];
    }

    [Fact]
    public void PostNormEncoder_UnlinkedBlock_Warns()
    {
        var (s, _) = PostNormEncoder(blocks: 3, NormStyle.LayerNormExported, breakLink: true);

        Assert.Equal(2, s.Blocks.Count);
        Assert.Contains(s.Warnings, w => w.Contains("found 4 of 6 residual adds", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(NormStyle.RmsExported, NormKind.RmsNorm)]
    [InlineData(NormStyle.RmsExportedCast, NormKind.RmsNorm)]
    [InlineData(NormStyle.LayerNormExported, NormKind.LayerNorm)]
    public void PreNorm_ExportedNorms_Classified_WithScale(NormStyle norm, NormKind kind)
    {
        var (s, _) = Model(d: 16, heads: 4, kvHeads: 2, llama: true, norm);

        Assert.Equal(2, s.Blocks.Count);
        foreach (var block in s.Blocks)
        {
            string p = $"b{block.Index}.";
            Assert.Equal((kind, p + "ln1.weight"), (block.Attention!.Norm.Kind, block.Attention.Norm.Scale));
            Assert.Equal((kind, p + "ln2.weight"), (block.Mlp!.Norm.Kind, block.Mlp.Norm.Scale));
        }
        Assert.Empty(s.Warnings);
    }

    [Fact]
    public void PreNormMha_TwoBlocks_WithHeadsAndHiddenStates()
    {
        var (s, emb) = Model(d: 8, heads: 2, kvHeads: 2, llama: false);

        Assert.NotNull(s.ResidualStream);
        Assert.Equal(emb, s.ResidualStream.Start);
        Assert.Equal(["b0.attn_residual", "b0.mlp_residual", "b1.attn_residual", "b1.mlp_residual"], s.ResidualStream.AddNodes);
        Assert.Equal(2, s.Blocks.Count);
        Assert.Equal([emb, "b0.mlp_residual_out", "b1.mlp_residual_out"], s.HiddenStates);
        var a = s.Blocks[1].Attention!;
        Assert.Equal(("b1.q", "b1.k", "b1.v", "b1.o"), (a.Q, a.K, a.V, a.Output));
        Assert.Equal((2, 2, 4, 1), (a.Heads, a.KvHeads, a.HeadSize, a.KvGroupSize));
        Assert.Equal(NormKind.LayerNorm, a.Norm.Kind);
        Assert.Equal("b0.mlp_residual_out", a.Norm.Input);
        var m = s.Blocks[1].Mlp!;
        Assert.Equal((null, "b1.fc1", "b1.fc2"), (m.Gate, m.Up, m.Down));
        Assert.Equal(["b1.fc1"], m.FirstProjections);

        Assert.Equal(["b0.fc1", "b1.fc1"], s.Chains.Select(c => c.Id));
        Assert.Contains("mixes", s.Rejected.Single(r => r.Producer == "b0.q").Reason);
        Assert.Contains("residual", s.Rejected.Single(r => r.Producer == "b0.o").Reason);
        Assert.Contains("residual", s.Rejected.Single(r => r.Producer == "b0.fc2").Reason);

        // Per block: 4 projections 8·8 + fc1 8·32 + fc2 32·8 per token, plus scores and context 2 heads × S·S·4 each.
        double perBlockSites = S * (4 * 64 + 2 * 256);
        double perBlockAttn = 2 * (2 * S * S * 4);
        Assert.Equal(2 * perBlockSites + S * 8 * 50, s.Macs.SitesPerExample);
        Assert.Equal(2 * (perBlockSites + perBlockAttn) + S * 8 * 50, s.Macs.PerExample);
        Assert.Empty(s.Warnings);
    }

    [Fact]
    public void GroupedKvHeads_RmsNormExported_GatedMlp()
    {
        var (s, emb) = Model(d: 16, heads: 4, kvHeads: 2, llama: true);

        Assert.Equal(2, s.Blocks.Count);
        Assert.Equal(emb, s.HiddenStates[0]);
        foreach (var block in s.Blocks)
        {
            var a = block.Attention!;
            string p = $"b{block.Index}.";
            Assert.Equal((p + "q", p + "k", p + "v", p + "o"), (a.Q, a.K, a.V, a.Output));
            Assert.Equal((4, 2, 4, 2), (a.Heads, a.KvHeads, a.HeadSize, a.KvGroupSize));
            Assert.Equal(NormKind.RmsNorm, a.Norm.Kind);
            Assert.Equal(p + "ln1.weight", a.Norm.Scale);
            var m = block.Mlp!;
            Assert.Equal((p + "gate", p + "up", p + "down"), (m.Gate, m.Up, m.Down));
            Assert.Equal(NormKind.RmsNorm, m.Norm.Kind);
        }
        var k = s.LinearSites.Single(l => l.Name == "b0.k");
        Assert.Equal((8, 16), (k.OutFeatures, k.InFeatures));
        Assert.Equal(2, s.Chains.Count(c => c.Kind == ChainKind.GatedLinear));
        Assert.Equal(["b0.gate", "b0.up"], s.Chains[0].Producers);
    }
}
