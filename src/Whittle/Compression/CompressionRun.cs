// The one harness every compression method works through.
//
// What it does for a method
//   Before the method runs: the budgets are checked against the kinds it declares; the structure is analysed once,
//   with runtime shapes from a probe that runs one small batch through the model segment by segment; the graph is cut
//   into segments (Analysis.Segmentation); the original's size is measured. While it runs: calibration passes over
//   the segments (Pass, Survey, Compare, Loss), copies of the model, timed stages with their peak working set,
//   progress, warnings. At the end: one result per budget with its size measured the same way as the original's.
//
// Calibration modes (CompressionJob.Mode)
//   Sequential (default): Pass streams the calibration set through the model being compressed, so segment ℓ is
//   calibrated on the outputs of segments 0…ℓ−1 as already compressed, then compressed, then run again as compressed
//   to feed segment ℓ + 1. With several targets (one per budget) each gets its own pass.
//   Parallel: Pass streams the ORIGINAL model once; every target is compressed from the same statistics.
//
// Memory contract
//   One segment's weights in ONNX Runtime at a time, the statistics a method asks for, and the boundary cache
//   (CalibrationStream): for a transformer, ~(calibration tokens × width × 4 bytes) per generation, in memory up to
//   CompressionJob.BoundaryCacheBytes and on disk beyond. The models themselves (original and copies) are in memory.
//   Stage timings carry the peak working set of each stage.

using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Compression;

/// <summary>One compression run of one method over one model (see the file header).</summary>
public sealed class CompressionRun : IDisposable
{
    private readonly List<string> _warnings = [];
    private readonly List<StreamedModelWriter> _writers = [];
    private readonly HashSet<StreamedModelWriter> _handedOver = [];
    private readonly StreamContext _streams;
    private readonly BatchSet _probeBatch;

    private CompressionRun(string method, CompressionJob job, CancellationToken cancellationToken)
    {
        Method = method;
        Job = job;
        CancellationToken = cancellationToken;
        Clock = new StageClock();
        var spill = new SpillBudget(job.BoundaryCacheBytes, job.SpillDirectory);
        int batch = ProbeBatchSize(job.Model, job.Calibration[0]);
        _probeBatch = new BatchSet([job.Calibration[0].SelectRows([.. Enumerable.Range(0, batch)])]);
        ProbeBatch = batch;
        _streams = new StreamContext(job.Calibration, Segmentation.Whole, job.Runtime, spill, Clock, new Garbage(), null, cancellationToken);
        Segments = Segmentation.Whole;
        Structure = null!;
        Shapes = null!;
        OriginalCost = null!;
    }

    /// <summary>The method's name, for messages and reports.</summary>
    public string Method { get; }

    /// <summary>The job: model, calibration data, settings.</summary>
    public CompressionJob Job { get; }

    /// <summary>The original model (never modified).</summary>
    public OnnxModel Original => Job.Model;

    /// <summary>The calibration batches.</summary>
    public BatchSet Calibration => Job.Calibration;

    /// <summary>Where segment ℓ's calibration activations come from.</summary>
    public CalibrationMode Mode => Job.Mode;

    /// <summary>Seed of every random choice.</summary>
    public int Seed => Job.Seed;

    /// <summary>The original's structure (sites, chains, blocks), analysed once with runtime shapes.</summary>
    public ModelStructure Structure { get; private set; }

    /// <summary>Runtime shapes of every value of the original, for <see cref="ProbeBatch"/> examples.</summary>
    public IReadOnlyDictionary<string, int[]> Shapes { get; private set; }

    /// <summary>Examples in the probe behind <see cref="Shapes"/> (2 where the data allows, so the batch axis stands out; a fixed batch where the model has one).</summary>
    public int ProbeBatch { get; }

    /// <summary>The segments calibration runs one at a time.</summary>
    public Segmentation Segments { get; private set; }

    /// <summary>The original's size.</summary>
    public ModelCost OriginalCost { get; private set; }

