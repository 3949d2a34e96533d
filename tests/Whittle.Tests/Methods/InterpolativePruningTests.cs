using Whittle.Compression;
using Whittle.Data;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Analysis;
using Whittle.Tests.Rewriting;

namespace Whittle.Tests.Methods;

public class InterpolativePruningTests
{
    private const int In = 10, Hidden = 24, Out = 5, Batch = 32;

    /// <summary>x → fc1 (+b) → ReLU → fc2 (+b) → y.</summary>
    internal static OnnxModel OneHiddenLayer(int seed)
    {
        var b = new GraphBuilder();
        var x = b.Input("x", Batch, In);
        var h = b.Linear("fc1", x, In, Hidden, [Batch]);
        var r = b.Shape(b.Node("Relu", "relu", [h]), Batch, Hidden);
        b.Output(b.Linear("fc2", r, Hidden, Out, [Batch]));
        return PruningModels.DynamicBatch(PruningModels.Randomize(b.Build(), seed));
    }

    /// <summary>Inputs on a 6-dimensional subspace plus small noise: hidden activations with a decaying spectrum, as trained nets have.</summary>
    internal static BatchSet Data(int batches, int seed)
    {
        var rng = new Random(seed);
        var basis = RandomMatrix.Gaussian<double>(6, In, seed + 1);
        var list = new List<InputBatch>();
        for (int k = 0; k < batches; k++)
        {
            var data = new float[Batch * In];
            for (int i = 0; i < Batch; i++)
            {
                var c = Enumerable.Range(0, 6).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
                for (int j = 0; j < In; j++)
                    data[i * In + j] = (float)(Enumerable.Range(0, 6).Sum(p => c[p] * basis[p, j]) + 0.02 * (rng.NextDouble() - 0.5));
            }
            list.Add(new InputBatch("x", HostTensor.Float(data, Batch, In)));
        }
        return new BatchSet(list, description: "synthetic");
    }

    private static Matrix<double> Tap(OnnxModel model, BatchSet set, string value)
    {
        using var session = TappedSession.Create(model, [value]);
        var rows = new List<float[]>();
        int cols = 0;
        foreach (var batch in set)
        {
            var t = session.Run(batch, [value])[value];
            cols = t.Shape[^1];
            rows.Add(t.AsFloats());
        }
        var all = rows.SelectMany(r => r).ToArray();
        return Matrix<double>.Create(all.Length / cols, cols, (i, j) => all[i * cols + j]);
    }

