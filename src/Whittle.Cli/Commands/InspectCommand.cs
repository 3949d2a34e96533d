using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Whittle.Analysis;
using Whittle.IO;
using Whittle.Onnx;

namespace Whittle.Cli.Commands;

/// <summary>What <c>whittle inspect --json</c> writes: the ONNX summary, the input shapes used and the structure found.</summary>
/// <param name="Summary">Inputs, outputs, opsets, operators, initializers.</param>
/// <param name="Shapes">The input shapes the MACs are counted at, and where intermediate shapes came from.</param>
/// <param name="Structure">Sites, chains, rejected candidates, residual stream, blocks, parameters, MACs.</param>
internal sealed record InspectReport(OnnxModelSummary Summary, AnalysisShapes Shapes, ModelStructure Structure);

/// <summary><c>whittle inspect</c>: what an ONNX model holds and where Whittle can compress it.</summary>
internal static class InspectCommand
{
    /// <summary>camelCase properties, enums as their names.</summary>
    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };

    internal static Command Create() => Create(console: null);

    /// <summary>The command, printing to <paramref name="console"/> (the terminal when null).</summary>
    internal static Command Create(IAnsiConsole? console)
    {
        var model = new Option<FileInfo>("--model") { Description = "The ONNX model to read.", Required = true };
        var json = new Option<FileInfo?>("--json") { Description = "Write the summary and the structure as JSON to this file instead of printing tables." };
        var inputShape = new Option<string[]>("--input-shape")
        {
            Description = "Shape of a model input for the MAC counts, as name=1,3,32,32 (the name may be left out for a single-input model); repeat for several inputs. "
                + "Default: the declared shape with batch 1 and --sequence-length for other symbolic dims.",
            AllowMultipleArgumentsPerToken = true,
        };
        var sequence = new Option<int>("--sequence-length")
        {
            Description = "Value of symbolic input dims other than the batch (e.g. the sequence length of a language model).",
            DefaultValueFactory = _ => AnalysisShapes.DefaultSequenceLength,
        };
        var rows = new Option<int>("--rows") { Description = "Rows per table before the rest is summarized as a count (0: all).", DefaultValueFactory = _ => 40 };
        var cmd = new Command("inspect",
            "Summarize an ONNX model (inputs, outputs, opsets, operators, weights) and its structure: linear and conv sites, prunable chains "
            + "(and why other layers are not), transformer blocks and attention heads, parameters and MACs per example.")
        {
            model, json, inputShape, sequence, rows,
        };
        cmd.SetAction(parse =>
        {
            var output = console ?? AnsiConsole.Console;
            var onnx = OnnxModel.Load(parse.GetValue(model)!.FullName);
            var summary = OnnxModelSummary.Of(onnx);
            var given = ParseInputShapes(parse.GetValue(inputShape) ?? [], summary.Inputs.Select(i => i.Name).ToList());
            var shapes = AnalysisShapes.Resolve(onnx, given, parse.GetValue(sequence));
            var report = new InspectReport(summary, shapes, ModelStructure.Analyze(onnx, shapes.Values));
            if (parse.GetValue(json) is { } file)
            {
                AtomicFile.WriteAllText(file.FullName, JsonSerializer.Serialize(report, JsonOptions));
                output.MarkupLineInterpolated($"Wrote [blue]{file.FullName}[/]");
            }
            else
            {
                Print(output, summary);
                StructureTables.Print(output, report.Structure, shapes, Math.Max(0, parse.GetValue(rows)));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Parses <c>name=d0,d1,…</c> (or <c>d0,d1,…</c> for a single-input model).</summary>
    /// <exception cref="FormatException">A malformed entry.</exception>
    internal static Dictionary<string, int[]> ParseInputShapes(IReadOnlyList<string> entries, IReadOnlyList<string> inputNames)
    {
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            int eq = entry.LastIndexOf('=');
            string name = eq >= 0 ? entry[..eq] : inputNames.Count == 1 ? inputNames[0]
                : throw new FormatException($"--input-shape '{entry}': the model has {inputNames.Count} inputs; write name=d0,d1,… ({string.Join(", ", inputNames)}).");
            var dims = entry[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries);
            var shape = new int[dims.Length];
            for (int i = 0; i < dims.Length; i++)
                if (!int.TryParse(dims[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]) || shape[i] < 1)
                    throw new FormatException($"--input-shape '{entry}': expected positive integer dims separated by commas, got '{dims[i]}'.");
            if (!shapes.TryAdd(name, shape)) throw new FormatException($"--input-shape gives input '{name}' twice.");
        }
        return shapes;
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F2} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F1} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 10):F1} KiB"),
        _ => $"{bytes} B",
    };

    private static void Print(IAnsiConsole console, OnnxModelSummary s)
    {
        var overview = new Table().Title(Markup.Escape(s.Path is null ? "model" : Path.GetFileName(s.Path))).AddColumn("").AddColumn("");
        overview.HideHeaders();
        overview.AddRow("IR version", s.IrVersion.ToString(CultureInfo.InvariantCulture));
        overview.AddRow("producer", Markup.Escape(s.Producer.Length > 0 ? s.Producer : "-"));
        overview.AddRow("opsets", Markup.Escape(string.Join(", ", s.Opsets.Select(o => $"{o.Domain} {o.Version}"))));
        overview.AddRow("nodes", s.NodeCount.ToString("N0", CultureInfo.InvariantCulture));
        overview.AddRow("initializers", $"{s.InitializerCount:N0} ({s.ExternalInitializerCount:N0} external), {FormatBytes(s.InitializerBytes)}");
        overview.AddRow("parameters", s.ParameterCount.ToString("N0", CultureInfo.InvariantCulture));
        console.Write(overview);

        var io = new Table().Title("Inputs and outputs").AddColumn("").AddColumn("name").AddColumn("type");
        foreach (var v in s.Inputs) io.AddRow("input", Markup.Escape(v.Name), Markup.Escape(v.Type));
        foreach (var v in s.Outputs) io.AddRow("output", Markup.Escape(v.Name), Markup.Escape(v.Type));
        console.Write(io);

        var ops = new Table().Title("Nodes by operator").AddColumn("operator").AddColumn(new TableColumn("count").RightAligned());
        foreach (var (op, count) in s.NodesByOp) ops.AddRow(Markup.Escape(op), count.ToString(CultureInfo.InvariantCulture));
        console.Write(ops);
    }
}
