using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Cli.Commands;

/// <summary>
/// <c>whittle eval --model M.onnx [--reference R.onnx] --data D | --text F …</c>: quality, size, MACs and latency of a model,
/// and its agreement with a reference, measured on the same batches in the same run (<see cref="Evaluator"/>).
/// </summary>
internal static class EvalCommand
{
    /// <summary>The command, printing to the process console.</summary>
    internal static Command Create() => Create(console: null, error: null);

    /// <summary>The command, printing tables and progress to <paramref name="console"/> and one-line errors to <paramref name="error"/>
    /// (defaults: <see cref="AnsiConsole.Console"/> and <see cref="Console.Error"/>).</summary>
    internal static Command Create(IAnsiConsole? console, TextWriter? error)
    {
        var model = new Option<FileInfo>("--model") { Description = "The ONNX model to evaluate.", Required = true };
        var reference = new Option<FileInfo?>("--reference") { Description = "The model to compare with (usually the original): agreement, KL, output errors, and its own figures." };
        var data = new Option<FileInfo?>("--data") { Description = "Samples: .npz/.npy arrays (an .npz array 'labels', 'label' or 'y' gives labels), IDX images (*-idx3-ubyte[.gz]) or a .txt file." };
        var labels = new Option<FileInfo?>("--labels") { Description = "Labels, one per sample: IDX labels (*-idx1-ubyte[.gz]) or an integer .npy." };
        var text = new Option<FileInfo?>("--text") { Description = "A UTF-8 text file for a language model, tokenized by the model's tokenizer (metadata whittle.tokenizer)." };
        var textString = new Option<string?>("--text-string") { Description = "Text given on the command line instead of --text FILE." };
        var count = new Option<int?>("--count") { Description = "Evaluate the first N samples (windows for text). Default: all." };
        var batchSize = new Option<int>("--batch-size") { Description = "Samples per batch; also the larger latency batch.", DefaultValueFactory = _ => 32 };
        var window = new Option<int?>("--window") { Description = $"Tokens per text window. Default: the model's fixed sequence length, else {DataSource.DefaultWindowLength}." };
        var protocol = new Option<string>("--protocol")
        {
            Description = "How text is scored: documents (non-overlapping windows within each document, as llama2.c), stride (the Hugging Face sliding window: "
                + "windows of --window every --stride tokens, only new tokens scored) or concatenated (one stream of all documents, cut into windows).",
            DefaultValueFactory = _ => "documents",
        };
        protocol.AcceptOnlyFromAmong("documents", "stride", "concatenated");
        var stride = new Option<int?>("--stride") { Description = "Tokens between window starts with --protocol stride. Default: half the window." };
        var separator = new Option<string?>("--doc-separator")
        {
            Description = "What splits the text into documents, each scored on its own after the model's BOS: a string such as '<|endoftext|>', "
                + "or blank-line (paragraphs). Default: the text is one document; a .jsonl file is one document per line's \"text\".",
        };
        var task = new Option<string?>("--task") { Description = "classifier, language-model, generic or embedding (a sentence encoder: hidden states mean-pooled over the attention mask, compared by cosine). Default: the model's whittle.task metadata, else guessed from its inputs and outputs." };
        task.AcceptOnlyFromAmong("classifier", "language-model", "generic", "embedding");
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads for both models (default: one per core; 0: ORT's choice).", DefaultValueFactory = _ => RuntimeOptions.Default.IntraOpThreads };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per model and batch size (median reported); 0 skips latency.", DefaultValueFactory = _ => new EvaluationOptions().LatencyRepeats };
        var json = new Option<FileInfo?>("--json") { Description = "Write the report as JSON to this file instead of printing tables." };
        var execution = new Option<string>("--execution")
        {
            Description = "whole (one ONNX Runtime session per model), segments (one transformer block or residual stretch at a time: bounded memory, no latency) "
                + "or auto (segments when the two models' weights together exceed 2 GiB in float32, as ONNX Runtime holds them).",
            DefaultValueFactory = _ => "auto",
        };
        execution.AcceptOnlyFromAmong("auto", "whole", "segments");
        var cmd = new Command("eval", "Evaluate a model: task loss, accuracy or perplexity, agreement and KL with a reference, parameters, bytes, MACs and ONNX Runtime latency.")
        {
            model, reference, data, labels, text, textString, count, batchSize, window, protocol, stride, separator, task, threads, repeats, execution, json,
        };
        cmd.SetAction(parse =>
        {
            var io = console ?? AnsiConsole.Console;
            var err = error ?? Console.Error;
            try
            {
                if (parse.GetValue(batchSize) < 1) throw new ArgumentException($"--batch-size {parse.GetValue(batchSize)}: expected a positive number of samples.");
                if (parse.GetValue(count) is < 1) throw new ArgumentException($"--count {parse.GetValue(count)}: expected a positive number of samples.");
                if (parse.GetValue(threads) < 0) throw new ArgumentException($"--threads {parse.GetValue(threads)}: expected 0 (ORT's choice) or a positive thread count.");
                if (parse.GetValue(repeats) < 0) throw new ArgumentException($"--repeats {parse.GetValue(repeats)}: expected 0 (no latency) or more timed runs.");
                if (parse.GetValue(data) is null && parse.GetValue(text) is null && parse.GetValue(textString) is null)
                    throw new ArgumentException("No data: give --data FILE (.npz, .npy, IDX images, .txt), --text FILE or --text-string TEXT.");
                var m = OnnxModel.Load(parse.GetValue(model)!.FullName);
                var r = parse.GetValue(reference) is { } rf ? OnnxModel.Load(rf.FullName) : null;
                var source = new DataSource(parse.GetValue(data)?.FullName, parse.GetValue(labels)?.FullName, parse.GetValue(text)?.FullName)
                {
                    WindowLength = parse.GetValue(window),
                    TextString = parse.GetValue(textString),
                    Protocol = TextWindowing.Parse(parse.GetValue(protocol)!),
                    Stride = parse.GetValue(stride),
                    DocumentSeparator = parse.GetValue(separator),
                };
                var loaded = ModelData.Load(m, source);
                var batches = loaded.Batches(parse.GetValue(batchSize), new DataSelection(Limit: parse.GetValue(count)));
                var options = new EvaluationOptions
                {
                    Task = parse.GetValue(task) is { } t ? DetectedTask.Parse(t) : null,
                    Runtime = RuntimeOptions.Default with { IntraOpThreads = parse.GetValue(threads) },
                    LatencyRepeats = parse.GetValue(repeats),
                    Execution = parse.GetValue(execution) switch { "whole" => ModelExecution.Whole, "segments" => ModelExecution.Segments, _ => ModelExecution.Auto },
                };
                var report = Run(io, m, r, batches, options);
                report = report with { Warnings = [.. loaded.Warnings, .. report.Warnings] };
                if (parse.GetValue(json) is { } file)
                {
                    AtomicFile.WriteAllText(file.FullName, JsonSerializer.Serialize(report, JsonOptions()));
                    io.MarkupLineInterpolated($"Wrote [blue]{file.FullName}[/]");
                }
                else
                {
                    Print(io, report);
                }
                return 0;
            }
            catch (Exception ex) when (CliErrors.IsExpected(ex))
            {
                err.WriteLine($"error: {ex.Message.ReplaceLineEndings(" ")}");
                return 1;
            }
        });
        return cmd;
    }

    /// <summary>camelCase names, tasks as <c>language-model</c>, NaN and ∞ as strings, indented, quotes unescaped.</summary>
    internal static JsonSerializerOptions JsonOptions() => new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // a file for scripts, not HTML: keep ' and ‖ readable
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    private static EvaluationReport Run(IAnsiConsole io, OnnxModel model, OnnxModel? reference, BatchSet batches, EvaluationOptions options)
    {
        EvaluationReport? report = null;
        io.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                // Segment mode reports "model segments" and "reference segments" first; each stage gets its bar when it starts.
                ProgressTask Task(string stage) => tasks.TryGetValue(stage, out var t) ? t : tasks[stage] = ctx.AddTask(stage switch
                {
                    "quality" => $"{batches.Count} batch(es)",
                    "size" => "size and MACs",
                    _ => Markup.Escape(stage),
                });
                // Progress<T> would post to the thread pool; report synchronously instead.
                var progress = new SyncProgress(p =>
                {
                    var pt = Task(p.Stage);
                    pt.MaxValue = p.Total;
                    pt.Value = p.Done;
                });
                report = Evaluator.Evaluate(model, reference, batches, options, progress);
                foreach (var pt in tasks.Values) pt.Value = pt.MaxValue;
            });
        return report!;
    }

    private sealed class SyncProgress(Action<EvaluationProgress> report) : IProgress<EvaluationProgress>
    {
        public void Report(EvaluationProgress value) => report(value);
    }

    private static string F(double? v, string format) => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "-";

    private static string Interval(PerplexityInterval ci) => $"{F(ci.Low, "F4")} – {F(ci.High, "F4")}";

    private static string Percent(double? v) => v is { } x ? (100 * x).ToString("F2", CultureInfo.InvariantCulture) + " %" : "-";

    private static string Count(double v) => v switch
    {
        >= 1e9 => (v / 1e9).ToString("F2", CultureInfo.InvariantCulture) + " G",
        >= 1e6 => (v / 1e6).ToString("F2", CultureInfo.InvariantCulture) + " M",
        >= 1e3 => (v / 1e3).ToString("F1", CultureInfo.InvariantCulture) + " k",
        _ => v.ToString("F0", CultureInfo.InvariantCulture),
    };

    private static string Ratio(double? model, double? reference) =>
        model is { } a && reference is { } b && b != 0 ? (a / b).ToString("F3", CultureInfo.InvariantCulture) + "×" : "-";

    private static void Print(IAnsiConsole io, EvaluationReport report)
    {
        string Name(string? path) => path is null ? "model" : Path.GetFileName(path);
        var overview = new Table().Title(Markup.Escape($"whittle eval: {Name(report.Model.Path)}" + (report.Reference is { } rr ? $" against {Name(rr.Path)}" : "")))
            .AddColumn("").AddColumn("");
        overview.HideHeaders();
        overview.AddRow("task", Markup.Escape($"{DetectedTask.Name(report.Task.Task)} ({report.Task.Reason}), output '{report.Task.Output}'"));
        overview.AddRow("data", Markup.Escape(report.Data.Description ?? "-"));
        overview.AddRow("examples", Markup.Escape($"{report.Data.Examples} in {report.Data.Batches} batch(es) of {report.Data.BatchSize}"
            + (report.Data.PredictedTokens is { } tokens ? $"; {tokens} scored tokens" : "")
            + (report.Data.Documents is { } documents ? $" of {documents} document(s)" : "")
            + (report.Data.Protocol is { } p ? $"; protocol {p}" : "")
            + (report.Data.HasLabels ? "; labelled" : "")));
        overview.AddRow("runtime", Markup.Escape($"ONNX Runtime {report.Runtime.ExecutionProvider}, {report.Runtime.IntraOpThreads} intra-op thread(s); latency: median of {report.Runtime.LatencyRepeats} runs after {report.Runtime.LatencyWarmup} warm-up, model and reference alternating"));
        io.Write(overview);

        var m = report.Model;
        var r = report.Reference;
        var figures = new Table().Title("Figures").AddColumn("").AddColumn(new TableColumn("model").RightAligned());
        if (r is not null) figures.AddColumn(new TableColumn("reference").RightAligned()).AddColumn(new TableColumn("model / reference").RightAligned());
        void Row(string label, string model, string? reference = null, string? ratio = null)
        {
            if (r is null) figures.AddRow(Markup.Escape(label), Markup.Escape(model));
            else figures.AddRow(Markup.Escape(label), Markup.Escape(model), Markup.Escape(reference ?? "-"), Markup.Escape(ratio ?? ""));
        }
        switch (report.Task.Task)
        {
            case ModelTask.Classifier:
                Row("cross-entropy", F(m.Loss, "F5"), F(r?.Loss, "F5"));
                Row("accuracy", m.Correct is { } c ? $"{Percent(m.Accuracy)} ({c}/{report.Data.Examples})" : "- (no labels)",
                    r?.Correct is { } rc ? $"{Percent(r.Accuracy)} ({rc}/{report.Data.Examples})" : "-");
                break;
            case ModelTask.LanguageModel:
                Row("mean NLL (nats/token)", F(m.Loss, "F5"), F(r?.Loss, "F5"));
                Row("perplexity", F(m.Perplexity, "F4"), F(r?.Perplexity, "F4"), Ratio(m.Perplexity, r?.Perplexity));
                if (m.PerplexityInterval is { } ci)
                    Row($"95 % interval (over {ci.Count} {ci.Units})", Interval(ci), r?.PerplexityInterval is { } rci ? Interval(rci) : null);
                break;
        }
        Row("parameters", m.Parameters.ToString("N0", CultureInfo.InvariantCulture), r?.Parameters.ToString("N0", CultureInfo.InvariantCulture), Ratio(m.Parameters, r?.Parameters));
        Row("stored bytes", InspectCommand.FormatBytes(m.StoredBytes), r is null ? null : InspectCommand.FormatBytes(r.StoredBytes), Ratio(m.StoredBytes, r?.StoredBytes));
        Row("MACs per example", Count(m.MacsPerExample) + (m.MacsUnknownLayers > 0 ? $" (+{m.MacsUnknownLayers} unknown)" : ""),
            r is null ? null : Count(r.MacsPerExample), Ratio(m.MacsPerExample, r?.MacsPerExample));
        for (int i = 0; i < m.Latency.Count; i++)
        {
            var l = m.Latency[i];
            var rl = r?.Latency[i];
            Row($"latency, batch {l.BatchSize} (ms)", F(l.MedianMilliseconds, "F3"), F(rl?.MedianMilliseconds, "F3"), Ratio(l.MedianMilliseconds, rl?.MedianMilliseconds));
        }
        io.Write(figures);

        if (report.Comparison is { } cmp)
        {
            var against = new Table().Title("Against the reference").AddColumn("").AddColumn(new TableColumn("").RightAligned());
            against.HideHeaders();
            string items = report.Task.Task == ModelTask.LanguageModel ? "predicted tokens" : "examples";
            if (cmp.Agreement is not null)
            {
                against.AddRow("top-1 agreement", Markup.Escape($"{Percent(cmp.Agreement)} of {cmp.Compared} {items}"));
                against.AddRow("mean KL(reference ‖ model)", Markup.Escape(F(cmp.MeanKl, "G6") + " nats"));
                against.AddRow("max KL", Markup.Escape(F(cmp.MaxKl, "G6") + " nats"));
            }
            if (cmp.Flips is { } f)
                against.AddRow("flips", Markup.Escape($"{f.CorrectToIncorrect} correct → incorrect, {f.IncorrectToCorrect} incorrect → correct"));
            if (cmp.Embedding is { } e)
                against.AddRow("embedding cosine", Markup.Escape(
                    $"mean {F(e.Mean, "F6")}, 5th percentile {F(e.Percentile5, "F6")}, min {F(e.Min, "F6")} over {e.Examples} examples (mean-pooled over the attention mask, L2-normalized)"));
            foreach (var o in cmp.Outputs)
                against.AddRow(Markup.Escape($"output '{o.Name}'"), Markup.Escape(
                    $"cosine mean {F(o.MeanCosine, "F6")} (min {F(o.MinCosine, "F6")}), relative error {F(o.RelativeError, "G4")}, max |Δ| {F(o.MaxAbsDifference, "G4")}"));
            io.Write(against);
        }
        foreach (var w in report.Warnings) io.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
    }
}
