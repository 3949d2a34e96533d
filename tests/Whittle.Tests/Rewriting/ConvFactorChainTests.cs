using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;
using Whittle.Tests.Analysis;

namespace Whittle.Tests.Rewriting;

public class ConvFactorChainTests
{
    private const int N = 2, Cin = 3, Cout = 5, H = 9, W = 8, K = 3;

    /// <summary>x [N, Cin, H, W] → Conv(Cout, K × K, attributes) → y, with random weights (seeded) and an optional bias.</summary>
    private static OnnxModel ConvModel(bool bias, int seed, (string Name, object Value)[] attributes, (int H, int W) output)
    {
        var g = new GraphBuilder();
        var x = g.Input("x", N, Cin, H, W);
        var w = RandomMatrix.Gaussian<float>(Cout, Cin * K * K, seed: seed);
        g.Initializer(OnnxTensors.FromMatrix("w", w, OnnxDataType.Float, [Cout, Cin, K, K]));
        string[] inputs = bias ? [x, "w", g.Initializer(OnnxTensors.FromArray<float>("b", RandomMatrix.Gaussian<float>(1, Cout, seed: seed + 1).AsSpan(), [Cout], OnnxDataType.Float))] : [x, "w"];
        var y = g.Node("Conv", "conv", inputs, [("kernel_shape", new long[] { K, K }), .. attributes]);
        g.Shape(y, N, Cout, output.H, output.W);
        g.Output(y);
        return g.Build();
    }

    private static float[] Run(OnnxModel model, HostTensor x)
    {
        using var s = TappedSession.Create(model, []);
        return s.Run(new Dictionary<string, HostTensor> { ["x"] = x })[s.OutputNames[0]].AsFloats();
    }

    private static HostTensor Input(int seed) => HostTensor.Float(RandomMatrix.Gaussian<float>(1, N * Cin * H * W, seed: seed).AsSpan().ToArray(), N, Cin, H, W);

    private static ConvSite Site(OnnxModel model) => Assert.Single(ModelStructure.Analyze(model).ConvSites);

    private static OnnxModel Copy(OnnxModel m) => OnnxModel.FromProto(m.Proto.Clone());

    public static TheoryData<string, bool> Attributes => new()
    {
        { "plain", true },
        { "strided-padded", true },
        { "dilated", false },
        { "same-upper", true },
    };

