// Calibration of a whole model in one streaming pass: the model as one segment of the calibration loop
// (CalibrationLoop; its header gives the memory contract). Block-by-block calibration, with the weights of one
// segment at a time, runs the same loop through Compression.CompressionRun.

using System.Diagnostics;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>Progress after each calibration batch.</summary>
/// <param name="Batches">Batches done.</param>
/// <param name="TotalBatches">Batches expected.</param>
/// <param name="Elapsed">Wall time so far.</param>
public sealed record CalibrationProgress(int Batches, int TotalBatches, TimeSpan Elapsed);

/// <summary>What a calibration pass ran.</summary>
/// <param name="Batches">Batches run.</param>
/// <param name="Samples">Samples run (first-axis entries of the first model input).</param>
/// <param name="Elapsed">Wall time of the pass.</param>
public sealed record CalibrationSummary(int Batches, long Samples, TimeSpan Elapsed);

/// <summary>Runs calibration batches through a whole model and feeds statistics (<see cref="IBatchStatistic"/>).</summary>
public static class CalibrationRunner
{
    /// <summary>
    /// One streaming pass: every batch is run once, with every value the statistics read tapped, and each statistic sees
    /// every batch; activations are released batch by batch. Results are read from the statistics afterwards.
    /// </summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="statistics">The statistics (each given every batch, in order).</param>
    /// <param name="batches">Named tensors, one dictionary per batch (any batch size): the model's inputs, plus extra tensors
    /// statistics may read (an attention mask the model does not take); enumerated once.</param>
    /// <param name="options">ONNX Runtime settings; <see cref="RuntimeOptions.Default"/> when null.</param>
    /// <param name="progress">Told after every batch; may be null.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <exception cref="ArgumentException">A statistic reads a value the model does not have (the message lists close matches), or a batch does not fit the model.</exception>
    /// <exception cref="NotSupportedException">A value read is not float32.</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime rejects or fails to run the model.</exception>
    public static CalibrationSummary Run(OnnxModel model, IReadOnlyList<IBatchStatistic> statistics, IEnumerable<IReadOnlyDictionary<string, HostTensor>> batches,
        RuntimeOptions? options = null, IProgress<CalibrationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(statistics);
        ArgumentNullException.ThrowIfNull(batches);
        foreach (var s in statistics) ArgumentNullException.ThrowIfNull(s, nameof(statistics));
        var list = batches.ToList();
        foreach (var b in list) ArgumentNullException.ThrowIfNull(b, nameof(batches));
        var clock = Stopwatch.StartNew();
        var graphInputs = model.Graph.Inputs.Select(i => i.Name).Where(n => !model.Graph.TryGetInitializer(n, out _)).ToHashSet(StringComparer.Ordinal);
        // Graph inputs are read straight from the batch; everything else is tapped.
        var taps = statistics.SelectMany(s => s.Reads).Where(r => !graphInputs.Contains(r)).Distinct(StringComparer.Ordinal).ToList();
        using var session = TappedSession.Create(model, taps, options);
        var modelInputs = session.InputNames.ToHashSet(StringComparer.Ordinal);
        for (int b = 0; b < list.Count; b++)
            foreach (var input in session.InputNames)
                if (!list[b].ContainsKey(input))
                    ThrowHelper.Argument(nameof(batches), $"Batch {b} has no tensor for the model's input '{input}'; it has {ValueNames.List(list[b].Keys)}, and the model takes {ValueNames.List(session.InputNames)}.");
        long samples = 0;
        var request = new LoopRequest(list.Count, new LoopSide(session, b => Only(list[b], modelInputs),
            (b, name) => list[b].TryGetValue(name, out var t) ? t : null), statistics, b => list[b])
        {
            Progress = done =>
            {
                var first = list[done - 1];
                if (session.InputNames.Count > 0 && first.TryGetValue(session.InputNames[0], out var x) && x.Shape.Length > 0) samples += x.Shape[0];
                progress?.Report(new CalibrationProgress(done, list.Count, clock.Elapsed));
            },
        };
        CalibrationLoop.Run(request, cancellationToken);
        return new CalibrationSummary(list.Count, samples, clock.Elapsed);
    }

    private static IReadOnlyDictionary<string, HostTensor> Only(IReadOnlyDictionary<string, HostTensor> batch, HashSet<string> inputs) =>
        batch.Keys.All(inputs.Contains) ? batch : batch.Where(p => inputs.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
}