    [Fact]
    public void MeasuredErrorEqualsTheErrorTheIdPredicts_OneHiddenLayer()
    {
        var model = OneHiddenLayer(seed: 3);
        var set = Data(batches: 4, seed: 5);
        var result = Assert.Single(new InterpolativePruning().Compress(new CompressionJob(model, set), [CompressionBudget.KeepParameters(0.5)]));
        var site = result.Report.Sites.Single(s => s.Site == "fc1");
        var details = Assert.IsType<PrunedSiteDetails>(site.Details);
        int k = site.NewSize;
        Assert.Equal(Hidden, site.OldSize);
        Assert.InRange(k, 1, Hidden - 1);

        // Independently: Z from ORT on the calibration data, its rank-k ID by CPQR of Z itself, W2 from the file.
        var z = Tap(model, set, "relu_out");
        var id = InterpolativeDecompositions.Compute(z.View, new IdOptions(Rank: k));
        Assert.Equal(id.Indices.Order(), details.Kept);
        var approx = Blas.Multiply(InterpolativeDecompositions.GatherColumns(z.View, id.Indices).View, id.Interpolation.View);
        var e = Matrix<double>.Create(z.Rows, z.Cols, (i, j) => z[i, j] - approx[i, j]);
        double activationError = MatrixNorms.Frobenius(e.View) / MatrixNorms.Frobenius(z.View);
        var w2 = model.Graph.GetInitializer("fc2.weight").ToMatrix<double>(); // [hidden, out]: y = z·W2
        double outputError = MatrixNorms.Frobenius(Blas.Multiply(e.View, w2.View).View) / MatrixNorms.Frobenius(Blas.Multiply(z.View, w2.View).View);

        Assert.Equal(activationError, details.RelativeActivationError, 1e-5);
        Assert.Equal(outputError, details.PredictedOutputError!.Value, 1e-5);
        Assert.Equal(outputError, site.MeasuredError!.Value, 1e-5);
        Assert.Equal(activationError, site.ErrorEstimate!.Value, 1e-5); // the default proxy: the relative residual
        var paper = Assert.Single(new InterpolativePruning(new PruningOptions { Proxy = ErrorProxy.DiagonalRatio })
            .Compress(new CompressionJob(model, set), [CompressionBudget.Tolerance(id.DiagonalRatio * 1.0000001)])).Report.Sites.Single(s => s.Site == "fc1");
        Assert.Equal(k, paper.NewSize); // k(ε) = min{k : |r_kk| ≤ ε·|r_00|}
        Assert.Equal(id.DiagonalRatio, paper.ErrorEstimate!.Value, 1e-6);

        // The written model's outputs on the calibration data are off by exactly that (fc2's bias cancels in y − ŷ).
        var y = Tap(model, set, "fc2_out");
        var yh = Tap(result.Model, set, "fc2_out");
        var yNoBias = Blas.Multiply(z.View, w2.View);
        double measured = MatrixNorms.FrobeniusDistance(y.View, yh.View) / MatrixNorms.Frobenius(yNoBias.View);
        Assert.Equal(outputError, measured, 1e-5);
        Assert.True(outputError > 1e-4, "the test needs a lossy ID");
    }

    [Fact]
    public void ColumnScalingRanksZTimesNextLayerNormsAndFoldsTheUnscaledT()
    {
        var model = OneHiddenLayer(seed: 21);
        var set = Data(batches: 4, seed: 22);
        var options = new PruningOptions { Scaling = ColumnScaling.On };
        var result = Assert.Single(new InterpolativePruning(options).Compress(new CompressionJob(model, set), [CompressionBudget.KeepParameters(0.4)]));
        var site = result.Report.Sites.Single(s => s.Site == "fc1");
        var details = Assert.IsType<PrunedSiteDetails>(site.Details);
        Assert.True(details.Scaled);
        int k = site.NewSize;

        // STAT, independently: the ID of Z·D with d_j = ‖W_next[:, j]‖, then T = D_I·T_s·D⁻¹.
        var z = Tap(model, set, "relu_out");
        var w2 = model.Graph.GetInitializer("fc2.weight").ToMatrix<double>(); // [hidden, out]
        var d = Enumerable.Range(0, Hidden).Select(j => Math.Sqrt(Enumerable.Range(0, Out).Sum(o => w2[j, o] * w2[j, o]))).ToArray();
        var zs = Matrix<double>.Create(z.Rows, z.Cols, (i, j) => z[i, j] * d[j]);
        var ids = InterpolativeDecompositions.Compute(zs.View, new IdOptions(Rank: k));
        var t = Matrix<double>.Create(k, Hidden, (i, j) => d[ids.Indices[i]] * ids.Interpolation[i, j] / d[j]);
        Assert.Equal(ids.Indices.Order(), details.Kept);
        var approx = Blas.Multiply(InterpolativeDecompositions.GatherColumns(z.View, ids.Indices).View, t.View);
        var e = Matrix<double>.Create(z.Rows, z.Cols, (i, j) => z[i, j] - approx[i, j]);
        double outputError = MatrixNorms.Frobenius(Blas.Multiply(e.View, w2.View).View) / MatrixNorms.Frobenius(Blas.Multiply(z.View, w2.View).View);
        Assert.Equal(outputError, details.PredictedOutputError!.Value, 1e-5);
        Assert.Equal(outputError, site.MeasuredError!.Value, 1e-5);
        Assert.Equal(ids.RelativeResidual, site.ErrorEstimate!.Value, 1e-5);
    }

