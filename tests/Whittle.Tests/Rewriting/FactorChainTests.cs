using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Rewriting;
using Whittle.Runtime;
using Whittle.Tests.Analysis;

namespace Whittle.Tests.Rewriting;

public class FactorChainTests
{
    private const int In = 12, Out = 7, Rows = 5;

    /// <summary>A model y = x·B + b (B stored in × out), W = Bᵀ.</summary>
    private static (OnnxModel Model, float[,] W, float[] Bias) MatMulModel()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, In);
        var y = g.Linear("fc", x, In, Out, [Rows]);
        g.Output(y);
        var model = g.Build();
        var b = model.Graph.GetInitializer("fc.weight").ToMatrix<float>();
        var w = new float[Out, In];
        for (int i = 0; i < Out; i++) for (int j = 0; j < In; j++) w[i, j] = b[j, i];
        return (model, w, model.Graph.GetInitializer("fc.bias").ToArray<float>());
    }

    private static LinearSite Site(OnnxModel model, string name) =>
        ModelStructure.Analyze(model).LinearSites.Single(s => s.Name == name);

    private static float[] Run(OnnxModel model, float[] x, params int[] shape)
    {
        using var session = TappedSession.Create(model, []);
        var outputs = session.Run(new Dictionary<string, HostTensor> { ["x"] = HostTensor.Float(x, shape) });
        return outputs[session.OutputNames[0]].AsFloats();
    }

    /// <summary>y = x·(F₁F₂…)ᵀ·scale + bias·biasScale, computed directly.</summary>
    private static float[] Expected(float[] x, IReadOnlyList<Matrix<float>> factors, float[]? bias, float scale = 1, float biasScale = 1)
    {
        var w = factors[0];
        for (int j = 1; j < factors.Count; j++) w = Blas.Multiply<float>(w, factors[j]);
        var y = new float[Rows * Out];
        for (int r = 0; r < Rows; r++)
            for (int o = 0; o < Out; o++)
            {
                double s = 0;
                for (int i = 0; i < In; i++) s += (double)x[r * In + i] * w[o, i];
                y[r * Out + o] = (float)(scale * s + (bias is null ? 0 : biasScale * bias[o]));
            }
        return y;
    }

    private static float[] Input() => RandomMatrix.Gaussian<float>(Rows, In, seed: 11).AsSpan().ToArray();

    [Fact]
    public void WeightIsOutByInWhateverTheStoredLayout()
    {
        var (model, w, bias) = MatMulModel();
        var site = Site(model, "fc");
        var read = SiteWeights.Weight(model, site);
        Assert.Equal((Out, In), (read.Rows, read.Cols));
        for (int i = 0; i < Out; i++) for (int j = 0; j < In; j++) Assert.Equal(w[i, j], read[i, j]);
        Assert.Equal(bias, SiteWeights.Bias(model, site));
        Assert.Equal(OnnxDataType.Float, SiteWeights.ComputeType(model, site));
    }

    [Fact]
    public void TwoFactorChainComputesTheProductOfTheFactorsAndKeepsTheBias()
    {
        var (model, _, bias) = MatMulModel();
        var site = Site(model, "fc");
        var l = RandomMatrix.Gaussian<float>(Out, 3, seed: 1);
        var r = RandomMatrix.Gaussian<float>(3, In, seed: 2);
        var names = FactorChain.Replace(model, site, [l, r]);
        FactorChain.Tidy(model);

        Assert.Equal(2, names.Count);
        Assert.False(model.Graph.TryGetInitializer("fc.weight", out _));
        Assert.Equal([3L, Out], model.Graph.GetInitializer(names[0]).Shape); // F₁ᵀ: r × out
        Assert.Equal([(long)In, 3L], model.Graph.GetInitializer(names[1]).Shape);
        var x = Input();
        var got = Run(model, x, Rows, In);
        var want = Expected(x, [l, r], bias);
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 4);
    }

    [Fact]
    public void ExactFactorsReproduceTheOriginalOutputs()
    {
        var (model, w, _) = MatMulModel();
        var x = Input();
        var before = Run(model, x, Rows, In);
        var site = Site(model, "fc");
        // W = I_out · W: a trivially exact two-factor chain, and a three-factor one W = I·I·W.
        var wm = Matrix<float>.Create(Out, In, (i, j) => w[i, j]);
        FactorChain.Replace(model, site, [Matrix<float>.Identity(Out), Matrix<float>.Identity(Out), wm]);
        var after = Run(model, x, Rows, In);
        for (int i = 0; i < before.Length; i++) Assert.Equal(before[i], after[i], 5);
        Assert.Equal(3, model.Graph.Nodes.Count(n => n.OpType == "MatMul"));
    }

    [Fact]
    public void GemmWithTransposedWeightAlphaAndBetaBecomesAChainPlusScaledBias()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, In);
        var w = g.Weight("w", Out, In); // transB = 1: stored out × in
        var c = g.Weight("c", Out);
        var y = g.Node("Gemm", "gemm", [x, w, c], ("transB", 1L), ("alpha", 0.5f), ("beta", 2f));
        g.Shape(y, Rows, Out);
        g.Output(y);
        var model = g.Build();
        var site = Site(model, "gemm");
        var stored = model.Graph.GetInitializer("w").ToMatrix<float>();
        var read = SiteWeights.Weight(model, site);
        for (int i = 0; i < Out; i++) for (int j = 0; j < In; j++) Assert.Equal(stored[i, j], read[i, j]);
        var bias = model.Graph.GetInitializer("c").ToArray<float>();

        var l = RandomMatrix.Gaussian<float>(Out, 4, seed: 3);
        var r = RandomMatrix.Gaussian<float>(4, In, seed: 4);
        FactorChain.Replace(model, site, [l, r]);
        FactorChain.Tidy(model);
        Assert.DoesNotContain(model.Graph.Nodes, n => n.OpType == "Gemm");
        var xs = Input();
        var got = Run(model, xs, Rows, In);
        var want = Expected(xs, [l, r], bias, scale: 0.5f, biasScale: 2f);
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 4);
    }

    [Fact]
    public void LeftOperandWeightChainsOnTheLeft()
    {
        // y = W·x with x [In, Rows]: features on the second-to-last axis.
        var g = new GraphBuilder();
        var x = g.Input("x", In, Rows);
        var w = g.Weight("w", Out, In);
        var y = g.Node("MatMul", "left", [w, x]);
        g.Shape(y, Out, Rows);
        g.Output(y);
        var model = g.Build();
        var site = Site(model, "left");
        Assert.True(site.WeightIsLeftOperand);
        var l = RandomMatrix.Gaussian<float>(Out, 2, seed: 5);
        var r = RandomMatrix.Gaussian<float>(2, In, seed: 6);
        FactorChain.Replace(model, site, [l, r]);
        var xs = RandomMatrix.Gaussian<float>(In, Rows, seed: 7);
        var got = Run(model, xs.AsSpan().ToArray(), In, Rows);
        var want = Blas.Multiply<float>(Blas.Multiply<float>(l, r), xs);
        for (int i = 0; i < Out; i++) for (int j = 0; j < Rows; j++) Assert.Equal(want[i, j], got[i * Rows + j], 4);
    }

    [Fact]
    public void TiedWeightThroughATransposeKeepsTheSharedTensor()
    {
        // logits = h·Eᵀ where E [Out, In] also feeds another consumer: the rewrite must not delete E.
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, In);
        var e = g.Weight("embedding", Out, In);
        var et = g.Node("Transpose", "tied", [e], ("perm", new long[] { 1, 0 }));
        var y = g.Node("MatMul", "head", [x, et]);
        g.Shape(y, Rows, Out);
        g.Output(y);
        var other = g.Node("ReduceSum", "uses_e", [e]);
        g.Output(other);
        var model = g.Build();
        var site = Site(model, "head");
        Assert.Equal(0, site.StoredOutAxis);
        FactorChain.Replace(model, site, [Matrix<float>.Identity(Out), SiteWeights.Weight(model, site)]);
        FactorChain.Tidy(model);
        Assert.True(model.Graph.TryGetInitializer("embedding", out _));
        Assert.DoesNotContain(model.Graph.Nodes, n => n.OpType == "Transpose");
    }

    [Fact]
    public void FactorsThatDoNotChainToTheWeightShapeAreRejectedAndTheGraphIsUnchanged()
    {
        var (model, _, _) = MatMulModel();
        var site = Site(model, "fc");
        int nodes = model.Graph.Nodes.Count;
        Assert.Throws<ArgumentException>(() => FactorChain.Replace(model, site, [new Matrix<float>(Out, 3), new Matrix<float>(2, In)]));
        Assert.Throws<ArgumentException>(() => FactorChain.Replace(model, site, [new Matrix<float>(Out + 1, 3), new Matrix<float>(3, In)]));
        Assert.Throws<ArgumentException>(() => FactorChain.Replace(model, site, []));
        Assert.Equal(nodes, model.Graph.Nodes.Count);
        Assert.True(model.Graph.TryGetInitializer("fc.weight", out _));
    }
}
