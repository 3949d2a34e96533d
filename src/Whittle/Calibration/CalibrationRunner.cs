// The calibration loop: one streaming pass of a model over calibration batches, feeding each tapped
// activation to its statistics (AddBatch) and dropping it before the next batch.
//
// Contract
//   For each batch: run the tapped session once (TappedSession), then for every tap reshape its
//   tensor to rows × features (FeatureAxis) and add it to each requested accumulator. Per tap, the only
//   activation memory is one batch: a float32 rows buffer of n_b·h (plus the float64 widening some
//   statistics make), and ORT's output of the batch being run, released once copied. With
//   OverlapStatistics (default) batch b's statistics run on a worker while ORT runs batch b + 1 (the
//   calling thread takes the taps still waiting once ORT is done), so at that moment a tap holds batch
//   b's rows and ORT batch b + 1's output. Statistics memory per tap is
//     Gram      8·h² bytes (+ 8·n_b·h scratch, or 4·h² for Float32Product)
//     RMS       8·h bytes
//     R factor  8·h² bytes (+ 8·(h + n_b)·h for the Householder QR of [R; Z_b], into which the batch is
//               widened directly; reused from batch to batch)
//     Sketch    8·s·h bytes (+ 8·(s + h)·n_b scratch)
//     LastToken 4·S·w bytes for S sequences: grows with the calibration set, bounded by count × width.
//               A tap asking only for last-token states copies just the b selected rows of each batch.
//   Speed: statistics of batch b overlap ORT's run of batch b + 1 on another core; a FeatureAxis.Channel
//   tap asking only for R keeps ORT's N × C × P layout (its columns are contiguous runs there).
//   Deterministic: the same batches give the same statistics bit for bit (fixed RuntimeOptions); other
//   batchings of the same rows give the same statistics up to float64 summation order (~1e-15 relative),
//   provided ORT computes each row the same way at every batch size (true of MatMul/Gemm/Conv on CPU).

using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>Runs calibration batches through a model and collects statistics of tapped values.</summary>
public static class CalibrationRunner
{
    /// <summary>
    /// One streaming pass: every batch is run once with all taps, and each tap's activation feeds its statistics
    /// and is released before the next batch.
    /// </summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="request">Taps and statistics.</param>
    /// <param name="batches">Named input tensors, one dictionary per batch (any batch size); enumerated once. Tensors
    /// named by a <see cref="LastTokenRequest"/> may be extra entries that are not model inputs.</param>
    /// <param name="progress">Told after every batch; may be null.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <exception cref="ArgumentException">A bad request (unknown tap — with close matches —, duplicate tap, no statistic), or a batch that
    /// does not fit the model (names the input, expected vs got), or a tap whose shape changes between batches.</exception>
    /// <exception cref="NotSupportedException">A tapped value is not float32.</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime rejects or fails to run the model.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static CalibrationResult Run(OnnxModel model, CalibrationRequest request, IEnumerable<IReadOnlyDictionary<string, HostTensor>> batches,
        IProgress<CalibrationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(batches);
        Validate(request);
        var clock = Stopwatch.StartNew();
        var states = request.Taps.Select(t => new TapState(t)).ToList();
        var tapNames = request.Taps.Select(t => t.Name).ToList();
        int? total = request.ExpectedBatches ?? (batches.TryGetNonEnumeratedCount(out int c) ? c : null);
        if (request.MaxBatches is { } max && total is { } t0) total = Math.Min(max, t0);

