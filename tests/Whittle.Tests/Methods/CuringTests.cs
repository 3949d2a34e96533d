using Google.Protobuf;
using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;

namespace Whittle.Tests.Methods;

/// <summary>
/// CURing end to end on transformer graphs built in code (<see cref="TransformerGraphs"/>), checked against
/// straightforward computations written here: inputs tapped through ONNX Runtime, WANDA scores, a full SVD, DEIM
/// by plain loops, pseudo-inverses from the SVD.
/// </summary>
public class CuringTests
{
    private const int Blocks = 4, Batch = 4, Length = 8;

    private static BatchSet Calibration(Family family, int seed = 5) => TransformerGraphs.Batches(3, Batch, Length, family == Family.Bert, seed);

    private static (OnnxModel Model, BatchSet Set, CompressionResult Result) Run(Family family, CuringOptions options, int seed = 1, params int[] quiet) =>
        Run(family, options, CalibrationMode.Sequential, seed, quiet);

    private static (OnnxModel Model, BatchSet Set, CompressionResult Result) Run(Family family, CuringOptions options, CalibrationMode mode, int seed = 1, params int[] quiet)
    {
        var model = TransformerGraphs.Build(family, Blocks, seed: seed, quiet: quiet);
        var set = Calibration(family);
        var result = new Curing(options).Compress(new CompressionJob(model, set) { Seed = 3, Mode = mode }, [CompressionBudget.MethodDefault]).Single();
        return (model, set, result);
    }

    private static CuringDetails Details(CompressionResult r) => Assert.IsType<CuringDetails>(r.Report.Details);

    private static List<CurSiteDetails> SiteDetails(CompressionResult r) =>
        [.. r.Report.Sites.Where(s => s.Skipped is null).Select(s => Assert.IsType<CurSiteDetails>(s.Details))];

    private static LinearSite Site(OnnxModel model, BatchSet set, string name) =>
        ModelStructure.Analyze(model, ShapeProbe.Run(model, set.FirstExample()).Shapes, batchSize: 1).LinearSites.Single(s => s.Name == name);

    /// <summary>Every row of the tapped value over all calibration batches (rows × features, float64).</summary>
    private static Matrix<double> Tapped(OnnxModel model, BatchSet set, string value)
    {
        var rows = new List<float[]>();
        using var session = TappedSession.Create(model, [value]);
        foreach (var batch in set)
        {
            var inputs = batch.Where(p => session.InputNames.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value);
            var t = session.Run(inputs, [value])[value];
            int f = t.Shape[^1];
            var data = t.AsFloats();
            for (int i = 0; i < data.Length / f; i++) rows.Add(data.AsSpan(i * f, f).ToArray());
        }
        return Matrix<double>.Create(rows.Count, rows[0].Length, (i, j) => rows[i][j]);
    }

    private static Matrix<double> ToDouble(Matrix<float> a) => Matrix<double>.Create(a.Rows, a.Cols, (i, j) => a[i, j]);

    /// <summary>A⁺ = V·Σ⁺·Uᵀ from the thin SVD, dropping σ ≤ max(m, n)·ε·σ₁.</summary>
    private static Matrix<double> Pinv(Matrix<double> a)
    {
        var svd = Svd.Compute(a.View);
        double cutoff = Math.Max(a.Rows, a.Cols) * 2.220446049250313e-16 * (svd.S.Length > 0 ? svd.S[0] : 0);
        return Matrix<double>.Create(a.Cols, a.Rows, (i, j) =>
        {
            double s = 0;
            for (int k = 0; k < svd.S.Length; k++)
                if (svd.S[k] > cutoff) s += svd.Vt[k, i] / svd.S[k] * svd.U[j, k];
            return s;
        });
    }

    private static Matrix<double> Mul(Matrix<double> a, Matrix<double> b) => Matrix<double>.Create(a.Rows, b.Cols, (i, j) =>
    {
        double s = 0;
        for (int k = 0; k < a.Cols; k++) s += a[i, k] * b[k, j];
        return s;
    });

