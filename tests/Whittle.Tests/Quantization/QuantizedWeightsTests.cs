using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Quantization;
using Whittle.Rewriting;
using Whittle.Runtime;
using Whittle.Tests.Analysis;

namespace Whittle.Tests.Quantization;

/// <summary>The rewritten graphs run in ONNX Runtime and compute exactly what the dequantized weights say.</summary>
public class QuantizedWeightsTests
{
    private const int Rows = 5;

    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => scale * (float)(rng.NextDouble() * 2 - 1))];
    }

    private static float[] Run(OnnxModel model, float[] x, params int[] shape)
    {
        using var session = TappedSession.Create(model, []);
        var outputs = session.Run(new Dictionary<string, HostTensor> { ["x"] = HostTensor.Float(x, shape) });
        return outputs[session.OutputNames[0]].AsFloats();
    }

    /// <summary>y = x·Wᵀ + b, W out × in.</summary>
    private static float[] Product(float[] x, Matrix<float> w, float[]? bias)
    {
        int rows = x.Length / w.Cols;
        var y = new float[rows * w.Rows];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < w.Rows; o++)
            {
                double sum = bias?[o] ?? 0;
                for (int i = 0; i < w.Cols; i++) sum += x[r * w.Cols + i] * w[o, i];
                y[r * w.Rows + o] = (float)sum;
            }
        return y;
    }

    private static (OnnxModel Model, LinearSite Site, Matrix<float> W, float[] Bias) MatMulModel(int k, int n)
    {
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, k);
        var stored = Random(k * n, seed: k + n, scale: 0.3f);
        g.Initializer(OnnxTensors.FromArray<float>("fc.weight", stored, [k, n], OnnxDataType.Float));
        var bias = Random(n, seed: 9);
        g.Initializer(OnnxTensors.FromArray<float>("fc.bias", bias, [n], OnnxDataType.Float));
        var y = g.Shape(g.Node("MatMul", "fc", [x, "fc.weight"]), Rows, n);
        g.Output(g.Shape(g.Node("Add", "fc_bias", [y, "fc.bias"]), Rows, n));
        var model = g.Build();
        var site = ModelStructure.Analyze(model).LinearSites.Single();
        return (model, site, SiteWeights.Weight(model, site), bias);
    }

    private static Matrix<float> RoundTrip(Matrix<float> w, QuantizationFormat f)
    {
        var q = new Matrix<float>(w.Rows, w.Cols);
        for (int o = 0; o < w.Rows; o++) BlockQuantizer.RoundTrip(w.Row(o), f, q.Row(o));
        return q;
    }

    private static void Near(float[] want, float[] got, double tolerance)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(want[i] - got[i]) <= tolerance, $"element {i}: expected {want[i]}, ONNX Runtime gave {got[i]}");
    }

    [Theory]
    [InlineData(4, 32, 96, 24)]
    [InlineData(4, 16, 70, 24)] // K not a multiple of the block
    [InlineData(8, 32, 70, 17)]
    [InlineData(4, 128, 64, 8)] // one block longer than K
    public void MatMulNBitsComputesTheProductOfTheDequantizedWeights(int bits, int blockSize, int k, int n)
    {
        var (model, site, w, bias) = MatMulModel(k, n);
        var f = QuantizationFormat.Create(bits, blockSize);
        var x = Random(Rows * k, seed: 1);
        var original = Run(model, x, Rows, k);

        long bytes = QuantizedWeights.ReplaceLinear(model, site, w, f, site.Input);
        FactorChain.Tidy(model);
        Assert.Equal(f.StoredBytes(k, n), bytes);
        Assert.Single(model.Graph.Nodes, node => node.OpType == "MatMulNBits" && node.Domain == QuantizedWeights.ContribDomain);
        Assert.DoesNotContain(model.Graph.InitializerNames, name => name == "fc.weight");

        var got = Run(model, x, Rows, k);
        Near(Product(x, RoundTrip(w, f), bias), got, 2e-4);
        // And the quantization is visible: not the float product.
        Assert.True(got.Zip(original).Max(p => Math.Abs(p.First - p.Second)) > 1e-4);
    }

    [Fact]
    public void GemmWithTransposedWeightAndBiasBecomesMatMulNBitsPlusAdd()
    {
        const int k = 64, n = 12;
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, k);
        g.Initializer(OnnxTensors.FromArray<float>("w", Random(n * k, seed: 3), [n, k], OnnxDataType.Float));
        var c = Random(n, seed: 4);
        g.Initializer(OnnxTensors.FromArray<float>("c", c, [n], OnnxDataType.Float));
        g.Output(g.Shape(g.Node("Gemm", "gemm", [x, "w", "c"], ("transB", 1L)), Rows, n));
        var model = g.Build();
        var site = ModelStructure.Analyze(model).LinearSites.Single();
        var w = SiteWeights.Weight(model, site);
        var f = QuantizationFormat.Create(4, 32);
        QuantizedWeights.ReplaceLinear(model, site, w, f, site.Input);
        var xs = Random(Rows * k, seed: 5);
        Near(Product(xs, RoundTrip(w, f), c), Run(model, xs, Rows, k), 2e-4);
    }

    [Fact]
    public void GemmWithAlphaIsLeftAloneWithTheReason()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, 32);
        var w = g.Weight("w", 32, 8);
        g.Output(g.Shape(g.Node("Gemm", "gemm", [x, w], ("alpha", 0.5f)), Rows, 8));
        var model = g.Build();
        var site = ModelStructure.Analyze(model).LinearSites.Single();
        Assert.Contains("α", QuantizedWeights.Unsupported(model, site));
        Assert.Throws<NotSupportedException>(() => QuantizedWeights.ReplaceLinear(model, site, SiteWeights.Weight(model, site), QuantizationFormat.Create(4, 32), site.Input));
    }

    [Fact]
    public void ConvolutionKernelsBecomeUint8PerChannelBehindDequantizeLinear()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", 2, 3, 8, 8);
        g.Initializer(OnnxTensors.FromArray<float>("conv.weight", Random(6 * 3 * 3 * 3, seed: 7), [6, 3, 3, 3], OnnxDataType.Float));
        g.Initializer(OnnxTensors.FromArray<float>("conv.bias", Random(6, seed: 8), [6], OnnxDataType.Float));
        g.Output(g.Shape(g.Node("Conv", "conv", [x, "conv.weight", "conv.bias"], ("pads", new long[] { 1, 1, 1, 1 }), ("kernel_shape", new long[] { 3, 3 })), 2, 6, 8, 8));
        var model = g.Build();
        var kernel = model.Graph.GetInitializer("conv.weight").ToArray<float>();
        var xs = Random(2 * 3 * 8 * 8, seed: 9);
        var before = Run(model, xs, 2, 3, 8, 8);

        long bytes = QuantizedWeights.ReplaceConv(model, ModelStructure.Analyze(model).ConvSites.Single());
        FactorChain.Tidy(model);
        Assert.Equal(6 * 27 + 6 * 4 + 6, bytes);
        Assert.Single(model.Graph.Nodes, node => node.OpType == "DequantizeLinear");
        var after = Run(model, xs, 2, 3, 8, 8);

        // The kernel ONNX Runtime used is the per-channel round trip: compare with the float conv of that kernel.
        var q = new float[kernel.Length];
        for (int o = 0; o < 6; o++) BlockQuantizer.RoundTrip(kernel.AsSpan(o * 27, 27), new QuantizationFormat(8, 27), q.AsSpan(o * 27, 27));
        var g2 = new GraphBuilder();
        var x2 = g2.Input("x", 2, 3, 8, 8);
        g2.Initializer(OnnxTensors.FromArray<float>("k", q, [6, 3, 3, 3], OnnxDataType.Float));
        g2.Initializer(model.Graph.Proto.Initializer.Single(t => t.Name == "conv.bias").Clone());
        g2.Output(g2.Shape(g2.Node("Conv", "conv", [x2, "k", "conv.bias"], ("pads", new long[] { 1, 1, 1, 1 }), ("kernel_shape", new long[] { 3, 3 })), 2, 6, 8, 8));
        Near(Run(g2.Build(), xs, 2, 3, 8, 8), after, 1e-4);
        Assert.True(before.Zip(after).Max(p => Math.Abs(p.First - p.Second)) < 0.05);
    }

    [Fact]
    public void AnInputScaleFoldsIntoTheNormWeightThatWritesIt()
    {
        const int k = 64, n = 16;
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, k);
        g.Initializer(OnnxTensors.FromArray<float>("gamma", Random(k, seed: 11), [k], OnnxDataType.Float));
        var normed = g.Shape(g.Node("Mul", "norm_scale", [x, "gamma"]), Rows, k);
        g.Initializer(OnnxTensors.FromArray<float>("fc.weight", Random(k * n, seed: 12), [k, n], OnnxDataType.Float));
        g.Output(g.Shape(g.Node("MatMul", "fc", [normed, "fc.weight"]), Rows, n));
        var model = g.Build();
        var site = ModelStructure.Analyze(model).LinearSites.Single();
        var w = SiteWeights.Weight(model, site);
        var gamma = model.Graph.GetInitializer("gamma").ToArray<float>();
        var s = Random(k, seed: 13).Select(v => 0.5f + Math.Abs(v)).ToArray();
        var f = QuantizationFormat.Create(4, 32);

        var (value, how) = QuantizedWeights.ScaleInput(model, site.Input, s, [site.Name], _ => true);
        Assert.Equal(site.Input, value);
        Assert.Contains("folded", how);
        var scaled = w.Clone();
        for (int o = 0; o < n; o++) System.Numerics.Tensors.TensorPrimitives.Multiply(scaled.Row(o), s, scaled.Row(o));
        QuantizedWeights.ReplaceLinear(model, site, scaled, f, value);
        FactorChain.Tidy(model);
        Assert.DoesNotContain(model.Graph.Nodes, node => node.Name.Contains("awq", StringComparison.Ordinal));

        var xs = Random(Rows * k, seed: 14);
        var normedX = xs.Select((v, i) => v * gamma[i % k]).ToArray();
        Near(Product(normedX, ActivationAwareScales.Quantized(w, s, f), null), Run(model, xs, Rows, k), 2e-4);
    }

    [Fact]
    public void AnInputOthersReadGetsAMulInFrontOfTheQuantizedLayers()
    {
        const int k = 32, n = 8;
        var (model, site, w, bias) = MatMulModel(k, n);
        var s = Enumerable.Range(0, k).Select(i => 0.5f + i / (float)k).ToArray();
        var (value, how) = QuantizedWeights.ScaleInput(model, site.Input, s, [site.Name], _ => true);
        Assert.NotEqual(site.Input, value);
        Assert.Contains("Mul", how);
        var scaled = w.Clone();
        for (int o = 0; o < n; o++) System.Numerics.Tensors.TensorPrimitives.Multiply(scaled.Row(o), s, scaled.Row(o));
        var f = QuantizationFormat.Create(8, 32);
        QuantizedWeights.ReplaceLinear(model, site, scaled, f, value);
        var xs = Random(Rows * k, seed: 15);
        Near(Product(xs, ActivationAwareScales.Quantized(w, s, f), bias), Run(model, xs, Rows, k), 2e-4);
    }

    [Fact]
    public void AWeightWithANaNIsRefusedNamingTheTensorAndTheGraphIsUnchanged()
    {
        var (model, site, w, _) = MatMulModel(32, 8);
        w[3, 5] = float.NaN;
        int nodes = model.Graph.Nodes.Count;
        var ex = Assert.Throws<OnnxModelException>(() => QuantizedWeights.ReplaceLinear(model, site, w, QuantizationFormat.Create(4, 32), site.Input));
        Assert.Contains("fc.weight", ex.Message);
        Assert.Contains("finite", ex.Message);
        Assert.Equal(nodes, model.Graph.Nodes.Count);
        Assert.DoesNotContain(model.Graph.Nodes, n => n.OpType == "MatMulNBits");
    }
}