    /// <summary>Checked between batches, segments and sites.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>Times the stages (and their peak working set).</summary>
    public StageClock Clock { get; }

    /// <summary>Warnings for every result of the run so far.</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <summary>Starts a run: analyses the model (the caller's structure when given), cuts it into segments, measures its size.</summary>
    /// <exception cref="ArgumentException">The model does not run on the calibration data.</exception>
    internal static CompressionRun Start(string method, CompressionJob job, CancellationToken cancellationToken)
    {
        var run = new CompressionRun(method, job, cancellationToken);
        try
        {
            run.Analyze();
            return run;
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Analyses the structure again with a CNN's residual streams as chains (<see cref="ModelStructure.Analyze"/>) and cuts the
    /// segments anew, each stream inside one. Call it before the first pass; a job's own structure is kept as given.
    /// </summary>
    public void IncludeResidualStreams()
    {
        if (Job.Structure is not null || Structure.Chains.Any(c => c.IsStream)) return;
        Clock.Time(Stages.Analysis, () =>
        {
            var structure = ModelStructure.Analyze(Original, Shapes, ProbeBatch, residualStreams: true);
            if (!structure.Chains.Any(c => c.IsStream)) return;
            Structure = structure;
            Segments = Segmentation.Find(Original, Structure);
            Report(Stages.Analysis, 1, 1, $"residual streams: {Segments.Count} segment(s): {Segments.Rule}");
        });
    }

    private void Analyze()
    {
        Clock.Time(Stages.Analysis, () =>
        {
            Report(Stages.Analysis, 0, 1, "structure");
            // Blocks and chains are found from the graph alone; the runtime shapes then come segment by segment.
            var graphOnly = ModelStructure.Analyze(Original);
            var coarse = Segmentation.Find(Original, graphOnly);
            var shapes = ProbeShapes(Original, coarse);
            Shapes = shapes;
            Structure = Job.Structure ?? ModelStructure.Analyze(Original, shapes, ProbeBatch);
            Segments = Segmentation.Find(Original, Structure);
            OriginalCost = Cost(Original, shapes);
            Report(Stages.Analysis, 1, 1, $"{Segments.Count} segment(s): {Segments.Rule}");
        });
    }

    /// <summary>Records <paramref name="message"/> for every result of the run.</summary>
    public void Warn(string message)
    {
        ArgumentException.ThrowIfNullOrEmpty(message);
        if (!_warnings.Contains(message)) _warnings.Add(message);
    }

    /// <summary>Runs <paramref name="work"/> as part of <paramref name="stage"/> (then releases its garbage, <see cref="Garbage"/>).</summary>
    public T Time<T>(string stage, Func<T> work)
    {
        var result = Clock.Time(stage, work);
        _streams.Garbage.Collect();
        return result;
    }

    /// <summary>Runs <paramref name="work"/> as part of <paramref name="stage"/> (then releases its garbage, <see cref="Garbage"/>).</summary>
    public void Time(string stage, Action work) => Time(stage, () => { work(); return 0; });

    /// <summary>Tells the job's progress listener.</summary>
    public void Report(string stage, int done, int? total, string? detail = null) =>
        Job.Progress?.Report(new CompressionProgress(stage, done, total, detail));

    /// <summary>
    /// A copy of the original to edit (same base directory for external data). With <see cref="CompressionJob.OutputDirectory"/>
    /// the copy is staged there: passes move each segment's new weights to disk as they go.
    /// </summary>
    public OnnxModel Copy()
    {
        var copy = Original.Clone();
        if (Job.OutputDirectory is { } folder)
        {
            var writer = new StreamedModelWriter(Path.Combine(folder, $"whittle-{Guid.NewGuid():N}.onnx"), cancellationToken: CancellationToken);
            _writers.Add(writer);
            // A model made by an earlier run (a pipeline's first stage) has staged tensors of its own: they are copied.
            if (copy.Staging is null) copy.StageTo(writer);
            else copy.Restage(writer);
        }
        return copy;
    }

    /// <summary>Moves the new weights of <paramref name="models"/> to their staging folders (nothing for models kept in memory).</summary>
    private static void Offload(IEnumerable<OnnxModel> models)
    {
        foreach (var m in models) m.Offload(OffloadMinBytes);
    }

    /// <summary>Smaller tensors stay in memory: they add up to little, and each write to the data file has a cost.</summary>
    private const long OffloadMinBytes = 64 << 10;

    /// <summary>
    /// A compression pass over the segments: <paramref name="compress"/> is called for every segment in order, may ask for
    /// statistics of the segment (<see cref="SegmentStep.Calibrate(IReadOnlyList{IBatchStatistic})"/>) and edits the
    /// targets' sites in it (and nothing outside it). Parallel mode: one stream of the original, every target edited from
    /// the same statistics. Sequential mode: each target is calibrated on its own activations as compressed so far; targets
    /// share one stream (and one step, so decompositions are shared too) as long as their segments are still the original's,
    /// and each continues on a stream of its own from the first segment a step changed in it.
    /// </summary>
    /// <param name="targets">Models to compress (copies of the original, one per budget).</param>
    /// <param name="compress">The method's step.</param>
    public void Pass(IReadOnlyList<OnnxModel> targets, Action<SegmentStep> compress)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(compress);
        var all = targets.Select((m, i) => new PassTarget(i, m)).ToList();
        if (Mode == CalibrationMode.Parallel)
        {
            Walk(Original, frozen: true, all, compress);
            return;
        }
        var attached = new List<PassTarget>(all);
        var own = new List<(PassTarget Target, CalibrationStream Stream)>();
        using var shared = new CalibrationStream(Context(), Original, frozen: true);
        try
        {
            for (int s = 0; s < Segments.Count; s++)
            {
                CancellationToken.ThrowIfCancellationRequested();
                foreach (var (t, stream) in own) compress(new SegmentStep(this, stream, s, Segments.Layout(t.Model).Segments[s], [t]));
                Offload(own.Select(o => o.Target.Model));
                if (attached.Count == 0) continue;
                compress(new SegmentStep(this, shared, s, Segments.Layout(Original).Segments[s], attached));
                Offload(attached.Select(t => t.Model));

                foreach (var t in attached.Where(t => !SameSegment(t.Model, Original, s)).ToList())
                {
                    // From here on the target computes something else: it continues from the shared values at this segment.
                    attached.Remove(t);
                    own.Add((t, shared.Fork(t.Model, frozen: false)));
                }
                if (attached.Count == 0) shared.Dispose(); // its values are no longer needed
            }
        }
        finally
        {
            foreach (var (_, stream) in own) stream.Dispose();
        }
    }

    /// <summary>Whether segment <paramref name="s"/> holds the same nodes and initializers in both models.</summary>
    private bool SameSegment(OnnxModel a, OnnxModel b, int s)
    {
        var x = Segments.Layout(a).Segments[s];
        var y = Segments.Layout(b).Segments[s];
        if (x.Nodes.Count != y.Nodes.Count || !x.Nodes.SequenceEqual(y.Nodes)) return false;
        foreach (var node in x.Nodes)
            foreach (var r in a.Graph.Reads(node))
            {
                bool inA = a.Graph.TryGetInitializer(r, out var ta), inB = b.Graph.TryGetInitializer(r, out var tb);
                if (inA != inB || (inA && !ta!.Proto.Equals(tb!.Proto))) return false;
            }
        return true;
    }

    /// <summary>A read-only pass over the segments of <paramref name="model"/> (its own activations, whatever the mode).</summary>
    public void Survey(OnnxModel model, Action<SegmentStep> read)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(read);
        Walk(model, frozen: true, [], read);
    }

