// The TSQR factor R of one value's rows (float64, RᵀR = ZᵀZ): exact pivots and errors for the interpolative
// decomposition with memory bounded in the sample count. Memory: 8·h² bytes plus 8·(h + n_b)·h for the Householder QR
// of [R; Z_b], into which each batch is widened directly (an NCHW activation straight from its layout, whose
// columns are contiguous runs there).

using Whittle.Decompositions;
using Whittle.LinearAlgebra;

namespace Whittle.Calibration;

/// <summary>The R factor of T rows: min(T, h) × h, upper trapezoidal, <c>RᵀR = ZᵀZ</c>.</summary>
/// <param name="R">R.</param>
/// <param name="Rows">T.</param>
public sealed record RFactor(Matrix<double> R, long Rows);

/// <summary>Accumulates the TSQR factor R of one value (<see cref="TsqrAccumulator{T}"/>, float64).</summary>
/// <param name="value">The value (float32, finite).</param>
/// <param name="axis">Where its features are.</param>
public sealed class RFactorStatistic(string value, FeatureAxis axis = FeatureAxis.Last) : IBatchStatistic<RFactor>
{
    private readonly ActivationRows _shape = new(value, axis);
    private TsqrAccumulator<double>? _tsqr;

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Reads { get; } = [value];

    /// <summary>Where the value's features are.</summary>
    public FeatureAxis Axis => axis;

    /// <inheritdoc/>
    public void AddBatch(StatisticBatch batch)
    {
        var z = batch[value];
        int rows = _shape.Check(z.Shape, z.Length), features = _shape.Features;
        var source = z.Array;
        int n = z.Shape[0];
        bool nchw = axis == FeatureAxis.Channel;
        if (!nchw && batch.TokenMask is { } mask)
        {
            // Padded token positions out: the kept rows, packed (the same array when nothing is padded).
            var kept = _shape.Rows(z, mask);
            source = kept.Array; // offset 0, row-major: ActivationRows packs kept rows from the start
            rows = kept.Rows;
            if (rows == 0) return;
        }
        (_tsqr ??= new TsqrAccumulator<double>(features)).AddBatch(rows, (stackT, column0) =>
        {
            var columns = stackT.AsSpan();
            int stride = stackT.Cols;
            if (nchw) WidenChannels(source, n, features, rows, columns, column0, stride);
            else WidenTransposed(source, rows, features, columns, column0, stride);
        });
    }

    /// <inheritdoc/>
    public RFactor Finish() => _tsqr is null ? new RFactor(new Matrix<double>(0, 0), 0) : new RFactor(_tsqr.R.Clone(), _tsqr.RowsSeen);

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
}
