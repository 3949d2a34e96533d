using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Whittle.Analysis;
using Whittle.Import;
using Whittle.Onnx;
using Whittle.Text;

namespace Whittle.Cli.Commands;

/// <summary><c>whittle import llama2c|hf</c>: checkpoints of other frameworks to ONNX models with their tokenizer.</summary>
internal static class ImportCommand
{
    /// <summary>The command, printing to the process console.</summary>
    internal static Command Create() => Create(console: null);

    /// <summary>The command, printing the summary and download progress to <paramref name="console"/> (default: <see cref="AnsiConsole.Console"/>).</summary>
    internal static Command Create(IAnsiConsole? console)
    {
        var io = console ?? AnsiConsole.Console;
        var cmd = new Command("import", "Import a checkpoint (llama2.c or Hugging Face) into an ONNX model that carries its tokenizer.");
        cmd.Subcommands.Add(Llama2c(io));
        cmd.Subcommands.Add(HuggingFace(io));
        return cmd;
    }

    private static Option<FileInfo> Out() => new("--out") { Description = "Where to write the ONNX model.", Required = true };

    /// <summary>Weights up to this stay in the model file unless --external-data is given; larger models keep them in &lt;out&gt;.data.</summary>
    internal const long InlineLimitBytes = 256L << 20;

    private static Option<bool> External() => new("--external-data")
    {
        Description = "Put every tensor of 1 KiB or more into <out>.data (models with over 256 MiB of weights get external data anyway).",
    };

    private static Command Llama2c(IAnsiConsole io)
    {
        var model = new Option<FileInfo>("--model") { Description = "The llama2.c checkpoint (e.g. stories260K.bin).", Required = true };
        var tokenizer = new Option<FileInfo?>("--tokenizer") { Description = "Its tokenizer file (e.g. tok512.bin); stored in the model's metadata." };
        var output = Out();
        var external = External();
        var cmd = new Command("llama2c", "Import a llama2.c checkpoint (Llama architecture, RoPE in interleaved pairs).") { model, tokenizer, output, external };
        cmd.SetAction((parse, cancellationToken) => Task.FromResult(Cancellable(io, () =>
        {
            using var writer = new StreamedModelWriter(parse.GetValue(output)!.FullName, cancellationToken: cancellationToken);
            var imported = Llama2cImporter.Import(parse.GetValue(model)!.FullName, parse.GetValue(tokenizer)?.FullName, writer);
            Save(io, writer, imported, "llama2.c", parse.GetValue(external), []);
        })));
        return cmd;
    }

    private static Command HuggingFace(IAnsiConsole io)
    {
        var model = new Option<string>("--model") { Description = "A checkpoint folder (config.json + model.safetensors), or hf:ORG/NAME[@REVISION] to download one.", Required = true };
        var output = Out();
        var external = External();
        var endpoint = new Option<string?>("--hub-endpoint") { Description = $"The hub's base URL for hf: models (default: ${HubOptions.EndpointVariable}, $HF_ENDPOINT, then {HubOptions.DefaultEndpoint})." };
        var cache = new Option<DirectoryInfo?>("--cache") { Description = $"Where downloads are kept (default: ${HubOptions.CacheVariable}, then ~/.cache/whittle/hub)." };
        var storage = new Option<WeightStorage>("--weight-type")
        {
            Description = "How matrices are stored: checkpoint (the checkpoint's bfloat16 or float16 when every matrix has it, else float32), "
                + "float32, float16 or bfloat16. 16-bit matrices sit behind a Cast to float that ONNX Runtime folds when it loads the model: "
                + "half the disk, the same speed.",
            DefaultValueFactory = _ => WeightStorage.Checkpoint,
        };
        var cmd = new Command("hf", "Import a Hugging Face checkpoint: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel or BertModel.")
        {
            model, output, external, endpoint, cache, storage,
        };
        cmd.SetAction((parse, cancellationToken) => Task.FromResult(Cancellable(io, () =>
        {
            string source = parse.GetValue(model)!;
            string folder = source;
            if (HubModelId.IsHubReference(source))
            {
                var options = new HubOptions
                {
                    Endpoint = parse.GetValue(endpoint) is { } e ? new Uri(e) : null,
                    CacheDirectory = parse.GetValue(cache)?.FullName,
                };
                folder = Download(io, HubModelId.Parse(source), options);
            }
            using var writer = new StreamedModelWriter(parse.GetValue(output)!.FullName, cancellationToken: cancellationToken);
            var result = HfImporter.Import(folder, writer, parse.GetValue(storage));
            Save(io, writer, result.Model, result.Architecture, parse.GetValue(external), result.Notes);
        })));
        return cmd;
    }

    /// <summary>Runs an import; Ctrl-C stops it at the next tensor, and the writer's disposal removes what was written (exit code 130).</summary>
    private static int Cancellable(IAnsiConsole io, Action import)
    {
        try
        {
            import();
            return 0;
        }
        catch (OperationCanceledException)
        {
            io.MarkupLine("[yellow]cancelled:[/] nothing was written.");
            return 130;
        }
    }

    private static string Download(IAnsiConsole io, HubModelId id, HubOptions options)
    {
        using var downloader = new HubDownloader(options);
        string folder = "";
        io.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var progress = new SynchronousProgress(p =>
                {
                    if (!tasks.TryGetValue(p.File, out var task))
                        tasks[p.File] = task = ctx.AddTask(Markup.Escape(p.File + (p.Cached ? " (cached)" : "")), maxValue: p.Total ?? 1);
                    if (p.Total is { } total) task.MaxValue = Math.Max(total, 1);
                    task.Value = p.Bytes;
                });
                folder = downloader.DownloadAsync(id, progress).GetAwaiter().GetResult();
            });
        io.MarkupLineInterpolated($"Downloaded [blue]{id}[/] into [blue]{folder}[/]");
        return folder;
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<HubProgress> report) : IProgress<HubProgress>
    {
        private readonly Lock _lock = new();

        public void Report(HubProgress value)
        {
            lock (_lock) report(value);
        }
    }

    /// <summary>Finishes the model the import streamed into <paramref name="writer"/> and prints what was imported.</summary>
    private static void Save(IAnsiConsole io, StreamedModelWriter writer, OnnxModel model, string architecture, bool external, IReadOnlyList<string> notes)
    {
        string target = writer.Target;
        var saved = writer.Commit(model.Proto, inlineAll: !external && writer.ExternalBytes <= InlineLimitBytes);
        var summary = OnnxModelSummary.Of(saved);
        var structure = ModelStructure.Analyze(saved);
        var tokenizer = TokenizerMetadata.ReadSource(saved);
        var attention = structure.Blocks.Select(b => b.Attention).FirstOrDefault(a => a is not null);
        string heads = attention is null ? "" : $", {attention.Heads} heads ({attention.KvHeads} KV) of {attention.HeadSize}";
        io.MarkupLineInterpolated(
            $"Imported [green]{architecture}[/]: {structure.Blocks.Count} blocks{heads}, {summary.ParameterCount.ToString("N0", CultureInfo.InvariantCulture)} parameters, tokenizer {tokenizer?.Kind ?? "none"}.");
        foreach (var note in notes) io.MarkupLineInterpolated($"[yellow]note:[/] {note}");
        io.MarkupLineInterpolated($"Wrote [blue]{target}[/] ({InspectCommand.FormatBytes(summary.InitializerBytes)} of weights).");
    }
}