    private static Matrix<double> T(Matrix<double> a) => Matrix<double>.Create(a.Cols, a.Rows, (i, j) => a[j, i]);

    private static int ArgMaxAbs(Matrix<double> u, int col, bool[] picked)
    {
        int best = -1;
        for (int s = 0; s < u.Rows; s++)
            if (!picked[s] && (best < 0 || Math.Abs(u[s, col]) > Math.Abs(u[best, col]))) best = s;
        return best;
    }

    /// <summary>The CURing code's DEIM: pick the largest |entry| of column i, then deflate the later columns with that row.</summary>
    private static int[] ReferenceDeim(Matrix<double> basis)
    {
        var u = basis.Clone();
        int n = u.Rows, r = u.Cols;
        var picked = new bool[n];
        var p = new int[r];
        for (int i = 0; i < r; i++)
        {
            p[i] = ArgMaxAbs(u, i, picked);
            picked[p[i]] = true;
            double norm2 = 0;
            for (int t = 0; t <= i; t++) norm2 += u[p[i], t] * u[p[i], t];
            var row = Enumerable.Range(0, r).Select(c => u[p[i], c]).ToArray();
            for (int s = 0; s < n; s++)
            {
                double v = 0;
                for (int t = 0; t <= i; t++) v += u[s, t] * row[t] / norm2;
                for (int c = i + 1; c < r; c++) u[s, c] -= v * row[c];
            }
        }
        return p;
    }

    /// <summary>Textbook DEIM: the residual of column j against the interpolation at all rows chosen so far.</summary>
    private static int[] TextbookDeim(Matrix<double> u)
    {
        int n = u.Rows, r = u.Cols;
        var picked = new bool[n];
        var p = new int[r];
        for (int j = 0; j < r; j++)
        {
            var res = Matrix<double>.Create(n, 1, (s, _) => u[s, j]);
            if (j > 0)
            {
                var a = Matrix<double>.Create(j, j, (s, t) => u[p[s], t]);
                var b = Matrix<double>.Create(j, 1, (s, _) => u[p[s], j]);
                var c = Mul(Pinv(a), b);
                for (int s = 0; s < n; s++)
                    for (int t = 0; t < j; t++) res[s, 0] -= u[s, t] * c[t, 0];
            }
            p[j] = ArgMaxAbs(res, 0, picked);
            picked[p[j]] = true;
        }
        return p;
    }

    /// <summary>Q-DEIM: column-pivoted Gram–Schmidt on Uᵀ (the column of largest remaining norm first).</summary>
    private static int[] QDeim(Matrix<double> u)
    {
        var a = T(u);
        int r = a.Rows, n = a.Cols;
        var picked = new bool[n];
        var p = new int[r];
        for (int k = 0; k < r; k++)
        {
            int best = -1;
            double bestNorm = -1;
            for (int c = 0; c < n; c++)
            {
                if (picked[c]) continue;
                double s = 0;
                for (int i = 0; i < r; i++) s += a[i, c] * a[i, c];
                if (s > bestNorm) { best = c; bestNorm = s; }
            }
            p[k] = best;
            picked[best] = true;
            double norm = Math.Sqrt(bestNorm);
            var q = Enumerable.Range(0, r).Select(i => a[i, best] / norm).ToArray();
            for (int c = 0; c < n; c++)
            {
                double dot = 0;
                for (int i = 0; i < r; i++) dot += q[i] * a[i, c];
                for (int i = 0; i < r; i++) a[i, c] -= dot * q[i];
            }
        }
        return p;
    }

    /// <summary>The largest r with m·r + r² + r·n &lt; m·n, by counting.</summary>
    private static int BreakEven(int m, int n)
    {
        int r = 0;
        while ((long)m * (r + 1) + (long)(r + 1) * (r + 1) + (long)(r + 1) * n < (long)m * n) r++;
        return r;
    }

