using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Cli.Compress;
using Whittle.IO;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Tests.Methods;

namespace Whittle.Tests.Cli;

/// <summary><c>whittle compress --method id|magnitude</c>: flags, files and report.</summary>
public sealed class PruningCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whittle-id-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        var root = new RootCommand { CompressCommand.Create(console, error) };
        int exit = root.Parse(["compress", .. args]).Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        return (exit, output.ToString(), error.ToString());
    }

    private (string Model, string Calib) Inputs()
    {
        string model = Path.Combine(_dir, "mlp.onnx");
        InterpolativePruningTests.OneHiddenLayer(seed: 2).Save(model);
        var data = InterpolativePruningTests.Data(batches: 2, seed: 3);
        var x = data.SelectMany(b => b["x"].AsFloats()).ToArray();
        string calib = Path.Combine(_dir, "x.npy");
        Npy.Write(calib, NpyArray.Wrap(x, [x.Length / 10, 10]));
        return (model, calib);
    }

    [Theory]
    [InlineData("id", "greedy")]
    [InlineData("magnitude", "greedy")]
    [InlineData("id", "sensitivity")]
    public void WritesOneModelPerBudgetAndAReport(string method, string schedule)
    {
        var (model, calib) = Inputs();
        string output = Path.Combine(_dir, "out.onnx"), report = Path.Combine(_dir, "report.json");
        var (exit, stdout, err) = Run("--model", model, "--method", method, "--calib", calib, "--out", output, "--report", report,
            "--keep-params", "0.7,0.4", "--prune", "fc", "--schedule", schedule, "--greedy-factor", "0.8", "--batch-size", "16");
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
        foreach (string label in new[] { "params-0.7", "params-0.4" })
        {
            var pruned = OnnxModel.Load(Path.Combine(_dir, $"out.{label}.onnx"));
            Assert.True(pruned.Graph.GetInitializer("fc1.bias").ElementCount < 24);
        }
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        var results = json.RootElement.GetProperty("results");
        Assert.Equal(2, results.GetArrayLength());
        var site = results[0].GetProperty("report").GetProperty("sites").EnumerateArray().First(s => s.GetProperty("site").GetString() == "fc1");
        Assert.Equal(24, site.GetProperty("oldSize").GetInt32());
        Assert.True(site.GetProperty("details").GetProperty("kept").GetArrayLength() < 24);
        Assert.Equal(schedule, results[0].GetProperty("report").GetProperty("details").GetProperty("schedule").GetString());
    }

    [Theory]
    [InlineData("--prune", "fc,wings", "'wings' is not a target")]
    [InlineData("--greedy-factor", "1.2", "--greedy-factor 1.2")]
    [InlineData("--schedule", "random", "random")]
    public void BadFlagsAreOneLine(string flag, string value, string message)
    {
        var (model, calib) = Inputs();
        var (exit, stdout, err) = Run("--model", model, "--method", "id", "--calib", calib, "--out", Path.Combine(_dir, "o.onnx"), "--keep-macs", "0.5", flag, value);
        Assert.NotEqual(0, exit);
        Assert.Contains(message, err + stdout);
    }

    [Fact]
    public void MissingBudgetSaysWhichFlags()
    {
        var (model, calib) = Inputs();
        var (exit, _, err) = Run("--model", model, "--method", "id", "--calib", calib, "--out", Path.Combine(_dir, "o.onnx"));
        Assert.Equal(1, exit);
        Assert.Contains("--keep-macs, --keep-params, --tolerance or --keep-latency", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void ALatencyBudgetIsTimedAndReported()
    {
        var (model, calib) = Inputs();
        string output = Path.Combine(_dir, "lat.onnx"), report = Path.Combine(_dir, "lat.json");
        var (exit, stdout, err) = Run("--model", model, "--method", "id", "--calib", calib, "--out", output, "--report", report,
            "--keep-latency", "0.9", "--prune", "fc", "--batch-size", "16");
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
        Assert.True(File.Exists(output));
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        var result = json.RootElement.GetProperty("results")[0].GetProperty("report");
        Assert.Equal("latency-0.9", result.GetProperty("budget").GetProperty("label").GetString());
        // Timed on a shared machine: only that a ratio was measured, not its value.
        Assert.True(result.GetProperty("details").GetProperty("measuredLatency").GetDouble() > 0);

        var (exit2, _, err2) = Run("--model", model, "--method", "id", "--calib", calib, "--out", output, "--keep-latency", "0.9", "--keep-macs", "0.5");
        Assert.Equal(1, exit2);
        Assert.Contains("not --keep-macs and --keep-latency", err2);
    }

    [Fact]
    public void TargetsParse()
    {
        Assert.Equal(PruningTargets.FullyConnected | PruningTargets.AttentionHeads, PruningMethodCli.ParseTargets("ffn, heads"));
        Assert.Equal(PruningTargets.All, PruningMethodCli.ParseTargets("all"));
    }
}
