// The calibration loop: every batch runs once through an ONNX Runtime session (a whole model or one segment of it),
// every statistic sees the batch (AddBatch), and the tapped activations are dropped before the next batch.
//
// Contract
//   Per batch: run the session on the batch's inputs, copy each value a statistic reads into that value's reusable
//   buffer (one batch of it: n_b·h floats) and hand values the caller keeps (the next segment's inputs) to its sink as
//   fresh tensors. Values a statistic reads that the session does not compute (a segment's own inputs) are shown
//   straight from the caller's tensors, without a copy. With Overlap (default) the statistics of batch b run on a
//   worker while ONNX Runtime runs batch b + 1 (the calling thread takes the statistics still waiting once ORT is done),
//   so at that moment a value holds batch b's buffer and ORT batch b + 1's output. Each statistic is fed by one thread
//   at a time, in batch order: results are those of a plain sequential loop, bit for bit.
//   Paired runs (Reference set): a reference session runs the same batch on its own inputs, and statistics see its
//   values through StatisticBatch.Reference (output errors of a compressed model against the original).
//   Memory: the session (its model's weights), one batch of every value read (twice with Overlap), the statistics' own
//   state, and what the sink keeps.

using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>One side of a loop: a session and, per batch, its inputs and the values given without running it.</summary>
/// <param name="Session">The session, or null when the side computes nothing (statistics read only given values).</param>
/// <param name="Inputs">Batch index → every input of the session.</param>
/// <param name="Given">Batch index → value name → tensor, for values statistics read that the session does not compute (may return null).</param>
internal sealed record LoopSide(TappedSession? Session, Func<int, IReadOnlyDictionary<string, HostTensor>> Inputs,
    Func<int, string, HostTensor?>? Given = null)
{
    /// <summary>Outputs handed to <see cref="Sink"/> each batch (the values later segments read).</summary>
    public IReadOnlyList<string> Keep { get; init; } = [];

    /// <summary>Receives (batch, value, tensor) for every kept output; the tensors are the caller's.</summary>
    public Action<int, string, HostTensor>? Sink { get; init; }
}

/// <summary>What one loop does.</summary>
/// <param name="Batches">How many batches.</param>
/// <param name="Model">The side being calibrated.</param>
/// <param name="Statistics">The statistics fed each batch.</param>
/// <param name="BatchInputs">Batch index → the model inputs of the batch (for masks and token ids that statistics read).</param>
internal sealed record LoopRequest(int Batches, LoopSide Model, IReadOnlyList<IBatchStatistic> Statistics,
    Func<int, IReadOnlyDictionary<string, HostTensor>> BatchInputs)
{
    /// <summary>Batch index → its labels, or null.</summary>
    public Func<int, HostTensor?>? Labels { get; init; }

    /// <summary>The reference side of a paired run, or null.</summary>
    public LoopSide? Reference { get; init; }

    /// <summary>Run statistics of batch b while ORT runs batch b + 1.</summary>
    public bool Overlap { get; init; } = true;

    /// <summary>Told the number of batches done after each batch.</summary>
    public Action<int>? Progress { get; init; }
}

/// <summary>Runs calibration batches through a session and feeds statistics (see the file header).</summary>
internal static class CalibrationLoop
{
    public static void Run(LoopRequest request, CancellationToken cancellationToken)
    {
        var model = new Capture(request.Model, request.Statistics);
        var reference = request.Reference is { } r ? new Capture(r, request.Statistics) : null;
        PendingStatistics? pending = null;
        void Release()
        {
            if (pending is null) return;
            pending.Finish();
            pending = null;
        }
        try
        {
            for (int b = 0; b < request.Batches; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var referenceValues = reference?.Run(b, Release);
                var values = model.Run(b, Release);
                var batchInputs = request.BatchInputs(b);
                var labels = request.Labels?.Invoke(b);
                var batch = new StatisticBatch(b, batchInputs, labels, values,
                    referenceValues is null ? null : new StatisticBatch(b, batchInputs, labels, referenceValues));
                var statistics = new PendingStatistics(request.Statistics, batch);
                if (request.Overlap && b + 1 < request.Batches) pending = statistics.Start(cancellationToken);
                else statistics.Finish();
                request.Progress?.Invoke(b + 1);
            }
            Release();
        }
        finally
        {
            // On failure let a running worker finish before the buffers go away; its own error is secondary.
            try { pending?.Abandon(); }
            catch (Exception) when (pending is not null) { }
        }
    }