    private static void AssertClose(Matrix<double> expected, Matrix<double> actual, double rtol, string what)
    {
        Assert.Equal((expected.Rows, expected.Cols), (actual.Rows, actual.Cols));
        double scale = 0, worst = 0;
        for (int i = 0; i < expected.Rows; i++)
            for (int j = 0; j < expected.Cols; j++)
            {
                scale = Math.Max(scale, Math.Abs(expected[i, j]));
                worst = Math.Max(worst, Math.Abs(expected[i, j] - actual[i, j]));
            }
        Assert.True(worst <= rtol * scale, $"{what}: max |difference| {worst:E3} exceeds {rtol}·max|expected| = {rtol * scale:E3}");
    }

    /// <summary>The float32 factor F (out × in) stored for the right-operand MatMul chain of <paramref name="site"/>.</summary>
    private static Matrix<double> StoredFactor(OnnxModel model, string name) => T(ToDouble(model.Graph.GetInitializer(name).ToMatrix<float>()));

    // ------------------------------------------------------------------ factors against a straightforward computation

    /// <summary>
    /// Parallel mode: every block's statistics are the original's. Sequential mode: block 2's are those of the model with
    /// block 1 already compressed — the compressed model's own values at block 2's inputs.
    /// </summary>
    [Theory]
    [InlineData(DeimVariant.Reference, CurCore.PseudoInverse, CalibrationMode.Parallel)]
    [InlineData(DeimVariant.Textbook, CurCore.PseudoInverse, CalibrationMode.Parallel)]
    [InlineData(DeimVariant.QDeim, CurCore.PseudoInverse, CalibrationMode.Parallel)]
    [InlineData(DeimVariant.Reference, CurCore.Activation, CalibrationMode.Parallel)]
    [InlineData(DeimVariant.Reference, CurCore.Diagonal, CalibrationMode.Parallel)]
    [InlineData(DeimVariant.Reference, CurCore.Activation, CalibrationMode.Sequential)]
    [InlineData(DeimVariant.QDeim, CurCore.PseudoInverse, CalibrationMode.Sequential)]
    public void IndicesFactorsAndCoreMatchAStraightforwardComputation(DeimVariant deim, CurCore core, CalibrationMode mode)
    {
        var (model, set, result) = Run(Family.Llama, new CuringOptions { Selection = LayerSelection.List(1, 2), Deim = deim, Core = core }, mode);
        var compressed = result.Model;
        var sites = SiteDetails(result);
        Assert.Equal(["b1.q", "b1.k", "b1.gate", "b2.q", "b2.k", "b2.gate"], sites.Select(s => s.Site));
        foreach (var d in sites)
        {
            // Sequential: a block is calibrated as the original block on the compressed blocks' outputs. Q and K read the
            // block's input, which the compressed model still computes; the gate reads what follows the block's own
            // (now compressed) attention, which it does not.
            if (mode == CalibrationMode.Sequential && d.Site.EndsWith(".gate", StringComparison.Ordinal)) continue;
            var site = Site(model, set, d.Site);
            var w = ToDouble(SiteWeights.Weight(model, site));
            int m = w.Rows, n = w.Cols;
            int r = Math.Min(256, BreakEven(m, n));
            Assert.Equal(r, d.Rank);

            // Inputs X (tokens × n) through ONNX Runtime; a_j = sqrt(mean_t x_tj²); S = |W|·a; G = XᵀX.
            var x = Tapped(mode == CalibrationMode.Parallel ? model : compressed, set, site.Input);
            var a = Enumerable.Range(0, n).Select(j => Math.Sqrt(Enumerable.Range(0, x.Rows).Sum(t => x[t, j] * x[t, j]) / x.Rows)).ToArray();
            var s = Matrix<double>.Create(m, n, (i, j) => Math.Abs(w[i, j]) * a[j]);
            var g = Mul(T(x), x);
            var svd = Svd.Compute(s.View);
            var us = Matrix<double>.Create(m, r, (i, k) => svd.U[i, k]);
            var vs = Matrix<double>.Create(n, r, (j, k) => svd.Vt[k, j]);
            Func<Matrix<double>, int[]> select = deim switch { DeimVariant.Reference => ReferenceDeim, DeimVariant.Textbook => TextbookDeim, _ => QDeim };
            int[] rows = select(us), cols = select(vs);
            Assert.Equal(rows, d.Rows);
            Assert.Equal(cols, d.Cols);

            var c = Matrix<double>.Create(m, r, (i, k) => w[i, cols[k]]);
            var rr = Matrix<double>.Create(r, n, (k, j) => w[rows[k], j]);
            Matrix<double> u;
            if (core == CurCore.PseudoInverse) u = Mul(Mul(Pinv(c), w), Pinv(rr));
            else if (core == CurCore.Diagonal)
                u = Mul(Mul(Pinv(c), Matrix<double>.Create(m, n, (i, j) => w[i, j] * a[j])), Pinv(Matrix<double>.Create(r, n, (k, j) => rr[k, j] * a[j])));
            else
            {
                var rgrt = Mul(Mul(rr, g), T(rr));
                double ridge = 1e-6 * Enumerable.Range(0, r).Sum(k => rgrt[k, k]) / r;
                for (int k = 0; k < r; k++) rgrt[k, k] += ridge;
                u = Mul(Mul(Mul(Mul(Pinv(c), w), g), T(rr)), Pinv(rgrt));
            }

            // The graph stores C and R as exact slices of W, and U to float precision.
            string p = d.Site;
            Assert.Equal(c.AsSpan().ToArray(), StoredFactor(compressed, p + ".factor1").AsSpan().ToArray());
            Assert.Equal(rr.AsSpan().ToArray(), StoredFactor(compressed, p + ".factor3").AsSpan().ToArray());
            AssertClose(u, StoredFactor(compressed, p + ".factor2"), 1e-4, $"{p}: U");

            // ‖W − CUR‖_F/‖W‖_F and the output error ‖(W − CUR)Xᵀ‖_F/‖WXᵀ‖_F.
            var cur = Mul(Mul(c, u), rr);
            var e = Matrix<double>.Create(m, n, (i, j) => w[i, j] - cur[i, j]);
            Assert.Equal(MatrixNorms.Frobenius(e.View) / MatrixNorms.Frobenius(w.View), d.RelativeError, 1e-6);
            double output = MatrixNorms.Frobenius(Mul(e, T(x)).View) / MatrixNorms.Frobenius(Mul(w, T(x)).View);
            Assert.NotNull(d.OutputError);
            Assert.Equal(output, d.OutputError.Value, 1e-6);
            var report = result.Report.Sites.Single(r => r.Site == d.Site);
            Assert.Equal(d.RelativeError, report.ErrorEstimate);
            Assert.Equal(d.OutputError, report.MeasuredError);
        }
    }