    /// <summary>
    /// Runs <paramref name="reference"/> and <paramref name="candidate"/> side by side over the calibration set, segment by
    /// segment, feeding <paramref name="statistics"/> with the candidate's values and the reference's
    /// (<see cref="StatisticBatch.Reference"/>); both models must carry the run's segment boundaries. A statistic reading
    /// values of several segments sees each batch once per segment, with that segment's values.
    /// </summary>
    public void Compare(OnnxModel reference, OnnxModel candidate, IReadOnlyList<IBatchStatistic> statistics)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(statistics);
        var layout = Segments.Layout(candidate);
        var reads = statistics.SelectMany(s => s.Reads).ToHashSet(StringComparer.Ordinal);
        int last = layout.Segments.Where(s => s.Produced.Overlaps(reads)).Select(s => s.Index).DefaultIfEmpty(-1).Max();
        var context = Context() with { Stage = Stages.Measurement };
        using var r = new CalibrationStream(context, reference, frozen: true);
        using var c = new CalibrationStream(context, candidate, frozen: true);
        for (int s = 0; s <= last; s++)
        {
            CancellationToken.ThrowIfCancellationRequested();
            var here = layout.Segments[s].Produced;
            var mine = statistics.Where(x => x.Reads.Any(here.Contains)).Select(x => (IBatchStatistic)new SegmentSlice(x, here)).ToList();
            if (mine.Count == 0)
            {
                r.MoveTo(s + 1);
                c.MoveTo(s + 1);
            }
            else CalibrationStream.RunPaired(r, c, s, mine);
        }
    }

    /// <summary>Models whose weights take at most this many bytes run as one segment where only their output matters (<see cref="Loss"/>): one session instead of one per segment.</summary>
    public const long WholeModelBytes = 256L << 20;

    /// <summary>The loss of <paramref name="model"/> over the calibration set: segment by segment, or in one session for a model of at most <see cref="WholeModelBytes"/>.</summary>
    public LossSum Loss(OnnxModel model, TaskLoss loss)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loss);
        string output = loss.Output ?? model.Graph.Outputs[0].Name;
        var statistic = new LossStatistic(loss, output);
        var segments = OnnxModelSummary.Of(model).InitializerBytes <= WholeModelBytes ? Segmentation.Whole : Segments;
        int segment = segments.Layout(model).Segments.First(s => s.Produced.Contains(output)).Index;
        using var stream = new CalibrationStream(Context(segments) with { Stage = Stages.Measurement }, model, frozen: true);
        stream.Calibrate(segment, [statistic]);
        return statistic.Finish();
    }

    /// <summary>The size of <paramref name="model"/> (parameters, bytes, MACs per example), with shapes probed segment by segment.</summary>
    public ModelCost Cost(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Clock.Time(Stages.Analysis, () => Cost(model, ProbeShapes(model, Segments)));
    }

    /// <summary>The result for <paramref name="budget"/>: <paramref name="model"/> (validated) with its report.</summary>
    /// <param name="budget">The budget it was made for.</param>
    /// <param name="model">The compressed model.</param>
    /// <param name="sites">What happened at each site or group, in graph order.</param>
    /// <param name="details">Method-wide findings, or null.</param>
    /// <param name="warnings">Warnings of this result beyond the run's.</param>
    /// <param name="compressible">The original's parameters and MACs in the layers the method may touch; null sums the
    /// parameters of the sites not skipped (right where no two sites share a tensor).</param>
    public CompressionResult Result(CompressionBudget budget, OnnxModel model, IEnumerable<SiteReport> sites, object? details = null, IEnumerable<string>? warnings = null,
        (long Parameters, double? Macs)? compressible = null)
    {
        ArgumentNullException.ThrowIfNull(budget);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sites);
        // Edits leave constants behind (a pruned head count's old shape, a replaced weight): ORT warns about them on load.
        model.Graph.RemoveDeadNodes();
        model.Graph.RemoveUnusedInitializers();
        model.Validate(checkExternalData: false);
        if (model.Staging is { } shared && _handedOver.Contains(shared))
        {
            // Another result (a copy of the same model) owns that staging folder: this one gets its own.
            var writer = new StreamedModelWriter(Path.Combine(Path.GetDirectoryName(shared.Target)!, $"whittle-{Guid.NewGuid():N}.onnx"), cancellationToken: CancellationToken);
            _writers.Add(writer);
            model.Restage(writer);
        }
        model.Offload(OffloadMinBytes);
        if (model.Staging is { } staging) _handedOver.Add(staging); // the caller saves it (or disposes the writer)
        var after = Cost(model);
        List<SiteReport> siteList = [.. sites];
        var (parameters, macs) = compressible ?? (siteList.Where(s => s.Skipped is null).Sum(s => s.ParametersBefore), null);
        var report = new CompressionReport(Method, budget, siteList, OriginalCost, after, Clock.Timings)
        {
            Compressible = new CompressibleSize(parameters, parameters - (OriginalCost.Parameters - after.Parameters),
                macs, macs is { } m ? m - (OriginalCost.MacsPerExample - after.MacsPerExample) : null),
            Details = details,
            Warnings = [.. _warnings.Concat(warnings ?? []).Distinct()],
            Calibration = new CalibrationReport(Mode == CalibrationMode.Sequential ? "sequential" : "parallel", Segments.Count, Segments.Rule,
                _streams.Spill.Spilled),
        };
        return new CompressionResult(model, report);
    }

    /// <summary>Runs the method; if it fails, the staging folders of results already made go too (nobody will save them).</summary>
    internal IReadOnlyList<CompressionResult> Complete(Func<IReadOnlyList<CompressionResult>> compress)
    {
        try
        {
            return compress();
        }
        catch
        {
            _handedOver.Clear();
            throw;
        }
    }

    /// <summary>Stops the stage clock's sampler; removes the staging folders of models that did not become results.</summary>
    public void Dispose()
    {
        Clock.Dispose();
        foreach (var w in _writers.Where(w => !_handedOver.Contains(w))) w.Dispose();
    }

    private StreamContext Context(Segmentation? segments = null)
    {
        var s = segments ?? Segments;
        return _streams with
        {
            Segmentation = s,
            Progress = (k, done) => Report(Stages.Calibration, k * Calibration.Count + done, s.Count * Calibration.Count, s.Names[k]),
        };
    }

    private void Walk(OnnxModel model, bool frozen, IReadOnlyList<PassTarget> targets, Action<SegmentStep> step)
    {
        using var stream = new CalibrationStream(Context(), model, frozen);
        for (int s = 0; s < Segments.Count; s++)
        {
            CancellationToken.ThrowIfCancellationRequested();
            step(new SegmentStep(this, stream, s, Segments.Layout(model).Segments[s], targets));
            Offload(targets.Select(t => t.Model));
        }
    }

    private Dictionary<string, int[]> ProbeShapes(OnnxModel model, Segmentation segments)
    {
        using var stream = new CalibrationStream(_streams with { Batches = _probeBatch, Segmentation = segments }, model, frozen: true);
        return stream.Probe().Shapes;
    }

    private ModelCost Cost(OnnxModel model, IReadOnlyDictionary<string, int[]> shapes) => ModelCost.FromShapes(model, shapes, ProbeBatch);

    /// <summary>Examples in the shape probe: the model's fixed batch, else 2 where the first batch has them.</summary>
    private static int ProbeBatchSize(OnnxModel model, InputBatch first)
    {
        var declared = ModelInput.FromModel(model);
        int fixedBatch = declared.Select(i => i.Shape is [{ Value: { } b and > 0 and <= int.MaxValue }, ..] ? (int)b : 0).DefaultIfEmpty(0).Max();
        if (fixedBatch > 0)
        {
            if (first.BatchSize < fixedBatch)
                ThrowHelper.Argument(nameof(model), $"{OnnxModelException.Describe(model.FilePath)} takes batches of exactly {fixedBatch}; the first calibration batch has {first.BatchSize}.");
            return fixedBatch;
        }
        return Math.Min(2, first.BatchSize);
    }
}

