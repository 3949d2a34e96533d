using Whittle.Cli.Commands;
using Whittle.Cli.Compress;
using Whittle.Compression;

namespace Whittle.Tests.Cli;

public class CompressCommandTests
{
    [Fact]
    public void BudgetListsParseInOrder()
    {
        Assert.Equal([CompressionBudget.KeepMacs(0.9), CompressionBudget.KeepMacs(0.7), CompressionBudget.KeepMacs(0.5)],
            CompressCommand.Budgets("0.9, 0.7,0.5", null, null));
        Assert.Equal([CompressionBudget.KeepParameters(0.8)], CompressCommand.Budgets(null, "0.8", null));
        Assert.Equal([CompressionBudget.Tolerance(0.01), CompressionBudget.Tolerance(0.001)], CompressCommand.Budgets(null, null, "1e-2,0.001"));
        Assert.Empty(CompressCommand.Budgets(null, null, null));
    }

    [Theory]
    [InlineData("0.9", "0.8", null, "one kind of budget")]
    [InlineData("0.5,x", null, null, "'x' is not a number")]
    [InlineData("1.5", null, null, "fraction in (0, 1]")]
    [InlineData("0.5,0.5", null, null, "given twice")]
    [InlineData(",", null, null, "is empty")]
    [InlineData(null, null, "-1", "positive tolerance")]
    public void BadBudgetsSayWhatIsWrong(string? macs, string? parameters, string? tolerance, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => CompressCommand.Budgets(macs, parameters, tolerance));
        Assert.Contains(message, ex.Message);
    }

    [Fact]
    public void SeveralBudgetsGetOneFileEachBesideTheOutput()
    {
        string out1 = Path.Combine("dir", "model.onnx");
        Assert.Equal(out1, CompressRun.OutputPath(out1, CompressionBudget.KeepMacs(0.5), several: false));
        Assert.Equal(Path.Combine("dir", "model.macs-0.5.onnx"), CompressRun.OutputPath(out1, CompressionBudget.KeepMacs(0.5), several: true));
        Assert.Equal(Path.Combine("dir", "model.tol-0.01.onnx"), CompressRun.OutputPath(out1, CompressionBudget.Tolerance(0.01), several: true));
    }

    [Fact]
    public void EveryFlagNameBelongsToOneMethodOrToTheCommand()
    {
        var command = CompressCommand.Create();
        var names = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).ToList();
        var repeated = names.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(repeated.Count == 0, $"flags defined twice: {string.Join(", ", repeated)}");
        Assert.All(MethodCatalog.All.SelectMany(m => m.Names), n => Assert.Same(MethodCatalog.All.Single(m => m.Names.Contains(n)), MethodCatalog.Find(n)));
    }
}