    [Fact]
    public void TheWrittenGraphComputesXTimesCurTransposedAtEveryRewrittenSite()
    {
        var (model, set, result) = Run(Family.Llama, new CuringOptions { Selection = LayerSelection.List(1, 2) });
        var compressed = result.Model;
        foreach (var d in SiteDetails(result))
        {
            var site = Site(model, set, d.Site);
            var w = ToDouble(SiteWeights.Weight(model, site));
            var c = Matrix<double>.Create(w.Rows, d.Rank, (i, k) => w[i, d.Cols[k]]);
            var r = Matrix<double>.Create(d.Rank, w.Cols, (k, j) => w[d.Rows[k], j]);
            var cur = Mul(Mul(c, StoredFactor(compressed, d.Site + ".factor2")), r);
            // The compressed model's own input at the site (earlier sites are already rewritten), and its product output.
            var x = Tapped(compressed, set, site.Input);
            var y = Tapped(compressed, set, site.ProductOutput);
            AssertClose(Mul(x, T(cur)), y, 1e-4, $"{d.Site}: x·(CUR)ᵀ");
        }
        // Sites left alone keep their weights and products.
        var untouched = Site(model, set, "b1.up");
        Assert.True(compressed.Graph.TryGetInitializer(untouched.Weight.Initializer, out _));
        Assert.False(compressed.Graph.TryGetInitializer(Site(model, set, "b1.q").Weight.Initializer, out _));
    }

