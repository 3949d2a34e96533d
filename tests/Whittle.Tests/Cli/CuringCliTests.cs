using System.CommandLine;
using Whittle.Cli.Compress;
using Whittle.Decompositions;
using Whittle.Methods;

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
}
