using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Decompositions;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;
using Whittle.Tests.Analysis;
using Whittle.Tests.Fixtures;
using static Whittle.Tests.Rewriting.PruningModels;

namespace Whittle.Tests.Rewriting;

/// <summary>Attention-head surgery on graphs built in code (MHA, grouped KV) and on the PyTorch-exported GPT-2/Llama fixtures, run in ONNX Runtime.</summary>
public class HeadPruningTests
{
    private const int B = 2, S = 5;

    /// <summary>One pre-norm attention block on a [B, S, d] input: projections, Reshape to heads, optional repeat_kv, softmax attention, merge, W_O, residual.</summary>
    private static OnnxModel Attention(int d, int heads, int kvHeads, bool bias)
    {
        var b = new GraphBuilder();
        int hd = d / heads, groups = heads / kvHeads;
        var x = b.Input("x", B, S, d);
        var n = b.Shape(b.Node("LayerNormalization", "ln", [x, b.Weight("ln.weight", d), b.Weight("ln.bias", d)], ("axis", -1L)), B, S, d);
        string Project(string name, int h)
        {
            var y = b.Linear(name, n, d, h * hd, [B, S], bias);
            var r = b.Shape(b.Node("Reshape", name + "_heads", [y, b.Ints(name + "_shape", 0, 0, h, hd)]), B, S, h, hd);
            return b.Shape(b.Node("Transpose", name + "_t", [r], ("perm", new long[] { 0, 2, 1, 3 })), B, h, S, hd);
        }
        string Repeat(string name, string v)
        {
            var u = b.Shape(b.Node("Unsqueeze", name + "_u", [v, b.Ints(name + "_axes", 2)]), B, kvHeads, 1, S, hd);
            var e = b.Shape(b.Node("Expand", name + "_e", [u, b.Ints(name + "_eshape", B, kvHeads, groups, S, hd)]), B, kvHeads, groups, S, hd);
            return b.Shape(b.Node("Reshape", name + "_r", [e, b.Ints(name + "_rshape", B, heads, S, hd)]), B, heads, S, hd);
        }
        var q = Project("q", heads);
        var k = Project("k", kvHeads);
        var v = Project("v", kvHeads);
        if (kvHeads != heads) { k = Repeat("rk", k); v = Repeat("rv", v); }
        var kt = b.Shape(b.Node("Transpose", "kt", [k], ("perm", new long[] { 0, 1, 3, 2 })), B, heads, hd, S);
        var scores = b.Shape(b.Node("MatMul", "scores", [q, kt]), B, heads, S, S);
        var scaled = b.Shape(b.Node("Div", "scale", [scores, b.Scalar("sqrt_hd", MathF.Sqrt(hd))]), B, heads, S, S);
        var probs = b.Shape(b.Node("Softmax", "softmax", [scaled], ("axis", -1L)), B, heads, S, S);
        var ctx = b.Shape(b.Node("MatMul", "context", [probs, v]), B, heads, S, hd);
        var ct = b.Shape(b.Node("Transpose", "ctx_t", [ctx], ("perm", new long[] { 0, 2, 1, 3 })), B, S, heads, hd);
        var merged = b.Shape(b.Node("Reshape", "merge", [ct, b.Ints("merge_shape", 0, 0, heads * hd)]), B, S, heads * hd);
        var o = b.Linear("o", merged, heads * hd, d, [B, S], bias);
        var y = b.Shape(b.Node("Add", "residual", [x, o]), B, S, d);
        var head = b.Linear("head", y, d, 3, [B, S], false);
        b.Output(head);
        return Randomize(b.Build(), seed: heads * 10 + kvHeads);
    }

    private static Dictionary<string, HostTensor> Feed(int d) => new() { ["x"] = Input(9, B, S, d) };

    private static AttentionHeads Find(PruningContext context)
    {
        var attention = Assert.Single(context.Structure.Blocks).Attention!;
        var heads = AttentionHeadWalk.Find(context.Model, context.Structure, context.Shapes, "block 0 attention", attention, out var reason);
        Assert.True(heads is not null, reason);
        return heads;
    }

    [Theory]
    [InlineData(16, 4, 4)]
    [InlineData(16, 4, 2)]
    public void KeepingEveryGroupChangesNothing(int d, int heads, int kvHeads)
    {
        var model = Attention(d, heads, kvHeads, bias: true);
        var feed = Feed(d);
        var context = Context(model, feed);
        var found = Find(context);
        Assert.Equal((heads, kvHeads, d / heads), (found.Heads, found.KvHeads, found.HeadSize));
        // Reshapes q/k/v to heads, and merge; with grouped KV also the two Expand and two Reshape of repeat_kv.
        Assert.Equal(kvHeads == heads ? 4 : 8, found.Slots.Count);
        Assert.Equal(["scores", "context"], found.Products);
        var original = Run(model, feed);
        var copy = Clone(model);
        int b = found.GroupSize;
        HeadPruning.Plan(context with { Model = copy }, found, kvHeads, new UnitSelection([.. Enumerable.Range(0, kvHeads)],
            Whittle.LinearAlgebra.Matrix<double>.Identity(kvHeads * b))).Apply(copy);
        copy.Validate();
        Assert.Equal(original, Run(copy, feed));
    }