    [Fact]
    public void BudgetsAreMetAndCloseAndShareOneCalibration()
    {
        var model = OneHiddenLayer(seed: 8);
        var set = Data(batches: 3, seed: 2);
        double[] fractions = [0.9, 0.6, 0.3];
        var results = new InterpolativePruning().Compress(new CompressionJob(model, set), [.. fractions.Select(CompressionBudget.KeepParameters)]);
        Assert.Equal(3, results.Count);
        long perNeuron = In + 1 + Out; // a hidden neuron's weights, bias and outgoing weights
        long before = Hidden * perNeuron; // what pruning hidden neurons can touch: not the output bias
        for (int i = 0; i < 3; i++)
        {
            var part = results[i].Report.Compressible!;
            Assert.Equal(before, part.ParametersBefore);
            Assert.Equal(results[i].Report.Before.Parameters - results[i].Report.After.Parameters, before - part.ParametersAfter);
            Assert.True(part.ParametersAfter <= fractions[i] * before, $"{fractions[i]}: {part.ParametersAfter} of {before}");
            Assert.True(part.ParametersAfter > fractions[i] * before - perNeuron, $"{fractions[i]}: {part.ParametersAfter} of {before} is not close");
            Assert.Equal(CompressionBudget.KeepParameters(fractions[i]), results[i].Report.Budget);
            var d = Assert.IsType<PruningRunDetails>(results[i].Report.Details);
            Assert.True(d.BudgetMet);
            Assert.Equal(set.Examples, d.CalibrationSamples);
        }
        Assert.True(results[0].Report.Sites.Single(s => s.Site == "fc1").NewSize > results[2].Report.Sites.Single(s => s.Site == "fc1").NewSize);
        Assert.Contains(results[0].Report.Sites, s => s.Site == "fc2" && s.Skipped is not null);
        Assert.Equal(
            [Stages.Analysis, Stages.Calibration, Stages.Decomposition, Stages.Rewrite, Stages.Measurement],
            results[0].Report.Timings.Select(t => t.Stage));
        Assert.Equal(In * Hidden, model.Graph.GetInitializer("fc1.weight").ElementCount);
    }

