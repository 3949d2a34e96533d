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

    private static readonly CalibrationRequest MlpRequest = new([
        new TapRequest("X") { Gram = true, Rms = true, RFactor = true, Sketch = new SketchRequest(5, SketchKind.Gaussian, 11) },
        new TapRequest("h1") { Gram = true, Rms = true, RFactor = true, Sketch = new SketchRequest(4, SketchKind.CountSketch, 12) },
        new TapRequest("h2") { Gram = true, GramPrecision = GramPrecision.Float32Product },
    ]);

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(N)]
    public void Mlp_statistics_equal_those_of_the_tapped_tensors(int batchSize)
    {
        var model = RuntimeModels.Mlp([6, 9, 8, 4]);
        var x = RuntimeModels.RandomFloats(21, N, 6);
        var result = CalibrationRunner.Run(model, MlpRequest, Batches(x, batchSize));
        Assert.Equal((N + batchSize - 1) / batchSize, result.Batches);
        Assert.Equal(N, result.Samples);
        foreach (var tap in MlpRequest.Taps)
        {
            var z = Activations(model, x, tap.Name, FeatureAxis.Last);
            var g = Gram(z);
            var stats = result[tap.Name];
            Assert.Equal(N, stats.Rows);
            Assert.Equal(z.GetLength(1), stats.Features);
            AssertClose(g, stats.Gram!, tap.GramPrecision == GramPrecision.Float64 ? 1e-9 : 1e-5);
            for (int i = 0; i < stats.Features; i++)
                for (int j = 0; j < i; j++) Assert.Equal(stats.Gram![i, j], stats.Gram[j, i]);
            if (tap.Rms)
                for (int j = 0; j < stats.Features; j++)
                {
                    Assert.Equal(g[j, j], stats.SumOfSquares![j], 1e-9 * Math.Max(1, g[j, j]));
                    Assert.Equal(Math.Sqrt(g[j, j] / N), stats.Rms![j], 1e-9 * Math.Max(1, stats.Rms[j]));
                }
            if (tap.RFactor) AssertClose(g, Square(stats.R!), 1e-9);
            if (tap.Sketch is { } sk)
            {
                var sketch = new StreamingRowSketch(stats.Features, sk.Rows, sk.Kind, sk.Seed);
                var expected = new double[sk.Rows, stats.Features];
                var col = new double[sk.Rows];
                for (int t = 0; t < N; t++)
                {
                    sketch.FillColumn(t, col);
                    for (int k = 0; k < sk.Rows; k++)
                        for (int j = 0; j < stats.Features; j++) expected[k, j] += col[k] * z[t, j];
                }
                AssertClose(expected, stats.Sketch!, 1e-9);
            }
        }
    }

    [Fact]
    public void Same_batches_give_identical_statistics_and_batchings_agree()
    {
        var model = RuntimeModels.Mlp([6, 9, 8, 4]);
        var x = RuntimeModels.RandomFloats(21, N, 6);
        var a = CalibrationRunner.Run(model, MlpRequest, Batches(x, 7));
        var b = CalibrationRunner.Run(model, MlpRequest, Batches(x, 7));
        var one = CalibrationRunner.Run(model, MlpRequest, Batches(x, 1));
        var inline = CalibrationRunner.Run(model, MlpRequest with { OverlapStatistics = false }, Batches(x, 7));
        foreach (var tap in MlpRequest.Taps)
        {
            Assert.Equal(a[tap.Name].Gram!.AsSpan().ToArray(), b[tap.Name].Gram!.AsSpan().ToArray());
            Assert.Equal(a[tap.Name].Gram!.AsSpan().ToArray(), inline[tap.Name].Gram!.AsSpan().ToArray());
            if (tap.Sketch is not null) Assert.Equal(a[tap.Name].Sketch!.AsSpan().ToArray(), b[tap.Name].Sketch!.AsSpan().ToArray());
            if (tap.RFactor) Assert.Equal(a[tap.Name].R!.AsSpan().ToArray(), inline[tap.Name].R!.AsSpan().ToArray());
            var g1 = one[tap.Name].Gram!;
            var g7 = a[tap.Name].Gram!;
            double scale = g7.AsSpan().ToArray().Max(Math.Abs);
            for (int i = 0; i < g1.Rows; i++)
                for (int j = 0; j < g1.Cols; j++)
                    Assert.True(Math.Abs(g1[i, j] - g7[i, j]) <= (tap.GramPrecision == GramPrecision.Float64 ? 1e-12 : 1e-5) * scale,
                        $"{tap.Name} ({i},{j}): {g1[i, j]} vs {g7[i, j]}");
        }
    }

    [Fact]
    public void Conv_channel_axis_statistics()
    {
        var model = RuntimeModels.Conv();
        var x = RuntimeModels.RandomFloats(31, 5, 3, 8, 8);
        var request = new CalibrationRequest([
            new TapRequest("r1") { Axis = FeatureAxis.Channel, Gram = true, Rms = true, RFactor = true, Sketch = new SketchRequest(6) },
            new TapRequest("f") { Gram = true, Rms = true },
        ]);
        var result = CalibrationRunner.Run(model, request, Batches(x, 2));
        foreach (var tap in request.Taps)
        {
            var z = Activations(model, x, tap.Name, tap.Axis);
            var stats = result[tap.Name];
            Assert.Equal(z.GetLength(0), stats.Rows);
            Assert.Equal(tap.Name == "r1" ? 8 : 256, stats.Features);
            var g = Gram(z);
            AssertClose(g, stats.Gram!, 1e-9);
            if (tap.RFactor) AssertClose(g, Square(stats.R!), 1e-9);
        }
        Assert.Equal(5 * 64, result["r1"].Rows);
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
            var fromMask = CalibrationRunner.Run(model, new([new TapRequest("h1") { LastToken = new() { MaskInput = "mask" } }]), Batches(size, "mask"));
            var fromLengths = CalibrationRunner.Run(model, new([new TapRequest("h1") { LastToken = new() { LengthsInput = "len" } }]), Batches(size, "len"));
            var last = CalibrationRunner.Run(model, new([new TapRequest("h1") { LastToken = new() { MaskInput = "mask" } }, new TapRequest("emb") { LastToken = new(), Rms = true }]),
                Batches(size, "mask"));
            for (int b = 0; b < 5; b++)
                for (int j = 0; j < 6; j++)
                {
                    float expected = h1[(b * 4 + lastExpected[b]) * 6 + j];
                    Assert.Equal(expected, fromMask["h1"].HiddenStates![b, j]);
                    Assert.Equal(expected, fromLengths["h1"].HiddenStates![b, j]);
                    Assert.Equal(expected, last["h1"].HiddenStates![b, j]);
                }
            Assert.Equal(5, last["emb"].HiddenStates!.Rows);
            Assert.Equal(20, last["emb"].Rows);
        }
    }

    [Fact]
    public void Progress_is_reported_after_every_batch()
    {
        var model = RuntimeModels.Mlp([6, 4]);
        var x = RuntimeModels.RandomFloats(1, 10, 6);
        var reports = new List<CalibrationProgress>();
        var batches = Batches(x, 3).ToList();
        CalibrationRunner.Run(model, new([new TapRequest("X") { Rms = true }]), batches, new SyncProgress(reports.Add));
        Assert.Equal([1, 2, 3, 4], reports.Select(r => r.Batches));
        Assert.All(reports, r => Assert.Equal(4, r.TotalBatches));
        Assert.Equal(10, reports[^1].Samples);
    }

    [Fact]
    public void Clear_errors()
    {
        var model = RuntimeModels.Mlp([6, 5, 4]);
        var x = RuntimeModels.RandomFloats(1, 4, 6);
        var unknown = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(model, new([new TapRequest("h_1") { Gram = true }]), Batches(x, 2)));
        Assert.Contains("'h_1'", unknown.Message);
        Assert.Contains("'h1'", unknown.Message);
        var nothing = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(model, new([new TapRequest("h1")]), Batches(x, 2)));
        Assert.Contains("no statistic", nothing.Message);
        var twice = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(model, new([new TapRequest("h1") { Rms = true }, new TapRequest("h1") { Gram = true }]), Batches(x, 2)));
        Assert.Contains("twice", twice.Message);
        var badInput = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(model, new([new TapRequest("h1") { Rms = true }]), Batches(RuntimeModels.RandomFloats(1, 4, 5), 2)));
        Assert.Contains("'X'", badInput.Message);
        Assert.Contains("[2,5]", badInput.Message);
        var wrongName = Assert.Throws<ArgumentException>(() => CalibrationRunner.Run(model, new([new TapRequest("h1") { Rms = true }]), Batches(x, 2, "input")));
        Assert.Contains("'input'", wrongName.Message);
        var seq = RuntimeModels.Sequence(5, 3);
        var intTap = Assert.Throws<NotSupportedException>(() => CalibrationRunner.Run(seq, new([new TapRequest("ids") { Rms = true }]),
            [new InputBatch("ids", HostTensor.Int64([1, 2], 1, 2))]));
        Assert.Contains("'ids'", intTap.Message);
    }

    private sealed class SyncProgress(Action<CalibrationProgress> report) : IProgress<CalibrationProgress>
    {
        public void Report(CalibrationProgress value) => report(value);
    }
}
