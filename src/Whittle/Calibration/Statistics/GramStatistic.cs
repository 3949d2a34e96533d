// XᵀX of one value's rows (float64): what whitened SVD, ASVD's RMS and the output-error formula need.
// Memory: 8·h² bytes, plus the float64 widening of one batch (8·n_b·h) or 4·h² for GramPrecision.Float32Product.

using Whittle.LinearAlgebra;

namespace Whittle.Calibration;

/// <summary>The Gram matrix <c>G = XᵀX</c> (float64, exactly symmetric) of T rows, the rows of X being a layer's inputs.</summary>
/// <param name="Gram">XᵀX, h × h.</param>
/// <param name="Rows">T.</param>
public sealed record GramMatrix(Matrix<double> Gram, long Rows)
{
    /// <summary>h.</summary>
    public int Features => Gram.Rows;

    /// <summary>Per-feature RMS <c>a_j = sqrt(G_jj / T)</c> (zeros when no row was seen).</summary>
    public double[] Rms() => [.. Enumerable.Range(0, Gram.Rows).Select(j => Rows == 0 ? 0.0 : Math.Sqrt(Math.Max(0, Gram[j, j]) / Rows))];

    /// <summary>
    /// The relative output error of replacing W (m × h) by Ŵ on these inputs: <c>‖(W − Ŵ)Xᵀ‖_F / ‖W Xᵀ‖_F</c> =
    /// sqrt(tr(E G Eᵀ) / tr(W G Wᵀ)), E = W − Ŵ; 0 when W X is 0 and E X is too, +∞ when only W X is.
    /// </summary>
    public double OutputError(MatrixView<double> w, MatrixView<double> approximation)
    {
        var e = new Matrix<double>(w.Rows, w.Cols);
        for (int i = 0; i < w.Rows; i++)
            for (int j = 0; j < w.Cols; j++) e[i, j] = w[i, j] - approximation[i, j];
        double error = Quadratic(e.View), norm = Quadratic(w);
        return norm > 0 ? Math.Sqrt(Math.Max(0, error) / norm) : error > 0 ? double.PositiveInfinity : 0;
    }

    // tr(A G Aᵀ) = Σ_ij (A ⊙ A·G)_ij.
    private double Quadratic(MatrixView<double> a)
    {
        var ag = Blas.Multiply(a, Gram.View);
        double sum = 0;
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++) sum += ag[i, j] * a[i, j];
        return sum;
    }
}

/// <summary>Accumulates the Gram matrix of one value (<see cref="GramAccumulator"/>).</summary>
/// <param name="value">The value (float32).</param>
/// <param name="axis">Where its features are.</param>
/// <param name="precision">How the per-batch products are formed.</param>
public sealed class GramStatistic(string value, FeatureAxis axis = FeatureAxis.Last, GramPrecision precision = GramPrecision.Float64)
    : IBatchStatistic<GramMatrix>
{
    private readonly ActivationRows _rows = new(value, axis);
    private GramAccumulator? _gram;

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Reads { get; } = [value];

    /// <summary>Where the value's features are.</summary>
    public FeatureAxis Axis => axis;

    /// <inheritdoc/>
    public void AddBatch(StatisticBatch batch)
    {
        var rows = _rows.Rows(batch[value], batch.TokenMask);
        (_gram ??= new GramAccumulator(rows.Cols, precision)).AddBatch(rows);
    }

    /// <inheritdoc/>
    public GramMatrix Finish() => _gram is null ? new GramMatrix(new Matrix<double>(0, 0), 0) : new GramMatrix(_gram.Gram, _gram.RowsSeen);
}
