using Google.Protobuf;
using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Methods;
using TempFolder = Whittle.Tests.Onnx.TempFolder;

namespace Whittle.Tests.Compression;

/// <summary>
/// What every method run through the harness (<see cref="Compressor.Compress"/>) promises, whatever its algorithm, in
/// both calibration modes: each budget met, every model saved and reloaded runs with the original's outputs, the report
/// describes the saved file, the same job gives the same bytes, and the original is left alone.
/// </summary>
public class ConformanceTests
{
    public static TheoryData<string, CalibrationMode> Cases
    {
        get
        {
            var data = new TheoryData<string, CalibrationMode>();
            foreach (var method in new[] { "id", "magnitude", "svd", "asvd", "whitened-svd", "curing", "lowrank", "slice" })
                foreach (var mode in new[] { CalibrationMode.Sequential, CalibrationMode.Parallel })
                    data.Add(method, mode);
            return data;
        }
    }

    /// <summary>A method with a model (built afresh on every call), its calibration set and the budgets it is run with.</summary>
    private static CompressionBudget WholeModel(CompressionBudget budget) => budget with { Scope = BudgetScope.Model };

    private sealed record Case(ICompressionMethod Method, Func<OnnxModel> Model, BatchSet Calibration, CompressionBudget[] Budgets, int Segments);

    /// <summary>Llama-family transformer: 4 blocks of width 16 (CURing needs 3 or more; blocks 1 and 2 are eligible), 2 × 4 × 8 tokens.</summary>
    private static OnnxModel Transformer() => TransformerGraphs.Build(Family.Llama, 4, d: 16, heads: 2, seed: 7);

    private static BatchSet TransformerData() => TransformerGraphs.Batches(2, 4, 8, mask: false, seed: 11);

    /// <summary>The joint low-rank search measures every candidate rank of every layer: 2 blocks of width 8, 2 candidates per layer, one batch of 2 × 6 tokens.</summary>
    private static OnnxModel Tiny() => TransformerGraphs.Build(Family.Llama, 2, d: 8, heads: 2, seed: 3);

