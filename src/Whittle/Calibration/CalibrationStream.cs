// Calibration batches flowing through the segments of one model, one segment at a time.
//
// Memory contract
//   At any moment: the weights of ONE segment (its sub-model serialized for ONNX Runtime, and ORT's copy), the
//   statistics being fed, one batch of each tapped activation (CalibrationLoop), and at most two generations of the
//   boundary cache — the inputs of segment s and, while s runs, those of s + 1 — each holding per batch the values
//   later segments read (the boundary and side values), in memory up to the run's limit and spilled beyond it. The
//   model itself is whatever the caller holds (for this issue: in memory).
//
// A stream is lazy: it runs segment s only when asked for statistics of s or of a later segment. A frozen stream (over
// a model nobody edits while it runs: the original, a survey) keeps the outputs of the run that calibrated s as the
// inputs of s + 1; a stream over a model being compressed runs s a second time, as edited, to move on.

using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Data;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>What every stream of one run shares.</summary>
/// <param name="Batches">The calibration batches.</param>
/// <param name="Segmentation">The segments.</param>
/// <param name="Runtime">ONNX Runtime settings.</param>
/// <param name="Spill">The memory limit of the boundary caches.</param>
/// <param name="Clock">Times the runs.</param>
/// <param name="Garbage">Collects after each segment run.</param>
/// <param name="Progress">Told (segment, batches done) as batches finish; may be null.</param>
/// <param name="CancellationToken">Checked between batches.</param>
internal sealed record StreamContext(BatchSet Batches, Segmentation Segmentation, RuntimeOptions Runtime, SpillBudget Spill, StageClock Clock,
    Garbage Garbage, Action<int, int>? Progress, CancellationToken CancellationToken)
{
    /// <summary>Whether the model's outputs are carried to the end (for evaluation: after <c>MoveTo(Count)</c> the stream holds them
    /// for every batch); calibration carries only what later segments read.</summary>
    public bool KeepOutputs { get; init; }

    /// <summary>The stage the runs count for unless told otherwise.</summary>
    public const string CalibrationStage = "calibration";

    /// <summary>The stage the runs count for: calibration, or measurement for passes that compare models or measure a loss.</summary>
    public string Stage { get; init; } = CalibrationStage;
}

/// <summary>Calibration batches at one segment of one model (see the file header).</summary>
internal sealed class CalibrationStream : IDisposable
{
    private readonly StreamContext _context;
    private readonly bool _frozen;
    private BoundaryCache? _cache; // values at Position other than the batches' own tensors
    private BoundaryCache? _next;  // a frozen run's outputs: the values at Position + 1

    /// <summary>A stream at segment 0 of <paramref name="model"/>.</summary>
    /// <param name="context">The run's settings.</param>
    /// <param name="model">The model whose segments run (as they stand when each runs).</param>
    /// <param name="frozen">Whether the model stays unedited while the stream runs.</param>
    public CalibrationStream(StreamContext context, OnnxModel model, bool frozen)
    {
        _context = context;
        Model = model;
        _frozen = frozen;
    }

    public OnnxModel Model { get; }

    /// <summary>The segment whose inputs the stream holds.</summary>
    public int Position { get; private set; }

    private BatchSet Batches => _context.Batches;

    /// <summary>A stream over <paramref name="model"/> at this stream's position, holding the same values: <paramref name="model"/> must compute exactly what this stream's model does up to here.</summary>
    public CalibrationStream Fork(OnnxModel model, bool frozen)
    {
        var fork = new CalibrationStream(_context, model, frozen) { Position = Position };
        if (_cache is not null)
        {
            fork._cache = new BoundaryCache(_context.Spill);
            foreach (var name in _cache.Names)
                for (int b = 0; b < Batches.Count; b++) fork._cache.Add(b, name, _cache.Get(b, name));
        }
        return fork;
    }

    /// <summary>Feeds <paramref name="statistics"/> with the values of segment <paramref name="segment"/> (at or after <see cref="Position"/>).</summary>
    public void Calibrate(int segment, IReadOnlyList<IBatchStatistic> statistics)
    {
        MoveTo(segment);
        Run(segment, statistics, advance: _frozen, reference: null);
    }

    /// <summary>Runs the segments before <paramref name="segment"/> that have not run.</summary>
    public void MoveTo(int segment)
    {
        if (segment < Position)
            throw new InvalidOperationException($"The stream is at segment {Position}; segment {segment} has passed (streams move forward only).");
        while (Position < segment)
        {
            if (_next is null) Run(Position, [], advance: true, reference: null);
            _cache?.Dispose();
            _cache = _next;
            _next = null;
            Position++;
        }
    }

