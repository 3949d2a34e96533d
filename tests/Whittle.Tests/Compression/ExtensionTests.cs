using System.Reflection;
using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Methods;

namespace Whittle.Tests.Compression;

/// <summary>
/// What a NuGet user can build on the public API: a new SVD variant as a <see cref="LowRankBaseline"/> subclass, and a
/// method of their own that calibrates segment by segment through <see cref="CompressionRun.Pass"/>. The classes below use
/// public members only (the test project sees internals too, so <see cref="TheExtensionPointsArePublic"/> pins them).
/// </summary>
public class ExtensionTests
{
    private const int Blocks = 3;

    private static OnnxModel Transformer() => TransformerGraphs.Build(Family.Llama, Blocks, d: 16, heads: 2, seed: 9);

    private static BatchSet Data() => TransformerGraphs.Batches(3, 2, 7, mask: false, seed: 21);

    private static long Parameters(OnnxModel model) => ModelStructure.Analyze(model).Parameters;

    // ------------------------------------------------------------------ a LowRankBaseline variant

    /// <summary>SVD of <c>W·diag(a)</c>, a the inputs' per-feature RMS from the Gram matrix, with R unscaled (ASVD at α = 1).</summary>
    private sealed class RmsScaledSvd() : LowRankBaseline(null)
    {
        public override string Name => "rms-svd";

        protected override bool NeedsInputs => true;