/// <summary>A statistic seen through one segment: it reads only the values the segment computes.</summary>
internal sealed class SegmentSlice(IBatchStatistic inner, IReadOnlySet<string> produced) : IBatchStatistic
{
    public IReadOnlyCollection<string> Reads { get; } = [.. inner.Reads.Where(produced.Contains)];

    public void AddBatch(StatisticBatch batch) => inner.AddBatch(batch);
}

/// <summary>One model a pass edits, with its position in the pass's target list (the budget it is for).</summary>
/// <param name="Index">The position.</param>
/// <param name="Model">The model.</param>
public sealed record PassTarget(int Index, OnnxModel Model);

/// <summary>How calibration ran, in every report.</summary>
/// <param name="Mode"><c>sequential</c> or <c>parallel</c>.</param>
/// <param name="Segments">Segments the model was cut into.</param>
/// <param name="Rule">How they were chosen.</param>
/// <param name="SpilledBytes">Boundary activations written to a temporary file (0: all stayed in memory).</param>
public sealed record CalibrationReport(string Mode, int Segments, string Rule, long SpilledBytes);

/// <summary>Runs a method through the harness.</summary>
public static class Compressor
{
    /// <summary>
    /// Compresses <see cref="CompressionJob.Model"/> with <paramref name="method"/> once per budget, through a
    /// <see cref="CompressionRun"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A budget of a kind the method does not take, or a model it cannot act on.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static IReadOnlyList<CompressionResult> Compress(this ICompressionMethod method, CompressionJob job, IReadOnlyList<CompressionBudget> budgets,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(budgets);
        CheckBudgets(method, budgets);
        using var run = CompressionRun.Start(method.Name, job, cancellationToken);
        var results = run.Complete(() => method.Compress(run, budgets));
        if (results.Count != budgets.Count)
            throw new InvalidOperationException($"Method '{method.Name}' returned {results.Count} models for {budgets.Count} budgets.");
        return results;
    }

    private static void CheckBudgets(ICompressionMethod method, IReadOnlyList<CompressionBudget> budgets)
    {
        var takes = method.Budgets;
        string got = budgets.Count == 0 ? "none" : string.Join(", ", budgets);
        if (budgets.Count == 0 || budgets.Any(b => b is null || !takes.HasFlag(Kind(b.Kind))))
        {
            if (takes == BudgetKinds.MethodDefault)
                ThrowHelper.Argument(nameof(budgets), $"{method.Name} takes no budget: its own options decide the size (see its flags); got {got}.");
            var flags = new List<string>();
            if (takes.HasFlag(BudgetKinds.KeepMacs)) flags.Add("--keep-macs");
            if (takes.HasFlag(BudgetKinds.KeepParameters)) flags.Add("--keep-params");
            if (takes.HasFlag(BudgetKinds.Tolerance)) flags.Add("--tolerance");
            if (takes.HasFlag(BudgetKinds.KeepLatency)) flags.Add("--keep-latency");
            string list = flags.Count > 1 ? $"{string.Join(", ", flags[..^1])} or {flags[^1]}" : string.Join("", flags);
            ThrowHelper.Argument(nameof(budgets), $"{method.Name} needs a budget: {list}; got {got}.");
        }
    }

    private static BudgetKinds Kind(BudgetKind kind) => kind switch
    {
        BudgetKind.KeepMacs => BudgetKinds.KeepMacs,
        BudgetKind.KeepParameters => BudgetKinds.KeepParameters,
        BudgetKind.Tolerance => BudgetKinds.Tolerance,
        BudgetKind.KeepLatency => BudgetKinds.KeepLatency,
        _ => BudgetKinds.MethodDefault,
    };
}