    /// <summary>
    /// Runs segment <paramref name="segment"/> of <paramref name="reference"/> and of <paramref name="candidate"/> on the same
    /// batches side by side, <paramref name="statistics"/> seeing the reference's values through <see cref="StatisticBatch.Reference"/>;
    /// both streams move on.
    /// </summary>
    public static void RunPaired(CalibrationStream reference, CalibrationStream candidate, int segment, IReadOnlyList<IBatchStatistic> statistics)
    {
        reference.MoveTo(segment);
        candidate.MoveTo(segment);
        candidate.Run(segment, statistics, advance: true, reference);
        reference.MoveTo(segment + 1);
        candidate.MoveTo(segment + 1);
    }

    /// <summary>The runtime shapes and element types of every value of the model (the first batch through every segment, every value tapped).</summary>
    public (Dictionary<string, int[]> Shapes, Dictionary<string, OnnxDataType> Types) Probe()
    {
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var types = new Dictionary<string, OnnxDataType>(StringComparer.Ordinal);
        foreach (var t in Model.Proto.Graph.Initializer)
        {
            shapes[t.Name] = [.. t.Dims.Select(d => checked((int)d))];
            types[t.Name] = (OnnxDataType)t.DataType;
        }
        foreach (var (name, tensor) in Batches[0])
        {
            shapes[name] = (int[])tensor.Shape.Clone();
            types[name] = tensor.ElementType;
        }
        for (int s = Position; s < _context.Segmentation.Count; s++)
        {
            MoveTo(s);
            var layout = _context.Segmentation.Layout(Model);
            var segment = layout.Segments[s];
            var all = segment.Nodes.SelectMany(n => n.Output).Where(o => o.Length > 0).Distinct(StringComparer.Ordinal).ToList();
            var side = Side(layout, segment, all, advance: true, batches: 1);
            try
            {
                side.Side.Session?.Run(Inputs(segment, 0), all, (name, value) =>
                {
                    if (value.OnnxType != Microsoft.ML.OnnxRuntime.OnnxValueType.ONNX_TYPE_TENSOR) return;
                    var info = value.GetTensorTypeAndShape();
                    shapes[name] = [.. info.Shape.Select(d => checked((int)d))];
                    types[name] = (OnnxDataType)info.ElementDataType;
                    if (side.Side.Keep.Contains(name)) side.Next!.Add(0, name, TappedSession.ToHost(name, value));
                });
            }
            catch
            {
                side.Next?.Dispose();
                throw;
            }
            finally
            {
                side.Session?.Dispose();
            }
            Accept(side.Next);
        }
        return (shapes, types);
    }

    /// <summary>The value <paramref name="name"/> of batch <paramref name="batch"/> held at the stream's position: after
    /// <c>MoveTo(Count)</c>, the model's outputs.</summary>
    /// <exception cref="KeyNotFoundException">The stream holds no such value.</exception>
    public HostTensor Held(int batch, string name) => Value(batch, name)
        ?? throw new KeyNotFoundException($"{OnnxModelException.Describe(Model.FilePath)}: the stream holds no value '{name}' for batch {batch} at segment {Position}.");

    /// <summary>Whether the stream holds <paramref name="name"/> at its position (a carried value or a tensor of the batches).</summary>
    private bool Holds(string name) => (_cache?.Names.Contains(name) ?? false) || Batches[0].ContainsKey(name);

    /// <summary>The tensor of <paramref name="name"/> for batch <paramref name="batch"/> at the stream's position, or null.</summary>
    private HostTensor? Value(int batch, string name) =>
        _cache is not null && _cache.Contains(batch, name) ? _cache.Get(batch, name)
        : Batches[batch].TryGetValue(name, out var t) ? t : null;

    private void Run(int s, IReadOnlyList<IBatchStatistic> statistics, bool advance, CalibrationStream? reference)
    {
        var reads = statistics.SelectMany(x => x.Reads).Distinct(StringComparer.Ordinal).ToList();
        // Building a segment's session (sub-graph, ORT's optimizations and weight packing) counts for the stage as well.
        var mine = _context.Clock.Time(_context.Stage, () => Prepare(s, reads, advance));
        Prepared? theirs = null;
        try
        {
            theirs = reference is null ? null : _context.Clock.Time(_context.Stage, () => reference.Prepare(s, reads, advance: true));
            if (mine.Side.Session is null && mine.Side.Keep.Count == 0 && statistics.Count == 0 && theirs is null && mine.Next is null) return;
            _context.Clock.Time(_context.Stage, () => CalibrationLoop.Run(
                new LoopRequest(Batches.Count, mine.Side, statistics, b => Batches[b])
                {
                    Labels = Batches.Labels is { } labels ? b => labels[b] : null,
                    Reference = theirs?.Side,
                    Progress = done => _context.Progress?.Invoke(s, done),
                },
                _context.CancellationToken));
        }
        catch
        {
            mine.Next?.Dispose();
            theirs?.Next?.Dispose();
            throw;
        }
        finally
        {
            mine.Session?.Dispose();
            theirs?.Session?.Dispose();
        }
        reference?.Accept(theirs!.Next);
        Accept(mine.Next);
        _context.Garbage.Collect();
    }

