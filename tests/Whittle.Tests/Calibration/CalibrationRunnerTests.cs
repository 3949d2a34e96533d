using Whittle.Calibration;
using Whittle.Data;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.Runtime;
using Whittle.Tests.Runtime;

namespace Whittle.Tests.Calibration;

public class CalibrationRunnerTests
{
    private const int N = 23;

    private static IEnumerable<IReadOnlyDictionary<string, HostTensor>> Batches(HostTensor x, int size, string name = "X")
    {
        for (int i = 0; i < x.Shape[0]; i += size)
            yield return new InputBatch(name, RuntimeModels.SliceRows(x, i, Math.Min(size, x.Shape[0] - i)));
    }

    /// <summary>The tapped tensor for all samples at once, as rows × features in float64.</summary>
    private static double[,] Activations(Whittle.Onnx.OnnxModel model, HostTensor x, string tap, FeatureAxis axis)
    {
        using var s = TappedSession.Create(model, [tap]);
        var t = s.Run(new InputBatch("X", x), [tap])[tap];
        var data = t.AsFloats();
        int f = axis == FeatureAxis.Last ? t.Shape[^1] : t.Shape[1];
        int rows = data.Length / f;
        var z = new double[rows, f];
        if (axis == FeatureAxis.Last)
        {
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < f; j++) z[i, j] = data[i * f + j];
        }
        else
        {
            int n = t.Shape[0], p = data.Length / (n * f);
            for (int b = 0; b < n; b++)
                for (int c = 0; c < f; c++)
                    for (int q = 0; q < p; q++) z[b * p + q, c] = data[(b * f + c) * p + q];
        }
        return z;
    }

    private static double[,] Gram(double[,] z)
    {
        int n = z.GetLength(0), h = z.GetLength(1);
        var g = new double[h, h];
        for (int i = 0; i < h; i++)
            for (int j = 0; j < h; j++)
            {
                double s = 0;
                for (int t = 0; t < n; t++) s += z[t, i] * z[t, j];
                g[i, j] = s;
            }
        return g;
    }

    private static void AssertClose(double[,] expected, Matrix<double> actual, double rtol)
    {
        Assert.Equal(expected.GetLength(0), actual.Rows);
        Assert.Equal(expected.GetLength(1), actual.Cols);
        double scale = 0;
        foreach (var v in expected) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < actual.Rows; i++)
            for (int j = 0; j < actual.Cols; j++)
                Assert.True(Math.Abs(expected[i, j] - actual[i, j]) <= rtol * scale, $"({i},{j}): expected {expected[i, j]}, got {actual[i, j]}");
    }

    /// <summary>RᵀR.</summary>
    private static Matrix<double> Square(Matrix<double> r)
    {
        var z = new double[r.Rows, r.Cols];
        for (int i = 0; i < r.Rows; i++)
            for (int j = 0; j < r.Cols; j++) z[i, j] = r[i, j];
        var g = Gram(z);
        return Matrix<double>.Create(r.Cols, r.Cols, (i, j) => g[i, j]);
    }

    /// <summary>Every statistic on the MLP's input and both hidden layers (sketches seeded, one Gram in float32 products).</summary>
    private sealed class MlpStatistics
    {
        public readonly Dictionary<string, GramStatistic> Grams = new()
        {
            ["X"] = new GramStatistic("X"),
            ["h1"] = new GramStatistic("h1"),
            ["h2"] = new GramStatistic("h2", precision: GramPrecision.Float32Product),
        };
        public readonly Dictionary<string, RmsStatistic> Rms = new() { ["X"] = new RmsStatistic("X"), ["h1"] = new RmsStatistic("h1") };
        public readonly Dictionary<string, RFactorStatistic> R = new() { ["X"] = new RFactorStatistic("X"), ["h1"] = new RFactorStatistic("h1") };
        public readonly Dictionary<string, (SketchStatistic Statistic, int Rows, SketchKind Kind, int Seed)> Sketches = new()
        {
            ["X"] = (new SketchStatistic("X", 5, FeatureAxis.Last, SketchKind.Gaussian, 11), 5, SketchKind.Gaussian, 11),
            ["h1"] = (new SketchStatistic("h1", 4, FeatureAxis.Last, SketchKind.CountSketch, 12), 4, SketchKind.CountSketch, 12),
        };

        public IReadOnlyList<IBatchStatistic> All =>
            [.. Grams.Values, .. Rms.Values, .. R.Values, .. Sketches.Values.Select(s => s.Statistic)];
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(N)]
    public void Mlp_statistics_equal_those_of_the_tapped_tensors(int batchSize)
    {
        var model = RuntimeModels.Mlp([6, 9, 8, 4]);
        var x = RuntimeModels.RandomFloats(21, N, 6);
        var stats = new MlpStatistics();
        var summary = CalibrationRunner.Run(model, stats.All, Batches(x, batchSize));
        Assert.Equal((N + batchSize - 1) / batchSize, summary.Batches);
        Assert.Equal(N, summary.Samples);
        foreach (var (name, statistic) in stats.Grams)
        {
            var z = Activations(model, x, name, FeatureAxis.Last);
            var g = Gram(z);
            var gram = statistic.Finish();
            Assert.Equal(N, gram.Rows);
            Assert.Equal(z.GetLength(1), gram.Features);
            AssertClose(g, gram.Gram, name == "h2" ? 1e-5 : 1e-9);
            for (int i = 0; i < gram.Features; i++)
                for (int j = 0; j < i; j++) Assert.Equal(gram.Gram[i, j], gram.Gram[j, i]);
            if (stats.Rms.TryGetValue(name, out var rmsStatistic))
            {
                var rms = rmsStatistic.Finish();
                for (int j = 0; j < gram.Features; j++)
                {
                    Assert.Equal(g[j, j], rms.SumOfSquares[j], 1e-9 * Math.Max(1, g[j, j]));
                    Assert.Equal(Math.Sqrt(g[j, j] / N), rms.Rms()[j], 1e-9 * Math.Max(1, rms.Rms()[j]));
                }
            }
            if (stats.R.TryGetValue(name, out var r)) AssertClose(g, Square(r.Finish().R), 1e-9);
            if (stats.Sketches.TryGetValue(name, out var sk))
            {
                var sketch = new StreamingRowSketch(gram.Features, sk.Rows, sk.Kind, sk.Seed);
                var expected = new double[sk.Rows, gram.Features];
                var col = new double[sk.Rows];
                for (int t = 0; t < N; t++)
                {
                    sketch.FillColumn(t, col);
                    for (int k = 0; k < sk.Rows; k++)
                        for (int j = 0; j < gram.Features; j++) expected[k, j] += col[k] * z[t, j];
                }
                AssertClose(expected, sk.Statistic.Finish().Sketch, 1e-9);
            }
        }
    }

    [Fact]
    public void Same_batches_give_identical_statistics_and_batchings_agree()
    {
        var model = RuntimeModels.Mlp([6, 9, 8, 4]);
        var x = RuntimeModels.RandomFloats(21, N, 6);
        MlpStatistics Run(int size)
        {
            var s = new MlpStatistics();
            CalibrationRunner.Run(model, s.All, Batches(x, size));
            return s;
        }
        var a = Run(7);
        var b = Run(7);
        var one = Run(1);
        foreach (var name in a.Grams.Keys)
        {
            var ga = a.Grams[name].Finish().Gram;
            Assert.Equal(ga.AsSpan().ToArray(), b.Grams[name].Finish().Gram.AsSpan().ToArray());
            if (a.Sketches.ContainsKey(name)) Assert.Equal(a.Sketches[name].Statistic.Finish().Sketch.AsSpan().ToArray(), b.Sketches[name].Statistic.Finish().Sketch.AsSpan().ToArray());
            if (a.R.ContainsKey(name)) Assert.Equal(a.R[name].Finish().R.AsSpan().ToArray(), b.R[name].Finish().R.AsSpan().ToArray());
            var g1 = one.Grams[name].Finish().Gram;
            double scale = ga.AsSpan().ToArray().Max(Math.Abs);
            for (int i = 0; i < g1.Rows; i++)
                for (int j = 0; j < g1.Cols; j++)
                    Assert.True(Math.Abs(g1[i, j] - ga[i, j]) <= (name == "h2" ? 1e-5 : 1e-12) * scale, $"{name} ({i},{j}): {g1[i, j]} vs {ga[i, j]}");
        }
    }

    [Fact]
    public void Conv_channel_axis_statistics()
    {
        var model = RuntimeModels.Conv();
        var x = RuntimeModels.RandomFloats(31, 5, 3, 8, 8);
        var gram = new GramStatistic("r1", FeatureAxis.Channel);
        var r = new RFactorStatistic("r1", FeatureAxis.Channel);
        var rms = new RmsStatistic("r1", FeatureAxis.Channel);
        var flat = new GramStatistic("f");
        CalibrationRunner.Run(model, [gram, r, rms, flat], Batches(x, 2));
        var z = Activations(model, x, "r1", FeatureAxis.Channel);
        var g = Gram(z);
        Assert.Equal(5 * 64, gram.Finish().Rows);
        Assert.Equal(8, gram.Finish().Features);
        AssertClose(g, gram.Finish().Gram, 1e-9);
        AssertClose(g, Square(r.Finish().R), 1e-9);
        Assert.Equal(5 * 64, r.Finish().Rows);
        for (int j = 0; j < 8; j++) Assert.Equal(g[j, j], rms.Finish().SumOfSquares[j], 1e-9 * Math.Max(1, g[j, j]));
        var zf = Activations(model, x, "f", FeatureAxis.Last);
        Assert.Equal(256, flat.Finish().Features);
        AssertClose(Gram(zf), flat.Finish().Gram, 1e-9);
    }

    [Fact]
    public void Last_token_hidden_states_from_mask_lengths_or_last_position()
    {
        var model = RuntimeModels.Sequence(vocab: 11, width: 6);
        long[] ids = [1, 2, 3, 4, /**/ 5, 6, 0, 0, /**/ 7, 0, 0, 0, /**/ 8, 9, 10, 0, /**/ 3, 3, 3, 3];
        long[] mask = [1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1];
        long[] lengths = [4, 2, 1, 3, 4];
        int[] lastExpected = [3, 1, 0, 2, 3];
        var all = new InputBatch("ids", HostTensor.Int64(ids, 5, 4));
        using var s = TappedSession.Create(model, ["h1"]);
        var h1 = s.Run(all, ["h1"])["h1"].AsFloats();

        IEnumerable<IReadOnlyDictionary<string, HostTensor>> Batches(int size, string extra)
        {
            for (int i = 0; i < 5; i += size)
            {
                int n = Math.Min(size, 5 - i);
                yield return new InputBatch([
                    new("ids", HostTensor.Int64(ids[(i * 4)..((i + n) * 4)], n, 4)),
                    extra == "mask" ? new("mask", HostTensor.Int64(mask[(i * 4)..((i + n) * 4)], n, 4)) : new("len", HostTensor.Int64(lengths[i..(i + n)], n))]);
            }
        }
        foreach (int size in new[] { 1, 2, 5 })
        {
            var fromMask = new LastTokenStatistic("h1", maskInput: "mask");
            var fromLengths = new LastTokenStatistic("h1", lengthsInput: "len");
            var last = new LastTokenStatistic("emb");
            var rms = new RmsStatistic("emb");
            CalibrationRunner.Run(model, [fromMask, last, rms], Batches(size, "mask"));
            CalibrationRunner.Run(model, [fromLengths], Batches(size, "len"));
            for (int b = 0; b < 5; b++)
                for (int j = 0; j < 6; j++)
                {
                    float expected = h1[(b * 4 + lastExpected[b]) * 6 + j];
                    Assert.Equal(expected, fromMask.Finish()[b, j]);
                    Assert.Equal(expected, fromLengths.Finish()[b, j]);
                }
            Assert.Equal(5, last.Finish().Rows);
            Assert.Equal(20, rms.Finish().Rows);
        }
    }

    [Fact]
    public void Progress_is_reported_after_every_batch()
    {
        var model = RuntimeModels.Mlp([6, 4]);
        var x = RuntimeModels.RandomFloats(1, 10, 6);
        var reports = new List<CalibrationProgress>();
        var batches = Batches(x, 3).ToList();
        var summary = CalibrationRunner.Run(model, [new RmsStatistic("X")], batches, progress: new SyncProgress(reports.Add));
        Assert.Equal([1, 2, 3, 4], reports.Select(r => r.Batches));
        Assert.All(reports, r => Assert.Equal(4, r.TotalBatches));
        Assert.Equal(10, summary.Samples);
    }

    [Fact]
    public void Clear_errors()
    {
        var model = RuntimeModels.Mlp([6, 5, 4]);
        var x = RuntimeModels.RandomFloats(1, 4, 6);
        var unknown = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(model, [new GramStatistic("h_1")], Batches(x, 2)));
        Assert.Contains("'h_1'", unknown.Message);
        Assert.Contains("'h1'", unknown.Message);
        var badInput = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(model, [new RmsStatistic("h1")], Batches(RuntimeModels.RandomFloats(1, 4, 5), 2)));
        Assert.Contains("'X'", badInput.Message);
        Assert.Contains("[2,5]", badInput.Message);
        var wrongName = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(model, [new RmsStatistic("h1")], Batches(x, 2, "input")));
        Assert.Contains("'input'", wrongName.Message);
        Assert.Contains("'X'", wrongName.Message);
        var seq = RuntimeModels.Sequence(5, 3);
        var intTap = Assert.Throws<NotSupportedException>(() => CalibrationRunner.Run(seq, [new RmsStatistic("ids")],
            [new InputBatch("ids", HostTensor.Int64([1, 2], 1, 2))]));
        Assert.Contains("'ids'", intTap.Message);
        var shapeChange = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(seq, [new RmsStatistic("emb", FeatureAxis.Channel)],
            [new InputBatch("ids", HostTensor.Int64([1, 2], 1, 2)), new InputBatch("ids", HostTensor.Int64([1, 2, 3], 1, 3))]));
        Assert.Contains("feature axis", shapeChange.Message);
    }

    private sealed class SyncProgress(Action<CalibrationProgress> report) : IProgress<CalibrationProgress>
    {
        public void Report(CalibrationProgress value) => report(value);
    }
}
