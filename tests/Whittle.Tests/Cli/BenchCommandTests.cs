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
}
