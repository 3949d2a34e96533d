using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Whittle.Cli.Compress;
using Whittle.Cli.Reports;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Cli.Commands;

/// <summary>
/// <c>whittle compress --model IN.onnx --method NAME --calib DATA --out OUT.onnx [budgets] [--eval DATA] …</c>: one method of
/// <see cref="MethodCatalog"/>, one model per budget, a JSON report and, with held-out data, a quality-versus-size table and chart.
/// </summary>
internal static class CompressCommand
{
    /// <summary>The command, printing to the process console.</summary>
    internal static Command Create() => Create(console: null, error: null);

    /// <summary>The command, printing to <paramref name="console"/> and one-line errors to <paramref name="error"/>.</summary>
    internal static Command Create(IAnsiConsole? console, TextWriter? error)
    {
        string methods = string.Join(", ", MethodCatalog.All.SelectMany(m => m.Names));
        var model = new Option<FileInfo>("--model") { Description = "The ONNX model to compress (never modified).", Required = true };
        var method = new Option<string>("--method") { Description = $"The method: {methods}.", Required = true };
        var calib = new Option<FileInfo?>("--calib") { Description = "Calibration samples: .npz/.npy arrays, IDX images (*-idx3-ubyte[.gz]) or a .txt file (every method but int4/int8 with --scales rtn needs them)." };
        var calibLabels = new Option<FileInfo?>("--calib-labels") { Description = "Labels of the calibration samples (IDX labels or an integer .npy), for methods that measure a classifier's loss." };
        var calibCount = new Option<int>("--calib-count") { Description = "Calibration samples (text: windows), a seeded random choice.", DefaultValueFactory = _ => 512 };
        var batchSize = new Option<int>("--batch-size") { Description = "Samples per ONNX Runtime batch.", DefaultValueFactory = _ => 32 };
        var window = new Option<int?>("--window") { Description = $"Tokens per text window (default: the model's fixed sequence length, else {DataSource.DefaultWindowLength})." };
        var separator = new Option<string?>("--doc-separator")
        {
            Description = "What splits a text file into documents (a string such as '<|endoftext|>', or blank-line); calibration windows start at a "
                + "document's start, after the model's BOS. Default: one document; a .jsonl file is one document per line.",
        };
        var output = new Option<FileInfo>("--out") { Description = "The compressed model; with several budgets, NAME.BUDGET.onnx beside it.", Required = true };
        var reportFile = new Option<FileInfo?>("--report") { Description = "Write the report (per site, totals, timings, evaluation) as JSON." };
        var seed = new Option<int>("--seed") { Description = "Seed of the calibration sample and of every random choice.", DefaultValueFactory = _ => 0 };
        var keepMacs = new Option<string?>("--keep-macs") { Description = "Budgets as fractions of the original MACs per example, e.g. 0.9,0.7,0.5." };
        var keepParams = new Option<string?>("--keep-params") { Description = "Budgets as fractions of the original parameters, e.g. 0.8." };
        var tolerance = new Option<string?>("--tolerance") { Description = "Budgets as one global error tolerance each, e.g. 0.01." };
        var keepLatency = new Option<string?>("--keep-latency")
        {
            Description = "Budgets as fractions of the original's batch-1 ONNX Runtime latency measured on this machine (id, magnitude: bisection on the "
                + "tolerance against the timed model), e.g. 0.7.",
        };
        var eval = new Option<FileInfo?>("--eval") { Description = "Held-out samples to evaluate every compressed model on against the original (same formats as --calib)." };
        var evalLabels = new Option<FileInfo?>("--eval-labels") { Description = "Labels of the held-out samples." };
        var evalCount = new Option<int?>("--eval-count") { Description = "Evaluate on the first N held-out samples (default: all)." };
        var chart = new Option<FileInfo?>("--chart") { Description = "The quality-versus-size chart (PNG) with --eval; default OUT-NAME.curve.png." };
        var mode = new Option<string>("--calibration")
        {
            Description = "Where each segment's calibration activations come from: sequential (the model as compressed so far: each block is calibrated on "
                + "the outputs of the compressed blocks before it) or parallel (the original model).",
            DefaultValueFactory = _ => "sequential",
        };
        mode.AcceptOnlyFromAmong("sequential", "parallel");
        var cacheMiB = new Option<int>("--boundary-cache-mib")
        {
            Description = "MiB of block-boundary activations kept in memory; beyond them they go to a temporary file (deleted on every exit).",
            DefaultValueFactory = _ => 1024,
        };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (default: one per core; 0: ORT's choice). Whittle's own kernels use every core the process may run on (taskset limits both).", DefaultValueFactory = _ => RuntimeOptions.Default.IntraOpThreads };
        var scope = new Option<string>("--budget-scope")
        {
            Description = "What --keep-params and --keep-macs are fractions of: compressible (the layers the method may touch; embedding tables, "
                + "norms and layers it leaves alone do not count) or model (the whole model). Reports give both.",
            DefaultValueFactory = _ => "compressible",
        };
        scope.AcceptOnlyFromAmong("compressible", "model");
        var task = new Option<string?>("--task")
        {
            Description = "The model's task (default: its whittle.task metadata, else guessed): classifier, language-model, generic or embedding (a sentence "
                + "encoder, scored by the cosine of mean-pooled embeddings). It decides how --eval scores each model and lowrank's loss.",
        };
        task.AcceptOnlyFromAmong("classifier", "language-model", "generic", "embedding");
        var quantize = new Option<string?>("--quantize")
        {
            Description = "Quantize the weights of every compressed model as a last stage (int4 or int8; see --block-size and --scales): one report for both.",
        };
        quantize.AcceptOnlyFromAmong("int4", "int8");
        var cmd = new Command("compress", "Compress a model without fine-tuning: one model per budget, a report, and with --eval a quality-versus-size curve.")
        {
            model, method, calib, calibLabels, calibCount, batchSize, window, separator, output, reportFile, seed, keepMacs, keepParams, tolerance,
            keepLatency, eval, evalLabels, evalCount, chart, mode, cacheMiB, threads, task, scope, quantize,
        };
        // Distinct: an option several methods share (--align) is one option.
        foreach (var option in MethodCatalog.All.SelectMany(e => e.Options).Distinct()) cmd.Options.Add(option);

        cmd.SetAction((parse, cancellationToken) => Task.FromResult(Execute(parse, cancellationToken)));
        return cmd;

        int Execute(ParseResult parse, CancellationToken cancellationToken)
        {
            var io = console ?? ResultsTable.Widened(AnsiConsole.Console);
            var err = error ?? Console.Error;
            try
            {
                string name = parse.GetValue(method)!.Trim();
                var entry = MethodCatalog.Find(name)
                    ?? throw new ArgumentException($"--method {name}: unknown method; expected one of {methods}.");
                string? lastStage = parse.GetValue(quantize);
                if (lastStage is not null && entry == MethodCatalog.Quantize)
                    throw new ArgumentException($"--quantize {lastStage} follows a compression method; --method {name} quantizes already.");
                foreach (var other in MethodCatalog.All.Where(m => m != entry && !(lastStage is not null && m == MethodCatalog.Quantize)))
                    foreach (var option in other.Options.Where(o => !entry.Options.Contains(o)))
                        if (parse.GetResult(option) is { Implicit: false })
                            throw new ArgumentException($"{option.Name} applies to --method {string.Join("|", other.Names)}, not {name}.");
                Positive(parse.GetValue(calibCount), "--calib-count");
                Positive(parse.GetValue(batchSize), "--batch-size");
                if (parse.GetValue(evalCount) is { } ec) Positive(ec, "--eval-count");
                if (parse.GetValue(cacheMiB) < 0) throw new ArgumentException($"--boundary-cache-mib {parse.GetValue(cacheMiB)}: expected 0 or more MiB.");
                if (parse.GetValue(threads) < 0) throw new ArgumentException($"--threads {parse.GetValue(threads)}: expected 0 (ORT's choice) or a positive thread count.");
                var budgetScope = parse.GetValue(scope) == "model" ? BudgetScope.Model : BudgetScope.Compressible;
                var budgets = Budgets(parse.GetValue(keepMacs), parse.GetValue(keepParams), parse.GetValue(tolerance), parse.GetValue(keepLatency))
                    .Select(b => b.Kind == BudgetKind.KeepLatency ? b : b with { Scope = budgetScope }).ToList();
                if (!entry.TakesBudgets && budgets.Count > 0)
                    throw new ArgumentException($"--method {name} takes no --keep-macs/--keep-params/--tolerance/--keep-latency budget; its own flags decide the size (see --help).");
                if (budgets.Count == 0) budgets = [CompressionBudget.MethodDefault];
                var calibFile = parse.GetValue(calib);
                var compressor = entry == MethodCatalog.Quantize ? MethodCatalog.Quantize.Create(name, parse, calibFile is not null) : entry.Create(name, parse);
                if (lastStage is not null) compressor = new CompressionPipeline(compressor, MethodCatalog.Quantize.Create(lastStage, parse, calibrated: true));
                if (calibFile is null && !QuantizeCli.NeedsNoData(compressor))
                    throw new ArgumentException($"--method {name} needs calibration data: give --calib (.npz/.npy arrays, IDX images or a .txt file).");

                string inputPath = parse.GetValue(model)!.FullName;
                string outPath = parse.GetValue(output)!.FullName;
                var original = OnnxModel.Load(inputPath);
                var runtime = RuntimeOptions.Default with { IntraOpThreads = parse.GetValue(threads) };
                var warnings = new List<string>();
                int s = parse.GetValue(seed);

                BatchSet calibration;
                string calibDescription = "none (round to nearest needs no data)";
                if (calibFile is null) calibration = QuantizeCli.Ones(original);
                else
                {
                    var calibData = ModelData.Load(original, new DataSource(calibFile.FullName, parse.GetValue(calibLabels)?.FullName)
                    {
                        WindowLength = parse.GetValue(window),
                        DocumentSeparator = parse.GetValue(separator),
                        FullWindowsOnly = true,
                    });
                    warnings.AddRange(calibData.Warnings);
                    calibDescription = calibData.Description;
                    calibration = calibData.Batches(parse.GetValue(batchSize), new DataSelection(Limit: parse.GetValue(calibCount), ShuffleSeed: s));
                }

                BatchSet? heldOut = null;
                if (parse.GetValue(eval) is { } evalFile)
                {
                    if (string.Equals(evalFile.FullName, calibFile?.FullName, StringComparison.Ordinal))
                        warnings.Add($"--eval reads the calibration file {evalFile.Name}: the figures are not on held-out data.");
                    var evalData = ModelData.Load(original, new DataSource(evalFile.FullName, parse.GetValue(evalLabels)?.FullName)
                    {
                        WindowLength = parse.GetValue(window),
                        DocumentSeparator = parse.GetValue(separator),
                    });
                    warnings.AddRange(evalData.Warnings);
                    heldOut = evalData.Batches(parse.GetValue(batchSize), new DataSelection(Limit: parse.GetValue(evalCount)));
                    if (ExampleOverlap.Count(calibration, heldOut) is > 0 and var shared)
                        warnings.Add($"{shared} of {heldOut.Examples} held-out examples also appear in the calibration data the method selected on: those figures are not held-out.");
                }

                var job = new CompressionJob(original, calibration)
                {
                    Seed = s,
                    Runtime = runtime,
                    Mode = parse.GetValue(mode) == "parallel" ? CalibrationMode.Parallel : CalibrationMode.Sequential,
                    BoundaryCacheBytes = (long)parse.GetValue(cacheMiB) << 20,
                    OutputDirectory = Directory.CreateDirectory(Path.GetDirectoryName(outPath)!).FullName, // weights go to disk block by block
                };
                var results = CompressRun.Run(io, compressor, job, budgets, outPath, heldOut, new EvaluationOptions { Runtime = runtime, Task = parse.GetValue(task) is { } named ? DetectedTask.Parse(named) : null }, cancellationToken);
                warnings.AddRange(results.SelectMany(r => r.Report.Warnings));

                Print(io, compressor.Name, results);
                if (results.Count > 0 && results[0].Report.Calibration is { } c)
                    io.MarkupLineInterpolated($"Calibration: {c.Mode}, {c.Segments} segment(s) ({c.Rule}){(c.SpilledBytes > 0 ? $", {c.SpilledBytes / (double)(1L << 20):F0} MiB of boundary activations spilled to disk" : "")}; peak working set {results.Max(r => r.Report.PeakWorkingSetBytes) / (double)(1L << 30):F2} GiB.");
                var run = new CompressionRunReport(inputPath, compressor.Name, calibFile is null ? calibDescription : calibration.Description ?? calibDescription, calibFile is null ? 0 : calibration.Examples, heldOut?.Description, results, [.. warnings.Distinct()]);
                if (parse.GetValue(reportFile) is { } rf)
                {
                    AtomicFile.WriteAllText(rf.FullName, JsonSerializer.Serialize(run, EvalCommand.JsonOptions()));
                    io.MarkupLineInterpolated($"Wrote report [blue]{rf.FullName}[/]");
                }
                if (heldOut is not null)
                {
                    string png = parse.GetValue(chart)?.FullName ?? Path.Combine(Path.GetDirectoryName(outPath)!, Path.GetFileNameWithoutExtension(outPath) + ".curve.png");
                    WriteChart(png, compressor.Name, Path.GetFileName(inputPath), results);
                    io.MarkupLineInterpolated($"Wrote chart [blue]{png}[/]");
                }
                foreach (var w in run.Warnings) io.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
                return 0;
            }
            catch (OperationCanceledException)
            {
                err.WriteLine("cancelled: models already written are complete; none is half-written.");
                return 130;
            }
            catch (Exception ex) when (CliErrors.IsExpected(ex))
            {
                err.WriteLine($"error: {ex.Message.ReplaceLineEndings(" ")}");
                return 1;
            }
        }
    }

    /// <summary>The whole run, as <c>--report</c> writes it.</summary>
    internal sealed record CompressionRunReport(string Model, string Method, string Calibration, long CalibrationSamples, string? Evaluation,
        IReadOnlyList<CompressedModel> Results, IReadOnlyList<string> Warnings);

    /// <summary>At most one budget kind, each a comma-separated list.</summary>
    internal static List<CompressionBudget> Budgets(string? macs, string? parameters, string? tolerance, string? latency = null)
    {
        var given = new[] { ("--keep-macs", macs), ("--keep-params", parameters), ("--tolerance", tolerance), ("--keep-latency", latency) }.Where(b => b.Item2 is not null).ToList();
        if (given.Count > 1) throw new ArgumentException($"Give one kind of budget, not {string.Join(" and ", given.Select(g => g.Item1))}.");
        if (given.Count == 0) return [];
        var (flag, text) = given[0];
        var budgets = new List<CompressionBudget>();
        foreach (var item in text!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                throw new ArgumentException($"{flag} {text}: '{item}' is not a number; write e.g. {flag} 0.9,0.7,0.5.");
            try
            {
                budgets.Add(flag switch
                {
                    "--keep-macs" => CompressionBudget.KeepMacs(v),
                    "--keep-params" => CompressionBudget.KeepParameters(v),
                    "--keep-latency" => CompressionBudget.KeepLatency(v),
                    _ => CompressionBudget.Tolerance(v),
                });
            }
            catch (ArgumentOutOfRangeException)
            {
                throw new ArgumentException(flag == "--tolerance"
                    ? $"{flag} {item}: expected a positive tolerance."
                    : $"{flag} {item}: expected a fraction in (0, 1] of the original.");
            }
        }
        if (budgets.Count == 0) throw new ArgumentException($"{flag} is empty; write e.g. {flag} 0.5.");
        if (budgets.Distinct().Count() != budgets.Count) throw new ArgumentException($"{flag} {text}: a budget is given twice.");
        return budgets;
    }

    private static void Positive(int value, string flag)
    {
        if (value < 1) throw new ArgumentException($"{flag} {value}: expected a positive number.");
    }

    private static void Print(IAnsiConsole io, string method, IReadOnlyList<CompressedModel> results) =>
        io.Write(ResultsTable.Create($"whittle compress --method {method}",
            [.. results.Select(r => new ResultRow(null, method, r.Budget.ToString(), Path.GetFileName(r.File), r.Report, r.Evaluation))]));

    private static void WriteChart(string path, string method, string modelName, IReadOnlyList<CompressedModel> results)
    {
        var evaluated = results.Where(r => r.Evaluation is not null).ToList();
        if (evaluated.Count == 0) return;
        var first = evaluated[0].Evaluation!;
        double Macs(CompressedModel r) => r.Report.After.MacsPerExample / r.Report.Before.MacsPerExample;
        if (first.Task.Task == ModelTask.LanguageModel)
        {
            var points = evaluated.Select(r => (Macs(r), r.Evaluation!.Model.Perplexity ?? double.NaN)).Prepend((1.0, first.Reference?.Perplexity ?? double.NaN)).ToList();
            QualityChart.Write(path, $"{modelName}: {method}", "MACs kept (fraction of the original)", "held-out perplexity", [new ChartSeries(method, points)]);
        }
        else if (first.Task.Task == ModelTask.Embedding)
        {
            var mean = evaluated.Select(r => (Macs(r), r.Evaluation!.Comparison?.Embedding?.Mean ?? double.NaN)).Prepend((1.0, 1.0)).ToList();
            var p5 = evaluated.Select(r => (Macs(r), r.Evaluation!.Comparison?.Embedding?.Percentile5 ?? double.NaN)).Prepend((1.0, 1.0)).ToList();
            QualityChart.Write(path, $"{modelName}: {method}", "MACs kept (fraction of the original)", "embedding cosine to the original",
                [new ChartSeries($"{method}: mean", mean), new ChartSeries($"{method}: 5th percentile", p5)]);
        }
        else
        {
            var agreement = evaluated.Select(r => (Macs(r), 100 * (r.Evaluation!.Comparison?.Agreement ?? double.NaN))).Prepend((1.0, 100.0)).ToList();
            var series = new List<ChartSeries> { new($"{method}: agreement with the original", agreement) };
            if (first.Reference?.Accuracy is { } acc)
                series.Add(new($"{method}: accuracy", [.. evaluated.Select(r => (Macs(r), 100 * (r.Evaluation!.Model.Accuracy ?? double.NaN))).Prepend((1.0, 100 * acc))]));
            QualityChart.Write(path, $"{modelName}: {method}", "MACs kept (fraction of the original)", "held-out %", series);
        }
    }
}