    [Theory]
    [InlineData(Family.Llama)]
    [InlineData(Family.Gpt2)]
    [InlineData(Family.Bert)]
    public void ParameterCountsFallByMnMinusTheFactorsPerMatrix(Family family)
    {
        var (model, set, result) = Run(family, new CuringOptions { Layers = 2, Targets = [BlockRole.Query, BlockRole.Key, BlockRole.Value, BlockRole.Gate, BlockRole.Down] });
        static long Count(OnnxModel m) => m.Graph.Proto.Initializer.Where(t => (OnnxDataType)t.DataType == OnnxDataType.Float).Sum(t => t.Dims.Aggregate(1L, (a, d) => a * d));
        var sites = SiteDetails(result);
        Assert.Equal(2 * 5, sites.Count);
        long saved = 0;
        foreach (var d in sites)
        {
            int m = d.OutFeatures, n = d.InFeatures, r = Math.Min(256, BreakEven(m, n));
            Assert.Equal(r, d.Rank);
            Assert.Equal((long)m * r + (long)r * r + (long)r * n, d.FactorParameters);
            var report = result.Report.Sites.Single(s => ReferenceEquals(s.Details, d));
            Assert.Equal((long)m * n - d.FactorParameters, report.ParametersBefore - report.ParametersAfter);
            saved += (long)m * n - d.FactorParameters;
        }
        Assert.Equal(Count(model) - saved, Count(result.Model));
        Assert.Equal(Count(model), result.Report.Before.Parameters);
        Assert.Equal(Count(result.Model), result.Report.After.Parameters);
        Assert.True(result.Report.After.MacsPerExample < result.Report.Before.MacsPerExample);
    }

    // ------------------------------------------------------------------ fused Q/K/V (GPT-2) and encoders (BERT)

    [Fact]
    public void FusedQkvRowsAreDecomposedSeparatelyAndTheValueRowsKept()
    {
        var (model, set, result) = Run(Family.Gpt2, new CuringOptions { Selection = LayerSelection.List(2) });
        var sites = SiteDetails(result);
        Assert.Equal([("b2.qkv", "q", 0), ("b2.qkv", "k", 16), ("b2.fc1", "gate", 0)], sites.Select(s => (s.Site, s.Role, s.RowOffset)));
        Assert.Equal(["b2.qkv:q", "b2.qkv:k", "b2.fc1"], result.Report.Sites.Select(s => s.Site));
        var site = Site(model, set, "b2.qkv");
        var w = ToDouble(SiteWeights.Weight(model, site));
        var x = Tapped(result.Model, set, site.Input);
        var y = Tapped(result.Model, set, site.ProductOutput);
        Assert.Equal(48, y.Cols);
        var expected = new Matrix<double>(48, 16);
        foreach (var d in sites.Take(2))
        {
            var block = Matrix<double>.Create(16, 16, (i, j) => w[d.RowOffset + i, j]);
            var c = Matrix<double>.Create(16, d.Rank, (i, k) => block[i, d.Cols[k]]);
            var r = Matrix<double>.Create(d.Rank, 16, (k, j) => block[d.Rows[k], j]);
            var u = T(ToDouble(result.Model.Graph.GetInitializer($"b2.qkv.block{(d.RowOffset == 0 ? 1 : 2)}.factor2").ToMatrix<float>()));
            Mul(Mul(c, Mul(Pinv(c), Mul(block, Pinv(r)))), r).View.CopyTo(expected.Slice(d.RowOffset, 0, 16, 16));
            AssertClose(Mul(Mul(Pinv(c), block), Pinv(r)), u, 1e-4, $"{d.Role}: U");
        }
        w.Slice(32, 0, 16, 16).CopyTo(expected.Slice(32, 0, 16, 16)); // values untouched
        AssertClose(Mul(x, T(expected)), y, 1e-4, "fused Q/K/V output");
        // A 16 × 16 block at r = 6 stores 16·6 + 36 + 6·16 = 228 instead of 256.
        Assert.All(sites.Take(2), d => Assert.Equal(228, d.FactorParameters));
    }

