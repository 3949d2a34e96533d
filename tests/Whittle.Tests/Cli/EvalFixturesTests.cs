using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Cli;

/// <summary>
/// <c>whittle eval</c> on every trained fixture reproduces the figures the PyTorch training scripts recorded in
/// <c>fixtures/*/fixtures.json</c>: the correct count exactly, the loss or perplexity within 1e-3 relative.
/// </summary>
public sealed class EvalFixturesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whittle-eval-fixtures-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private JsonNode Eval(params string[] args)
    {
        string json = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".json");
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No });
        var root = new RootCommand { EvalCommand.Create(console, error) };
        int exit = root.Parse(["eval", .. args, "--repeats", "0", "--json", json])
            .Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        Assert.True(exit == 0, $"exit {exit}: {error}{output}");
        return JsonNode.Parse(File.ReadAllText(json))!;
    }

    [Theory]
    [InlineData("mlp")]
    [InlineData("vgg")]
    [InlineData("resnet")]
    public void ClassifierHeldOutAccuracyAndLossAreThoseOfPyTorch(string name)
    {
        var recorded = RepoFixtures.Figures("fashion-mnist").GetProperty("models").GetProperty(name).GetProperty("reference").GetProperty("heldout_2000");
        var model = Eval("--model", RepoFixtures.Path("fashion-mnist", name + ".onnx"),
            "--data", RepoFixtures.Path("fashion-mnist", "heldout-images-idx3-ubyte.gz"), "--labels", RepoFixtures.Path("fashion-mnist", "heldout-labels-idx1-ubyte.gz"))["model"]!;
        Assert.Equal(recorded.GetProperty("correct").GetInt32(), model["correct"]!.GetValue<int>());
        Assert.Equal(recorded.GetProperty("correct").GetInt32() / 2000.0, model["accuracy"]!.GetValue<double>(), 12);
        double loss = recorded.GetProperty("mean_cross_entropy").GetDouble();
        Assert.True(Math.Abs(model["loss"]!.GetValue<double>() - loss) <= 1e-3 * loss, $"{name}: cross-entropy {model["loss"]} in whittle eval, {loss} in PyTorch");
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void LanguageModelExcerptPerplexityIsThatOfPyTorch(string name)
    {
        var recorded = RepoFixtures.Figures("text").GetProperty("models").GetProperty(name).GetProperty("reference").GetProperty("excerpt");
        // PyTorch's figure drops the last, partial window, which the documents protocol scores: compare the whole windows.
        string windows = recorded.GetProperty("windows").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var report = Eval("--model", RepoFixtures.Path("text", name + ".onnx"), "--text", RepoFixtures.Path("text", "heldout-excerpt.txt"), "--window", "128", "--count", windows);
        Assert.Equal(recorded.GetProperty("predicted_tokens").GetInt64(), report["data"]!["predictedTokens"]!.GetValue<long>());
        double perplexity = recorded.GetProperty("perplexity").GetDouble();
        double got = report["model"]!["perplexity"]!.GetValue<double>();
        Assert.True(Math.Abs(got - perplexity) <= 1e-3 * perplexity, $"{name}: perplexity {got} in whittle eval, {perplexity} in PyTorch");
    }
}
