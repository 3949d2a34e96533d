using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Whittle.IO;
using Whittle.Onnx;

namespace Whittle.Cli.Commands;

/// <summary><c>whittle inspect</c>: what an ONNX model holds (inputs, outputs, opsets, operators, weights).</summary>
internal static class InspectCommand
{
    internal static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "The ONNX model to read.", Required = true };
        var json = new Option<FileInfo?>("--json") { Description = "Write the summary as JSON to this file instead of printing tables." };
        var cmd = new Command("inspect", "Summarize an ONNX model: inputs, outputs, opsets, node counts by operator, initializers and parameters.") { model, json };
        cmd.SetAction(parse =>
        {
            var summary = OnnxModelSummary.Of(OnnxModel.Load(parse.GetValue(model)!.FullName));
            if (parse.GetValue(json) is { } file)
            {
                var options = new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
                AtomicFile.WriteAllText(file.FullName, JsonSerializer.Serialize(summary, options));
                AnsiConsole.MarkupLineInterpolated($"Wrote [blue]{file.FullName}[/]");
            }
            else
            {
                Print(summary);
            }
            return 0;
        });
        return cmd;
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F2} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F1} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 10):F1} KiB"),
        _ => $"{bytes} B",
    };

    private static void Print(OnnxModelSummary s)
    {
        var overview = new Table().Title(Markup.Escape(s.Path is null ? "model" : Path.GetFileName(s.Path))).AddColumn("").AddColumn("");
        overview.HideHeaders();
        overview.AddRow("IR version", s.IrVersion.ToString(CultureInfo.InvariantCulture));
        overview.AddRow("producer", Markup.Escape(s.Producer.Length > 0 ? s.Producer : "-"));
        overview.AddRow("opsets", Markup.Escape(string.Join(", ", s.Opsets.Select(o => $"{o.Domain} {o.Version}"))));
        overview.AddRow("nodes", s.NodeCount.ToString("N0", CultureInfo.InvariantCulture));
        overview.AddRow("initializers", $"{s.InitializerCount:N0} ({s.ExternalInitializerCount:N0} external), {FormatBytes(s.InitializerBytes)}");
        overview.AddRow("parameters", s.ParameterCount.ToString("N0", CultureInfo.InvariantCulture));
        AnsiConsole.Write(overview);

        var io = new Table().Title("Inputs and outputs").AddColumn("").AddColumn("name").AddColumn("type");
        foreach (var v in s.Inputs) io.AddRow("input", Markup.Escape(v.Name), Markup.Escape(v.Type));
        foreach (var v in s.Outputs) io.AddRow("output", Markup.Escape(v.Name), Markup.Escape(v.Type));
        AnsiConsole.Write(io);

        var ops = new Table().Title("Nodes by operator").AddColumn("operator").AddColumn(new TableColumn("count").RightAligned());
        foreach (var (op, count) in s.NodesByOp) ops.AddRow(Markup.Escape(op), count.ToString(CultureInfo.InvariantCulture));
        AnsiConsole.Write(ops);
    }
}
