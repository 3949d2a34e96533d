using Whittle.Data;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>What a latency search asks: a candidate's latency relative to the original.</summary>
internal interface ILatencyProbe : IDisposable
{
    /// <summary>The candidate's latency over the original's.</summary>
    double Ratio(OnnxModel candidate, CancellationToken cancellationToken = default);

    /// <summary>Calls made so far.</summary>
    int Calls { get; }
}

/// <summary>
/// The batch-1 latency of candidate models relative to one original, measured on this machine: every call runs the
/// candidate and the original alternately on the same example (<see cref="LatencyMeter"/>) and returns the ratio of their
/// medians, so drift in the machine's speed during a search affects both alike. Holds the original's session.
/// </summary>
internal sealed class LatencyProbe : ILatencyProbe
{
    private readonly ModelRunner _original;
    private readonly InputBatch _example;
    private readonly BatchSet _batches;
    private readonly RuntimeOptions _options;
    private readonly int _warmup;
    private readonly int _repeats;

    /// <param name="original">The model latencies are relative to.</param>
    /// <param name="calibration">Its first example is the input timed.</param>
    /// <param name="options">Session settings (threads) for both models.</param>
    /// <param name="warmup">Untimed runs of each model before timing.</param>
    /// <param name="seconds">
    /// Time each model is run for per call, at least <paramref name="minRepeats"/> runs: a model that runs in 0.2 ms is timed
    /// thousands of times, since its medians move by more than the steps a search chooses between in a few dozen runs.
    /// </param>
    /// <param name="minRepeats">The fewest timed runs of each model per call.</param>
    public LatencyProbe(OnnxModel original, BatchSet calibration, RuntimeOptions options, int warmup = 5, double seconds = 1.0, int minRepeats = 30)
    {
        if (warmup < 0) ThrowHelper.ArgumentOutOfRange(nameof(warmup), warmup, "warm-up runs ≥ 0");
        if (minRepeats < 1) ThrowHelper.ArgumentOutOfRange(nameof(minRepeats), minRepeats, "at least one timed run");
        if (!(seconds >= 0)) ThrowHelper.ArgumentOutOfRange(nameof(seconds), seconds, "a time ≥ 0");
        _example = calibration.FirstExample();
        _batches = calibration;
        _options = options;
        _warmup = warmup;
        _original = ModelRunner.Create(original, calibration, options);
        var once = LatencyMeter.Measure([_original], _example, 1, warmup, 5, static () => { }, CancellationToken.None)[0];
        _repeats = (int)Math.Clamp(Math.Ceiling(seconds * 1000 / Math.Max(once.MedianMilliseconds, 1e-3)), minRepeats, 5000);
    }

    /// <summary>Calls made so far.</summary>
    public int Calls { get; private set; }

    /// <summary>The candidate's median batch-1 latency over the original's, both measured now.</summary>
    public double Ratio(OnnxModel candidate, CancellationToken cancellationToken = default)
    {
        using var runner = ModelRunner.Create(candidate, _batches, _options);
        var figures = LatencyMeter.Measure([runner, _original], _example, 1, _warmup, _repeats, static () => { }, cancellationToken);
        Calls++;
        return figures[0].MedianMilliseconds / figures[1].MedianMilliseconds;
    }

    /// <inheritdoc/>
    public void Dispose() => _original.Dispose();
}
