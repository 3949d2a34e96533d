using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Onnx;
using static Whittle.Tests.Evaluation.EvalTestModels;

namespace Whittle.Tests.Cli;

/// <summary><c>whittle eval</c> end to end on the small fixtures: tables, JSON, and one-line errors.</summary>
public sealed class EvalCommandTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Fixture(string name) => Whittle.Tests.Fixtures.FixtureModelsTests.Fixture(name);

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        var root = new RootCommand { EvalCommand.Create(console, error) };
        int exit = root.Parse(["eval", .. args]).Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        return (exit, output.ToString(), error.ToString());
    }

    private JsonNode RunJson(params string[] args)
    {
        string json = _dir.File("report.json");
        File.Delete(json);
        var (exit, stdout, err) = Run([.. args, "--repeats", "2", "--json", json]);
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
        Assert.Equal("", err);
        return JsonNode.Parse(File.ReadAllText(json))!;
    }

    /// <summary>Random inputs for mlp.onnx ([N,784]) and labels in an .npz, and the inputs as one tensor.</summary>
    private (string Path, float[] X, long[] Labels) MlpData(int n)
    {
        var x = Whittle.Tests.Runtime.RuntimeModels.RandomFloats(17, n, 784).AsFloats();
        var labels = Enumerable.Range(0, n).Select(i => (long)(i * 7 % 10)).ToArray();
        string path = _dir.File("data.npz");
        Npz.Write(path, [new("input", NpyArray.Wrap(x, [n, 784])), new("labels", NpyArray.Wrap(labels, [n]))]);
        return (path, x, labels);
    }

    private static float[] Logits(string modelPath, float[] x, int n)
    {
        using var s = TappedSession.Create(OnnxModel.Load(modelPath), []);
        return s.Run(new Whittle.Data.InputBatch("input", HostTensor.Float(x, n, 784)))["logits"].AsFloats();
    }

    [Fact]
    public void MlpAgainstItselfAgrees100PercentWithZeroKl()
    {
        var (data, x, labels) = MlpData(50);
        string mlp = Fixture("mlp.onnx");
        var r = RunJson("--model", mlp, "--reference", mlp, "--data", data, "--batch-size", "8");
        Assert.Equal("classifier", r["task"]!["task"]!.GetValue<string>());
        Assert.Equal(50, r["data"]!["examples"]!.GetValue<int>());
        Assert.Equal(7, r["data"]!["batches"]!.GetValue<int>());
        var c = r["comparison"]!;
        Assert.Equal(1.0, c["agreement"]!.GetValue<double>());
        Assert.Equal(0.0, c["meanKl"]!.GetValue<double>());
        Assert.Equal(0, c["flips"]!["correctToIncorrect"]!.GetValue<long>());
        Assert.Equal(0, c["flips"]!["incorrectToCorrect"]!.GetValue<long>());
        Assert.Equal(1.0, c["outputs"]![0]!["meanCosine"]!.GetValue<double>(), 1e-12);
        Assert.Equal(0.0, c["outputs"]![0]!["relativeError"]!.GetValue<double>());

        var logits = Logits(mlp, x, 50);
        int correct = Enumerable.Range(0, 50).Count(i => ArgMax(logits.AsSpan(i * 10, 10)) == labels[i]);
        Assert.Equal(correct, r["model"]!["correct"]!.GetValue<long>());
        Assert.Equal((double)correct / 50, r["model"]!["accuracy"]!.GetValue<double>());
        Assert.Equal(Enumerable.Range(0, 50).Average(i => -LogSoftmax(logits.AsSpan(i * 10, 10))[labels[i]]), r["model"]!["loss"]!.GetValue<double>(), 1e-9);
        Assert.Equal([1, 8], r["model"]!["latency"]!.AsArray().Select(l => l!["batchSize"]!.GetValue<int>()));
        Assert.Equal(Environment.ProcessorCount, r["runtime"]!["intraOpThreads"]!.GetValue<int>()); // the default: one per core
    }

    [Fact]
    public void PerturbedCopyDisagreesAndTheFiguresMatchAnIndependentComputation()
    {
        var (data, x, labels) = MlpData(80);
        string mlp = Fixture("mlp.onnx");
        string perturbed = _dir.File("perturbed.onnx");
        Perturbed(OnnxModel.Load(mlp), 0.5, seed: 21).Save(perturbed);
        var r = RunJson("--model", perturbed, "--reference", mlp, "--data", data, "--count", "60");

        const int n = 60;
        var p = Logits(mlp, x[..(n * 784)], n);
        var q = Logits(perturbed, x[..(n * 784)], n);
        int agree = 0, lost = 0, gained = 0;
        double kl = 0;
        for (int i = 0; i < n; i++)
        {
            int a = ArgMax(p.AsSpan(i * 10, 10)), b = ArgMax(q.AsSpan(i * 10, 10));
            if (a == b) agree++;
            if (a == labels[i] && b != labels[i]) lost++;
            if (a != labels[i] && b == labels[i]) gained++;
            kl += Kl(p.AsSpan(i * 10, 10), q.AsSpan(i * 10, 10));
        }
        var c = r["comparison"]!;
        Assert.Equal(n, c["compared"]!.GetValue<long>());
        Assert.True(agree < n, "the perturbation should change some predictions");
        Assert.Equal((double)agree / n, c["agreement"]!.GetValue<double>());
        Assert.True(c["meanKl"]!.GetValue<double>() > 0);
        Assert.Equal(kl / n, c["meanKl"]!.GetValue<double>(), 1e-9);
        Assert.Equal(lost, c["flips"]!["correctToIncorrect"]!.GetValue<long>());
        Assert.Equal(gained, c["flips"]!["incorrectToCorrect"]!.GetValue<long>());
        Assert.True(c["outputs"]![0]!["meanCosine"]!.GetValue<double>() < 1);
    }

    [Fact]
    public void TablesShowTheFiguresAndTheRuntime()
    {
        var (data, _, _) = MlpData(20);
        string mlp = Fixture("mlp.onnx");
        var (exit, stdout, err) = Run("--model", mlp, "--reference", mlp, "--data", data, "--repeats", "2", "--threads", "1");
        Assert.True(exit == 0, err);
        foreach (var text in new[] { "classifier", "cross-entropy", "accuracy", "parameters", "52,650", "MACs per example", "52.5 k",
                     "latency, batch 1", "latency, batch 20", "top-1 agreement", "100.00 % of 20 examples", "flips", "1 intra-op thread(s)" })
            Assert.Contains(text, stdout);
    }

    [Fact]
    public void LanguageModelOnTextReportsPerplexity()
    {
        string text = _dir.File("corpus.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 8)));
        var r = RunJson("--model", Fixture("gpt2_tiny.onnx"), "--text", text, "--window", "16", "--batch-size", "4");
        Assert.Equal("language-model", r["task"]!["task"]!.GetValue<string>());
        // 360 bytes, trimmed to 359 (one document) → 22 windows of 16 scoring 15 tokens each, and a last window of 7 scoring 6.
        Assert.Equal(23, r["data"]!["examples"]!.GetValue<int>());
        Assert.Equal(22 * 15 + 6, r["data"]!["predictedTokens"]!.GetValue<long>());
        Assert.Equal("documents, window 16", r["data"]!["protocol"]!.GetValue<string>());
        Assert.Equal("windows", r["model"]!["perplexityInterval"]!["units"]!.GetValue<string>());
        double loss = r["model"]!["loss"]!.GetValue<double>();
        Assert.Equal(Math.Exp(loss), r["model"]!["perplexity"]!.GetValue<double>(), 1e-9 * Math.Exp(loss));
        Assert.Contains(r["warnings"]!.AsArray(), w => w!.GetValue<string>().Contains("no 'whittle.tokenizer' metadata"));
        Assert.Null(r["comparison"]);
    }

    [Fact]
    public void FailuresAreOneLineNamingTheFile()
    {
        string mlp = Fixture("mlp.onnx");
        var (exit, _, err) = Run("--model", mlp);
        Assert.Equal(1, exit);
        Assert.StartsWith("error: No data", err);

        string wrong = _dir.File("wrong.npz");
        Npz.Write(wrong, [new("input", NpyArray.Wrap(new float[2 * 5], [2, 5]))]);
        (exit, _, err) = Run("--model", mlp, "--data", wrong);
        Assert.Equal(1, exit);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains(wrong, err);
        Assert.Contains("dimension 1 must be 784, got 5", err);

        (exit, _, err) = Run("--model", mlp, "--data", wrong, "--batch-size", "0");
        Assert.Equal(1, exit);
        Assert.Contains("--batch-size 0", err);

        (exit, _, err) = Run("--model", _dir.File("none.onnx"), "--data", wrong);
        Assert.Equal(1, exit);
        Assert.Contains("none.onnx", err);
    }

    [Fact]
    public void TextStringIsTokenizedByTheImportedModelsOwnTokenizer()
    {
        // An imported llama2.c model carries its tokenizer; --text-string feeds it a sentence (BOS + 34 tokens), no --window needed.
        var stories = Whittle.Import.Llama2cImporter.Import(Whittle.Tests.Import.SharedModels.Stories260K("stories260K.bin"),
            Whittle.Tests.Import.SharedModels.Stories260K("tok512.bin"));
        string file = _dir.File("stories.onnx");
        stories.Save(file);
        var r = RunJson("--model", file, "--text-string", "One day, a clever fox found a shiny key under the old oak tree.");
        Assert.Equal(34, (long)r["data"]!["predictedTokens"]!);
        Assert.Equal(4.953633, (double)r["model"]!["perplexity"]!, 4.953633 * 1e-4);
    }

    [Fact]
    public void DocumentSeparatorAndProtocolReachTheReport()
    {
        var stories = Whittle.Import.Llama2cImporter.Import(Whittle.Tests.Import.SharedModels.Stories260K("stories260K.bin"),
            Whittle.Tests.Import.SharedModels.Stories260K("tok512.bin"));
        string file = _dir.File("stories.onnx");
        stories.Save(file);
        string text = Whittle.Tests.Fixtures.RepoFixtures.Path("lm-protocols", "stories.txt");
        var r = RunJson("--model", file, "--reference", file, "--text", text, "--doc-separator", "<|endoftext|>", "--protocol", "stride", "--window", "64", "--stride", "24");
        Assert.Equal("stride, window 64, stride 24", (string)r["data"]!["protocol"]!);
        Assert.Equal(6, (int)r["data"]!["documents"]!);
        using var reference = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Whittle.Tests.Fixtures.RepoFixtures.Path("lm-protocols", "protocols.json")));
        var stride = reference.RootElement.GetProperty("cases").EnumerateArray().First(c => c.GetProperty("protocol").GetString() == "stride" && c.GetProperty("window").GetInt32() == 64);
        Assert.Equal(stride.GetProperty("scoredTokens").GetInt64(), (long)r["data"]!["predictedTokens"]!);
        Assert.Equal(stride.GetProperty("perplexity").GetDouble(), (double)r["model"]!["perplexity"]!, 1e-3);
        var ci = r["model"]!["perplexityInterval"]!;
        Assert.Equal("documents", (string)ci["units"]!);
        Assert.True((double)ci["low"]! < (double)r["model"]!["perplexity"]! && (double)r["model"]!["perplexity"]! < (double)ci["high"]!);
        // The model against itself: every scored token agrees.
        Assert.Equal(1.0, (double)r["comparison"]!["agreement"]!);
        Assert.Equal(stride.GetProperty("scoredTokens").GetInt64(), (long)r["comparison"]!["compared"]!);

        var (exit, _, err) = Run("--model", file, "--text", text, "--stride", "8");
        Assert.Equal(1, exit);
        Assert.Contains("a stride goes with the stride protocol", err);
    }
}
