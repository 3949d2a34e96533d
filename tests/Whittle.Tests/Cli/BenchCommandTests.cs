using System.CommandLine;
using System.Text.Json.Nodes;
using Whittle.Cli.Commands;

namespace Whittle.Tests.Cli;

public class BenchCommandTests
{
    [Fact]
    public void LinalgWritesEveryCaseToJsonAndComparesWithReferenceFigures()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-bench-");
        try
        {
            string reference = Path.Combine(dir.FullName, "ref.json");
            // A reference in the schema of scripts/bench_openblas.py; the singular values are deliberately off by 1 %.
            var ourSigma = Whittle.Cli.Benchmarks.LinearAlgebraBenchmark.SingularValues(48, 1);
            var sigma = new JsonArray([.. ourSigma.Select(v => JsonValue.Create(v * 1.01))]);
            File.WriteAllText(reference, new JsonObject
            {
                ["gemm"] = new JsonArray(new JsonObject { ["n"] = 64, ["seconds"] = 1.0 }),
                ["svd_values"] = new JsonObject { ["48"] = sigma },
            }.ToJsonString());
            string json = Path.Combine(dir.FullName, "out.json");

            var root = new RootCommand { BenchCommand.Create() };
            int exit = root.Parse(["bench", "linalg", "--gemm-sizes", "64", "--sizes", "48", "--repeats", "1", "--json", json, "--compare", reference]).Invoke();

            Assert.Equal(0, exit);
            var figures = JsonNode.Parse(File.ReadAllText(json))!.AsObject();
            foreach (var key in new[] { "gemm", "svd", "svd_rank64", "cpqr", "cpqr_q", "cholesky" })
            {
                var entry = Assert.Single(figures[key]!.AsArray());
                Assert.True(entry!["seconds"]!.GetValue<double>() > 0, key);
            }
            Assert.Equal(64, figures["gemm"]![0]!["n"]!.GetValue<int>());
            Assert.True(figures["gemm"]![0]!["gflops"]!.GetValue<double>() > 0);
            Assert.Equal(48, figures["svd"]![0]!["n"]!.GetValue<int>());
            Assert.Empty(Directory.GetFiles(dir.FullName, "*.tmp"));

            var deviation = Whittle.Cli.Benchmarks.LinearAlgebraBenchmark.Deviation(
                [.. ourSigma.Select(v => (double)v)], [.. sigma.Select(v => v!.GetValue<double>())]);
            Assert.Equal(0.01 / 1.01, deviation.Elementwise, 1e-6);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void MissingReferenceFileIsReportedWithItsPath()
    {
        var root = new RootCommand { BenchCommand.Create() };
        var ex = Assert.Throws<FileNotFoundException>(() =>
            root.Parse(["bench", "linalg", "--gemm-sizes", "8", "--sizes", "8", "--repeats", "1", "--compare", "/nonexistent/ref.json"]).Invoke(
                new InvocationConfiguration { EnableDefaultExceptionHandler = false }));
        Assert.Contains("/nonexistent/ref.json", ex.Message);
    }

    [Fact]
    public void DecomposeWritesEveryCaseToJsonAndComparesWithReferenceFigures()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-bench-");
        try
        {
            string reference = Path.Combine(dir.FullName, "ref.json");
            File.WriteAllText(reference, new JsonObject
            {
                ["id"] = new JsonArray(new JsonObject { ["n"] = 32, ["seconds"] = 0.5 }),
                ["id_interp_decomp_float64"] = new JsonArray(new JsonObject { ["n"] = 32, ["seconds"] = 0.7 }),
            }.ToJsonString());
            string json = Path.Combine(dir.FullName, "out.json");

            var root = new RootCommand { BenchCommand.Create() };
            int exit = root.Parse(["bench", "decompose", "--sizes", "32", "--repeats", "1", "--json", json, "--compare", reference]).Invoke();

            Assert.Equal(0, exit);
            var figures = JsonNode.Parse(File.ReadAllText(json))!.AsObject();
            Assert.Equal(["id", "cur", "whitened_svd"], figures.Select(p => p.Key));
            foreach (var (key, node) in figures)
            {
                var entry = Assert.Single(node!.AsArray());
                Assert.Equal(32, entry!["n"]!.GetValue<int>());
                Assert.True(entry["seconds"]!.GetValue<double>() > 0, key);
            }
            var z = Whittle.Cli.Benchmarks.DecompositionBenchmark.Activations(32, 1);
            Assert.Equal((512, 32), (z.Rows, z.Cols));
            Assert.True(z.AsSpan().ToArray().All(v => v >= 0));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void CalibrationTimesPlainAndTappedRunsOnTheFixtureModels()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-bench-");
        try
        {
            string json = Path.Combine(dir.FullName, "out.json");
            string Fixture(string name) => Whittle.Tests.Fixtures.FixtureModelsTests.Fixture(name);
            var root = new RootCommand { BenchCommand.Create() };
            int exit = root.Parse(["bench", "calibration", "--models", Fixture("resnet_cifar.onnx"), Fixture("gpt2_tiny.onnx"),
                "--batches", "2", "--batch-size", "2", "--sequence-length", "8", "--repeats", "1", "--json", json]).Invoke();

            Assert.Equal(0, exit);
            var rows = JsonNode.Parse(File.ReadAllText(json))!["calibration"]!.AsArray();
            // The CNN twice (R factor, Gram), the transformer once.
            Assert.Equal(["resnet_cifar", "resnet_cifar", "gpt2_tiny"], rows.Select(r => r!["model"]!.GetValue<string>()));
            var resnet = Whittle.Analysis.ModelStructure.Analyze(Whittle.Onnx.OnnxModel.Load(Fixture("resnet_cifar.onnx")));
            Assert.Equal(resnet.Chains.Count, rows[0]!["taps"]!.GetValue<int>());
            Assert.Contains("R factor", rows[0]!["statistics"]!.GetValue<string>());
            Assert.Contains("Gram", rows[1]!["statistics"]!.GetValue<string>());
            Assert.Equal("input_ids [2,8]", rows[2]!["batch_shape"]!.GetValue<string>());
            foreach (var r in rows)
            {
                double plain = r!["plain_seconds"]!.GetValue<double>(), calibration = r["calibration_seconds"]!.GetValue<double>();
                Assert.True(plain > 0 && calibration > 0);
                Assert.Equal(calibration / plain, r["ratio"]!.GetValue<double>(), 1e-12);
                Assert.Equal(r["calibration_cpu_seconds"]!.GetValue<double>() / r["plain_cpu_seconds"]!.GetValue<double>(), r["cpu_ratio"]!.GetValue<double>(), 1e-12);
                Assert.Equal(2, r["batches"]!.GetValue<int>());
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void CalibrationRequestsFollowTheStructure()
    {
        var gpt2 = Whittle.Onnx.OnnxModel.Load(Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("gpt2_tiny.onnx"));
        var shapes = Whittle.Analysis.AnalysisShapes.Resolve(gpt2, null, sequenceLength: 8);
        var s = Whittle.Analysis.ModelStructure.Analyze(gpt2, shapes.Values);
        var statistics = Whittle.Cli.Benchmarks.CalibrationBenchmark.TransformerStatistics(s);
        // Gram + RMS per distinct linear input (c_attn's input read once), last token per hidden state.
        var inputs = s.LinearSites.Select(l => l.Input).Distinct().ToList();
        Assert.Equal(inputs.Order(), statistics.OfType<Whittle.Calibration.GramStatistic>().Select(g => g.Reads.Single()).Order());
        Assert.Equal(inputs.Order(), statistics.OfType<Whittle.Calibration.RmsStatistic>().Select(g => g.Reads.Single()).Order());
        Assert.Equal(s.HiddenStates.Distinct().Order(), statistics.OfType<Whittle.Calibration.LastTokenStatistic>().Select(g => g.Reads.Single()).Order());
        Assert.Equal(s.Blocks.Count + 1, statistics.OfType<Whittle.Calibration.LastTokenStatistic>().Count());

        var vgg = Whittle.Onnx.OnnxModel.Load(Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("vgg_cifar.onnx"));
        var v = Whittle.Analysis.ModelStructure.Analyze(vgg, Whittle.Analysis.AnalysisShapes.Resolve(vgg).Values);
        var chains = Whittle.Cli.Benchmarks.CalibrationBenchmark.ChainStatistics(v, gram: false);
        Assert.Equal(v.Chains.Select(c => c.Activation), chains.Select(t => t.Reads.Single()));
        Assert.All(chains, t => Assert.IsType<Whittle.Calibration.RFactorStatistic>(t));
        Assert.Equal(v.Chains.Select(c => c.ChannelAxis == 1), chains.Cast<Whittle.Calibration.RFactorStatistic>().Select(t => t.Axis == Whittle.Calibration.FeatureAxis.Channel));
        Assert.Contains(chains.Cast<Whittle.Calibration.RFactorStatistic>(), t => t.Axis == Whittle.Calibration.FeatureAxis.Last); // the classifier's Linear chain
        Assert.All(Whittle.Cli.Benchmarks.CalibrationBenchmark.ChainStatistics(v, gram: true), t => Assert.IsType<Whittle.Calibration.GramStatistic>(t));
    }
}
