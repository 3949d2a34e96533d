using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Cli.Compress;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.IO;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Tests.Methods;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Cli;

public sealed class LowRankCliTests(TrainedMlpFixture fixture) : IClassFixture<TrainedMlpFixture>, IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ICompressionMethodAndParse Parse(string method, params string[] args)
    {
        var entry = MethodCatalog.Find(method);
        Assert.NotNull(entry);
        var cmd = new RootCommand();
        foreach (var o in entry.Options) cmd.Options.Add(o);
        cmd.Options.Add(new Option<string?>("--task")); // compress's, which lowrank's loss follows
        var parse = cmd.Parse(args);
        Assert.Empty(parse.Errors);
        return new(entry.Create(method, parse), entry);
    }

    private sealed record ICompressionMethodAndParse(Whittle.Compression.ICompressionMethod Method, IMethodCli Entry);

    [Fact]
    public void LowRankDefaultsAreThePapersLosslessAlgorithmOnKlToTheOriginal()
    {
        var (method, entry) = Parse("lowrank");
        var o = Assert.IsType<JointLowRank>(method).Options;
        Assert.Equal(new JointLowRankOptions(), o);
        Assert.Equal((LowRankMode.Lossless, GradientSource.Exact, 0.0, 16), (o.Mode, o.Gradient, o.LossTolerance, o.RankGrid));
        // On KL to the original, 1 % of the original's output entropy (KL starts at 0); on the task loss, the paper's 0.
        Assert.Equal((LowRankLoss.Divergence, 0.01, 0.0), (o.Loss, o.RelativeToleranceFor(divergence: true), (o with { Loss = LowRankLoss.Task }).RelativeToleranceFor(divergence: false)));
        Assert.False(entry.TakesBudgets);
    }

    [Fact]
    public void LowRankFlagsMapOntoTheOptionRecord()
    {
        var o = Assert.IsType<JointLowRank>(Parse("lowrank", "--mode", "compact", "--loss-tolerance", "0.02", "--gradient", "central-difference",
            "--rank-grid", "8", "--difference-step", "0.5", "--task", "generic", "--order", "largest-first").Method).Options;
        Assert.Equal((LowRankMode.Compact, GradientSource.CentralDifference, 0.02, 8, 0.5, ModelTask.Generic, LayerOrder.LargestFirst),
            (o.Mode, o.Gradient, o.LossTolerance, o.RankGrid, o.DifferenceStep, o.Task, o.Order));
    }

    [Fact]
    public void CompactModeWithoutATolerance_AllowsOnePercent_SoThatItCompresses()
    {
        var o = Assert.IsType<JointLowRank>(Parse("lowrank", "--mode", "compact").Method).Options;
        Assert.Equal((0.0, null), (o.LossTolerance, o.RelativeLossTolerance));
        Assert.Equal(0.01, o.RelativeToleranceFor(divergence: false));
        Assert.Equal(LowRankLoss.Divergence, o.Loss);
        Assert.Equal(LowRankLoss.Task, Assert.IsType<JointLowRank>(Parse("lowrank", "--loss", "task").Method).Options.Loss);
        var given = Assert.IsType<JointLowRank>(Parse("lowrank", "--mode", "compact", "--loss-tolerance", "0").Method).Options;
        Assert.Equal((0.0, 0.0), (given.LossTolerance, given.RelativeLossTolerance));
        var both = Assert.IsType<JointLowRank>(Parse("lowrank", "--mode", "compact", "--relative-tolerance", "0.05").Method).Options;
        Assert.Equal(0.05, both.RelativeLossTolerance);
    }

    [Theory]
    [InlineData("--relative-tolerance", "-0.1")]
    [InlineData("--loss-tolerance", "-0.1")]
    [InlineData("--rank-grid", "0")]
    [InlineData("--difference-step", "0")]
    public void BadLowRankValuesAreOneLineErrorsNamingTheFlag(string flag, string value)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Parse("lowrank", flag, value));
        Assert.Contains(flag, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void BaselinesAreOneEntryWithBudgets()
    {
        Assert.IsType<PlainSvd>(Parse("svd").Method);
        Assert.Equal(0.25, Assert.IsType<ActivationAwareSvd>(Parse("asvd", "--asvd-alpha", "0.25").Method).AlphaExponent);
        Assert.Equal(ActivationAwareSvd.DefaultAlpha, Assert.IsType<ActivationAwareSvd>(Parse("ASVD").Method).AlphaExponent);
        var (whitened, entry) = Parse("whitened-svd");
        Assert.IsType<WhitenedSvd>(whitened);
        Assert.True(entry.TakesBudgets);
        Assert.False(Assert.IsType<PlainSvd>(Parse("svd", "--no-output-error").Method).Options.MeasureOutputError);
        Assert.False(Assert.IsType<PlainSvd>(Parse("svd").Method).Options.IncludeOutputLayer);
        Assert.True(Assert.IsType<WhitenedSvd>(Parse("whitened-svd", "--factorize-output-layer").Method).Options.IncludeOutputLayer);
        var e = Assert.Throws<ArgumentException>(() => Parse("svd", "--asvd-alpha", "0.3"));
        Assert.Contains("--asvd-alpha applies to --method asvd", e.Message);
    }

    private static (int Exit, string Out, string Err) Compress(params string[] args) => CompressCli.Run(args);

    /// <summary>The trained MLP and its calibration / held-out sets written as files (model.onnx, calib.npz, heldout.npz with labels).</summary>
    private (string Model, string Calib, string HeldOut) Files()
    {
        string model = _dir.File("model.onnx");
        fixture.Mlp.Model.Save(model);
        string Write(string name, BatchSet batches)
        {
            var x = batches.SelectMany(b => b["x"].AsFloats()).ToArray();
            var y = batches.Labels!.SelectMany(l => l.AsInt64()).ToArray();
            string path = _dir.File(name);
            Npz.Write(path, [new("x", NpyArray.Wrap(x, [y.Length, TrainedMlp.In])), new("labels", NpyArray.Wrap(y, [y.Length]))]);
            return path;
        }
        Write("calib-copy.npz", fixture.Mlp.Calibration);
        return (model, Write("calib.npz", fixture.Mlp.Calibration), Write("heldout.npz", fixture.Mlp.HeldOut));
    }

    [Fact]
    public void CompressLowRankEndToEndWritesAModelNoWorseOnCalibrationAndAReport()
    {
        var (model, calib, heldOut) = Files();
        string output = _dir.File("small.onnx"), report = _dir.File("report.json");
        var (exit, stdout, err) = Compress("--model", model, "--method", "lowrank", "--mode", "compact", "--calib", calib, "--calib-count", "300",
            "--out", output, "--report", report, "--eval", heldOut);
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
        var json = JsonNode.Parse(File.ReadAllText(report))!;
        var result = json["results"]![0]!["report"]!;
        var details = result["details"]!;
        Assert.Equal("compact", details["mode"]!.GetValue<string>());
        Assert.True(details["finalLoss"]!.GetValue<double>() <= details["threshold"]!.GetValue<double>() + 1e-9);
        Assert.True(result["after"]!["parameters"]!.GetValue<long>() < result["before"]!["parameters"]!.GetValue<long>());
        Assert.NotNull(json["results"]![0]!["evaluation"]);
        Assert.DoesNotContain(json["warnings"]!.AsArray(), w => w!.GetValue<string>().Contains("also appear"));

        // Held-out data that repeat calibration examples (another file holding the same samples) draw a warning.
        var (exit2, stdout2, err2) = Compress("--model", model, "--method", "lowrank", "--mode", "compact", "--calib", calib, "--calib-count", "300",
            "--out", output, "--report", report, "--eval", _dir.File("calib-copy.npz"));
        Assert.True(exit2 == 0, $"exit {exit2}: {err2}{stdout2}");
        var warnings = JsonNode.Parse(File.ReadAllText(report))!["warnings"]!.AsArray().Select(w => w!.GetValue<string>()).ToList();
        Assert.Contains(warnings, w => w.Contains("300 of 300 held-out examples also appear in the calibration data"));
        Assert.True(OnnxModel.Load(output).Graph.Nodes.Count(n => n.OpType == "MatMul") > 2);
    }

    [Fact]
    public void CompressWhitenedSvdEndToEndMeetsTheBudget()
    {
        var (model, calib, _) = Files();
        string output = _dir.File("w.onnx"), report = _dir.File("w.json");
        var (exit, stdout, err) = Compress("--model", model, "--method", "whitened-svd", "--calib", calib, "--keep-params", "0.7,0.4",
            "--out", output, "--report", report);
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
        var results = JsonNode.Parse(File.ReadAllText(report))!["results"]!.AsArray();
        Assert.Equal(2, results.Count);
        foreach (var (r, keep) in results.Zip([0.7, 0.4]))
        {
            var rep = r!["report"]!;
            // Of the compressible parameters (the default scope), which leave out the layer writing the output.
            var part = rep["compressible"]!;
            long before = part["parametersBefore"]!.GetValue<long>(), after = part["parametersAfter"]!.GetValue<long>();
            Assert.True(after <= keep * before, $"{after} of {before}");
            Assert.True(before < rep["before"]!["parameters"]!.GetValue<long>());
            Assert.Equal(rep["before"]!["parameters"]!.GetValue<long>() - rep["after"]!["parameters"]!.GetValue<long>(), before - after);
            Assert.True(File.Exists(r["file"]!.GetValue<string>()));
        }
        var (exit2, _, err2) = Compress("--model", model, "--method", "lowrank", "--calib", calib, "--keep-params", "0.5", "--out", output);
        Assert.Equal(1, exit2);
        Assert.Contains("takes no --keep-macs/--keep-params/--tolerance/--keep-latency budget", err2);
    }
}