    private static Case For(string method) => method switch
    {
        "id" => new(new InterpolativePruning(), Transformer, TransformerData(), [CompressionBudget.KeepMacs(0.7), WholeModel(CompressionBudget.KeepParameters(0.8))], 6),
        "magnitude" => new(new MagnitudePruning(), Transformer, TransformerData(), [WholeModel(CompressionBudget.KeepMacs(0.7)), CompressionBudget.KeepParameters(0.8)], 6),
        "svd" => new(new PlainSvd(), Transformer, TransformerData(), [CompressionBudget.KeepParameters(0.6), WholeModel(CompressionBudget.KeepParameters(0.85))], 6),
        "asvd" => new(new ActivationAwareSvd(), Transformer, TransformerData(), [CompressionBudget.KeepParameters(0.6), WholeModel(CompressionBudget.KeepParameters(0.85))], 6),
        "whitened-svd" => new(new WhitenedSvd(), Transformer, TransformerData(), [CompressionBudget.KeepParameters(0.6), WholeModel(CompressionBudget.KeepParameters(0.85))], 6),
        "curing" => new(new Curing(), Transformer, TransformerData(), [CompressionBudget.MethodDefault], 6),
        // Every weight of a small transformer touches its stream, so the compressible scope is the whole model: both budgets whole.
        "slice" => new(new StreamSlicing(), Transformer, TransformerData(), [WholeModel(CompressionBudget.KeepParameters(0.8)), WholeModel(CompressionBudget.KeepParameters(0.9))], 6),
        "lowrank" => new(new JointLowRank(new JointLowRankOptions { RankGrid = 2 }), Tiny, TransformerGraphs.Batches(1, 2, 6, mask: false, seed: 12),
            [CompressionBudget.MethodDefault], 4),
        _ => throw new ArgumentException(method),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryMethodMeetsItsBudgetsWritesRunnableModelsReportsThemTruthfullyAndIsDeterministic(string name, CalibrationMode mode)
    {
        var c = For(name);
        var original = c.Model();
        byte[] originalBytes = original.Proto.ToByteArray();
        var job = new CompressionJob(original, c.Calibration) { Mode = mode, Seed = 5 };

        var results = c.Method.Compress(job, c.Budgets);
        Assert.Equal(c.Budgets.Length, results.Count);

        // The original's size, measured here (the report's Before).
        var before = ModelCost.Measure(original, c.Calibration.FirstExample());
        Assert.Equal(ModelStructure.Analyze(original).Parameters, before.Parameters);

        using var dir = new TempFolder();
        using var reference = TappedSession.Create(original, []);
        var inputs = c.Calibration[0];
        var expected = reference.Run(inputs);
        for (int b = 0; b < results.Count; b++)
        {
            var (model, report) = results[b];
            var budget = c.Budgets[b];
            Assert.NotSame(original, model);

            // (c) The report's header.
            Assert.Equal(name, report.Method);
            Assert.Equal(c.Method.Name, report.Method);
            Assert.Equal(budget, report.Budget);
            Assert.Equal(before.Parameters, report.Before.Parameters);
            Assert.Equal(before.StoredBytes, report.Before.StoredBytes);
            Assert.Equal(before.MacsPerExample, report.Before.MacsPerExample, 1e-9 * before.MacsPerExample);
            var calibration = Assert.IsType<CalibrationReport>(report.Calibration);
            Assert.Equal(mode == CalibrationMode.Sequential ? "sequential" : "parallel", calibration.Mode);
            Assert.Equal(c.Segments, calibration.Segments);
            Assert.Equal("transformer blocks", calibration.Rule);
            Assert.Equal(0, calibration.SpilledBytes); // 1 GiB of boundary cache by default: nothing spilled
            Assert.NotEmpty(report.Timings);
            Assert.Contains(report.Timings, t => t.Stage == Stages.Analysis);
            Assert.All(report.Timings, t =>
            {
                Assert.True(t.Seconds >= 0, $"{t.Stage}: {t.Seconds} s");
                Assert.True(t.PeakWorkingSetBytes > 0, $"{t.Stage}: peak working set {t.PeakWorkingSetBytes}");
            });
            Assert.True(report.PeakWorkingSetBytes > 0);

            // (a) The budget it names, over the part it names; the compressible part is a true part of the model and only it changes.
            var part = report.Compressible!;
            Assert.InRange(part.ParametersBefore, 1, report.Before.Parameters);
            Assert.Equal(report.Before.Parameters - report.After.Parameters, part.ParametersBefore - part.ParametersAfter);
            bool whole = budget.Scope == BudgetScope.Model;
            switch (budget.Kind)
            {
                case BudgetKind.KeepMacs:
                    double macs = whole ? report.Before.MacsPerExample : part.MacsBefore!.Value, macsAfter = whole ? report.After.MacsPerExample : part.MacsAfter!.Value;
                    Assert.True(macsAfter <= budget.Value * macs * (1 + 1e-9), $"{name} {budget}: {macsAfter} of {macs} MACs");
                    break;
                case BudgetKind.KeepParameters:
                    long parameters = whole ? report.Before.Parameters : part.ParametersBefore, parametersAfter = whole ? report.After.Parameters : part.ParametersAfter;
                    Assert.True(parametersAfter <= budget.Value * parameters, $"{name} {budget}: {parametersAfter} of {parameters} parameters");
                    // The compressible scope removes less than the same fraction of the whole model would.
                    if (!whole) Assert.True(report.After.Parameters > budget.Value * report.Before.Parameters, $"{name} {budget}: the scope made no difference");
                    break;
                default:
                    // The method's own rule; never larger, and CURing always decomposes its chosen blocks.
                    Assert.True(report.After.Parameters <= report.Before.Parameters, $"{name}: {report.After.Parameters} > {report.Before.Parameters}");
                    if (name == "curing") Assert.True(report.After.Parameters < report.Before.Parameters);
                    break;
            }

            // (b) Nothing dead left in it (ORT warns about unused initializers on load); saved, reloaded, run in ONNX Runtime on
            // the original's inputs: same output names and shapes.
            var read = model.Graph.Proto.Node.SelectMany(n => n.Input).ToHashSet();
            Assert.All(model.Graph.InitializerNames, i => Assert.Contains(i, read));
            string path = dir.File($"{name}-{budget.Label}-{b}.onnx");
            model.Save(path);
            var loaded = OnnxModel.Load(path);
            using (var session = TappedSession.Create(loaded, []))
            {
                Assert.Equal(reference.OutputNames, session.OutputNames);
                var actual = session.Run(inputs);
                Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
                foreach (var (output, tensor) in expected)
                {
                    Assert.Equal(tensor.Shape, actual[output].Shape);
                    Assert.All(actual[output].AsFloats(), v => Assert.True(float.IsFinite(v), $"{name}: non-finite output"));
                }
            }

            // (c) The report describes the saved file.
            var after = ModelCost.Measure(loaded, c.Calibration.FirstExample());
            Assert.Equal(ModelStructure.Analyze(loaded).Parameters, report.After.Parameters);
            Assert.Equal(after.Parameters, report.After.Parameters);
            Assert.Equal(after.StoredBytes, report.After.StoredBytes);
            Assert.Equal(after.MacsPerExample, report.After.MacsPerExample, 1e-9 * after.MacsPerExample);
            Assert.Equal(report.After.Parameters, report.Sites.Sum(s => s.ParametersAfter - s.ParametersBefore) + report.Before.Parameters);
        }

        // (e) The original is left alone.
        Assert.Equal(originalBytes, original.Proto.ToByteArray());

        // (d) The same job and seed again: the same bytes.
        var again = c.Method.Compress(job, c.Budgets);
        for (int b = 0; b < results.Count; b++)
            Assert.True(results[b].Model.Proto.ToByteArray().AsSpan().SequenceEqual(again[b].Model.Proto.ToByteArray()),
                $"{name} ({mode}), {c.Budgets[b]}: a second run gave different bytes");
        Assert.Equal(originalBytes, original.Proto.ToByteArray());
    }

    private sealed class CountingProgress : IProgress<CompressionProgress>
    {
        public int Reports { get; private set; }

        public void Report(CompressionProgress value) => Reports++;
    }

    [Fact]
    public void BudgetKindsAMethodDoesNotDeclareAreRefusedBeforeAnythingRunsNamingTheFlags()
    {
        var progress = new CountingProgress();
        var job = new CompressionJob(Transformer(), TransformerData()) { Progress = progress };

        ArgumentException Refused(ICompressionMethod method, params CompressionBudget[] budgets) =>
            Assert.Throws<ArgumentException>(() => method.Compress(job, budgets));

        foreach (var svd in new ICompressionMethod[] { new PlainSvd(), new ActivationAwareSvd(), new WhitenedSvd() })
        {
            var e = Refused(svd, CompressionBudget.KeepMacs(0.5));
            Assert.Contains($"{svd.Name} needs a budget: --keep-params, --tolerance or --keep-latency", e.Message);
            Assert.Contains("keep 0.5 of compressible MACs", e.Message);
            // One bad budget among good ones is enough.
            Assert.Contains("--keep-params, --tolerance or --keep-latency", Refused(svd, CompressionBudget.KeepParameters(0.5), CompressionBudget.KeepMacs(0.5)).Message);
            Assert.Contains("got none", Refused(svd).Message);
        }
        foreach (var pruning in new ICompressionMethod[] { new InterpolativePruning(), new MagnitudePruning() })
            Assert.Contains("--keep-macs, --keep-params, --tolerance or --keep-latency", Refused(pruning, CompressionBudget.MethodDefault).Message);
        foreach (var own in new ICompressionMethod[] { new Curing(), new JointLowRank() })
        {
            var e = Refused(own, CompressionBudget.KeepParameters(0.5));
            Assert.Contains($"{own.Name} takes no budget", e.Message);
            Assert.Contains("keep 0.5 of compressible parameters", e.Message);
        }
        Assert.Contains("takes no budget", Refused(new Curing(), CompressionBudget.MethodDefault, CompressionBudget.Tolerance(0.1)).Message);

        // Refused before the harness started: no analysis, no progress.
        Assert.Equal(0, progress.Reports);
    }
}