    [Fact]
    public void AngularDistancesEqualADirectComputationAtTheLastRealToken()
    {
        var (model, set, result) = Run(Family.Bert, new CuringOptions { Layers = 1 });
        var details = Details(result);
        Assert.Equal(Curing.DefaultMaskInput, details.MaskInput);
        Assert.Equal(Batch * set.Count, details.Sequences);
        // Post-norm: each block reads the normalized state the previous block wrote; the last block's own output closes the list.
        string[] boundaries = ["embed_ln_out", "b0.ln2_out", "b1.ln2_out", "b2.ln2_out", "b3.mlp_residual_out"];
        Assert.Equal(boundaries[..^1], details.Blocks.Select(b => b.Input));
        Assert.Equal(boundaries[1..], details.Blocks.Select(b => b.Output));

        var states = new List<double[]>[boundaries.Length];
        using (var session = TappedSession.Create(model, boundaries))
            for (int k = 0; k < boundaries.Length; k++)
            {
                states[k] = [];
                foreach (var batch in set)
                {
                    var t = session.Run(batch, [boundaries[k]])[boundaries[k]].AsFloats();
                    var mask = batch["attention_mask"].AsInt64();
                    int width = t.Length / (Batch * Length);
                    for (int s = 0; s < Batch; s++)
                    {
                        int last = Enumerable.Range(0, Length).Last(p => mask[s * Length + p] != 0);
                        states[k].Add([.. t.AsSpan((s * Length + last) * width, width).ToArray().Select(v => (double)v)]);
                    }
                }
            }
        for (int l = 0; l < Blocks; l++)
        {
            double mean = states[l].Zip(states[l + 1], (a, b) =>
            {
                double dot = a.Zip(b, (p, q) => p * q).Sum(), na = Math.Sqrt(a.Sum(v => v * v)), nb = Math.Sqrt(b.Sum(v => v * v));
                return Math.Acos(Math.Clamp(dot / (na * nb), -1, 1)) / Math.PI;
            }).Average();
            // Segments run as sessions of their own: ORT may round a few operations differently at their edges (~1e-8).
            Assert.Equal(mean, details.Blocks[l].Distance, 1e-7);
            Assert.Equal(l is > 0 and < Blocks - 1, details.Blocks[l].Eligible);
        }
        var chosen = details.Blocks.Where(b => b.Eligible).MinBy(b => b.Distance)!.Block;
        Assert.Equal([chosen], details.ChosenBlocks);
        Assert.Equal([$"b{chosen}.q", $"b{chosen}.k", $"b{chosen}.fc1"], result.Report.Sites.Select(s => s.Site));
    }

    [Fact]
    public void AngularSelectionPicksTheBlocksThatChangeTheHiddenStateLeast()
    {
        // Blocks 0 and 1 barely change the stream; block 0 is never eligible, so block 1 wins.
        var (_, _, result) = Run(Family.Llama, new CuringOptions { Layers = 1 }, quiet: [0, 1]);
        var details = Details(result);
        Assert.True(details.Blocks[0].Distance < 0.01 && details.Blocks[1].Distance < 0.01, string.Join(", ", details.Blocks.Select(b => b.Distance)));
        Assert.True(details.Blocks[2].Distance > 0.05, string.Join(", ", details.Blocks.Select(b => b.Distance)));
        Assert.Equal([1], details.ChosenBlocks);
        Assert.Equal([false, true, false, false], details.Blocks.Select(b => b.Chosen));
        Assert.Equal("angular", details.Selection);

        var last = Run(Family.Llama, new CuringOptions { Layers = 1, Selection = LayerSelection.Last }, quiet: [0, 1]).Result;
        Assert.Equal([2], Details(last).ChosenBlocks);
        Assert.Equal("last", Details(last).Selection);
        var two = Run(Family.Llama, new CuringOptions { Layers = 2, Selection = LayerSelection.Last }).Result;
        Assert.Equal([1, 2], Details(two).ChosenBlocks);
        // Last and list selection still report every block's distance (computed in the same single pass).
        Assert.All(Details(two).Blocks, b => Assert.InRange(b.Distance, 0, 1));
    }

