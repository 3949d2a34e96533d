using Whittle.Analysis;

namespace Whittle.Tests.Analysis;

public class TransformerTests
{
    private const int S = 4;

    /// <summary>LayerNormalization, or RMSNorm in its exported Pow/ReduceMean/Add/Sqrt/Div/Mul form.</summary>
    private static string Norm(GraphBuilder b, string name, string x, int d, bool rms)
    {
        if (!rms)
            return b.Shape(b.Node("LayerNormalization", name, [x, b.Weight(name + ".weight", d), b.Weight(name + ".bias", d)], ("axis", -1L)), 1, S, d);
        var p = b.Node("Pow", name + "_pow", [x, b.Scalar(name + ".two", 2f)]);
        var m = b.Node("ReduceMean", name + "_mean", [p], ("axes", new long[] { -1 }), ("keepdims", 1L));
        var a = b.Node("Add", name + "_eps", [m, b.Scalar(name + ".eps", 1e-6f)]);
        var r = b.Node("Sqrt", name + "_sqrt", [a]);
        var n = b.Node("Div", name + "_div", [x, r]);
        return b.Shape(b.Node("Mul", name, [n, b.Weight(name + ".weight", d)]), 1, S, d);
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

    private static string Block(GraphBuilder b, string p, string x, int d, int heads, int kvHeads, bool llama)
    {
        int hd = d / heads;
        var n1 = Norm(b, p + "ln1", x, d, llama);
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
        var probs = b.Node("Softmax", p + "softmax", [scaled], ("axis", -1L));
        var ctx = b.Shape(b.Node("MatMul", p + "context", [probs, v]), 1, heads, S, hd);
        var ct = b.Node("Transpose", p + "ctx_t", [ctx], ("perm", new long[] { 0, 2, 1, 3 }));
        var merged = b.Shape(b.Node("Reshape", p + "merge", [ct, b.Ints(p + "merge_shape", 0, 0, d)]), 1, S, d);
        var o = b.Linear(p + "o", merged, d, d, [1, S], !llama);
        var h = b.Shape(b.Node("Add", p + "attn_residual", [x, o]), 1, S, d);
        var n2 = Norm(b, p + "ln2", h, d, llama);
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
        return b.Shape(b.Node("Add", p + "mlp_residual", [h, down]), 1, S, d);
    }

    private static (ModelStructure Structure, string Embedding) Model(int d, int heads, int kvHeads, bool llama)
    {
        var b = new GraphBuilder();
        var ids = b.Input("ids", 1, S);
        var emb = b.Shape(b.Node("Gather", "embed", [b.Weight("wte", 50, d), ids]), 1, S, d);
        var x = Block(b, "b0.", emb, d, heads, kvHeads, llama);
        x = Block(b, "b1.", x, d, heads, kvHeads, llama);
        var logits = b.Linear("lm_head", Norm(b, "lnf", x, d, llama), d, 50, [1, S], false);
        b.Output(logits);
        return (ModelStructure.Analyze(b.Build(), b.Shapes), emb);
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
