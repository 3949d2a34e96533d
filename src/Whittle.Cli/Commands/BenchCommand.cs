using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Whittle.Cli.Benchmarks;
using Whittle.Import;
using Whittle.IO;
using Whittle.LinearAlgebra;
using Whittle.Runtime;

namespace Whittle.Cli.Commands;

/// <summary><c>whittle bench …</c>: speed figures for the parts of Whittle that must be fast, and the inputs for measuring them.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure the speed of Whittle's kernels.");
        bench.Subcommands.Add(CreateLinalg());
        bench.Subcommands.Add(CreateDecompose());
        bench.Subcommands.Add(CreateCalibration());
        bench.Subcommands.Add(CreateCheckpoint());
        return bench;
    }

    /// <summary>The files <c>bench checkpoint</c> writes into its folder.</summary>
    internal static readonly string[] CheckpointFiles = ["config.json", "model.safetensors", "calib.npy"];

    private static Command CreateCheckpoint()
    {
        var preset = new Option<string>("--preset")
        {
            Description = "The model's shape: " + string.Join(", ", SyntheticLlamaShape.Presets.Select(p =>
                $"{p.Key} ({p.Value.ParameterCount / 1e6:F0}M parameters)")) + ".",
            Required = true,
        };
        preset.AcceptOnlyFromAmong([.. SyntheticLlamaShape.Presets.Keys]);
        var output = new Option<DirectoryInfo>("--out") { Description = "The checkpoint folder to write (created if missing).", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed of the weights and of the calibration token ids.", DefaultValueFactory = _ => 0 };
        var sequences = new Option<int>("--calib-sequences") { Description = "Sequences of random token ids in calib.npy (0: no calib.npy).", DefaultValueFactory = _ => 64 };
        var length = new Option<int>("--calib-length") { Description = "Tokens per calibration sequence.", DefaultValueFactory = _ => 128 };
        var force = new Option<bool>("--force") { Description = "Replace config.json, model.safetensors and calib.npy if the folder already has them." };
        var cmd = new Command("checkpoint",
            "Write a Hugging Face Llama checkpoint with seeded random weights and real shapes (bf16 model.safetensors, config.json) and "
            + "calib.npy of random token ids, for memory and time benchmarks without a download. Import it with 'whittle import hf'.")
        {
            preset, output, seed, sequences, length, force,
        };
        cmd.SetAction((parse, cancellationToken) => Task.FromResult(Execute(parse, cancellationToken)));
        return cmd;

        int Execute(ParseResult parse, CancellationToken cancellationToken)
        {
            string name = parse.GetValue(preset)!, folder = parse.GetValue(output)!.FullName;
            var shape = SyntheticLlamaShape.Presets[name];
            int calibSequences = parse.GetValue(sequences), calibLength = parse.GetValue(length), s = parse.GetValue(seed);
            if (calibSequences < 0 || (calibSequences > 0 && calibLength < 1))
                throw new ArgumentException($"--calib-sequences {calibSequences} --calib-length {calibLength}: expected a count ≥ 0 and a positive length.");
            var existing = CheckpointFiles.Where(f => File.Exists(Path.Combine(folder, f))).ToList();
            if (existing.Count > 0 && !parse.GetValue(force))
                throw new IOException($"--out {folder}: already holds {string.Join(", ", existing)}; choose another folder or pass --force to replace them.");

            var clock = Stopwatch.StartNew();
            SyntheticCheckpointFiles files;
            try
            {
                files = WriteCheckpoint(folder, shape, s, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine($"cancelled: no model.safetensors was written to {folder}.");
                return 130;
            }
            double weightsSeconds = clock.Elapsed.TotalSeconds;
            string? calib = null;
            if (calibSequences > 0)
            {
                calib = Path.Combine(folder, "calib.npy");
                SyntheticCheckpoint.WriteTokenIds(calib, calibSequences, calibLength, shape.Vocab, s);
            }
            double seconds = clock.Elapsed.TotalSeconds;
            PrintCheckpoint(AnsiConsole.Console, name, shape, s, files, calib, seconds, weightsSeconds, Process.GetCurrentProcess().PeakWorkingSet64);
            return 0;
        }
    }

    /// <summary>What <c>bench checkpoint</c> wrote: each file with its contents and size, the time taken and the peak working set.</summary>
    internal static void PrintCheckpoint(IAnsiConsole io, string name, SyntheticLlamaShape shape, int seed, SyntheticCheckpointFiles files, string? calib,
        double seconds, double weightsSeconds, long peakWorkingSet)
    {
        var table = new Table().Title(Markup.Escape($"{name}: {shape.ParameterCount:N0} parameters, random bf16 weights (seed {seed})"));
        table.AddColumns("file", "contents");
        table.AddColumn(new TableColumn("size").RightAligned());
        void Row(string file, string contents) => table.AddRow(Markup.Escape(file), Markup.Escape(contents), InspectCommand.FormatBytes(new FileInfo(file).Length));
        Row(files.ConfigPath, $"LlamaForCausalLM: dim {shape.Dim}, {shape.Layers} layers, {shape.Heads} heads ({shape.KvHeads} KV), FFN {shape.Ffn}, vocab {shape.Vocab}");
        Row(files.WeightsPath, $"{shape.Tensors().Count} tensors, BF16");
        if (calib is not null)
        {
            var ids = Npy.Read(calib);
            Row(calib, $"input_ids: int64 [{string.Join(", ", ids.Shape)}]");
        }
        io.Write(table);
        io.MarkupLineInterpolated(
            $"Wrote in {seconds:F1} s ({files.WeightsBytes / (double)(1 << 20) / Math.Max(weightsSeconds, 1e-9):F0} MiB/s for the weights); peak working set {InspectCommand.FormatBytes(peakWorkingSet)}.");
    }

    /// <summary>Writes the checkpoint under a progress bar counting bytes.</summary>
    private static SyntheticCheckpointFiles WriteCheckpoint(string folder, SyntheticLlamaShape shape, int seed, CancellationToken cancellationToken)
    {
        SyntheticCheckpointFiles? files = null;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new DownloadedColumn(), new ElapsedTimeColumn()).Start(ctx =>
        {
            long total = shape.ParameterCount * 2;
            var task = ctx.AddTask("model.safetensors", maxValue: total);
            var progress = new CallbackProgress<SyntheticCheckpointProgress>(p =>
            {
                task.Description = Markup.Escape(p.Tensor);
                task.Value = p.BytesWritten;
            });
            files = SyntheticCheckpoint.Write(folder, shape, seed, progress, cancellationToken);
            task.Description = "model.safetensors";
        });
        return files!;
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class CallbackProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
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

    private static Command CreateCalibration()
    {
        var models = new Option<FileInfo[]>("--models")
        {
            Description = "ONNX models to calibrate (default: the fixture models in tests/Whittle.Tests/Fixtures: "
                + string.Join(", ", CalibrationBenchmark.FixtureModels) + ").",
            AllowMultipleArgumentsPerToken = true,
        };
        var batches = new Option<int>("--batches") { Description = "Batches per pass.", DefaultValueFactory = _ => 8 };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per batch.", DefaultValueFactory = _ => 32 };
        var sequence = new Option<int>("--sequence-length") { Description = "Tokens per example for language models.", DefaultValueFactory = _ => 64 };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads, for both runs (default: one per core; 0: ORT's choice).", DefaultValueFactory = _ => RuntimeOptions.Default.IntraOpThreads };
        var options = SuiteOptions.Create(5, "Seed of the random batches.");
        var cmd = new Command("calibration",
            "Time calibration against plain inference: the same seeded batches through an ONNX Runtime session without taps, and through "
            + "the calibration runner with the taps a compression method asks for (chain activations with R factor or Gram; linear inputs "
            + "with Gram + RMS and block hidden states for transformers). Reports calibration ÷ plain time.")
        {
            models, batches, batchSize, sequence, threads,
        };
        options.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            int count = parse.GetValue(batches), size = parse.GetValue(batchSize), length = parse.GetValue(sequence), repeats = parse.GetValue(options.Repeats);
            if (count < 1 || size < 1 || length < 1) throw new ArgumentException("--batches, --batch-size and --sequence-length must be positive.");
            var runtime = RuntimeOptions.Default with { IntraOpThreads = parse.GetValue(threads) };
            var paths = parse.GetValue(models) is { Length: > 0 } given ? [.. given.Select(f => f.FullName)] : CalibrationBenchmark.DefaultModels();
            var cases = paths.SelectMany(p => CalibrationBenchmark.Cases(p, count, size, length, runtime, parse.GetValue(options.Seed))).ToList();
            var results = new List<CalibrationMeasurement>();
            WithProgress(ctx =>
            {
                foreach (var c in cases)
                {
                    var task = ctx.AddTask($"{c.Model}: {c.StatisticNames}", maxValue: repeats);
                    var (plain, calibration) = BenchmarkRunner.MeasurePair(c.Plain, c.Calibrate, repeats, () => task.Increment(1));
                    results.Add(new CalibrationMeasurement(c, plain, calibration));
                }
            });
            PrintCalibration(results, runtime);
            WriteJson(parse.GetValue(options.Json), CalibrationJson(results));
            return 0;
        });
        return cmd;
    }

    /// <summary>Both runs of one <see cref="CalibrationCase"/>.</summary>
    private sealed record CalibrationMeasurement(CalibrationCase Case, Timing Plain, Timing Calibration)
    {
        /// <summary>Calibration ÷ plain inference, of the median wall times.</summary>
        public double Ratio => Calibration.Median / Plain.Median;

        /// <summary>Calibration ÷ plain inference, of the median CPU times.</summary>
        public double CpuRatio => Plain.CpuMedian > 0 ? Calibration.CpuMedian / Plain.CpuMedian : double.NaN;
    }

    private static void PrintCalibration(IReadOnlyList<CalibrationMeasurement> results, RuntimeOptions runtime)
    {
        var table = new Table().Title($"Calibration ÷ plain inference, same batches, ORT intra-op threads {runtime.IntraOpThreads}, {Environment.ProcessorCount} cores");
        table.AddColumns("model", "taps", "statistics", "batches");
        foreach (var column in new[] { "plain s", "calibration s", "ratio", "CPU ratio" }) table.AddColumn(new TableColumn(column).RightAligned());
        static string Ratio(double r) => r <= 1.25 ? $"{r:F2}" : $"[red]{r:F2}[/]";
        foreach (var r in results)
        {
            var c = r.Case;
            table.AddRow(Markup.Escape(c.Model), Markup.Escape(c.Taps), Markup.Escape(c.StatisticNames), Markup.Escape($"{c.Batches.Count} × {c.BatchShape}"),
                $"{r.Plain.Median:F4}", $"{r.Calibration.Median:F4}", Ratio(r.Ratio), Ratio(r.CpuRatio));
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]Medians of wall time (ratio) and of process CPU time (CPU ratio: work done, less distorted by other load); "
            + "both runs include creating their session. Aim: ratio ≤ 1.25.[/]");
        double load = LoadAverage();
        if (load > Environment.ProcessorCount * 0.5)
            AnsiConsole.MarkupLineInterpolated($"[yellow]The machine was busy (1-minute load average {load:F1} on {Environment.ProcessorCount} cores): wall times are unreliable; rerun when it is quiet.[/]");
    }

    /// <summary>{"calibration":[{"model":…,"statistics":…,"taps":T,"batches":B,"batch_shape":…,"plain_seconds":S,"calibration_seconds":S,"ratio":R,…}]}</summary>
    private static JsonObject CalibrationJson(IReadOnlyList<CalibrationMeasurement> results)
    {
        var array = new JsonArray();
        foreach (var r in results)
            array.Add(new JsonObject
            {
                ["model"] = r.Case.Model,
                ["statistics"] = r.Case.StatisticNames,
                ["taps_description"] = r.Case.Taps,
                ["taps"] = r.Case.Statistics().SelectMany(x => x.Reads).Distinct().Count(),
                ["batches"] = r.Case.Batches.Count,
                ["batch_shape"] = r.Case.BatchShape,
                ["plain_seconds"] = r.Plain.Median,
                ["plain_min_seconds"] = r.Plain.Min,
                ["plain_cpu_seconds"] = r.Plain.CpuMedian,
                ["calibration_seconds"] = r.Calibration.Median,
                ["calibration_min_seconds"] = r.Calibration.Min,
                ["calibration_cpu_seconds"] = r.Calibration.CpuMedian,
                ["ratio"] = r.Ratio,
                ["cpu_ratio"] = double.IsFinite(r.CpuRatio) ? r.CpuRatio : null,
            });
        return new JsonObject { ["calibration"] = array, ["load_average"] = LoadAverage(), ["cores"] = Environment.ProcessorCount };
    }

    /// <summary>The 1-minute load average (Linux /proc/loadavg), or 0 where it cannot be read.</summary>
    private static double LoadAverage()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.TryParse(first, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double load) ? load : 0;
        }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }

    /// <summary>
    /// A benchmark command: the options every suite shares (--json, --compare, --repeats, --seed) plus
    /// <paramref name="extra"/>; its action times <paramref name="cases"/>, prints them (beside the reference figures
    /// when --compare is given, then <paramref name="afterCompare"/>) and writes the JSON.
    /// </summary>
    private static Command CreateSuite(string name, string description, string title, int defaultRepeats, IReadOnlyList<Option> extra,
        Func<ParseResult, uint, IReadOnlyList<BenchmarkCase>> cases, Action<ReferenceFigures, uint>? afterCompare = null)
    {
        var options = SuiteOptions.Create(defaultRepeats, "Seed of the input matrices (the reference script uses the same).");
        var compare = new Option<FileInfo?>("--compare")
        {
            Description = "A JSON file of reference figures in the same schema (scripts/bench_openblas.py) to show side by side.",
        };
        var cmd = new Command(name, description) { compare };
        options.AddTo(cmd);
        foreach (var option in extra) cmd.Options.Add(option);
        cmd.SetAction(parse =>
        {
            uint s = parse.GetValue(options.Seed);
            var list = cases(parse, s);
            var reference = ReferenceFigures.Load(parse.GetValue(compare));
            var results = Run(list, parse.GetValue(options.Repeats));
            Print(results, reference, title);
            if (reference is not null) afterCompare?.Invoke(reference, s);
            WriteJson(parse.GetValue(options.Json), ToJson(results));
            return 0;
        });
        return cmd;
    }

    /// <summary>The options every suite shares: --json, --repeats, --seed.</summary>
    private sealed record SuiteOptions(Option<FileInfo?> Json, Option<int> Repeats, Option<uint> Seed)
    {
        public static SuiteOptions Create(int defaultRepeats, string seedDescription) => new(
            new Option<FileInfo?>("--json") { Description = "Also write the figures as JSON to this file." },
            new Option<int>("--repeats") { Description = "Timed runs per case (the median is reported).", DefaultValueFactory = _ => defaultRepeats },
            new Option<uint>("--seed") { Description = seedDescription, DefaultValueFactory = _ => 1 });

        public void AddTo(Command cmd)
        {
            cmd.Options.Add(Json);
            cmd.Options.Add(Repeats);
            cmd.Options.Add(Seed);
        }
    }

    private static void WriteJson(FileInfo? file, JsonNode root)
    {
        if (file is null) return;
        AtomicFile.WriteAllText(file.FullName, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AnsiConsole.MarkupLineInterpolated($"Wrote [blue]{file.FullName}[/]");
    }

    /// <summary>Runs <paramref name="work"/> under a Spectre.Console progress display (one bar per task it adds).</summary>
    private static void WithProgress(Action<ProgressContext> work) =>
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn()).Start(work);

    private static List<Measurement> Run(IReadOnlyList<BenchmarkCase> cases, int repeats)
    {
        var results = new List<Measurement>();
        WithProgress(ctx =>
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
