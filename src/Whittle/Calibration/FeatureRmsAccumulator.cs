// Streaming per-feature root mean square a_j = sqrt(mean_t x_tj²) (METHODS.md §1, the WANDA scale).
//
// Contract
//   Shapes: batches n_b × h. Sum of squares per feature in float64 (each x widened before squaring),
//   count of rows as a long. Memory: h doubles.

using System.Numerics;
using Whittle.LinearAlgebra;

namespace Whittle.Calibration;

/// <summary>Accumulates per-feature sums of squares of activation rows; <see cref="Rms"/> gives <c>a_j = sqrt(Σ_t x_tj² / T)</c>.</summary>
/// <remarks>Memory: <c>8·h</c> bytes.</remarks>
public sealed class FeatureRmsAccumulator
{
    private readonly double[] _sumOfSquares;

    /// <summary>An empty accumulator for rows of <paramref name="features"/> columns.</summary>
    /// <param name="features">h ≥ 0.</param>
    public FeatureRmsAccumulator(int features)
    {
        if (features < 0) ThrowHelper.ArgumentOutOfRange(nameof(features), features, "a non-negative feature count");
        _sumOfSquares = new double[features];
    }

    /// <summary>h, the number of features.</summary>
    public int Features => _sumOfSquares.Length;

    /// <summary>T, the rows seen so far.</summary>
    public long RowsSeen { get; private set; }

    /// <summary>A copy of <c>Σ_t x_tj²</c> per feature (float64).</summary>
    public double[] SumOfSquares => (double[])_sumOfSquares.Clone();

    /// <summary><c>sqrt(Σ_t x_tj² / T)</c> per feature; all zeros before any row.</summary>
    public double[] Rms() => [.. _sumOfSquares.Select(s => RowsSeen == 0 ? 0.0 : Math.Sqrt(s / RowsSeen))];

    /// <summary>Adds the squares of every row.</summary>
    /// <param name="rows">n_b × h; not modified.</param>
    /// <exception cref="ArgumentException">Wrong column count.</exception>
    public void AddBatch(MatrixView<float> rows)
    {
        if (rows.Cols != Features)
            ThrowHelper.ShapeMismatch(nameof(rows), "FeatureRmsAccumulator.AddBatch: every batch needs h columns", $"n×{Features}", $"{rows.Rows}×{rows.Cols}");
        var sums = _sumOfSquares;
        if (rows.IsRowMajor)
        {
            // Each feature's sum runs over the rows in order, as in the loop below; the lanes are features.
            for (int i = 0; i < rows.Rows; i++)
                AddSquares(rows.Array.AsSpan(rows.Offset + i * rows.RowStride, sums.Length), sums);
        }
        else
        {
            for (int i = 0; i < rows.Rows; i++)
                for (int j = 0; j < sums.Length; j++)
                {
                    double x = rows[i, j];
                    sums[j] += x * x;
                }
        }
        RowsSeen += rows.Rows;
    }

    /// <summary><c>sums[j] += (double)row[j]²</c>: multiply then add (no fused multiply-add), SIMD across j.</summary>
    private static void AddSquares(ReadOnlySpan<float> row, Span<double> sums)
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated)
            for (; j <= row.Length - Vector<float>.Count; j += Vector<float>.Count)
            {
                Vector.Widen(new Vector<float>(row.Slice(j)), out Vector<double> lo, out Vector<double> hi);
                var s0 = new Vector<double>(sums.Slice(j));
                var s1 = new Vector<double>(sums.Slice(j + Vector<double>.Count));
                (s0 + lo * lo).CopyTo(sums.Slice(j));
                (s1 + hi * hi).CopyTo(sums.Slice(j + Vector<double>.Count));
            }
        for (; j < row.Length; j++)
        {
            double x = row[j];
            sums[j] += x * x;
        }
    }
}