        protected override LowRankFactors<double> Factorize(Matrix<double> w, GramMatrix? inputs, int rank)
        {
            double[] a = inputs!.Rms();
            var scaled = Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j] * a[j]);
            var f = LowRank.Svd<double>(scaled, rank);
            var r = Matrix<double>.Create(f.R.Rows, f.R.Cols, (i, j) => f.R[i, j] / a[j]);
            return new LowRankFactors<double>(f.L, r, f.SingularValues, LowRankMethod.ActivationAware);
        }
    }

    /// <summary>A randomized truncated SVD (few samples, so that the sketch is really smaller than W); reads no statistics.</summary>
    private sealed class RandomizedSvd(LowRankBaselineOptions options) : LowRankBaseline(options)
    {
        public List<GramMatrix?> Given { get; } = [];

        public override string Name => "randomized-svd";

        protected override bool NeedsInputs => false;

        protected override LowRankFactors<double> Factorize(Matrix<double> w, GramMatrix? inputs, int rank)
        {
            Given.Add(inputs);
            var svd = TruncatedSvd.Compute<double>(w, rank, new TruncatedSvdOptions(Oversampling: 2, PowerIterations: 3, Seed: 1));
            var (l, r) = LowRank.Split(svd, rank);
            return new LowRankFactors<double>(l, r, svd.S, LowRankMethod.Svd);
        }
    }

    [Fact]
    public void ALowRankBaselineSubclassRunsThroughTheHarnessAndEqualsTheBuiltInMethodItReimplements()
    {
        var model = Transformer();
        var data = Data();
        var budget = CompressionBudget.KeepParameters(0.6) with { Scope = BudgetScope.Model };
        var mine = Assert.Single(new RmsScaledSvd().Compress(new CompressionJob(model, data), [budget]));
        var asvd = Assert.Single(new ActivationAwareSvd(alpha: 1).Compress(new CompressionJob(model, data), [budget]));

        Assert.Equal("rms-svd", mine.Report.Method);
        Assert.Equal("rms-svd", Assert.IsType<LowRankBaselineDetails>(mine.Report.Details).Decomposition);
        Assert.True(Parameters(mine.Model) <= 0.6 * Parameters(model), $"{Parameters(mine.Model)} of {Parameters(model)}");
        Assert.Equal(Parameters(mine.Model), mine.Report.After.Parameters);
        Assert.Contains(mine.Report.Sites, s => s.Skipped is null && s.NewSize < s.OldSize);

        // The same ranks and factors as ASVD with α = 1.
        Assert.Equal(asvd.Report.Sites.Select(s => (s.Site, s.NewSize)), mine.Report.Sites.Select(s => (s.Site, s.NewSize)));
        var theirs = asvd.Model.Proto.Graph.Initializer.ToDictionary(t => t.Name);
        foreach (var t in mine.Model.Proto.Graph.Initializer)
        {
            var a = OnnxTensor.Of(t).ToArray<float>();
            var b = OnnxTensor.Of(theirs[t.Name]).ToArray<float>();
            Assert.Equal(b.Length, a.Length);
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5 * (1 + Math.Abs(b[i])), $"{t.Name}[{i}]: {a[i]} vs {b[i]}");
        }

        // It runs, with the original's outputs.
        using var original = TappedSession.Create(model, []);
        using var compressed = TappedSession.Create(mine.Model, []);
        var expected = original.Run(data[0]);
        var actual = compressed.Run(data[0]);
        Assert.Equal(expected["lm_head_out"].Shape, actual["lm_head_out"].Shape);
    }

    [Fact]
    public void AVariantThatReadsNoStatisticsGetsNoneAndItsTruncationIsNearTheOptimalOne()
    {
        var model = Transformer();
        var data = Data();
        var budget = CompressionBudget.KeepParameters(0.7);
        // Uniform ranks come from the shapes alone (a global allocation would ask the variant for every spectrum first).
        var options = new LowRankBaselineOptions { MeasureOutputError = false, Allocation = RankAllocation.Uniform };
        var randomized = new RandomizedSvd(options);
        var mine = Assert.Single(randomized.Compress(new CompressionJob(model, data), [budget]));
        var plain = Assert.Single(new PlainSvd(options).Compress(new CompressionJob(model, data), [budget]));

        Assert.Equal(Blocks * 7, randomized.Given.Count); // every block projection; the head is kept
        Assert.All(randomized.Given, Assert.Null);
        Assert.Null(Assert.IsType<LowRankBaselineDetails>(mine.Report.Details).CalibrationRows);
        Assert.True(mine.Report.After.Parameters <= 0.7 * mine.Report.Before.Parameters);
        Assert.Equal(plain.Report.After.Parameters, mine.Report.After.Parameters); // ranks come from the shapes alone
        foreach (var (r, p) in mine.Report.Sites.Zip(plain.Report.Sites).Where(x => x.First.Skipped is null))
        {
            Assert.Equal(p.NewSize, r.NewSize);
            double errR = Assert.IsType<LowRankSiteDetails>(r.Details).WeightError, errP = Assert.IsType<LowRankSiteDetails>(p.Details).WeightError;
            // Eckart–Young: nothing beats the truncated SVD; the sketch comes close.
            Assert.True(errR >= errP - 1e-9 && errR <= 1.1 * errP, $"{r.Site} rank {r.NewSize}: randomized {errR}, exact {errP}");
            Assert.Null(r.MeasuredError);
        }
        using var session = TappedSession.Create(mine.Model, []);
        Assert.Equal([2, 7, TransformerGraphs.Vocab], session.Run(data[0])["lm_head_out"].Shape);
    }

    // ------------------------------------------------------------------ a method of one's own

    /// <summary>Counts the batches and rows a statistic is shown, and in which order.</summary>
    private sealed class RowCounter(string value) : IBatchStatistic
    {
        public IReadOnlyCollection<string> Reads { get; } = [value];

        public List<int> Batches { get; } = [];

        public long Rows { get; private set; }

        public void AddBatch(StatisticBatch batch)
        {
            Batches.Add(batch.Index);
            var v = batch[value];
            Rows += v.Length / v.Shape[^1];
        }
    }

    private sealed record StepSeen(int Index, string Name, int[] Targets, OnnxModel Source, OnnxModel[] Models);

    private sealed record SiteSeen(int Segment, GramMatrix Gram, int[] Batches, long Rows);

    /// <summary>
    /// Per segment: the Gram matrix of every linear site's input (and a count of what it saw), then each site's weight scaled
    /// by the target's factor. Returns the scaled models; the sites' statistics and the steps are kept for the test.
    /// </summary>
    private sealed class ScaleAndRecord(params float[] factors) : ICompressionMethod
    {
        public List<StepSeen> Steps { get; } = [];

        public List<StepSeen> Surveyed { get; } = [];

        public Dictionary<(int Target, string Site), SiteSeen> Sites { get; } = [];

        public OnnxModel? Original { get; private set; }

        public string Name => "scale-and-record";

        public BudgetKinds Budgets => BudgetKinds.MethodDefault;

        public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets)
        {
            Original = run.Original;
            var sites = run.Structure.LinearSites;
            var models = budgets.Select(_ => run.Copy()).ToList();
            run.Pass(models, step =>
            {
                Steps.Add(new(step.Index, step.Name, [.. step.Targets.Select(t => t.Index)], step.Source, [.. step.Targets.Select(t => t.Model)]));
                var here = sites.Where(s => step.Holds(s.Name)).ToList();
                if (here.Count == 0) return;
                var grams = here.Select(s => s.Input).Distinct().ToDictionary(i => i, i => new GramStatistic(i));
                var counters = grams.Keys.ToDictionary(i => i, i => new RowCounter(i));
                step.Calibrate([.. grams.Values, .. counters.Values]);
                foreach (var target in step.Targets)
                    foreach (var site in here)
                    {
                        var c = counters[site.Input];
                        Sites[(target.Index, site.Name)] = new(step.Index, grams[site.Input].Finish(), [.. c.Batches], c.Rows);
                        Scale(target.Model, site.Weight.Initializer, factors[target.Index]);
                    }
            });
            run.Survey(models[0], step => Surveyed.Add(new(step.Index, step.Name, [.. step.Targets.Select(t => t.Index)], step.Source, [])));
            return [.. budgets.Select((b, i) => run.Result(b, models[i],
                sites.Select(s => new SiteReport(s.Name, "scaled", s.OutFeatures, s.OutFeatures) { ParametersBefore = s.Parameters, ParametersAfter = s.Parameters })))];
        }
    }

    private static void Scale(OnnxModel model, string initializer, float factor)
    {
        var t = model.Graph.GetInitializer(initializer);
        var values = t.ToArray<float>();
        for (int i = 0; i < values.Length; i++) values[i] *= factor;
        model.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>(initializer, values, [.. t.Shape], OnnxDataType.Float));
    }

    /// <summary>XᵀX of every row of <paramref name="value"/> over the calibration set, from a whole-model ONNX Runtime session.</summary>
    private static (Matrix<double> Gram, long Rows) DirectGram(OnnxModel model, BatchSet data, string value)
    {
        using var session = TappedSession.Create(model, [value]);
        Matrix<double>? gram = null;
        long rows = 0;
        foreach (var batch in data)
        {
            var t = session.Run(batch, [value])[value];
            int h = t.Shape[^1];
            var x = t.AsFloats();
            gram ??= new Matrix<double>(h, h);
            for (int r = 0; r < x.Length / h; r++, rows++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < h; j++) gram[i, j] += (double)x[r * h + i] * x[r * h + j];
        }
        return (gram!, rows);
    }

    private static void AssertGram(Matrix<double> expected, long expectedRows, SiteSeen seen, string what)
    {
        Assert.Equal(expectedRows, seen.Gram.Rows);
        Assert.Equal(expectedRows, seen.Rows);
        Assert.Equal(expected.Rows, seen.Gram.Features);
        double scale = 0, diff = 0;
        for (int i = 0; i < expected.Rows; i++)
            for (int j = 0; j < expected.Cols; j++)
            {
                scale = Math.Max(scale, Math.Abs(expected[i, j]));
                diff = Math.Max(diff, Math.Abs(expected[i, j] - seen.Gram.Gram[i, j]));
            }
        Assert.True(diff <= 1e-5 * scale, $"{what}: Gram differs from the direct computation by {diff:E3} (max |G| {scale:E3})");
    }

    [Fact]
    public void SequentialPassesCalibrateEachTargetOnItsOwnEditsAndHandOverTargetsAndSourceAsDocumented()
    {
        var model = Transformer();
        var data = Data();
        float[] factors = [0.5f, 2f];
        var method = new ScaleAndRecord(factors);
        var results = method.Compress(new CompressionJob(model, data), [CompressionBudget.MethodDefault, CompressionBudget.MethodDefault]);
        Assert.Equal(2, results.Count);
        Assert.All(results, r => Assert.Equal("sequential", r.Report.Calibration!.Mode));
        var original = method.Original!;
        Assert.Same(model, original);
        var m0 = results[0].Model;
        var m1 = results[1].Model;

        // Segments 0 (embedding) and 1 (block 0): both targets still compute what the original does, so they share one
        // step over the original. From block 1 on, each has a step of its own over itself, as compressed so far.
        var steps = method.Steps.Select(s => (s.Index, s.Name, string.Join(",", s.Targets))).ToList();
        Assert.Equal(
            [(0, "embedding", "0,1"), (1, "block 0", "0,1"), (2, "block 1", "0"), (2, "block 1", "1"), (3, "block 2", "0"), (3, "block 2", "1"), (4, "head", "0"), (4, "head", "1")],
            steps);
        foreach (var s in method.Steps)
        {
            if (s.Index <= 1) Assert.Same(original, s.Source);
            else Assert.Same(s.Targets[0] == 0 ? m0 : m1, s.Source);
            Assert.Equal(s.Targets.Select(t => t == 0 ? m0 : m1), s.Models);
        }
        // A survey walks every segment of the model it is given, and edits nothing.
        Assert.Equal([0, 1, 2, 3, 4], method.Surveyed.Select(s => s.Index));
        Assert.All(method.Surveyed, s => { Assert.Empty(s.Targets); Assert.Same(m0, s.Source); });

        // Every site's statistics: those of the original up to its segment (block 0, the first segment with sites), then
        // those of the model with every earlier segment's sites scaled by the target's factor.
        var sites = ModelStructure.Analyze(model).LinearSites;
        Assert.Equal(2 * sites.Count, method.Sites.Count);
        int rows = 3 * 2 * 7;
        for (int target = 0; target < 2; target++)
            foreach (var group in sites.GroupBy(s => method.Sites[(target, s.Name)].Segment))
            {
                var expectedModel = OnnxModel.FromProto(model.Proto.Clone());
                foreach (var earlier in sites.Where(s => method.Sites[(target, s.Name)].Segment < group.Key))
                    Scale(expectedModel, earlier.Weight.Initializer, factors[target]);
                foreach (var site in group)
                {
                    var seen = method.Sites[(target, site.Name)];
                    Assert.Equal([0, 1, 2], seen.Batches);
                    var (gram, n) = DirectGram(expectedModel, data, site.Input);
                    Assert.Equal(rows, n);
                    AssertGram(gram, n, seen, $"target {target}, {site.Name} (segment {group.Key})");
                }
            }
        // Block 0 was calibrated on the original for both targets; block 1 on each target's own edits.
        Assert.Equal(method.Sites[(0, "b0.q")].Gram.Gram.AsSpan().ToArray(), method.Sites[(1, "b0.q")].Gram.Gram.AsSpan().ToArray());
        Assert.NotEqual(method.Sites[(0, "b1.q")].Gram.Gram.AsSpan().ToArray(), method.Sites[(1, "b1.q")].Gram.Gram.AsSpan().ToArray());
        // And the results are the scaled models.
        foreach (var site in sites)
        {
            var w = model.Graph.GetInitializer(site.Weight.Initializer).ToArray<float>();
            Assert.Equal(w.Select(v => v * 0.5f), m0.Graph.GetInitializer(site.Weight.Initializer).ToArray<float>());
            Assert.Equal(w.Select(v => v * 2f), m1.Graph.GetInitializer(site.Weight.Initializer).ToArray<float>());
        }
    }

    [Fact]
    public void ParallelPassesCalibrateEveryTargetOnTheOriginalInOneStepPerSegment()
    {
        var model = Transformer();
        var data = Data();
        var method = new ScaleAndRecord(0.5f, 2f);
        var results = method.Compress(new CompressionJob(model, data) { Mode = CalibrationMode.Parallel },
            [CompressionBudget.MethodDefault, CompressionBudget.MethodDefault]);
        Assert.All(results, r => Assert.Equal("parallel", r.Report.Calibration!.Mode));
        Assert.Equal([(0, "0,1"), (1, "0,1"), (2, "0,1"), (3, "0,1"), (4, "0,1")], method.Steps.Select(s => (s.Index, string.Join(",", s.Targets))));
        Assert.All(method.Steps, s => Assert.Same(model, s.Source));
        foreach (var site in ModelStructure.Analyze(model).LinearSites)
        {
            var (gram, rows) = DirectGram(model, data, site.Input);
            AssertGram(gram, rows, method.Sites[(0, site.Name)], $"target 0, {site.Name}");
            AssertGram(gram, rows, method.Sites[(1, site.Name)], $"target 1, {site.Name}");
        }
    }

    // ------------------------------------------------------------------ the public surface

    [Fact]
    public void TheExtensionPointsArePublic()
    {
        static bool Visible(Type t) => t.IsPublic || (t.IsNestedPublic && Visible(t.DeclaringType!));
        Type[] types =
        [
            typeof(ICompressionMethod), typeof(LowRankBaseline), typeof(LowRankBaselineOptions), typeof(LowRankBaselineDetails), typeof(LowRankSiteDetails),
            typeof(CompressionRun), typeof(SegmentStep), typeof(PassTarget), typeof(Compressor), typeof(CompressionJob), typeof(CompressionResult),
            typeof(CompressionReport), typeof(CalibrationReport), typeof(SiteReport), typeof(CompressionBudget), typeof(BudgetKinds), typeof(StageClock),
            typeof(IBatchStatistic), typeof(IBatchStatistic<>), typeof(StatisticBatch), typeof(TapValues), typeof(GramStatistic), typeof(GramMatrix),
            typeof(RmsStatistic), typeof(LowRankFactors<>), typeof(LowRankMethod), typeof(LowRank), typeof(TruncatedSvd), typeof(TruncatedSvdOptions),
            typeof(Matrix<>), typeof(LinearSite), typeof(ModelStructure), typeof(Segmentation), typeof(Segment), typeof(SegmentLayout),
        ];
        Assert.All(types, t => Assert.True(Visible(t), $"{t} is not public"));

        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;
        var b = typeof(LowRankBaseline);
        Assert.True(b.IsAbstract);
        Assert.Contains(b.GetConstructors(all), c => c.IsPublic || c.IsFamily || c.IsFamilyOrAssembly);
        foreach (var name in new[] { "NeedsInputs", "Alpha" })
        {
            var getter = b.GetProperty(name, all)!.GetMethod!;
            Assert.True(getter.IsFamily || getter.IsPublic, $"LowRankBaseline.{name} cannot be overridden outside the assembly");
            Assert.True(getter.IsVirtual);
        }
        var factorize = b.GetMethod("Factorize", all)!;
        Assert.True(factorize.IsFamily && factorize.IsAbstract, "LowRankBaseline.Factorize must be protected abstract");

        void Public(Type t, params string[] members)
        {
            foreach (var m in members)
            {
                var found = t.GetMember(m, all);
                Assert.True(found.Length > 0, $"{t.Name}.{m} is missing");
                Assert.Contains(found, x => x switch
                {
                    MethodInfo mi => mi.IsPublic,
                    PropertyInfo p => p.GetMethod?.IsPublic == true,
                    _ => false,
                });
            }
        }
        Public(typeof(CompressionRun), "Pass", "Survey", "Compare", "Loss", "Copy", "Result", "Time", "Report", "Warn", "Cost",
            "Original", "Calibration", "Structure", "Segments", "Mode", "Seed", "CancellationToken", "Clock", "OriginalCost");
        Public(typeof(SegmentStep), "Calibrate", "Holds", "Targets", "Source", "Index", "Name", "Segment");
        Public(typeof(Compressor), "Compress");
        Public(typeof(LowRank), "Svd", "Split", "ActivationAware", "Whitened", "MaxSavingRank");
        Public(typeof(GramMatrix), "Rms", "OutputError");
        Public(typeof(StatisticBatch), "Index", "Contains", "Inputs", "Labels", "Reference");
        Public(typeof(TapValues), "Shape", "Length", "Span", "LastAxisRows");
    }
}
