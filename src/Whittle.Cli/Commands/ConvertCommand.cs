using System.CommandLine;
using Spectre.Console;
using Whittle.Onnx;

namespace Whittle.Cli.Commands;

/// <summary><c>whittle convert</c>: read an ONNX model and write it back, optionally with its weights in an external data file.</summary>
internal static class ConvertCommand
{
    internal static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "The ONNX model to read.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the model (never the input file).", Required = true };
        var external = new Option<bool>("--external-data")
        {
            Description = "Put every tensor of 1 KiB or more into <out>.data beside the model (models over 2 GB get external data anyway).",
        };
        var cmd = new Command("convert", "Read an ONNX model, check it, and write it back (atomically).") { model, output, external };
        cmd.SetAction(parse =>
        {
            var loaded = OnnxModel.Load(parse.GetValue(model)!.FullName);
            string target = parse.GetValue(output)!.FullName;
            loaded.Save(target, new OnnxSaveOptions { ExternalData = parse.GetValue(external) ? OnnxExternalData.Always : OnnxExternalData.Auto });
            var saved = OnnxModelSummary.Of(OnnxModel.Load(target));
            AnsiConsole.MarkupLineInterpolated(
                $"Wrote [blue]{target}[/]: {saved.NodeCount} nodes, {saved.InitializerCount} initializers ({saved.ExternalInitializerCount} in external data), {InspectCommand.FormatBytes(saved.InitializerBytes)}.");
            return 0;
        });
        return cmd;
    }
}
