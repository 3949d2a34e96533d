// A seeded streaming row sketch S·Z of one value (StreamingRowSketch). Memory: 8·s·h bytes plus 8·(s + h)·n_b scratch.

using Whittle.Decompositions;
using Whittle.LinearAlgebra;

namespace Whittle.Calibration;

/// <summary>The row sketch <c>S·Z</c> (s × h) of T rows.</summary>
/// <param name="Sketch">S·Z.</param>
/// <param name="Rows">T.</param>
public sealed record ActivationSketch(Matrix<double> Sketch, long Rows);

/// <summary>Accumulates a seeded row sketch of one value.</summary>
/// <param name="value">The value (float32).</param>
/// <param name="rows">s ≥ 1, sketch rows.</param>
/// <param name="axis">Where its features are.</param>
/// <param name="kind">Gaussian or CountSketch.</param>
/// <param name="seed">Seed of S.</param>
public sealed class SketchStatistic(string value, int rows, FeatureAxis axis = FeatureAxis.Last, SketchKind kind = SketchKind.Gaussian, int seed = 0)
    : IBatchStatistic<ActivationSketch>
{
    private readonly ActivationRows _rows = new(value, axis);
    private StreamingRowSketch? _sketch;

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Reads { get; } = [value];

    /// <inheritdoc/>
    public void AddBatch(StatisticBatch batch)
    {
        var z = _rows.Rows(batch[value], batch.TokenMask);
        (_sketch ??= new StreamingRowSketch(z.Cols, rows, kind, seed)).AddBatch(z);
    }

    /// <inheritdoc/>
    public ActivationSketch Finish() => _sketch is null ? new ActivationSketch(new Matrix<double>(rows, 0), 0) : new ActivationSketch(_sketch.Sketch, _sketch.RowsSeen);
}
