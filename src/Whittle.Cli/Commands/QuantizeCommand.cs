using System.CommandLine;
using Spectre.Console;

namespace Whittle.Cli.Commands;

/// <summary>
/// <c>whittle quantize --model IN --out OUT --weights int4|int8 [--block-size 32] [--calib DATA] [--eval DATA] …</c>: weight-only
/// quantization, the same run as <c>whittle compress --method int4|int8</c> (its report, table and evaluation), without a
/// budget and with calibration data optional (without it, weights are rounded to nearest).
/// </summary>
internal static class QuantizeCommand
{
    /// <summary>The compress flags quantize takes, passed through as given.</summary>
    private static readonly string[] Forwarded =
    [
        "--model", "--out", "--calib", "--calib-labels", "--calib-count", "--batch-size", "--window", "--doc-separator", "--block-size", "--scales",
        "--eval", "--eval-labels", "--eval-count", "--chart", "--report", "--seed", "--threads", "--task", "--calibration", "--boundary-cache-mib",
    ];

    internal static Command Create(IAnsiConsole? console, TextWriter? error)
    {
        var compress = CompressCommand.Create(console, error);
        var weights = new Option<string>("--weights") { Description = "Bits per MatMul/Gemm weight: int4 or int8 (convolution kernels are int8 either way).", Required = true };
        weights.AcceptOnlyFromAmong("int4", "int8");
        var cmd = new Command("quantize", "Quantize a model's weights (MatMulNBits, int8 kernels) for ONNX Runtime; with --calib, AWQ-style scales, compared with round to nearest in the report.")
        {
            weights,
        };
        var passed = Forwarded.Select(name => compress.Options.First(o => o.Name == name)).ToList();
        foreach (var o in passed) cmd.Options.Add(o);
        cmd.SetAction((parse, cancellationToken) =>
        {
            List<string> args = ["--method", parse.GetValue(weights)!];
            foreach (var o in passed)
                if (parse.GetResult(o) is { Implicit: false } given)
                {
                    args.Add(o.Name);
                    args.AddRange(given.Tokens.Select(t => t.Value));
                }
            return compress.Parse(args).InvokeAsync(cancellationToken: cancellationToken);
        });
        return cmd;
    }
}