    // The attributes of each case and the output size they give on a 9 × 8 input (ONNX Conv arithmetic).
    private static OnnxModel ConvModel(bool bias, int seed, string attributes) => attributes switch
    {
        "strided-padded" => ConvModel(bias, seed, [("strides", new long[] { 2, 1 }), ("pads", new long[] { 1, 0, 2, 1 })], (5, 7)),
        "dilated" => ConvModel(bias, seed, [("dilations", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 1, 1 })], (7, 6)),
        "same-upper" => ConvModel(bias, seed, [("auto_pad", "SAME_UPPER"), ("strides", new long[] { 2, 2 })], (5, 4)),
        _ => ConvModel(bias, seed, [], (H - K + 1, W - K + 1)),
    };

    [Theory]
    [MemberData(nameof(Attributes))]
    public void FullRankFactorsReproduceTheOriginalOutputsInOrt(string attributes, bool bias)
    {
        var model = ConvModel(bias, seed: 1, attributes);
        var x = Input(2);
        var before = Run(model, x);
        var site = Site(model);
        var w = ConvFactorChain.Weight(model, site);
        Assert.Equal((Cout, Cin * K * K), (w.Rows, w.Cols));

        // Full rank (min(Cout, Cin·K²) = Cout) from the SVD: W = (U Σ^{1/2})(Σ^{1/2} Vᵀ).
        var svd = Svd.Compute<float>(w);
        var l = svd.U.Slice(0, 0, Cout, Cout).ToMatrix();
        var r = svd.Vt.Slice(0, 0, Cout, w.Cols).ToMatrix();
        for (int j = 0; j < Cout; j++)
        {
            float root = MathF.Sqrt(svd.S[j]);
            for (int i = 0; i < Cout; i++) l[i, j] *= root;
            foreach (ref var v in r.Row(j)) v *= root;
        }
        var factored = Copy(model);
        var names = ConvFactorChain.Replace(factored, site, l, r);
        FactorChain.Tidy(factored);
        factored.Validate();

        Assert.Equal(2, factored.Graph.Nodes.Count(n => n.OpType == "Conv"));
        Assert.False(factored.Graph.TryGetInitializer("w", out _));
        Assert.Equal([Cout, Cout, 1L, 1L], factored.Graph.GetInitializer(names[0]).Shape);
        Assert.Equal([Cout, Cin, (long)K, K], factored.Graph.GetInitializer(names[1]).Shape);
        var after = Run(factored, x);
        Assert.Equal(before.Length, after.Length);
        double scale = before.Max(v => Math.Abs(v));
        for (int i = 0; i < before.Length; i++) Assert.True(Math.Abs(before[i] - after[i]) <= 1e-5 * scale, $"output {i}: {before[i]} vs {after[i]}");
    }

    [Fact]
    public void ARankTwoPairComputesTheConvolutionWithKernelLTimesR()
    {
        var model = ConvModel(bias: true, seed: 4, [("pads", new long[] { 1, 1, 1, 1 })], (H, W));
        var site = Site(model);
        var l = RandomMatrix.Gaussian<float>(Cout, 2, seed: 5);
        var r = RandomMatrix.Gaussian<float>(2, Cin * K * K, seed: 6);
        var factored = Copy(model);
        ConvFactorChain.Replace(factored, site, l, r);
        FactorChain.Tidy(factored);
        var dense = Copy(model);
        ConvFactorChain.ReplaceKernel(dense, site, Blas.Multiply<float>(l, r));
        FactorChain.Tidy(dense);

        var x = Input(7);
        var a = Run(factored, x);
        var b = Run(dense, x);
        double scale = b.Max(v => Math.Abs(v));
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5 * scale, $"output {i}: {a[i]} vs {b[i]}");
        // Parameters: 2·(Cin·K² + Cout) + bias instead of Cout·Cin·K² + bias.
        long parameters = factored.Proto.Graph.Initializer.Sum(t => t.Dims.Aggregate(1L, (p, d) => p * d));
        Assert.Equal(2 * (Cin * K * K + Cout) + Cout, parameters);
    }

    [Fact]
    public void GroupedConvolutionsAndWrongShapesAreRejected()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", 1, 4, 6, 6);
        g.Output(g.Conv("grouped", x, 4, 4, 3, [1, 4, 4, 4], group: 2));
        var grouped = g.Build();
        var site = Site(grouped);
        Assert.Throws<NotSupportedException>(() => ConvFactorChain.Weight(grouped, site));

        var model = ConvModel(bias: false, seed: 8, "plain");
        var s = Site(model);
        var e = Assert.Throws<ArgumentException>(() => ConvFactorChain.Replace(model, s, new Matrix<float>(Cout, 2), new Matrix<float>(2, 7)));
        Assert.Contains("27 columns", e.Message);
    }

    [Theory]
    [MemberData(nameof(Attributes))]
    public void PatchGramGivesTheConvolutionsOutputEnergy(string attributes, bool bias)
    {
        // Independent check of the patch order, padding and strides: for every output position the conv computes W·p + b,
        // so Σ‖y − b‖² over all positions = tr(W G Wᵀ) with G the patch Gram; and the number of patches = N·Hout·Wout.
        var model = ConvModel(bias, seed: 9, attributes);
        var site = Site(model);
        var x = Input(10);
        var y = Run(model, x);
        var b = bias ? model.Graph.GetInitializer("b").ToArray<float>() : new float[Cout];
        int positions = y.Length / (N * Cout);
        double energy = 0;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < Cout; c++)
                for (int p = 0; p < positions; p++)
                {
                    double v = y[(n * Cout + c) * positions + p] - b[c];
                    energy += v * v;
                }

        var patches = new ConvPatchStatistic(model, site);
        CalibrationRunner.Run(model, [patches], [new Dictionary<string, HostTensor> { ["x"] = x }]);
        var stats = patches.Finish();
        Assert.Equal(N * positions, stats.Rows);
        var w = ConvFactorChain.Weight(model, site);
        var wd = Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j]);
        var wg = Blas.Multiply<double>(wd, stats.Gram);
        double trace = 0;
        for (int i = 0; i < w.Rows; i++)
            for (int j = 0; j < w.Cols; j++) trace += wg[i, j] * wd[i, j];
        Assert.Equal(energy, trace, energy * 1e-5);
    }
}