    // ------------------------------------------------------------------ layer selection rules

    [Fact]
    public void SelectBlocksNeverChoosesTheFirstOrLastBlock()
    {
        double[] d = [0.01, 0.5, 0.2, 0.3, 0.4, 0.001];
        Assert.Equal([2], Curing.SelectBlocks(d, 1, LayerSelection.Angular));
        Assert.Equal([2, 3], Curing.SelectBlocks(d, 2, LayerSelection.Angular));
        Assert.Equal([1, 2, 3, 4], Curing.SelectBlocks(d, 4, LayerSelection.Angular));
        Assert.Equal([4], Curing.SelectBlocks(d, 1, LayerSelection.Last));
        Assert.Equal([2, 3, 4], Curing.SelectBlocks(d, 3, LayerSelection.Last));
        Assert.Equal([1, 3, 4], Curing.SelectBlocks(d, 0, LayerSelection.List(4, 1, 3)));
        Assert.Equal([1, 3], Curing.SelectBlocks([0.1, 0.2, 0.3, 0.2, 0.9], 2, LayerSelection.Angular)); // ties: lower block first
        Assert.Equal([2], Curing.SelectBlocks([0.1, double.NaN, 0.3, 0.2], 1, LayerSelection.Angular)); // NaN last

        Assert.Throws<ArgumentOutOfRangeException>(() => Curing.SelectBlocks(d, 5, LayerSelection.Angular));
        Assert.Throws<ArgumentOutOfRangeException>(() => Curing.SelectBlocks(d, 0, LayerSelection.Last));
        var first = Assert.Throws<ArgumentOutOfRangeException>(() => Curing.SelectBlocks(d, 1, LayerSelection.List(0)));
        Assert.Contains("never decomposed", first.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Curing.SelectBlocks(d, 1, LayerSelection.List(5)));
        Assert.Throws<ArgumentException>(() => LayerSelection.List(2, 2));
        Assert.Equal("list:4,1,3", LayerSelection.List(4, 1, 3).ToString());
    }

    [Fact]
    public void AngularDistanceOfKnownVectors()
    {
        // Rotations by 0, 90 and 180 degrees between consecutive boundaries: distances 0, 1/2, 1 (one sequence).
        var h0 = new Matrix<float>(1, 2, [1, 0]);
        var h1 = new Matrix<float>(1, 2, [2, 0]);
        var h2 = new Matrix<float>(1, 2, [0, 3]);
        var h3 = new Matrix<float>(1, 2, [0, -1]);
        var d = Curing.AngularDistances([h0, h1, h2, h3]);
        Assert.Equal(0, d[0], 1e-12);
        Assert.Equal(0.5, d[1], 1e-12);
        Assert.Equal(1, d[2], 1e-12);
        // Two sequences average; a zero vector leaves its sequence out.
        var a = new Matrix<float>(2, 2, [1, 0, 0, 0]);
        var b = new Matrix<float>(2, 2, [1, 1, 1, 0]);
        Assert.Equal(0.25, Curing.AngularDistances([a, b])[0], 1e-7);
        Assert.Throws<ArgumentException>(() => Curing.AngularDistances([a, h0]));
    }

    // ------------------------------------------------------------------ contract

    [Fact]
    public void TheOriginalIsUntouchedAndTheSameSeedGivesTheSameModel()
    {
        var model = TransformerGraphs.Build(Family.Llama, Blocks);
        var before = model.Proto.ToByteArray();
        var set = Calibration(Family.Llama);
        var job = new CompressionJob(model, set) { Seed = 9 };
        var one = new Curing(new CuringOptions { Layers = 2 }).Compress(job, [CompressionBudget.MethodDefault]).Single();
        var two = new Curing(new CuringOptions { Layers = 2 }).Compress(job, [CompressionBudget.MethodDefault]).Single();
        Assert.Equal(before, model.Proto.ToByteArray());
        Assert.Equal(one.Model.Proto.ToByteArray(), two.Model.Proto.ToByteArray());
        Assert.Equal([Stages.Analysis, Stages.Calibration, Stages.Decomposition, Stages.Rewrite], one.Report.Timings.Select(t => t.Stage));
        Assert.All(one.Report.Timings, t => Assert.True(t.Seconds > 0));
        Assert.Equal("curing", one.Report.Method);
    }

