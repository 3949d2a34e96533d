using System.CommandLine;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Cli;

/// <summary>
/// <c>whittle quantize</c> and <c>compress --quantize</c> on the trained fixtures (issue 21's acceptance, measured on the
/// held-out data): what they write runs in ONNX Runtime with the original's inputs and outputs.
/// </summary>
public sealed class QuantizeCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whittle-quantize-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        var root = new RootCommand { QuantizeCommand.Create(console, error), CompressCommand.Create(console, error) };
        int exit = root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        return (exit, output.ToString(), error.ToString());
    }

    private static JsonElement Report(string file) => JsonDocument.Parse(File.ReadAllText(file)).RootElement.GetProperty("results")[0];

    private static void SameSignature(string original, string quantized)
    {
        using var a = new InferenceSession(original);
        using var b = new InferenceSession(quantized);
        Assert.Equal(a.InputMetadata.Keys, b.InputMetadata.Keys);
        Assert.Equal(a.OutputMetadata.Keys, b.OutputMetadata.Keys);
        foreach (var (name, meta) in a.OutputMetadata) Assert.Equal(meta.ElementType, b.OutputMetadata[name].ElementType);
    }

    [Fact]
    public void Int4OfTheLlamaFixtureKeepsPerplexityWithinThreePercentInAFifthOfTheBytes()
    {
        string model = RepoFixtures.Path("text", "llama.onnx");
        string rtn = Path.Combine(_dir, "rtn.onnx"), awq = Path.Combine(_dir, "awq.onnx");
        var (exit, stdout, err) = Run("quantize", "--model", model, "--out", rtn, "--weights", "int4", "--block-size", "32",
            "--eval", RepoFixtures.Path("text", "heldout-excerpt.txt"), "--report", rtn + ".json");
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
        (exit, stdout, err) = Run("quantize", "--model", model, "--out", awq, "--weights", "int4", "--calib", RepoFixtures.Path("text", "calib-excerpt.txt"),
            "--eval", RepoFixtures.Path("text", "heldout-excerpt.txt"), "--report", awq + ".json");
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");

        double Perplexity(JsonElement r) => r.GetProperty("evaluation").GetProperty("model").GetProperty("perplexity").GetDouble();
        var rtnResult = Report(rtn + ".json");
        var awqResult = Report(awq + ".json");
        double original = awqResult.GetProperty("evaluation").GetProperty("reference").GetProperty("perplexity").GetDouble();
        foreach (var r in new[] { rtnResult, awqResult })
        {
            var size = r.GetProperty("report");
            Assert.True(size.GetProperty("after").GetProperty("storedBytes").GetDouble() <= 0.2 * size.GetProperty("before").GetProperty("storedBytes").GetDouble());
            Assert.InRange(Perplexity(r) / original, 1.0, 1.03);
        }
        Assert.True(Perplexity(awqResult) <= Perplexity(rtnResult), $"AWQ-style scales {Perplexity(awqResult)}, round to nearest {Perplexity(rtnResult)}");

        // On the calibration data the chosen scales beat round to nearest for most layers and on average (layers reading
        // one input share the scales that are best for their sum, so one of them may lose a little).
        var sites = awqResult.GetProperty("report").GetProperty("sites").EnumerateArray().Where(s => s.GetProperty("kind").GetString() == "int4").ToList();
        Assert.Equal(43, sites.Count);
        double[] chosen = [.. sites.Select(s => s.GetProperty("measuredError").GetDouble())], nearest = [.. sites.Select(s => s.GetProperty("errorEstimate").GetDouble())];
        Assert.True(chosen.Zip(nearest).Count(p => p.First < p.Second) > sites.Count / 2);
        Assert.True(chosen.Average() < nearest.Average());
        Assert.Equal("round-to-nearest", rtnResult.GetProperty("report").GetProperty("details").GetProperty("scales").GetString());
        SameSignature(model, rtn);
        SameSignature(model, awq);
    }

    [Fact]
    public void IdThenInt8OfTheVggFixtureKeepsAgreementInUnderAThirdOfTheBytes()
    {
        string f(string name) => RepoFixtures.Path("fashion-mnist", name);
        string[] data = ["--calib", f("calib-images-idx3-ubyte.gz"), "--calib-labels", f("calib-labels-idx1-ubyte.gz"),
            "--eval", f("heldout-images-idx3-ubyte.gz"), "--eval-labels", f("heldout-labels-idx1-ubyte.gz"), "--keep-macs", "0.5"];
        string id = Path.Combine(_dir, "id.onnx"), both = Path.Combine(_dir, "id-int8.onnx");
        var (exit, stdout, err) = Run(["compress", "--model", f("vgg.onnx"), "--method", "id", "--out", id, "--report", id + ".json", .. data]);
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
        (exit, stdout, err) = Run(["compress", "--model", f("vgg.onnx"), "--method", "id", "--quantize", "int8", "--out", both, "--report", both + ".json", .. data]);
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");

        var a = Report(id + ".json");
        var b = Report(both + ".json");
        Assert.Equal("id+int8", JsonDocument.Parse(File.ReadAllText(both + ".json")).RootElement.GetProperty("method").GetString());
        double idBytes = a.GetProperty("report").GetProperty("after").GetProperty("storedBytes").GetDouble();
        var details = b.GetProperty("report").GetProperty("details");
        Assert.Equal(idBytes, details.GetProperty("firstAfter").GetProperty("storedBytes").GetDouble());
        Assert.True(b.GetProperty("report").GetProperty("after").GetProperty("storedBytes").GetDouble() <= 0.3 * idBytes);
        double Agreement(JsonElement r) => r.GetProperty("evaluation").GetProperty("comparison").GetProperty("agreement").GetDouble();
        Assert.True(Agreement(a) - Agreement(b) <= 0.005, $"id {Agreement(a)}, id + int8 {Agreement(b)}");
        // The report holds both stages' sites: the pruned chains, then the quantized layers (convolutions int8 per channel).
        var kinds = b.GetProperty("report").GetProperty("sites").EnumerateArray().Select(s => s.GetProperty("kind").GetString()).ToList();
        Assert.Contains("int8", kinds);
        Assert.Contains(kinds, k => k != "int8");
        SameSignature(f("vgg.onnx"), both);
    }

    [Theory]
    [InlineData("quantize --weights int4 --scales awq", "needs calibration data")]
    [InlineData("quantize --weights int4 --block-size 24", "power of two")]
    [InlineData("compress --method int4 --quantize int8", "quantizes already")]
    [InlineData("compress --method id --keep-macs 0.5", "needs calibration data")]
    public void MisusesSayWhatIsWrong(string args, string message)
    {
        string model = RepoFixtures.Path("fashion-mnist", "mlp.onnx");
        var (exit, stdout, err) = Run([.. args.Split(' '), "--model", model, "--out", Path.Combine(_dir, "x.onnx")]);
        Assert.Equal(1, exit);
        Assert.Contains(message, err + stdout);
        Assert.False(File.Exists(Path.Combine(_dir, "x.onnx")));
    }
}