    /// <summary>A loop side of one segment: its session, what it keeps for the next segment.</summary>
    private sealed record Prepared(LoopSide Side, TappedSession? Session, BoundaryCache? Next);

    private Prepared Prepare(int s, IReadOnlyList<string> reads, bool advance)
    {
        var layout = _context.Segmentation.Layout(Model);
        var segment = layout.Segments[s];
        foreach (var r in reads)
            if (!segment.Produced.Contains(r) && !Holds(r))
                ThrowHelper.Argument(nameof(reads),
                    $"'{r}' is not available in segment '{segment.Name}' of {OnnxModelException.Describe(Model.FilePath)}: it is neither computed there nor carried into it.");
        return Side(layout, segment, [.. reads.Where(segment.Produced.Contains)], advance, Batches.Count);
    }

    private Prepared Side(SegmentLayout layout, Segment segment, IReadOnlyList<string> taps, bool advance, int batches)
    {
        var keep = advance ? Carried(layout, segment) : [];
        var next = advance ? new BoundaryCache(_context.Spill) : null;
        TappedSession? session = null;
        try
        {
            if (next is not null) CarryThrough(layout, segment.Index, next, batches);
            var outputs = keep.Concat(taps).Distinct(StringComparer.Ordinal).ToList();
            if (outputs.Count > 0 && segment.Nodes.Count > 0) session = Session(layout, segment, outputs);
            var side = new LoopSide(session, b => Inputs(segment, b), Value)
            {
                Keep = keep,
                Sink = next is null ? null : next.Add,
            };
            return new Prepared(side, session, next);
        }
        catch
        {
            session?.Dispose();
            next?.Dispose();
            throw;
        }
    }

    private void Accept(BoundaryCache? next)
    {
        if (next is null) return;
        _next?.Dispose();
        _next = next;
    }

    /// <summary>Values <paramref name="segment"/> produces that a later segment reads (or that are outputs, when kept).</summary>
    private List<string> Carried(SegmentLayout layout, Segment segment) =>
        [.. segment.Produced.Where(o => Needed(layout, o, segment.Index)).Order(StringComparer.Ordinal)];

    private bool Needed(SegmentLayout layout, string value, int segment) =>
        layout.ReadAfter(value, segment) || (_context.KeepOutputs && Model.Graph.Outputs.Any(o => o.Name == value));

    /// <summary>Copies into <paramref name="next"/> the carried values held now that later segments still read (not the batches' own tensors).</summary>
    private void CarryThrough(SegmentLayout layout, int s, BoundaryCache next, int batches)
    {
        if (_cache is null) return;
        foreach (var name in _cache.Names.ToList())
            if (Needed(layout, name, s))
                for (int b = 0; b < batches; b++) next.Add(b, name, _cache.Get(b, name));
    }

    private IReadOnlyDictionary<string, HostTensor> Inputs(Segment segment, int batch)
    {
        var inputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var name in segment.Inputs) inputs[name] = Value(batch, name)
            ?? throw new InvalidOperationException($"Segment '{segment.Name}' reads '{name}', which the stream does not hold for batch {batch}.");
        return inputs;
    }

    private TappedSession Session(SegmentLayout layout, Segment segment, IReadOnlyList<string> outputs)
    {
        var declared = Model.Graph.Inputs.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var inputs = new List<ValueInfoProto>();
        foreach (var name in segment.Inputs)
        {
            if (declared.TryGetValue(name, out var info)) { inputs.Add(info); continue; }
            var t = Value(0, name)!;
            var shape = new TensorShapeProto();
            for (int d = 0; d < t.Rank; d++) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = $"{name}_d{d}" });
            inputs.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)t.ElementType, Shape = shape } } });
        }
        var proto = SubModel.Extract(layout.Model, segment.Nodes, inputs, outputs);
        return TappedSession.Open(Model.ForRuntime(proto), Model.BaseDirectory, _context.Runtime, [], Model.FilePath);
    }

    public void Dispose()
    {
        _cache?.Dispose();
        _next?.Dispose();
        _cache = _next = null;
    }
}
