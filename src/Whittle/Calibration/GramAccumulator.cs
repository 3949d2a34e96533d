// Streaming input Gram matrix G = XᵀX of activation rows, accumulated in float64.
//
// Contract
//   Shapes: each batch X_b is n_b × h (rows = samples/tokens/pixels, columns = features). After any
//   batches, Gram = Σ_b X_bᵀX_b (h × h), exactly symmetric.
//   Float64         (default) each batch is widened to float64 and added with Blas.Syrk (lower triangle,
//                   then mirrored): every product and sum in float64, so the result matches a float64
//                   reference to ~1e-15 relative whatever the batching.
//   Float32Product  each batch's X_bᵀX_b is computed in float32 (Blas.Syrk<float>) and only the running
//                   sum is float64: about 2× faster, relative error ~ sqrt(n_b)·2⁻²⁴ per batch.
//   Memory: h² doubles for G, plus one batch widened (n_b·h doubles) or a float32 h × h scratch.

using System.Numerics;
using Whittle.LinearAlgebra;

namespace Whittle.Calibration;

/// <summary>How <see cref="GramAccumulator"/> forms each batch's product.</summary>
public enum GramPrecision
{
    /// <summary>Rows widened to float64, product and sum in float64 (exact to float64 rounding).</summary>
    Float64,

    /// <summary>Each batch's product in float32, accumulated into a float64 Gram (faster, ~1e-6 relative).</summary>
    Float32Product,
}

/// <summary>Accumulates the Gram matrix <c>XᵀX</c> of activation rows fed in batches.</summary>
/// <remarks>Memory: <c>8·h²</c> bytes for the Gram, plus <c>8·n_b·h</c> (Float64) or <c>4·h²</c> (Float32Product) bytes of scratch, n_b the largest batch's rows.</remarks>
public sealed class GramAccumulator
{
    private readonly Matrix<double> _gram;
    private double[] _wide = [];
    private Matrix<float>? _narrow;

    /// <summary>An empty accumulator for rows of <paramref name="features"/> columns.</summary>
    /// <param name="features">h ≥ 0.</param>
    /// <param name="precision">How each batch's product is formed.</param>
    public GramAccumulator(int features, GramPrecision precision = GramPrecision.Float64)
    {
        if (features < 0) ThrowHelper.ArgumentOutOfRange(nameof(features), features, "a non-negative feature count");
        if (!Enum.IsDefined(precision)) ThrowHelper.ArgumentOutOfRange(nameof(precision), precision, "a defined GramPrecision");
        Features = features;
        Precision = precision;
        _gram = new Matrix<double>(features, features);
    }

    /// <summary>h, the number of features (columns).</summary>
    public int Features { get; }

    /// <summary>How each batch's product is formed.</summary>
    public GramPrecision Precision { get; }

    /// <summary>Rows seen so far.</summary>
    public long RowsSeen { get; private set; }

    /// <summary>A copy of the current Gram matrix <c>XᵀX</c> (h × h, exactly symmetric).</summary>
    public Matrix<double> Gram => _gram.Clone();

    /// <summary>Adds <c>rowsᵀ·rows</c>.</summary>
    /// <param name="rows">n_b × h; not modified.</param>
    /// <exception cref="ArgumentException">Wrong column count.</exception>
    public void AddBatch(MatrixView<float> rows)
    {
        if (rows.Cols != Features)
            ThrowHelper.ShapeMismatch(nameof(rows), "GramAccumulator.AddBatch: every batch needs h columns", $"n×{Features}", $"{rows.Rows}×{rows.Cols}");
        if (rows.Rows == 0) return;
        if (Precision == GramPrecision.Float64)
        {
            int n = rows.Rows, h = rows.Cols;
            if (_wide.Length < n * h) _wide = new double[n * h];
            if (rows.IsRowMajor && rows.RowStride == h)
                Widen(rows.Array.AsSpan(rows.Offset, n * h), _wide.AsSpan(0, n * h));
            else if (rows.IsRowMajor)
                for (int i = 0; i < n; i++) Widen(rows.Array.AsSpan(rows.Offset + i * rows.RowStride, h), _wide.AsSpan(i * h, h));
            else
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < h; j++) _wide[i * h + j] = rows[i, j];
            Blas.Syrk(1.0, new MatrixView<double>(_wide, 0, n, h, h, 1), 1.0, _gram.View);
        }
        else
        {
            _narrow ??= new Matrix<float>(Features, Features);
            Blas.Syrk(1f, rows, 0f, _narrow.View);
            var g = _gram.AsSpan();
            var s = _narrow.AsSpan();
            for (int i = 0; i < g.Length; i++) g[i] += s[i];
        }
        RowsSeen += rows.Rows;
    }

    /// <summary>float → double, exactly.</summary>
    internal static void Widen(ReadOnlySpan<float> source, Span<double> destination)
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated)
            for (; j <= source.Length - Vector<float>.Count; j += Vector<float>.Count)
            {
                Vector.Widen(new Vector<float>(source.Slice(j)), out Vector<double> lo, out Vector<double> hi);
                lo.CopyTo(destination.Slice(j));
                hi.CopyTo(destination.Slice(j + Vector<double>.Count));
            }
        for (; j < source.Length; j++) destination[j] = source[j];
    }
}
