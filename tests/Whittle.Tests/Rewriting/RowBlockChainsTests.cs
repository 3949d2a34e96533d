using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;
using Whittle.Tests.Analysis;

namespace Whittle.Tests.Rewriting;

public class RowBlockChainsTests
{
    private const int In = 6, Rows = 4;

    private static LinearSite Site(OnnxModel model, string name) => ModelStructure.Analyze(model).LinearSites.Single(s => s.Name == name);

    private static float[] Run(OnnxModel model, float[] x, params int[] shape)
    {
        using var session = TappedSession.Create(model, []);
        return session.Run(new Dictionary<string, HostTensor> { ["x"] = HostTensor.Float(x, shape) })[session.OutputNames[0]].AsFloats();
    }

    [Fact]
    public void EachRowBlockGetsItsOwnChainAndTheBiasStays()
    {
        // y = x·B + b, B stored [In, 9]: W (9 × In) = [W₁ (3 rows); W₂ (4 rows); W₃ (2 rows)].
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, In);
        g.Output(g.Linear("qkv", x, In, 9, [Rows]));
        var model = g.Build();
        var site = Site(model, "qkv");
        var w = SiteWeights.Weight(model, site);
        var bias = SiteWeights.Bias(model, site)!;
        var l1 = RandomMatrix.Gaussian<float>(3, 2, seed: 1);
        var r1 = RandomMatrix.Gaussian<float>(2, In, seed: 2);
        var w2 = w.SliceRows(3, 4).ToMatrix();
        var c3 = RandomMatrix.Gaussian<float>(2, 1, seed: 3);
        var u3 = RandomMatrix.Gaussian<float>(1, 1, seed: 4);
        var r3 = RandomMatrix.Gaussian<float>(1, In, seed: 5);
        var names = RowBlockChains.Replace(model, site, [[l1, r1], [w2], [c3, u3, r3]]);
        FactorChain.Tidy(model);

        Assert.Equal([2, 1, 3], names.Select(n => n.Count));
        Assert.False(model.Graph.TryGetInitializer(site.Weight.Initializer, out _));
        Assert.Single(model.Graph.Nodes, n => n.OpType == "Concat");
        var expectedW = new Matrix<float>(9, In);
        Blas.Multiply<float>(l1, r1).View.CopyTo(expectedW.SliceRows(0, 3));
        w2.View.CopyTo(expectedW.SliceRows(3, 4));
        Blas.Multiply<float>(Blas.Multiply<float>(c3, u3), r3).View.CopyTo(expectedW.SliceRows(7, 2));
        var xs = RandomMatrix.Gaussian<float>(Rows, In, seed: 6);
        var got = Run(model, xs.AsSpan().ToArray(), Rows, In);
        for (int r = 0; r < Rows; r++)
            for (int o = 0; o < 9; o++)
            {
                double s = bias[o];
                for (int i = 0; i < In; i++) s += (double)xs[r, i] * expectedW[o, i];
                Assert.Equal(s, got[r * 9 + o], 4);
            }
    }

    [Fact]
    public void BlocksThatDoNotCoverTheRowsOrDoNotChainAreRejectedAndTheGraphIsUnchanged()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, In);
        g.Output(g.Linear("qkv", x, In, 9, [Rows]));
        var model = g.Build();
        var site = Site(model, "qkv");
        int nodes = model.Graph.Nodes.Count;
        Assert.Throws<ArgumentException>(() => RowBlockChains.Replace(model, site, [[new Matrix<float>(3, In)], [new Matrix<float>(5, In)]]));
        Assert.Throws<ArgumentException>(() => RowBlockChains.Replace(model, site, [[new Matrix<float>(9, 2), new Matrix<float>(3, In)]]));
        Assert.Throws<ArgumentException>(() => RowBlockChains.Replace(model, site, [[new Matrix<float>(9, In + 1)]]));
        Assert.Throws<ArgumentException>(() => RowBlockChains.Replace(model, site, [[]]));
        Assert.Throws<ArgumentException>(() => RowBlockChains.Replace(model, site, []));
        Assert.Equal(nodes, model.Graph.Nodes.Count);

        var gemm = new GraphBuilder();
        var xg = gemm.Input("x", Rows, In);
        var y = gemm.Node("Gemm", "gemm", [xg, gemm.Weight("w", 9, In)], ("transB", 1L));
        gemm.Shape(y, Rows, 9);
        gemm.Output(y);
        var gm = gemm.Build();
        Assert.Throws<NotSupportedException>(() => RowBlockChains.Replace(gm, Site(gm, "gemm"), [[new Matrix<float>(9, In)]]));
    }
}
