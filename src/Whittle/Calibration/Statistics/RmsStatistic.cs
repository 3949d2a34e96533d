// Per-feature Σ x² of one value (float64): ASVD's and CURing's activation scale. Memory: 8·h bytes.

namespace Whittle.Calibration;

/// <summary>Per-feature sums of squares over T rows.</summary>
/// <param name="SumOfSquares"><c>Σ_t x_tj²</c> per feature j.</param>
/// <param name="Rows">T.</param>
public sealed record FeatureRms(double[] SumOfSquares, long Rows)
{
    /// <summary>Per-feature RMS <c>a_j = sqrt(Σ_t x_tj² / T)</c>.</summary>
    public double[] Rms() => [.. SumOfSquares.Select(s => Rows == 0 ? 0.0 : Math.Sqrt(s / Rows))];
}

/// <summary>Accumulates per-feature RMS of one value (<see cref="FeatureRmsAccumulator"/>).</summary>
/// <param name="value">The value (float32).</param>
/// <param name="axis">Where its features are.</param>
public sealed class RmsStatistic(string value, FeatureAxis axis = FeatureAxis.Last) : IBatchStatistic<FeatureRms>
{
    private readonly ActivationRows _rows = new(value, axis);
    private FeatureRmsAccumulator? _rms;

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Reads { get; } = [value];

    /// <summary>Where the value's features are.</summary>
    public FeatureAxis Axis => axis;

    /// <inheritdoc/>
    public void AddBatch(StatisticBatch batch)
    {
        var rows = _rows.Rows(batch[value], batch.TokenMask);
        (_rms ??= new FeatureRmsAccumulator(rows.Cols)).AddBatch(rows);
    }

    /// <inheritdoc/>
    public FeatureRms Finish() => _rms is null ? new FeatureRms([], 0) : new FeatureRms(_rms.SumOfSquares, _rms.RowsSeen);
}