    /// <summary>One side's session run and the copies of the values statistics read.</summary>
    private sealed class Capture
    {
        private readonly LoopSide _side;
        private readonly List<string> _outputs;
        private readonly HashSet<string> _keep;
        private readonly HashSet<string> _read;
        private readonly Dictionary<string, float[]> _buffers = new(StringComparer.Ordinal);

        public Capture(LoopSide side, IReadOnlyList<IBatchStatistic> statistics)
        {
            _side = side;
            _read = statistics.SelectMany(s => s.Reads).ToHashSet(StringComparer.Ordinal);
            _keep = side.Keep.ToHashSet(StringComparer.Ordinal);
            var computed = side.Session?.OutputNames.ToHashSet(StringComparer.Ordinal) ?? [];
            _outputs = [.. side.Keep.Concat(_read.Where(computed.Contains)).Distinct(StringComparer.Ordinal)];
            if (_outputs.Count > 0 && side.Session is null) throw new InvalidOperationException("A loop side that keeps outputs needs a session.");
        }

        /// <summary>Runs batch <paramref name="b"/>; returns what statistics read. <paramref name="beforeCopy"/> runs once ORT is done, before any buffer is overwritten.</summary>
        public Dictionary<string, TapValues> Run(int b, Action beforeCopy)
        {
            var values = new Dictionary<string, TapValues>(StringComparer.Ordinal);
            bool released = false;
            if (_outputs.Count > 0)
                _side.Session!.Run(_side.Inputs(b), _outputs, (name, value) =>
                {
                    if (!released) { beforeCopy(); released = true; }
                    if (_keep.Contains(name))
                    {
                        var host = TappedSession.ToHost(name, value);
                        _side.Sink?.Invoke(b, name, host);
                        if (_read.Contains(name)) values[name] = View(name, host);
                    }
                    else values[name] = Copy(name, value);
                });
            if (!released) beforeCopy();
            foreach (var name in _read)
            {
                if (values.ContainsKey(name)) continue;
                var given = _side.Given?.Invoke(b, name)
                    ?? throw new InvalidOperationException($"'{name}' is read by a statistic but neither computed by the session nor given for batch {b}.");
                values[name] = View(name, given);
            }
            return values;
        }

        private TapValues Copy(string name, OrtValue value)
        {
            if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
                throw new NotSupportedException($"Tap '{name}' is a {value.OnnxType}, not a tensor.");
            var info = value.GetTensorTypeAndShape();
            if (info.ElementDataType != TensorElementType.Float)
                throw new NotSupportedException($"Tap '{name}' is {OnnxDataTypes.Name((OnnxDataType)info.ElementDataType)}; statistics need float32 tensors.");
            int[] shape = [.. info.Shape.Select(d => checked((int)d))];
            var data = value.GetTensorDataAsSpan<float>();
            if (!_buffers.TryGetValue(name, out var buffer) || buffer.Length != data.Length)
                _buffers[name] = buffer = GC.AllocateUninitializedArray<float>(data.Length);
            data.CopyTo(buffer);
            return new TapValues(buffer, shape);
        }

        private static TapValues View(string name, HostTensor t) => t.Data is float[] f
            ? new TapValues(f, t.Shape)
            : throw new NotSupportedException($"Tap '{name}' is {t}; statistics need float32 tensors.");
    }

    /// <summary>
    /// The statistics of one batch, one at a time to whichever thread asks: a worker started while ONNX Runtime runs the
    /// next batch, and the calling thread once that batch is done (it takes those left rather than waiting).
    /// </summary>
    private sealed class PendingStatistics(IReadOnlyList<IBatchStatistic> statistics, StatisticBatch batch)
    {
        private int _next = -1;
        private Task? _worker;

        public PendingStatistics Start(CancellationToken cancellationToken)
        {
            _worker = Task.Run(Work, cancellationToken);
            return this;
        }

        public void Finish()
        {
            Work();
            _worker?.GetAwaiter().GetResult();
        }

        public void Abandon()
        {
            Interlocked.Exchange(ref _next, statistics.Count);
            _worker?.Wait(CancellationToken.None);
        }

        private void Work()
        {
            int i;
            while ((i = Interlocked.Increment(ref _next)) < statistics.Count) statistics[i].AddBatch(batch);
        }
    }
}