    [Theory]
    [InlineData(Family.Llama)]
    [InlineData(Family.Bert)]
    public void OneAndTwoCalibrationPassesGiveTheSameModel(Family family)
    {
        var one = Run(family, new CuringOptions { Layers = 1, Core = CurCore.Activation }).Result;
        var two = Run(family, new CuringOptions { Layers = 1, Core = CurCore.Activation, OnePassStatisticsBytes = 0 }).Result;
        Assert.Equal(one.Model.Proto.ToByteArray(), two.Model.Proto.ToByteArray());
        Assert.Equal(SiteDetails(one).Select(s => s.OutputError), SiteDetails(two).Select(s => s.OutputError));
    }

    [Fact]
    public void TheDefaultBlockCountIsThePapersCappedAtLMinusTwoWithAWarning()
    {
        var (_, _, result) = Run(Family.Llama, new CuringOptions());
        Assert.Equal([1, 2], Details(result).ChosenBlocks);
        Assert.Contains(result.Report.Warnings, w => w.Contains("L − 2 = 2"));
        Assert.Equal(["q", "k", "gate"], Details(result).Targets);
        Assert.Equal(("reference", "pinv", 256), (Details(result).Deim, Details(result).Core, Details(result).MaxRank));
    }

    [Fact]
    public void OtherRolesAndARankCapAreHonoured()
    {
        var (_, _, result) = Run(Family.Llama, new CuringOptions
        {
            Selection = LayerSelection.List(1),
            Targets = [BlockRole.Value, BlockRole.Output, BlockRole.Up, BlockRole.Down],
            MaxRank = 3,
            MeasureOutputError = false,
        });
        var sites = SiteDetails(result);
        Assert.Equal(["b1.v", "b1.o", "b1.up", "b1.down"], sites.Select(s => s.Site));
        Assert.All(sites, s => Assert.Equal(3, s.Rank));
        Assert.All(sites, s => Assert.Null(s.OutputError));
        Assert.Equal([BreakEven(16, 16), BreakEven(16, 16), BreakEven(32, 16), BreakEven(16, 32)], sites.Select(s => s.BreakEvenRank));
    }

    [Fact]
    public void ModelsWithFewerThanThreeBlocksAndBudgetsAreRejected()
    {
        var tiny = OnnxModel.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures", "llama_tiny.onnx"));
        var ids = new InputBatch("input_ids", HostTensor.Int64(new long[2 * 8], 2, 8));
        var job = new CompressionJob(tiny, new BatchSet([ids]));
        var e = Assert.Throws<ArgumentException>(() => new Curing().Compress(job, [CompressionBudget.MethodDefault]));
        Assert.Contains("at least 3 transformer blocks", e.Message);
        Assert.Contains("has 2", e.Message);

        var model = TransformerGraphs.Build(Family.Llama, Blocks);
        var ok = new CompressionJob(model, Calibration(Family.Llama));
        Assert.Contains("no budget", Assert.Throws<ArgumentException>(() => new Curing().Compress(ok, [CompressionBudget.KeepParameters(0.5)])).Message);
        var tooMany = Assert.Throws<ArgumentOutOfRangeException>(() => new Curing(new CuringOptions { Layers = 3 }).Compress(ok, [CompressionBudget.MethodDefault]));
        Assert.Contains("at most L − 2 = 2", tooMany.Message);
        Assert.Throws<ArgumentException>(() => new Curing(new CuringOptions { Layers = 2, Selection = LayerSelection.List(1) }));
        Assert.Throws<ArgumentException>(() => new Curing(new CuringOptions { Targets = [] }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Curing(new CuringOptions { MaxRank = 0 }));
    }
}
