using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Whittle.Analysis;
using Whittle.Cli.Commands;
using Whittle.Onnx;
using Whittle.Tests.Onnx;
using static Whittle.Tests.Fixtures.FixtureModelsTests;

namespace Whittle.Tests.Cli;

/// <summary>
/// <c>whittle inspect</c> on the PyTorch fixtures: the JSON holds exactly what the library finds, and the MACs
/// agree with the independent PyTorch counts in <c>fixtures.json</c>.
/// </summary>
public class InspectCommandTests
{
    private static JsonElement Entry(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture("fixtures.json")));
        return doc.RootElement.GetProperty("models").GetProperty(model).Clone();
    }

    private static (string Name, int[] Shape) FixtureInput(string model)
    {
        var input = Entry(model).GetProperty("input");
        return (input.GetProperty("name").GetString()!, [.. input.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32())]);
    }

    private static (int Exit, string Out) Run(params string[] args)
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
        });
        console.Profile.Width = 240;
        var root = new RootCommand { InspectCommand.Create(console) };
        int exit = root.Parse(["inspect", .. args]).Invoke(new InvocationConfiguration { Output = output, EnableDefaultExceptionHandler = false });
        return (exit, output.ToString());
    }

    private static JsonNode InspectJson(params string[] args)
    {
        using var dir = new TempFolder();
        string json = dir.File("inspect.json");
        var (exit, _) = Run([.. args, "--json", json]);
        Assert.Equal(0, exit);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
        return JsonNode.Parse(File.ReadAllText(json))!;
    }

    private static double Sum(JsonNode report, Func<JsonNode, bool> which) =>
        report["structure"]!["macs"]!["layers"]!.AsArray().Where(l => which(l!)).Sum(l => l!["perExample"]!.GetValue<double>());

    [Theory]
    [MemberData(nameof(Models), MemberType = typeof(Fixtures.FixtureModelsTests))]
    public void JsonHoldsTheLibrarysStructureAndMacsMatchPyTorch(string name)
    {
        var entry = Entry(name);
        var (input, shape) = FixtureInput(name);
        string path = Fixture(name + ".onnx");
        var report = InspectJson("--model", path, "--input-shape", $"{input}={string.Join(",", shape)}");

        // The document is the library's summary and structure at the given shape, camelCase, enums as strings.
        var model = OnnxModel.Load(path);
        var shapes = AnalysisShapes.Resolve(model, new Dictionary<string, int[]> { [input] = shape });
        var structure = ModelStructure.Analyze(model, shapes.Values);
        Assert.True(JsonNode.DeepEquals(JsonSerializer.SerializeToNode(OnnxModelSummary.Of(model), InspectCommand.JsonOptions), report["summary"]));
        Assert.True(JsonNode.DeepEquals(JsonSerializer.SerializeToNode(structure, InspectCommand.JsonOptions), report["structure"]));
        var used = report["shapes"]!["inputs"]![0]!;
        Assert.Equal((input, true), (used["name"]!.GetValue<string>(), used["given"]!.GetValue<bool>()));
        Assert.Equal(shape, used["shape"]!.AsArray().Select(d => d!.GetValue<int>()));
        Assert.Equal("Probe", report["shapes"]!["origin"]!.GetValue<string>());
        Assert.All(report["structure"]!["chains"]!.AsArray(), c => Assert.True(Enum.IsDefined(Enum.Parse<ChainKind>(c!["kind"]!.GetValue<string>()))));

        // Independent counts from PyTorch.
        var s = report["structure"]!;
        Assert.Equal(entry.GetProperty("conv_layers").GetInt32(), s["convSites"]!.AsArray().Count);
        Assert.Equal(entry.GetProperty("linear_layers").GetInt32(), s["linearSites"]!.AsArray().Count);
        Assert.Empty(s["macs"]!["unknown"]!.AsArray());
        Assert.Equal(entry.GetProperty("conv_macs").GetDouble(), Sum(report, l => l["isSite"]!.GetValue<bool>() && l["opType"]!.GetValue<string>() == "Conv"));
        Assert.Equal(entry.GetProperty("linear_macs").GetDouble(), Sum(report, l => l["isSite"]!.GetValue<bool>() && l["opType"]!.GetValue<string>() != "Conv"));
        Assert.Equal(entry.GetProperty("attention_matmul_macs").GetDouble(), Sum(report, l => !l["isSite"]!.GetValue<bool>()));
        Assert.Equal(entry.GetProperty("total_macs").GetDouble(), s["macs"]!["sitesPerExample"]!.GetValue<double>());
        Assert.Equal(entry.GetProperty("total_macs").GetDouble() + entry.GetProperty("attention_matmul_macs").GetDouble(), s["macs"]!["perExample"]!.GetValue<double>());

        // Layer by layer: the same multiset of (shape, MACs) as PyTorch's modules.
        var macsBySite = s["macs"]!["layers"]!.AsArray().Where(l => l!["isSite"]!.GetValue<bool>())
            .ToDictionary(l => l!["name"]!.GetValue<string>(), l => l!["perExample"]!.GetValue<double>());
        var expected = entry.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("kind").GetString() == "Conv"
            ? $"conv {l.GetProperty("out_channels")}x{l.GetProperty("in_channels")}x{string.Join("x", l.GetProperty("kernel").EnumerateArray())} {l.GetProperty("macs")}"
            : $"linear {l.GetProperty("out_features")}x{l.GetProperty("in_features")} {l.GetProperty("macs")}").Order(StringComparer.Ordinal);
        var actual = s["convSites"]!.AsArray().Select(c =>
                $"conv {c!["outChannels"]}x{c["inChannels"]}x{string.Join("x", c["kernel"]!.AsArray())} {macsBySite[c["name"]!.GetValue<string>()]}")
            .Concat(s["linearSites"]!.AsArray().Select(l => $"linear {l!["outFeatures"]}x{l["inFeatures"]} {macsBySite[l["name"]!.GetValue<string>()]}"))
            .Order(StringComparer.Ordinal);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void MlpParametersMatchPyTorch()
    {
        // No folded BatchNorm, tied weights or buffers: ONNX initializers are exactly PyTorch's parameters.
        var report = InspectJson("--model", Fixture("mlp.onnx"));
        Assert.Equal(Entry("mlp").GetProperty("parameters").GetInt64(), report["structure"]!["parameters"]!.GetValue<long>());
        Assert.Equal(Entry("mlp").GetProperty("parameters").GetInt64(), report["structure"]!["siteParameters"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("gpt2_tiny", 4, 4, 8)]
    [InlineData("llama_tiny", 4, 2, 8)]
    public void LanguageModelsReportBlocksAndHeads(string name, int heads, int kvHeads, int headSize)
    {
        var report = InspectJson("--model", Fixture(name + ".onnx"), "--sequence-length", "16");
        var blocks = report["structure"]!["blocks"]!.AsArray();
        Assert.Equal(Entry(name).GetProperty("attention_layers").GetArrayLength(), blocks.Count);
        foreach (var b in blocks)
        {
            var a = b!["attention"]!;
            Assert.Equal((heads, kvHeads, headSize), (a["heads"]!.GetValue<int>(), a["kvHeads"]!.GetValue<int>(), a["headSize"]!.GetValue<int>()));
            Assert.NotNull(b["mlp"]!["down"]);
        }
        // --sequence-length fills the symbolic dim: the same MACs as the fixture's [1, 16].
        Assert.Equal(Entry(name).GetProperty("total_macs").GetDouble(), report["structure"]!["macs"]!["sitesPerExample"]!.GetValue<double>());
        var used = report["shapes"]!["inputs"]![0]!;
        Assert.False(used["given"]!.GetValue<bool>());
        Assert.Equal([1, 16], used["shape"]!.AsArray().Select(d => d!.GetValue<int>()));
        Assert.Equal(2, used["assumed"]!.AsArray().Count);
    }

    [Fact]
    public void DefaultSequenceLengthBeyondTheModelsPositionsFallsBackToGraphShapesAndSaysWhy()
    {
        // gpt2_tiny has 64 positions: ONNX Runtime cannot run it at the default 128, so MACs needing runtime shapes are unknown.
        var report = InspectJson("--model", Fixture("gpt2_tiny.onnx"));
        var shapes = report["shapes"]!;
        Assert.Equal([1, AnalysisShapes.DefaultSequenceLength], shapes["inputs"]![0]!["shape"]!.AsArray().Select(d => d!.GetValue<int>()));
        Assert.Equal("Graph", shapes["origin"]!.GetValue<string>());
        Assert.Contains("Gather", shapes["probeFailure"]!.GetValue<string>());
        Assert.NotEmpty(report["structure"]!["macs"]!["unknown"]!.AsArray());
    }

    [Fact]
    public void MacsArePerExampleWhateverTheBatch()
    {
        var batch1 = InspectJson("--model", Fixture("resnet_cifar.onnx"));
        var batch4 = InspectJson("--model", Fixture("resnet_cifar.onnx"), "--input-shape", "4,3,32,32");
        Assert.Equal([1, 3, 32, 32], batch1["shapes"]!["inputs"]![0]!["shape"]!.AsArray().Select(d => d!.GetValue<int>()));
        Assert.Equal(4, batch4["structure"]!["macs"]!["batchSize"]!.GetValue<int>());
        double expected = Entry("resnet_cifar").GetProperty("total_macs").GetDouble();
        Assert.Equal(expected, batch1["structure"]!["macs"]!["perExample"]!.GetValue<double>());
        Assert.Equal(expected, batch4["structure"]!["macs"]!["perExample"]!.GetValue<double>());
    }

    [Fact]
    public void TablesShowTheStructureAndTruncateLongLists()
    {
        var (exit, text) = Run("--model", Fixture("llama_tiny.onnx"), "--input-shape", "input_ids=1,16", "--rows", "3");
        Assert.Equal(0, exit);
        Assert.Contains("Linear sites (15)", text);
        Assert.Contains("… 12 more", text);
        Assert.Contains("Transformer blocks (2)", text);
        Assert.Contains("4 (2) × 8", text);
        Assert.Contains("GatedLinear", text);
        Assert.Contains("[1,16]", text);
        Assert.Contains(Entry("llama_tiny").GetProperty("total_macs").GetDouble().ToString("N0", System.Globalization.CultureInfo.InvariantCulture), text);

        (exit, text) = Run("--model", Fixture("resnet_cifar_bn.onnx"));
        Assert.Equal(0, exit);
        Assert.Contains($"Convolution sites ({Entry("resnet_cifar_bn").GetProperty("conv_layers").GetInt32()})", text);
        Assert.Contains("residual or skip connection", text);
        Assert.Contains(Entry("resnet_cifar_bn").GetProperty("total_macs").GetDouble().ToString("N0", System.Globalization.CultureInfo.InvariantCulture), text);
    }

    [Theory]
    [InlineData("pixels=1,3,32,32", typeof(ArgumentException), "'pixels' is not an input")]
    [InlineData("input=1,3,28,28", typeof(ArgumentException), "expected shape [batch,3,32,32]")]
    [InlineData("input=1,3,x,32", typeof(FormatException), "got 'x'")]
    [InlineData("input=1,3,0,32", typeof(FormatException), "got '0'")]
    public void BadInputShapesAreRejectedWithTheReason(string shape, Type exception, string message)
    {
        using var dir = new TempFolder();
        string json = dir.File("out.json");
        var ex = Assert.Throws(exception, () => Run("--model", Fixture("resnet_cifar.onnx"), "--input-shape", shape, "--json", json));
        Assert.Contains(message, ex.Message);
        Assert.False(File.Exists(json));
    }
}
