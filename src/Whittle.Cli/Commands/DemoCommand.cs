using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Spectre.Console;
using Whittle.Cli.Compress;
using Whittle.Cli.Demo;
using Whittle.Cli.Reports;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Cli.Commands;

/// <summary>
/// <c>whittle demo [--out DIR] [--force] [--quick]</c>: every method of <see cref="DemoPlan"/> on the committed fixtures,
/// each result evaluated against its original by the same code as <c>whittle eval</c>, one table, and the models, a JSON
/// report and a chart written to a folder that appears whole or not at all.
/// </summary>
internal static class DemoCommand
{
    /// <summary>The report file in the output folder.</summary>
    public const string ReportFile = "demo-report.json";

    /// <summary>The chart file in the output folder.</summary>
    public const string ChartFile = "agreement-vs-macs.png";

    /// <summary>The command, printing to the process console.</summary>
    internal static Command Create() => Create(console: null, error: null);

    /// <summary>The command, printing to <paramref name="console"/> and one-line errors to <paramref name="error"/>.</summary>
    internal static Command Create(IAnsiConsole? console, TextWriter? error)
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "The folder to write the models, report and chart to.", DefaultValueFactory = _ => new DirectoryInfo("whittle-demo") };
        var force = new Option<bool>("--force") { Description = "Replace the output folder if it exists (only once the run has finished)." };
        var quick = new Option<bool>("--quick") { Description = "Smaller calibration and held-out sets (a smoke run; the figures are rougher)." };
        var fixtures = new Option<DirectoryInfo?>("--fixtures") { Description = "The repository's fixtures/ folder (default: found above the current directory)." };
        var seed = new Option<int>("--seed") { Description = "Seed of the calibration samples and every random choice.", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (default: one per core; 0: ORT's choice). Whittle's own kernels use every core the process may run on (taskset limits both).", DefaultValueFactory = _ => RuntimeOptions.Default.IntraOpThreads };
        var cmd = new Command("demo", "Compress the committed Fashion-MNIST VGG and byte-level Llama fixtures with every method and compare the results.")
        {
            output, force, quick, fixtures, seed, threads,
        };
        cmd.SetAction((parse, cancellationToken) => Task.FromResult(Execute(parse, cancellationToken)));
        return cmd;

        int Execute(ParseResult parse, CancellationToken cancellationToken)
        {
            var io = console ?? ResultsTable.Widened(AnsiConsole.Console);
            var err = error ?? Console.Error;
            string target = parse.GetValue(output)!.FullName;
            try
            {
                if (parse.GetValue(threads) < 0) throw new ArgumentException($"--threads {parse.GetValue(threads)}: expected 0 (ORT's choice) or a positive thread count.");
                bool replace = parse.GetValue(force);
                if (!replace && Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
                    throw new IOException($"--out {target}: the folder exists and is not empty; choose another or pass --force to replace it.");
                var folder = DemoFixturesFolder.Find(parse.GetValue(fixtures)?.FullName);
                var runtime = RuntimeOptions.Default with { IntraOpThreads = parse.GetValue(threads) };
                var options = new DemoRunOptions(parse.GetValue(quick), parse.GetValue(seed), runtime);

                using var staged = new StagedDirectory(target, replace);
                var report = Run(io, DemoPlan.Steps(folder, options.Quick), staged.Folder, options, cancellationToken);
                staged.Commit();

                io.MarkupLineInterpolated($"Wrote {report.Results.Count} models, [blue]{ReportFile}[/] and [blue]{ChartFile}[/] to [blue]{target}[/] in {report.Seconds:F0} s.");
                foreach (var w in report.Warnings) io.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
                return 0;
            }
            catch (OperationCanceledException)
            {
                err.WriteLine($"cancelled: nothing was written to {target}.");
                return 130;
            }
            catch (Exception ex) when (CliErrors.IsExpected(ex))
            {
                err.WriteLine($"error: {ex.Message.ReplaceLineEndings(" ")}");
                return 1;
            }
        }
    }

    /// <summary>How the demo runs: reduced sizes, seed, ONNX Runtime settings.</summary>
    internal sealed record DemoRunOptions(bool Quick, int Seed, RuntimeOptions Runtime);

    /// <summary>One row of the demo: which fixture and method, the budget, the file (relative to the output folder), and the figures.</summary>
    internal sealed record DemoResult(string Model, string Method, string Budget, string File, CompressionReport Report, EvaluationReport? Evaluation);

    /// <summary>What <see cref="ReportFile"/> holds.</summary>
    internal sealed record DemoReport(DateTimeOffset Date, string Machine, bool Quick, double Seconds, IReadOnlyList<DemoResult> Results, IReadOnlyList<string> Warnings);

    /// <summary>Runs every step into <paramref name="folder"/>, prints the table, and writes the report and chart there.</summary>
    internal static DemoReport Run(IAnsiConsole io, IReadOnlyList<DemoStep> steps, string folder, DemoRunOptions options, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        var evaluation = new EvaluationOptions { Runtime = options.Runtime, LatencyRepeats = options.Quick ? 2 : 10 };
        var loaded = new Dictionary<DemoFixture, (OnnxModel Model, BatchSet Calibration, BatchSet HeldOut)>();
        var results = new List<DemoResult>();
        var warnings = new List<string>();
        foreach (var step in steps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var f = step.Fixture;
            if (!loaded.TryGetValue(f, out var data))
            {
                var model = OnnxModel.Load(f.Model);
                var calib = ModelData.Load(model, f.Calibration);
                var held = ModelData.Load(model, f.HeldOut);
                loaded[f] = data = (model, calib.Batches(32, new DataSelection(f.CalibrationCount, options.Seed)), held.Batches(32, new DataSelection(f.HeldOutCount)));
            }
            io.MarkupLineInterpolated($"[bold]{step.Method.Name}[/] on {f.Name}: {data.Calibration.Examples} calibration samples, {data.HeldOut.Examples} held-out");
            string name = $"{f.Name}-{step.Method.Name}" + (step.FileLabel is { } label ? "." + label : "") + ".onnx";
            var job = new CompressionJob(data.Model, data.Calibration) { Seed = options.Seed, Runtime = options.Runtime };
            foreach (var r in CompressRun.Run(io, step.Method, job, step.Budgets, Path.Combine(folder, name), data.HeldOut, evaluation, cancellationToken))
            {
                results.Add(new DemoResult(f.Name, step.Method.Name, step.Setting ?? r.Budget.ToString(), Path.GetFileName(r.File), r.Report, r.Evaluation));
                warnings.AddRange(r.Report.Warnings.Select(w => $"{f.Name}, {step.Method.Name}: {w}"));
            }
        }

        io.Write(ResultsTable.Create("whittle demo: each result against its original on held-out data",
            [.. results.Select(r => new ResultRow(r.Model, r.Method, r.Budget, null, r.Report, r.Evaluation))]));
        WriteChart(Path.Combine(folder, ChartFile), results);
        var report = new DemoReport(DateTimeOffset.UtcNow, Machine(), options.Quick, Stopwatch.GetElapsedTime(start).TotalSeconds, results, [.. warnings.Distinct()]);
        AtomicFile.WriteAllText(Path.Combine(folder, ReportFile), JsonSerializer.Serialize(report, EvalCommand.JsonOptions()));
        return report;
    }

    private static void WriteChart(string path, IReadOnlyList<DemoResult> results)
    {
        // Agreement is the one quality figure both tasks share (top-1 class, top-1 next token); the original is (1, 100 %).
        var series = results.GroupBy(r => (r.Model, r.Method))
            .Select(g => new ChartSeries($"{g.Key.Method} ({g.Key.Model})",
                [(1.0, 100.0), .. g.Where(r => r.Evaluation?.Comparison?.Agreement is not null)
                    .Select(r => (r.Report.After.MacsPerExample / r.Report.Before.MacsPerExample, 100 * r.Evaluation!.Comparison!.Agreement!.Value))]))
            .ToList();
        QualityChart.Write(path, "whittle demo: agreement with the original on held-out data", "MACs kept (fraction of the original)",
            "top-1 agreement with the original (%)", series);
    }

    private static string Machine() =>
        $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}, {RuntimeInformation.FrameworkDescription}";
}
