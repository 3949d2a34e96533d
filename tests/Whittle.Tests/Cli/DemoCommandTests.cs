using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Onnx;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Cli;

public class DemoCommandTests
{
    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 200;
        var root = new RootCommand { DemoCommand.Create(console, error) };
        int exit = root.Parse(["demo", "--fixtures", RepoFixtures.Path(), .. args])
            .Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void QuickDemoReplacesTheFolderWithForceAndWritesEveryModelTheReportAndTheChart()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-demo-");
        try
        {
            string target = Path.Combine(dir.FullName, "out");
            Directory.CreateDirectory(target);
            File.WriteAllText(Path.Combine(target, "old.txt"), "from an earlier run");

            var (code, output, error) = Run("--quick", "--out", target, "--force");
            Assert.True(code == 0, $"exit {code}: {error}{output}");

            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(target, DemoCommand.ReportFile)));
            var results = json.RootElement.GetProperty("results").EnumerateArray().ToList();
            string[] expected =
            [
                "vgg id keep 0.7 of compressible MACs", "vgg id keep 0.5 of compressible MACs", "vgg magnitude keep 0.7 of compressible MACs",
                "vgg magnitude keep 0.5 of compressible MACs", "vgg lowrank lossless", "vgg whitened-svd keep 0.7 of compressible parameters",
                "vgg whitened-svd keep 0.5 of compressible parameters",
                "llama curing N = 2 blocks", "llama curing N = 4 blocks",
                "vgg id+int8 keep 0.5 of compressible MACs", "llama int4 block 32, AWQ scales",
            ];
            Assert.Equal(expected, results.Select(r => $"{r.GetProperty("model").GetString()} {r.GetProperty("method").GetString()} {r.GetProperty("budget").GetString()}"));
            Assert.True(json.RootElement.GetProperty("quick").GetBoolean());

            // Exactly the models, the report and the chart: the earlier file is gone, no staging folder is left beside it.
            var files = results.Select(r => r.GetProperty("file").GetString()!).ToList();
            Assert.Equal([.. files.Append(DemoCommand.ReportFile).Append(DemoCommand.ChartFile).Order(StringComparer.Ordinal)],
                Directory.GetFiles(target).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.Equal([target], Directory.GetFileSystemEntries(dir.FullName));
            byte[] png = File.ReadAllBytes(Path.Combine(target, DemoCommand.ChartFile));
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);

            foreach (var r in results)
            {
                var report = r.GetProperty("report");
                double Kept(string what) => report.GetProperty("after").GetProperty(what).GetDouble() / report.GetProperty("before").GetProperty(what).GetDouble();
                string budget = r.GetProperty("budget").GetString()!;
                // Budgets are met over the layers each method may touch, and every method made its model smaller.
                var part = report.GetProperty("compressible");
                double Part(string what) => part.GetProperty(what + "After").GetDouble() / part.GetProperty(what + "Before").GetDouble();
                double keep = budget.StartsWith("keep ", StringComparison.Ordinal) ? double.Parse(budget.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) : 1;
                if (budget.EndsWith("of compressible MACs", StringComparison.Ordinal)) Assert.True(Part("macs") <= keep + 1e-9, budget);
                if (budget.EndsWith("of compressible parameters", StringComparison.Ordinal)) Assert.True(Part("parameters") <= keep + 1e-9, budget);
                // (Quantization keeps the parameters and stores each in a few bits.)
                Assert.True(Kept("parameters") < 1 || Kept("storedBytes") < 0.3, $"{r.GetProperty("method")} {budget}: parameters kept {Kept("parameters")}, bytes {Kept("storedBytes")}");

                // Each model was evaluated against its original on the held-out data, and the file is what was evaluated.
                var comparison = r.GetProperty("evaluation").GetProperty("comparison");
                Assert.InRange(comparison.GetProperty("agreement").GetDouble(), 0.0, 1.0);
                var saved = OnnxModel.Load(Path.Combine(target, r.GetProperty("file").GetString()!));
                Assert.Equal(report.GetProperty("after").GetProperty("parameters").GetInt64(), Whittle.Analysis.ModelStructure.Analyze(saved).Parameters);
            }

            // Interpolative pruning keeps the classifier's decisions better than magnitude pruning at the same MACs.
            double Agreement(int i) => results[i].GetProperty("evaluation").GetProperty("comparison").GetProperty("agreement").GetDouble();
            Assert.True(Agreement(1) > Agreement(3), $"id {Agreement(1)} vs magnitude {Agreement(3)} at half the MACs");

            // The table has one row per result.
            foreach (string row in expected)
                Assert.Contains(row.Split(' ', 3)[2], output);
            Assert.Contains("agreement", output);
            Assert.Contains(target, output);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void RefusesAFolderThatHoldsFilesWithoutForceAndLeavesItAlone()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-demo-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "keep.txt"), "mine");
            var (code, _, error) = Run("--out", dir.FullName);
            Assert.Equal(1, code);
            Assert.Contains("--force", error);
            Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(dir.FullName).Select(Path.GetFileName));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void MissingFixtureFileIsNamed()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-demo-");
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var root = new RootCommand { DemoCommand.Create(AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) }), error) };
            int code = root.Parse(["demo", "--fixtures", dir.FullName, "--out", Path.Combine(dir.FullName, "out")])
                .Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
            Assert.Equal(1, code);
            Assert.Contains(Path.Combine("fashion-mnist", "vgg.onnx"), error.ToString());
            Assert.False(Directory.Exists(Path.Combine(dir.FullName, "out")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