        using var session = TappedSession.Create(model, tapNames, request.Runtime);
        var modelInputs = new HashSet<string>(session.InputNames, StringComparer.Ordinal);
        int done = 0;
        long samples = 0;
        BatchStatistics? pending = null; // the statistics of the previous batch, when they overlap the next batch's inference
        try
        {
            foreach (var batch in batches)
            {
                if (request.MaxBatches is { } m && done >= m) break;
                cancellationToken.ThrowIfCancellationRequested();
                ArgumentNullException.ThrowIfNull(batch, nameof(batches));
                var inputs = batch.Keys.All(modelInputs.Contains) ? batch : Filter(batch, modelInputs, request);
                session.Run(inputs, tapNames, (name, value) =>
                {
                    // ORT has finished this batch: the rows buffers may be refilled once the previous statistics are done.
                    if (pending is not null) { pending.Finish(); pending = null; }
                    states[tapNames.IndexOf(name)].Capture(value, batch);
                });
                var statistics = new BatchStatistics(states);
                if (request.OverlapStatistics) pending = statistics.Start(cancellationToken);
                else statistics.Finish();
                done++;
                if (session.InputNames.Count > 0 && inputs.TryGetValue(session.InputNames[0], out var first) && first.Shape.Length > 0)
                    samples += first.Shape[0];
                progress?.Report(new CalibrationProgress(done, total, samples, clock.Elapsed));
            }
            if (pending is not null) { pending.Finish(); pending = null; }
        }
        finally
        {
            // On failure, let a running statistics task finish before the buffers go away; its own error is secondary.
            try { pending?.Abandon(); }
            catch (Exception) when (pending is not null) { }
        }
        var result = states.ToDictionary(s => s.Request.Name, s => s.Finish(), StringComparer.Ordinal);
        return new CalibrationResult(result, done, samples, clock.Elapsed);
    }

    private static void Validate(CalibrationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request.Taps, nameof(request));
        ArgumentNullException.ThrowIfNull(request.Runtime, nameof(request));
        if (request.MaxBatches is < 0) ThrowHelper.ArgumentOutOfRange(nameof(request), request.MaxBatches, "MaxBatches ≥ 0 or null");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tap in request.Taps)
        {
            ArgumentNullException.ThrowIfNull(tap, nameof(request));
            if (string.IsNullOrEmpty(tap.Name)) ThrowHelper.Argument(nameof(request), "A tap has no name.");
            if (!seen.Add(tap.Name)) ThrowHelper.Argument(nameof(request), $"Tap '{tap.Name}' is requested twice; merge its statistics into one TapRequest.");
            if (!tap.Gram && !tap.Rms && !tap.RFactor && tap.Sketch is null && tap.LastToken is null)
                ThrowHelper.Argument(nameof(request), $"Tap '{tap.Name}' asks for no statistic; set Gram, Rms, RFactor, Sketch or LastToken.");
            if (tap.Sketch is { Rows: < 1 }) ThrowHelper.ArgumentOutOfRange(nameof(request), tap.Sketch.Rows, $"at least one sketch row for tap '{tap.Name}'");
            if (tap.LastToken is not null && tap.Axis != FeatureAxis.Last)
                ThrowHelper.Argument(nameof(request), $"Tap '{tap.Name}': last-token hidden states need FeatureAxis.Last (b × L × w).");
            if (!Enum.IsDefined(tap.Axis)) ThrowHelper.ArgumentOutOfRange(nameof(request), tap.Axis, "a defined FeatureAxis");
        }
    }

    private static Dictionary<string, HostTensor> Filter(IReadOnlyDictionary<string, HostTensor> batch, HashSet<string> modelInputs, CalibrationRequest request)
    {
        var extras = request.Taps.Where(t => t.LastToken is not null)
            .SelectMany(t => new[] { t.LastToken!.MaskInput, t.LastToken.LengthsInput })
            .OfType<string>().ToHashSet(StringComparer.Ordinal);
        var inputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in batch)
            if (modelInputs.Contains(name) || !extras.Contains(name)) inputs[name] = tensor; // unknown names reach the session's check
        return inputs;
    }

    /// <summary>
    /// The statistics of one batch, one tap at a time to whichever thread asks: a worker started while ONNX Runtime runs
    /// the next batch, and the calling thread once that batch is done (it takes the taps left rather than waiting). Each
    /// tap is accumulated by exactly one thread, so the results are those of a sequential loop.
    /// </summary>
    private sealed class BatchStatistics(List<TapState> states)
    {
        private int _next = -1;
        private Task? _worker;

        public BatchStatistics Start(CancellationToken cancellationToken)
        {
            _worker = Task.Run(Work, cancellationToken);
            return this;
        }

        /// <summary>Accumulates the taps no thread has taken yet, then waits for the worker's last one.</summary>
        public void Finish()
        {
            Work();
            _worker?.GetAwaiter().GetResult();
        }

        /// <summary>Stops handing out taps and waits for the worker (after a failure elsewhere).</summary>
        public void Abandon()
        {
            Interlocked.Exchange(ref _next, states.Count);
            _worker?.Wait(CancellationToken.None);
        }

        private void Work()
        {
            int i;
            while ((i = Interlocked.Increment(ref _next)) < states.Count) states[i].Accumulate();
        }
    }

    /// <summary>The accumulators of one tap and its reusable rows buffer.</summary>
    private sealed class TapState(TapRequest request)
    {
        private float[] _rows = [];
        private bool _rowsAreNchw; // a channel tap asking only for R keeps ORT's layout: its columns are contiguous runs there
        private bool _lastTokensOnly; // the rows buffer holds only each sequence's last-token vector (b × w)
        private int _features = -1;
        private int[]? _firstShape;
        private GramAccumulator? _gram;
        private FeatureRmsAccumulator? _rms;
        private TsqrAccumulator<double>? _tsqr;
        private StreamingRowSketch? _sketch;
        private LastTokenAccumulator? _lastToken;
        private long _rowsSeen;
        private int[] _shape = [];
        private int _batchRows;
        private int[]? _lastIndex;

        public TapRequest Request { get; } = request;

        /// <summary>Copies the tap's tensor for this batch into the rows buffer (and the last-token positions).</summary>
        public void Capture(OrtValue value, IReadOnlyDictionary<string, HostTensor> batch)
        {
            if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
                throw new NotSupportedException($"Tap '{Request.Name}' is a {value.OnnxType}, not a tensor.");
            var info = value.GetTensorTypeAndShape();
            if (info.ElementDataType != TensorElementType.Float)
                throw new NotSupportedException($"Tap '{Request.Name}' is {OnnxDataTypes.Name((OnnxDataType)info.ElementDataType)}; statistics need float32 tensors.");
            _shape = [.. info.Shape.Select(d => checked((int)d))];
            var data = value.GetTensorDataAsSpan<float>();
            if (OnlyLastToken)
            {
                // Only each sequence's last-token vector is needed: copy those b rows, not all b × L.
                _batchRows = CheckFeatures(_shape, data.Length);
                _lastIndex = LastTokens(Request.LastToken!, _shape, batch);
                _lastTokensOnly = CopyLastTokens(data);
                if (!_lastTokensOnly) Reshape(_shape, data);
                return;
            }
            _batchRows = Reshape(_shape, data);
            if (Request.LastToken is { } lt) _lastIndex = LastTokens(lt, _shape, batch);
        }

        private bool OnlyLastToken => Request.LastToken is not null && !Request.Gram && !Request.Rms && !Request.RFactor && Request.Sketch is null;

        /// <summary>Copies row <c>_lastIndex[i]</c> of every sequence i into the rows buffer (b × w); false if an index is out of range.</summary>
        private bool CopyLastTokens(ReadOnlySpan<float> data)
        {
            int b = _shape[0], positions = _shape.Length == 3 ? _shape[1] : 1, w = _features;
            var last = _lastIndex!;
            if (last.Any(p => (uint)p >= (uint)positions)) return false; // the full copy lets the accumulator report it
            if (_rows.Length < b * w) _rows = new float[b * w];
            for (int i = 0; i < b; i++) data.Slice((i * positions + last[i]) * w, w).CopyTo(_rows.AsSpan(i * w, w));
            return true;
        }

        /// <summary>Feeds the captured batch to every requested statistic.</summary>
        public void Accumulate()
        {
            int rows = _batchRows, features = _features;
            var view = new MatrixView<float>(_rows, 0, rows, features, features, 1);
            if (Request.Gram) (_gram ??= new GramAccumulator(features, Request.GramPrecision)).AddBatch(view);
            if (Request.Rms) (_rms ??= new FeatureRmsAccumulator(features)).AddBatch(view);
            if (Request.Sketch is { } s) (_sketch ??= new StreamingRowSketch(features, s.Rows, s.Kind, s.Seed)).AddBatch(view);
            if (Request.RFactor)
            {
                // Widened straight into the accumulator's stack, which holds the batch in column layout (features × rows).
                int n = _shape[0];
                var source = _rows;
                bool nchw = _rowsAreNchw;
                (_tsqr ??= new TsqrAccumulator<double>(features)).AddBatch(rows, (stackT, column0) =>
                {
                    var columns = stackT.AsSpan();
                    int stride = stackT.Cols;
                    if (nchw) WidenChannels(source, n, features, rows, columns, column0, stride);
                    else WidenTransposed(source, rows, features, columns, column0, stride);
                });
            }
            if (_lastIndex is not null)
            {
                int b = _shape[0], positions = _shape.Length == 3 ? _shape[1] : 1;
                _lastToken ??= new LastTokenAccumulator(features);
                if (_lastTokensOnly) _lastToken.AddBatch(_rows.AsSpan(0, b * features), b, 1, new int[b]);
                else _lastToken.AddBatch(_rows.AsSpan(0, b * positions * features), b, positions, _lastIndex);
            }
            _rowsSeen += rows;
        }

        public TapStatistics Finish() => new(Request, Math.Max(0, _features), _rowsSeen)
        {
            Gram = _gram?.Gram,
            SumOfSquares = _rms?.SumOfSquares,
            Rms = _rms?.Rms(),
            R = _tsqr?.R.Clone(),
            Sketch = _sketch?.Sketch,
            HiddenStates = _lastToken?.States,
        };

        /// <summary>
        /// The rows × channels matrix of an N × C × P tensor in column layout: column c (at <c>c·stride + column0</c>) is
        /// the concatenation over n of the contiguous run <c>nchw[(n·C + c)·P …]</c>, widened.
        /// </summary>
        private static void WidenChannels(float[] nchw, int n, int channels, int rows, Span<double> columns, int column0, int stride)
        {
            int p = n == 0 ? 0 : rows / n;
            for (int c = 0; c < channels; c++)
                for (int b = 0; b < n; b++)
                    GramAccumulator.Widen(nchw.AsSpan((b * channels + c) * p, p), columns.Slice(c * stride + column0 + b * p, p));
        }

        /// <summary>
        /// <c>columns[j·stride + column0 + i] = rows[i·features + j]</c>: column by column over blocks of rows, so the
        /// writes are contiguous and a block's source lines stay in cache from one column to the next.
        /// </summary>
        private static void WidenTransposed(float[] source, int rows, int features, Span<double> columns, int column0, int stride)
        {
            const int block = 2048;
            for (int i0 = 0; i0 < rows; i0 += block)
            {
                int count = Math.Min(block, rows - i0);
                for (int j = 0; j < features; j++)
                {
                    var to = columns.Slice(j * stride + column0 + i0, count);
                    var from = source.AsSpan(i0 * features + j);
                    for (int i = 0; i < to.Length; i++) to[i] = from[i * features];
                }
            }
        }

        /// <summary>Checks the shape against the tap's axis and earlier batches; returns the rows (elements ÷ features).</summary>
        private int CheckFeatures(int[] shape, int length)
        {
            bool channel = Request.Axis == FeatureAxis.Channel;
            if (shape.Length < (channel ? 2 : 1))
                ThrowHelper.Argument(nameof(shape), $"Tap '{Request.Name}' has shape {HostTensor.FormatShape(shape)}; {(channel ? "FeatureAxis.Channel needs rank ≥ 2 (N, C, …)" : "statistics need rank ≥ 1")}.");
            int features = channel ? shape[1] : shape[^1];
            if (_features >= 0 && features != _features)
                ThrowHelper.Argument(nameof(shape),
                    $"Tap '{Request.Name}' has shape {HostTensor.FormatShape(shape)} in this batch, {HostTensor.FormatShape(_firstShape!)} in the first; its feature axis must keep its size.");
            _features = features;
            _firstShape ??= shape;
            return features == 0 ? 0 : checked(length / features);
        }

        /// <summary>Copies the tensor into the rows buffer as rows × features (or, see <see cref="_rowsAreNchw"/>, as it is); returns the rows.</summary>
        private int Reshape(int[] shape, ReadOnlySpan<float> data)
        {
            bool channel = Request.Axis == FeatureAxis.Channel;
            int rows = CheckFeatures(shape, data.Length), features = _features;
            if (_rows.Length < data.Length) _rows = new float[data.Length];
            _rowsAreNchw = channel && !Request.Gram && !Request.Rms && Request.Sketch is null;
            if (!channel || _rowsAreNchw)
            {
                data.CopyTo(_rows);
                return rows;
            }
            // [N, C, P] → [(N·P), C]: row n·P + p, column c.
            int n = shape[0], p = n == 0 || features == 0 ? 0 : data.Length / (n * features);
            for (int b = 0; b < n; b++)
                for (int c = 0; c < features; c++)
                {
                    var src = data.Slice((b * features + c) * p, p);
                    int dst = b * p * features + c;
                    for (int q = 0; q < p; q++) _rows[dst + q * features] = src[q];
                }
            return rows;
        }

        private int[] LastTokens(LastTokenRequest request, int[] shape, IReadOnlyDictionary<string, HostTensor> batch)
        {
            if (shape.Length is not (2 or 3))
                ThrowHelper.Argument(nameof(shape), $"Tap '{Request.Name}' has shape {HostTensor.FormatShape(shape)}; last-token hidden states need b × L × w or b × w.");
            int b = shape[0], positions = shape.Length == 3 ? shape[1] : 1;
            var last = new int[b];
            if (shape.Length == 2) { /* one vector per sequence: index 0 */ }
            else if (request.MaskInput is { } maskName)
            {
                var mask = Extra(batch, maskName, [b, positions]);
                for (int i = 0; i < b; i++)
                {
                    last[i] = -1;
                    for (int p = positions - 1; p >= 0; p--)
                        if (NonZero(mask.Data, i * positions + p)) { last[i] = p; break; }
                }
            }
            else if (request.LengthsInput is { } lengthsName)
            {
                var lengths = Extra(batch, lengthsName, [b]);
                for (int i = 0; i < b; i++) last[i] = checked((int)Convert.ToInt64(lengths.Data.GetValue(i)) - 1);
            }
            else Array.Fill(last, positions - 1);
            return last;
        }

        private HostTensor Extra(IReadOnlyDictionary<string, HostTensor> batch, string name, int[] shape)
        {
            if (!batch.TryGetValue(name, out var t))
                ThrowHelper.Argument(nameof(batch), $"Tap '{Request.Name}' needs batch tensor '{name}' for last-token positions; the batch has {ValueNames.List(batch.Keys)}.");
            if (!t.Shape.SequenceEqual(shape))
                ThrowHelper.Argument(nameof(batch), $"Batch tensor '{name}': expected shape {HostTensor.FormatShape(shape)} to match tap '{Request.Name}', got {HostTensor.FormatShape(t.Shape)}.");
            return t;
        }

        private static bool NonZero(Array data, int i) => data switch
        {
            long[] a => a[i] != 0,
            int[] a => a[i] != 0,
            float[] a => a[i] != 0,
            double[] a => a[i] != 0,
            bool[] a => a[i],
            byte[] a => a[i] != 0,
            sbyte[] a => a[i] != 0,
            _ => throw new NotSupportedException($"Mask data of type {data.GetType().Name} is not supported."),
        };
    }
}
