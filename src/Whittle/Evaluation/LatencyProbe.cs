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
    /// <param name="repeats">Timed runs of each model per call.</param>
    public LatencyProbe(OnnxModel original, BatchSet calibration, RuntimeOptions options, int warmup = 5, int repeats = 60)
    {
        if (warmup < 0) ThrowHelper.ArgumentOutOfRange(nameof(warmup), warmup, "warm-up runs ≥ 0");
        if (repeats < 1) ThrowHelper.ArgumentOutOfRange(nameof(repeats), repeats, "at least one timed run");
        _example = calibration.FirstExample();
        _batches = calibration;
        _options = options;
        _warmup = warmup;
        _repeats = repeats;
        _original = ModelRunner.Create(original, calibration, options);
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
