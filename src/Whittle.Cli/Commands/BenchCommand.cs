using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Whittle.Cli.Benchmarks;
using Whittle.IO;
using Whittle.LinearAlgebra;

namespace Whittle.Cli.Commands;

/// <summary><c>whittle bench …</c>: speed figures for the parts of Whittle that must be fast.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure the speed of Whittle's kernels.");
        bench.Subcommands.Add(CreateLinalg());
        bench.Subcommands.Add(CreateDecompose());
        return bench;
    }

    private static Command CreateLinalg()
    {
        var gemmSizes = new Option<int[]>("--gemm-sizes")
        {
            Description = "Matrix sizes n for the n×n product.",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => [1024, 2048, 4096],
        };
        var sizes = new Option<int[]>("--sizes")
        {
            Description = "Matrix sizes n for the factorizations (SVD, pivoted QR, Cholesky).",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => [1024, 2048],
        };
        return CreateSuite(
            "linalg", "Time the dense linear algebra (single precision): GEMM, SVD, truncated SVD, pivoted QR, Cholesky.",
            "Whittle linear algebra", defaultRepeats: 5, [gemmSizes, sizes],
            (parse, seed) => LinearAlgebraBenchmark.Cases(parse.GetValue(gemmSizes)!, parse.GetValue(sizes)!, seed),
            (reference, seed) => PrintAgreement(reference, seed));
    }

    private static Command CreateDecompose()
    {
        var sizes = new Option<int[]>("--sizes")
        {
            Description = "Sizes n: ID of a 16n × n activation matrix at k = n/2, CUR of an n × 4n weight at r = n/4, " +
                "whitened SVD of an n × n weight (Gram of 4n × n inputs, untimed) at rank n/4.",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => [1024],
        };
        return CreateSuite(
            "decompose", "Time the decompositions (single precision): interpolative decomposition, CUR by DEIM, whitened SVD.",
            "Whittle decompositions", defaultRepeats: 3, [sizes],
            (parse, seed) => DecompositionBenchmark.Cases(parse.GetValue(sizes)!, seed));
    }

    /// <summary>
    /// A benchmark command: the options every suite shares (--json, --compare, --repeats, --seed) plus
    /// <paramref name="extra"/>; its action times <paramref name="cases"/>, prints them (beside the reference figures
    /// when --compare is given, then <paramref name="afterCompare"/>) and writes the JSON.
    /// </summary>
    private static Command CreateSuite(string name, string description, string title, int defaultRepeats, IReadOnlyList<Option> extra,
        Func<ParseResult, uint, IReadOnlyList<BenchmarkCase>> cases, Action<ReferenceFigures, uint>? afterCompare = null)
    {
        var json = new Option<FileInfo?>("--json") { Description = "Also write the figures as JSON to this file." };
        var compare = new Option<FileInfo?>("--compare")
        {
            Description = "A JSON file of reference figures in the same schema (scripts/bench_openblas.py) to show side by side.",
        };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per case (the median is reported).", DefaultValueFactory = _ => defaultRepeats };
        var seed = new Option<uint>("--seed") { Description = "Seed of the input matrices (the reference script uses the same).", DefaultValueFactory = _ => 1 };

        var cmd = new Command(name, description) { json, compare, repeats, seed };
        foreach (var option in extra) cmd.Options.Add(option);
        cmd.SetAction(parse =>
        {
            uint s = parse.GetValue(seed);
            var list = cases(parse, s);
            var reference = ReferenceFigures.Load(parse.GetValue(compare));
            var results = Run(list, parse.GetValue(repeats));
            Print(results, reference, title);
            if (reference is not null) afterCompare?.Invoke(reference, s);
            if (parse.GetValue(json) is { } file)
            {
                AtomicFile.WriteAllText(file.FullName, ToJson(results).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                AnsiConsole.MarkupLineInterpolated($"Wrote [blue]{file.FullName}[/]");
            }
            return 0;
        });
        return cmd;
    }

    private static List<Measurement> Run(IReadOnlyList<BenchmarkCase> cases, int repeats)
    {
        var results = new List<Measurement>();
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                foreach (var c in cases)
                {
                    var task = ctx.AddTask(c.Title, maxValue: c.Sizes.Count);
                    foreach (var n in c.Sizes)
                    {
                        task.Description = $"{c.Title}, n = {n}";
                        results.Add(BenchmarkRunner.Measure(c, n, repeats));
                        task.Increment(1);
                    }
                }
            });
        return results;
    }

    private static void Print(IReadOnlyList<Measurement> results, ReferenceFigures? reference, string title)
    {
        var table = new Table().Title($"{title}, float32, {Environment.ProcessorCount} threads, SIMD path {SimdPaths.Best}");
        table.AddColumns("operation", "n", "median s", "GFLOP/s");
        if (reference is not null) table.AddColumns("reference s", "reference / Whittle");
        foreach (var r in results)
        {
            var row = new List<string> { r.Case, r.N.ToString(), $"{r.MedianSeconds:F4}", r.Gflops is { } g ? $"{g:F1}" : "" };
            if (reference is not null)
            {
                bool has = reference.Seconds.TryGetValue((r.Case, r.N), out double refSeconds);
                row.Add(has ? $"{refSeconds:F4}" : "");
                row.Add(has ? $"{refSeconds / r.MedianSeconds:F2}" : "");
            }
            table.AddRow([.. row]);
        }
        AnsiConsole.Write(table);
        if (reference is not null)
        {
            AnsiConsole.MarkupLine("[grey]reference / Whittle > 1 means Whittle is faster.[/]");
            var ours = results.Select(r => (r.Case, r.N)).ToHashSet();
            foreach (var ((key, n), seconds) in reference.Seconds.Where(p => !ours.Contains(p.Key)).OrderBy(p => p.Key))
                AnsiConsole.MarkupLineInterpolated($"[grey]reference only: {key}, n = {n}: {seconds:F4} s[/]");
        }
    }

    private static void PrintAgreement(ReferenceFigures reference, uint seed)
    {
        var table = new Table().Title("Singular values: largest deviation, normwise (÷ σ₁) / elementwise (÷ σᵢ)");
        table.AddColumns("n", "Whittle vs reference", "Whittle vs float64", "reference vs float64");
        foreach (var (n, theirs) in reference.SingularValues.OrderBy(p => p.Key))
        {
            var ours = LinearAlgebraBenchmark.SingularValues(n, seed).Select(v => (double)v).ToArray();
            string Show((double Normwise, double Elementwise) d) => $"{d.Normwise:E1} / {d.Elementwise:E1}";
            bool hasExact = reference.ExactSingularValues.TryGetValue(n, out var exact);
            table.AddRow(
                n.ToString(),
                Show(LinearAlgebraBenchmark.Deviation(ours, theirs)),
                hasExact ? Show(LinearAlgebraBenchmark.Deviation(ours, exact!)) : "",
                hasExact ? Show(LinearAlgebraBenchmark.Deviation(theirs, exact!)) : "");
        }
        AnsiConsole.Write(table);
    }

    /// <summary>{"gemm":[{"n":N,"gflops":X,"seconds":S}…], "svd":[{"n":N,"seconds":S}…], …}</summary>
    internal static JsonObject ToJson(IEnumerable<Measurement> results)
    {
        var root = new JsonObject();
        foreach (var group in results.GroupBy(r => r.Case))
        {
            var array = new JsonArray();
            foreach (var r in group)
            {
                var o = new JsonObject { ["n"] = r.N, ["seconds"] = r.MedianSeconds, ["min_seconds"] = r.MinSeconds };
                if (r.Gflops is { } g) o["gflops"] = g;
                array.Add(o);
            }
            root[group.Key] = array;
        }
        return root;
    }
}
