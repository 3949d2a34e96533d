using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Cli.Compress;
using Whittle.Decompositions;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Tests.Methods;

namespace Whittle.Tests.Cli;

public class CuringCliTests
{
    private static CuringOptions Parse(params string[] args)
    {
        var entry = MethodCatalog.Find("curing");
        Assert.NotNull(entry);
        var cmd = new RootCommand();
        foreach (var o in entry.Options) cmd.Options.Add(o);
        var parse = cmd.Parse(args);
        Assert.Empty(parse.Errors);
        return Assert.IsType<Curing>(entry.Create("curing", parse)).Options;
    }

    [Fact]
    public void DefaultsAreThePapers()
    {
        var o = Parse();
        var paper = new CuringOptions();
        Assert.Null(o.Layers);
        Assert.Equal(256, o.MaxRank);
        Assert.Equal([BlockRole.Query, BlockRole.Key, BlockRole.Gate], o.Targets);
        Assert.Equal(paper.Targets, o.Targets);
        Assert.Equal(LayerSelectionKind.Angular, o.Selection.Kind);
        Assert.Equal((DeimVariant.Reference, CurCore.PseudoInverse), (o.Deim, o.Core));
        Assert.False(MethodCatalog.Find("CURING")!.TakesBudgets);
    }

    [Fact]
    public void FlagsMapOntoTheOptionRecord()
    {
        var o = Parse("--layers", "3", "--max-rank", "64", "--targets", "v, o,down,gate", "--layer-selection", "last", "--deim", "qdeim", "--core", "activation");
        Assert.Equal(3, o.Layers);
        Assert.Equal(64, o.MaxRank);
        Assert.Equal([BlockRole.Value, BlockRole.Output, BlockRole.Down, BlockRole.Gate], o.Targets);
        Assert.Equal(LayerSelection.Last, o.Selection);
        Assert.Equal((DeimVariant.QDeim, CurCore.Activation), (o.Deim, o.Core));

        var l = Parse("--layer-selection", "list:4,2,3", "--deim", "textbook", "--core", "diag");
        Assert.Equal([4, 2, 3], l.Selection.Blocks);
        Assert.Equal((DeimVariant.Textbook, CurCore.Diagonal), (l.Deim, l.Core));
    }

    [Theory]
    [InlineData("--targets", "q,attn")]
    [InlineData("--targets", ",")]
    [InlineData("--layer-selection", "first")]
    [InlineData("--layer-selection", "list:")]
    [InlineData("--layer-selection", "list:2,x")]
    [InlineData("--layer-selection", "list:2,2")]
    [InlineData("--layers", "0")]
    [InlineData("--max-rank", "0")]
    public void BadValuesAreOneLineErrorsNamingTheFlag(string flag, string value)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Parse(flag, value));
        Assert.Contains(flag, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void LayersContradictingAListIsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => Parse("--layers", "2", "--layer-selection", "list:3"));
        Assert.Contains("--layers 2", e.Message);
    }

    [Fact]
    public void DeimAndCoreAcceptOnlyTheirNames()
    {
        var entry = MethodCatalog.Find("curing")!;
        var cmd = new RootCommand();
        foreach (var o in entry.Options) cmd.Options.Add(o);
        Assert.NotEmpty(cmd.Parse(["--deim", "fast"]).Errors);
        Assert.NotEmpty(cmd.Parse(["--core", "svd"]).Errors);
    }

    [Fact]
    public void CompressWithCuringWritesAModelAndAReportWithTheDistances()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-curing-");
        try
        {
            string model = Path.Combine(dir.FullName, "llama.onnx"), text = Path.Combine(dir.FullName, "text.txt");
            string outPath = Path.Combine(dir.FullName, "out.onnx"), report = Path.Combine(dir.FullName, "report.json");
            TransformerGraphs.Build(Family.Llama, 5, vocab: 256, d: 16, heads: 2, seed: 4, quiet: []).Save(model);
            File.WriteAllText(text, string.Concat(Enumerable.Range(0, 400).Select(i => $"Call me Ishmael, line {i}. ")));
            var output = new StringWriter();
            var error = new StringWriter();
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
            });
            var root = new RootCommand { CompressCommand.Create(console, error) };
            int exit = root.Parse(["compress", "--model", model, "--method", "curing", "--calib", text, "--calib-count", "16", "--window", "32",
                "--out", outPath, "--report", report, "--layers", "2", "--targets", "q,k,gate,down", "--deim", "textbook"])
                .Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
            Assert.True(exit == 0, $"exit {exit}: {error}{output}");
            Assert.Equal(4 * 2, OnnxModel.Load(outPath).Graph.Nodes.Count(n => n.Name.EndsWith("/factor2", StringComparison.Ordinal)));
            using var json = JsonDocument.Parse(File.ReadAllText(report));
            var text1 = json.RootElement.GetRawText();
            Assert.Contains("\"chosenBlocks\"", text1);
            Assert.Contains("\"textbook\"", text1);
            Assert.Contains("\"distance\"", text1);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