    [Fact]
    public void MagnitudeIsWorseWhereLargeNeuronsAreRedundant()
    {
        // Hidden neurons 0..5 are three duplicated pairs with large weights; 6 and 7 are unique and small.
        var b = new GraphBuilder();
        var x = b.Input("x", Batch, In);
        var h = b.Linear("fc1", x, In, 8, [Batch]);
        var r = b.Shape(b.Node("Relu", "relu", [h]), Batch, 8);
        b.Output(b.Linear("fc2", r, 8, Out, [Batch]));
        var model = PruningModels.DynamicBatch(PruningModels.Randomize(b.Build(), seed: 4));
        var w0 = model.Graph.GetInitializer("fc1.weight").ToArray<float>(); // [in, 8]
        var b0 = model.Graph.GetInitializer("fc1.bias").ToArray<float>();
        var w1 = new float[w0.Length];
        var b1 = new float[8];
        for (int i = 0; i < In; i++)
            for (int j = 0; j < 8; j++) w1[i * 8 + j] = j < 6 ? 4 * w0[i * 8 + j - j % 2] : 0.3f * w0[i * 8 + j];
        for (int j = 0; j < 8; j++) b1[j] = j < 6 ? 4 * Math.Abs(b0[j - j % 2]) : 0.3f * Math.Abs(b0[j]);
        model.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>("fc1.weight", w1, [In, 8], OnnxDataType.Float));
        model.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>("fc1.bias", b1, [8], OnnxDataType.Float));
        var set = Data(batches: 3, seed: 6);
        var budget = CompressionBudget.KeepParameters(1 - 3.0 * (In + 1 + Out) / (8 * (In + 1 + Out) + Out)); // 5 of 8 neurons

        var id = Assert.Single(new InterpolativePruning().Compress(new CompressionJob(model, set), [budget])).Report.Sites.Single(s => s.Site == "fc1");
        var mag = Assert.Single(new MagnitudePruning().Compress(new CompressionJob(model, set), [budget])).Report.Sites.Single(s => s.Site == "fc1");
        Assert.Equal((5, 5), (id.NewSize, mag.NewSize));
        Assert.True(id.MeasuredError < 1e-5, $"ID keeps one neuron of each pair and both unique ones: error {id.MeasuredError}");
        Assert.True(mag.MeasuredError > 0.01, $"magnitude keeps the large duplicates: error {mag.MeasuredError}");
        Assert.All(Assert.IsType<PrunedSiteDetails>(mag.Details).Kept, j => Assert.InRange(j, 0, 5));
    }

    [Fact]
    public void SameSeedSameModel_SketchStatistic()
    {
        var model = OneHiddenLayer(seed: 1);
        var set = Data(batches: 2, seed: 1);
        var options = new PruningOptions { Statistic = ActivationStatistic.Sketch, SketchRows = 40 };
        byte[] Run(int seed) => Assert.Single(new InterpolativePruning(options).Compress(new CompressionJob(model, set) { Seed = seed }, [CompressionBudget.KeepMacs(0.5)]))
            .Model.Graph.GetInitializer("fc2.weight").ReadBytes();
        Assert.Equal(Run(7), Run(7));
    }

    [Theory]
    [InlineData(ActivationStatistic.RFactor)]
    [InlineData(ActivationStatistic.Gram)]
    public void ToleranceBudgetKeepsTheRankOfAnExactlyLowRankLayer(ActivationStatistic statistic)
    {
        var model = OneHiddenLayer(seed: 12);
        var set = Data(batches: 3, seed: 4);
        var chain = PruningModels.Context(model, set[0]).Structure.Chains.Single();
        PruningModels.DuplicatePairs(model, chain);
        var result = Assert.Single(new InterpolativePruning(new PruningOptions { Statistic = statistic }).Compress(new CompressionJob(model, set), [CompressionBudget.Tolerance(1e-4)]));
        var site = result.Report.Sites.Single(s => s.Site == "fc1");
        Assert.Equal(Hidden / 2, site.NewSize);
        Assert.True(site.MeasuredError < 1e-5, $"error {site.MeasuredError}");
        Assert.Equal(1e-4, Assert.IsType<PruningRunDetails>(result.Report.Details).Tolerance);
    }

    /// <summary>The default statistic is the R factor for narrow units and the Gram matrix for wide ones: below and above the
    /// width threshold, the results are those of the statistic it stands for, bit for bit.</summary>
    [Fact]
    public void AutoStatisticIsTheRFactorForNarrowUnitsAndTheGramForWideOnes()
    {
        var model = OneHiddenLayer(seed: 12);
        var set = Data(batches: 3, seed: 4);
        // The errors on the calibration data are computed from each statistic's own factor: they differ in the last bits.
        double[] Run(PruningOptions options) => [.. Assert.Single(new InterpolativePruning(options).Compress(new CompressionJob(model, set), [CompressionBudget.KeepMacs(0.5)]))
            .Report.Sites.Select(x => x.Details).OfType<PrunedSiteDetails>().Select(d => d.RelativeActivationError)];
        Assert.Equal(ActivationStatistic.Auto, new PruningOptions().Statistic);
        var rfactor = Run(new PruningOptions { Statistic = ActivationStatistic.RFactor });
        var gram = Run(new PruningOptions { Statistic = ActivationStatistic.Gram });
        Assert.NotEqual(rfactor, gram);
        Assert.Equal(rfactor, Run(new PruningOptions { AutoGramColumns = Hidden }));
        Assert.Equal(gram, Run(new PruningOptions { AutoGramColumns = Hidden - 1 }));
    }

    [Fact]
    public void MethodDefaultBudgetIsRejected() =>
        Assert.Throws<ArgumentException>(() => new InterpolativePruning().Compress(new CompressionJob(OneHiddenLayer(1), Data(1, 1)), [CompressionBudget.MethodDefault]));
}