    [Theory]
    [InlineData(16, 4, 4)]
    [InlineData(24, 6, 3)]
    public void RedundantGroupIsRemovedExactlyByTheGroupId(int d, int heads, int kvHeads)
    {
        var model = Attention(d, heads, kvHeads, bias: true);
        var feed = Feed(d);
        var context = Context(model, feed);
        var found = Find(context);
        // Group 1 := group 0 in Q, K, V (weights and biases): its context columns equal group 0's.
        int g = heads / kvHeads, hd = d / heads;
        foreach (var (site, unit) in new[] { (found.Q!, g * hd), (found.K!, hd), (found.V!, hd) })
        {
            var s = context.Structure.LinearSites.Single(x => x.Name == site);
            CopyBlock(model, s.Weight.Initializer, s.StoredOutAxis, unit);
            CopyBlock(model, s.Bias!, 0, unit);
        }
        var original = Run(model, feed);
        var r = new RFactorStatistic(found.Context);
        CalibrationRunner.Run(model, [r], [feed]);
        var path = GroupInterpolativeDecompositionPath.Factor(r.Finish().R.View, found.GroupSize);
        Assert.Equal(kvHeads - 1, path.MaxRank);
        var id = path.At(kvHeads - 1);
        Assert.True(id.RelativeResidual < 1e-5, $"residual {id.RelativeResidual}");

        var pruned = Clone(model);
        HeadPruning.Plan(context with { Model = pruned }, found, kvHeads, new UnitSelection(id.Groups, id.Interpolation)).Apply(pruned);
        pruned.Validate();
        var after = Run(pruned, feed);
        Assert.True(RelativeDifference(original, after) < 1e-5, $"outputs differ by {RelativeDifference(original, after)}");
        var again = Context(pruned, feed);
        var a = Assert.Single(again.Structure.Blocks).Attention!;
        Assert.Equal((heads - g, kvHeads - 1), (a.Heads, a.KvHeads));
        Assert.True(again.Structure.Macs.PerExample < context.Structure.Macs.PerExample);
    }

    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny")]
    public void ExportedFixturesPruneHeadsAndStillRun(string name)
    {
        var model = OnnxModel.Load(FixtureModelsTests.Fixture(name + ".onnx"));
        var ids = new long[2 * 12];
        for (int i = 0; i < ids.Length; i++) ids[i] = (i * 37 + 11) % 256;
        var feed = new Dictionary<string, HostTensor> { ["input_ids"] = HostTensor.Int64(ids, 2, 12) };
        var context = Context(model, feed);
        Assert.Equal(2, context.Structure.Blocks.Count);
        var original = Run(model, feed);

        var all = Clone(model);
        var pruned = Clone(model);
        foreach (var block in context.Structure.Blocks)
        {
            var heads = AttentionHeadWalk.Find(context.Model, context.Structure, context.Shapes, $"block {block.Index} attention", block.Attention!, out var reason);
            Assert.True(heads is not null, reason);
            int groups = heads.KvHeads;
            HeadPruning.Plan(context with { Model = all }, heads, groups, UnitSelection.All(groups)).Apply(all);
            HeadPruning.Plan(context with { Model = pruned }, heads, groups, new UnitSelection([0], null)).Apply(pruned);
        }
        Assert.Equal(original, Run(all, feed));
        pruned.Validate();
        var after = Run(pruned, feed);
        Assert.Equal(original.Length, after.Length);
        Assert.All(after, v => Assert.True(float.IsFinite(v)));
        Assert.True(RelativeDifference(original, after) > 1e-3, "dropping heads changes the logits");
        var again = Context(pruned, feed);
        foreach (var block in again.Structure.Blocks)
            Assert.Equal(1, block.Attention!.KvHeads);
        Assert.True(again.Structure.Parameters < context.Structure.Parameters);
    }

    /// <summary>Copies block 0 (entries 0..unit−1) onto block 1 along <paramref name="axis"/> of a tensor.</summary>
    private static void CopyBlock(OnnxModel model, string name, int axis, int unit)
    {
        var t = model.Graph.GetInitializer(name);
        var dims = t.Shape.ToArray();
        var values = t.ToArray<float>();
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= dims[i];
        for (int i = axis + 1; i < dims.Length; i++) inner *= dims[i];
        for (long o = 0; o < outer; o++)
            Array.Copy(values, o * dims[axis] * inner, values, (o * dims[axis] + unit) * inner, unit * inner);
        model.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>(name, values, dims, t.DataType));
    }
}
