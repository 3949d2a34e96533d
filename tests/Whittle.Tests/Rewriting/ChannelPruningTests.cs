using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Decompositions;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;
using Whittle.Tests.Analysis;
using static Whittle.Tests.Rewriting.PruningModels;

namespace Whittle.Tests.Rewriting;

/// <summary>
/// Round trips of channel surgery for every chain kind, run in ONNX Runtime: keeping every unit changes nothing, and
/// on an activation of exact rank h/2 the ID keeps h/2 units and the outputs do not change.
/// </summary>
public class ChannelPruningTests
{
    private const int N = 6;

    public static TheoryData<string> Kinds => ["mlp", "gemm", "gated", "reshape", "conv", "flatten", "flatten-reshape", "depthwise"];

    /// <summary>A graph with one chain of the given kind (width 8 or 6), its input, and the chain's producer.</summary>
    private static (OnnxModel Model, Dictionary<string, HostTensor> Feed, string Producer) Build(string kind)
    {
        var b = new GraphBuilder();
        long[] batch = [N];
        string producer = "fc1";
        Dictionary<string, HostTensor> feed;
        switch (kind)
        {
            case "mlp":
            {
                var x = b.Input("x", N, 5);
                var h = b.Linear("fc1", x, 5, 8, batch);
                var r = b.Shape(b.Node("Relu", "relu", [h]), N, 8);
                b.Output(b.Linear("fc2", r, 8, 3, batch));
                feed = new() { ["x"] = Input(1, N, 5) };
                break;
            }
            case "gemm":
            {
                var x = b.Input("x", N, 5);
                var h = b.Shape(b.Node("Gemm", "fc1", [x, b.Weight("fc1.weight", 8, 5), b.Weight("fc1.bias", 8)], ("transB", 1L)), N, 8);
                var t = b.Shape(b.Node("Tanh", "tanh", [h]), N, 8);
                var y = b.Shape(b.Node("Gemm", "fc2", [t, b.Weight("fc2.weight", 3, 8), b.Weight("fc2.bias", 3)], ("transB", 1L)), N, 3);
                b.Output(y);
                feed = new() { ["x"] = Input(2, N, 5) };
                break;
            }
            case "gated":
            {
                var x = b.Input("x", 1, N, 5);
                long[] p = [1, N];
                var gate = b.Linear("gate", x, 5, 8, p, bias: false);
                var up = b.Linear("up", x, 5, 8, p, bias: false);
                var silu = b.Shape(b.Node("Mul", "silu", [gate, b.Shape(b.Node("Sigmoid", "sig", [gate]), 1, N, 8)]), 1, N, 8);
                var gated = b.Shape(b.Node("Mul", "gated", [silu, up]), 1, N, 8);
                b.Output(b.Linear("down", gated, 8, 4, p, bias: false));
                feed = new() { ["x"] = Input(3, 1, N, 5) };
                producer = "gate";
                break;
            }
            case "reshape":
            {
                var x = b.Input("x", 2, 3, 5);
                var h = b.Linear("fc1", x, 5, 8, [2, 3]);
                var r = b.Shape(b.Node("Relu", "relu", [h]), 2, 3, 8);
                var flat = b.Shape(b.Node("Reshape", "rows", [r, b.Ints("rows.shape", 6, 8)]), 6, 8);
                b.Output(b.Linear("fc2", flat, 8, 3, [6]));
                feed = new() { ["x"] = Input(4, 2, 3, 5) };
                break;
            }
            case "conv":
            {
                var x = b.Input("x", 2, 3, 8, 8);
                var c1 = b.Conv("conv1", x, 3, 8, 3, [2, 8, 8, 8], pad: 1);
                var bn = b.Shape(b.Node("BatchNormalization", "bn1", [c1, b.Weight("bn1.scale", 8), b.Weight("bn1.bias", 8), b.Weight("bn1.mean", 8), b.Weight("bn1.var", 8)]), 2, 8, 8, 8);
                var r = b.Shape(b.Node("Relu", "relu1", [bn]), 2, 8, 8, 8);
                var pool = b.Shape(b.Node("MaxPool", "pool1", [r], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 })), 2, 8, 4, 4);
                b.Output(b.Conv("conv2", pool, 8, 5, 3, [2, 5, 4, 4], pad: 1));
                feed = new() { ["x"] = Input(5, 2, 3, 8, 8) };
                producer = "conv1";
                break;
            }
            case "flatten" or "flatten-reshape":
            {
                var x = b.Input("x", 2, 3, 6, 6);
                var c1 = b.Conv("conv1", x, 3, 8, 3, [2, 8, 6, 6], pad: 1);
                var r = b.Shape(b.Node("Relu", "relu1", [c1]), 2, 8, 6, 6);
                var pool = b.Shape(b.Node("AveragePool", "pool1", [r], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 })), 2, 8, 3, 3);
                var flat = kind == "flatten"
                    ? b.Node("Flatten", "flatten", [pool], ("axis", 1L))
                    : b.Node("Reshape", "flatten", [pool, b.Ints("flatten.shape", -1, 72)]);
                b.Shape(flat, 2, 72);
                var y = b.Shape(b.Node("Gemm", "fc", [flat, b.Weight("fc.weight", 4, 72), b.Weight("fc.bias", 4)], ("transB", 1L)), 2, 4);
                b.Output(y);
                feed = new() { ["x"] = Input(6, 2, 3, 6, 6) };
                producer = "conv1";
                break;
            }
            case "depthwise":
            {
                var x = b.Input("x", 2, 3, 6, 6);
                var c1 = b.Conv("conv1", x, 3, 8, 1, [2, 8, 6, 6]);
                var r1 = b.Shape(b.Node("Relu", "relu1", [c1]), 2, 8, 6, 6);
                var dw = b.Conv("dw", r1, 8, 8, 3, [2, 8, 6, 6], pad: 1, group: 8);
                var r2 = b.Shape(b.Node("Relu", "relu2", [dw]), 2, 8, 6, 6);
                b.Output(b.Conv("pw", r2, 8, 4, 1, [2, 4, 6, 6]));
                feed = new() { ["x"] = Input(7, 2, 3, 6, 6) };
                producer = "conv1";
                break;
            }
            default: throw new ArgumentException(kind);
        }
        return (Randomize(b.Build(), seed: kind.Length), feed, producer);
    }

    private static PrunableChain ChainOf(PruningContext c, string producer) => c.Structure.Chains.Single(ch => ch.Producers.Contains(producer));

    [Theory]
    [MemberData(nameof(Kinds))]
    public void KeepingEveryUnitChangesNothing(string kind)
    {
        var (model, feed, producer) = Build(kind);
        var context = Context(model, feed);
        var chain = ChainOf(context, producer);
        var original = Run(model, feed);
        foreach (bool withT in new[] { false, true })
        {
            var copy = Clone(model);
            int h = chain.Channels;
            var selection = new UnitSelection([.. Enumerable.Range(0, h)], withT ? Whittle.LinearAlgebra.Matrix<double>.Identity(h) : null);
            var log = ChannelPruning.Plan(context with { Model = copy }, chain, h, selection).Apply(copy);
            Assert.NotEmpty(log);
            copy.Validate();
            Assert.Equal(original, Run(copy, feed));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void IdOfAnExactlyLowRankActivationPrunesWithoutChangingTheOutputs(string kind)
    {
        var (model, feed, producer) = Build(kind);
        var context = Context(model, feed);
        var chain = ChainOf(context, producer);
        DuplicatePairs(model, chain);
        var original = Run(model, feed);

        var tap = new RFactorStatistic(chain.Activation, chain.ChannelAxis == 1 ? FeatureAxis.Channel : FeatureAxis.Last);
        CalibrationRunner.Run(model, [tap], [feed]);
        var path = InterpolativeDecompositionPath.Factor(tap.Finish().R.View);
        int h = chain.Channels, k = h / 2;
        Assert.Equal(k, path.RankFor(1e-5));
        var id = path.At(k);
        Assert.Equal(k, id.Indices.Select(i => i / 2).Distinct().Count()); // one of each pair

        var pruned = Clone(model);
        ChannelPruning.Plan(context with { Model = pruned }, chain, h, new UnitSelection(id.Indices, id.Interpolation)).Apply(pruned);
        pruned.Validate();
        var after = Run(pruned, feed);
        Assert.True(RelativeDifference(original, after) < 1e-5, $"{kind}: outputs differ by {RelativeDifference(original, after)}");

        // The pruned graph is narrower: its structure finds the same chain with k units, and the MACs dropped.
        var again = Context(pruned, feed);
        Assert.Equal(k, ChainOf(again, producer).Channels);
        Assert.True(again.Structure.Macs.PerExample < context.Structure.Macs.PerExample);
        Assert.True(again.Structure.Parameters < context.Structure.Parameters);
    }

    [Fact]
    public void MagnitudeSelectionSlicesConsumerColumns()
    {
        var (model, feed, _) = Build("mlp");
        var context = Context(model, feed);
        var chain = Assert.Single(context.Structure.Chains);
        var pruned = Clone(model);
        int[] kept = [6, 1, 3];
        ChannelPruning.Plan(context with { Model = pruned }, chain, 8, new UnitSelection(kept, null)).Apply(pruned);
        // fc1 stored [in, out]: columns 6, 1, 3 in that order; fc2 stored [in, out]: rows 6, 1, 3.
        var w1 = model.Graph.GetInitializer("fc1.weight").ToMatrix<float>();
        var w1p = pruned.Graph.GetInitializer("fc1.weight").ToMatrix<float>();
        var w2 = model.Graph.GetInitializer("fc2.weight").ToMatrix<float>();
        var w2p = pruned.Graph.GetInitializer("fc2.weight").ToMatrix<float>();
        Assert.Equal((5, 3), (w1p.Rows, w1p.Cols));
        Assert.Equal((3, 3), (w2p.Rows, w2p.Cols));
        for (int j = 0; j < 3; j++)
        {
            for (int i = 0; i < 5; i++) Assert.Equal(w1[i, kept[j]], w1p[i, j]);
            for (int o = 0; o < 3; o++) Assert.Equal(w2[kept[j], o], w2p[j, o]);
        }
        Assert.Equal(3, pruned.Graph.GetInitializer("fc1.bias").ElementCount);
        // value_info follows: the recorded shape of the ReLU output is [N, 3].
        var info = pruned.Graph.Proto.ValueInfo.Single(v => v.Name == "relu_out");
        Assert.Equal([N, 3L], info.Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        Assert.Equal(3, Run(pruned, feed).Length / N);
    }

    [Fact]
    public void ReshapeConstantsCarryingTheWidthAreUpdated()
    {
        var (model, feed, _) = Build("flatten-reshape");
        var context = Context(model, feed);
        var chain = Assert.Single(context.Structure.Chains);
        var pruned = Clone(model);
        ChannelPruning.Plan(context with { Model = pruned }, chain, 8, new UnitSelection([0, 2, 5], null)).Apply(pruned);
        var flatten = pruned.Graph.Nodes.Single(n => n.Name == "flatten");
        var target = GraphQuery.ConstantTensor(pruned.Graph, flatten.Input[1])!;
        Assert.Equal([-1L, 27], target.Int64Data);
        Assert.Equal([-1L, 72], model.Graph.GetInitializer("flatten.shape").Proto.Int64Data); // the original constant is untouched
        Assert.Equal(2 * 4, Run(pruned, feed).Length);
    }

    /// <summary>x → DequantizeLinear(int8 W1 [8, 5], per-row scale and zero point) → Transpose → MatMul → ReLU → fc2 (float, or int8 too).</summary>
    private static OnnxModel Quantized(bool consumerQuantized)
    {
        var b = new GraphBuilder();
        var rng = new Random(5);
        string Int8(string name, params long[] dims)
        {
            var t = new Whittle.Onnx.Proto.TensorProto { Name = name, DataType = (int)OnnxDataType.Int8 };
            t.Dims.Add(dims);
            var bytes = new byte[dims.Aggregate(1L, (a, d) => a * d)];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(sbyte)rng.Next(-20, 21);
            t.RawData = Google.Protobuf.ByteString.CopyFrom(bytes);
            return b.Initializer(t);
        }
        string Dequantized(string name, long outF, long inF, long axis)
        {
            long per = outF; // per output channel
            var dq = b.NodeMulti("DequantizeLinear", name + ".dq", [Int8(name + ".q", axis == 0 ? outF : inF, axis == 0 ? inF : outF), b.Weight(name + ".scale", per), Int8(name + ".zp", per)],
                [name + ".w"], ("axis", axis));
            return dq.Output[0];
        }
        var x = b.Input("x", N, 5);
        var wt = b.Node("Transpose", "w1t", [Dequantized("fc1", 8, 5, 0)], ("perm", new long[] { 1, 0 }));
        var h = b.Shape(b.Node("MatMul", "fc1", [x, wt]), N, 8);
        var r = b.Shape(b.Node("Relu", "relu", [h]), N, 8);
        var w2 = consumerQuantized ? Dequantized("fc2", 3, 8, 1) : b.Weight("fc2.w", 8, 3);
        b.Output(b.Shape(b.Node("MatMul", "fc2", [r, w2]), N, 3));
        var model = b.Build();
        foreach (var name in new[] { "fc1.scale", "fc2.scale" }.Where(n => model.Graph.TryGetInitializer(n, out _)))
            model.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>(name, [.. Enumerable.Range(0, (int)model.Graph.GetInitializer(name).ElementCount).Select(i => 0.01f + 0.002f * i)],
                [.. model.Graph.GetInitializer(name).Shape], OnnxDataType.Float));
        return model;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void QuantizedWeightsAreSlicedWithTheirScalesAndZeroPoints(bool consumerQuantized)
    {
        var model = Quantized(consumerQuantized);
        var feed = new Dictionary<string, HostTensor> { ["x"] = Input(3, N, 5) };
        var context = Context(model, feed);
        var chain = Assert.Single(context.Structure.Chains);
        Assert.Contains(chain.SliceTogether, t => t.Role == SliceRole.QuantizationParameter);
        int[] kept = [1, 4, 6];
        // Without graph optimizations: ORT's QDQ fusions compute quantized products approximately, and differently when a value is tapped.
        var exact = RuntimeOptions.Default with { OptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL };
        var z = Run(model, feed, "relu_out", exact);
        var w2 = consumerQuantized ? Run(model, feed, "fc2.w", exact) : model.Graph.GetInitializer("fc2.w").ToArray<float>();
        var expected = new float[N * 3];
        for (int i = 0; i < N; i++)
            for (int o = 0; o < 3; o++)
                expected[i * 3 + o] = kept.Sum(j => z[i * 8 + j] * w2[j * 3 + o]);

        var pruned = Clone(model);
        ChannelPruning.Plan(context with { Model = pruned }, chain, 8, new UnitSelection(kept, null)).Apply(pruned);
        pruned.Validate();
        Assert.Equal(OnnxDataType.Int8, pruned.Graph.GetInitializer("fc1.q").DataType);
        Assert.Equal([3L, 5], pruned.Graph.GetInitializer("fc1.q").Shape);
        Assert.Equal(3, pruned.Graph.GetInitializer("fc1.zp").ElementCount);
        var got = Run(pruned, feed, options: exact);
        Assert.True(RelativeDifference(expected, got) < 1e-5, $"{RelativeDifference(expected, got)}: {string.Join(",", expected.Take(6))} vs {string.Join(",", got.Take(6))}");

        // A correction cannot be folded into a quantized consumer; a float consumer takes it.
        var identity = new UnitSelection([.. Enumerable.Range(0, 8)], Whittle.LinearAlgebra.Matrix<double>.Identity(8));
        string? reason = ChannelPruning.Plan(context, chain, 8, identity).Check(model);
        if (consumerQuantized) Assert.Contains("quantized", reason);
        else Assert.Null(reason);
    }

    [Fact]
    public void ATensorSharedWithAnotherLayerMakesThePlanInfeasible()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", N, 8);
        var h = b.Linear("fc1", x, 8, 8, [N]);
        var r = b.Shape(b.Node("Relu", "relu", [h]), N, 8);
        var y = b.Shape(b.Node("MatMul", "fc2", [r, "fc1.weight"]), N, 8); // fc2 reuses fc1's weight (tied)
        b.Output(y);
        var model = b.Build();
        var feed = new Dictionary<string, HostTensor> { ["x"] = Input(1, N, 8) };
        var context = Context(model, feed);
        var chain = Assert.Single(context.Structure.Chains);
        var plan = ChannelPruning.Plan(context, chain, 8, new UnitSelection([0, 1], null));
        Assert.Contains("fc1.weight", plan.Check(model));
        Assert.Throws<InvalidOperationException>(() => plan.Apply(model));
        Assert.Equal(64, model.Graph.GetInitializer("fc1.weight").ElementCount); // unchanged
    }
}
