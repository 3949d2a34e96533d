// Random row sketches S·Z of a tall matrix Z, for sketched interpolative decompositions.
//
// Contract
//   Shapes: Z is n × h (rows = samples, columns = neurons); S is s × n; the result S·Z is s × h.
//   Gaussian     S_ij ~ N(0, 1/s) independent (so E‖S·z‖² = ‖z‖²); S is generated block by block
//                (4096 columns at a time) from one seeded stream and never held whole.
//   CountSketch  each row i of Z is added, with a random sign ±1, to one uniformly random row
//                (bucket) of the result: S has one nonzero ±1 per column; O(n·h) work.
//   The same seed, shape and kind give the same sketch on every machine (System.Random(seed)).
//   Z is never modified.
//
// Reference
//   Halko, Martinsson & Tropp, SIAM Review 53 (2011), §4 (Gaussian test matrices); Clarkson &
//   Woodruff, "Low rank approximation and regression in input sparsity time" (STOC 2013) (CountSketch);
//   STAT (Flynn et al., arXiv 2406.00061) sketches calibration activations this way.
//
// Numerical caveats
//   A sketch preserves the column space of an exactly rank-k Z with probability 1 (Gaussian, s ≥ k) or
//   with high probability (CountSketch, s ≳ k²; a few times k usually suffices); column norms, and so
//   pivots, are preserved only up to a (1 ± O(sqrt(k/s))) distortion, so the sketched ID may choose
//   other columns than the ID of Z when column norms are close.

using System.Numerics;
using Whittle.LinearAlgebra;

namespace Whittle.Decompositions;

/// <summary>The random matrix S of a row sketch S·Z.</summary>
public enum SketchKind
{
    /// <summary>Dense Gaussian S with entries N(0, 1/s).</summary>
    Gaussian,

    /// <summary>CountSketch: each row of Z goes to one random bucket with a random sign.</summary>
    CountSketch,
}

/// <summary>Seeded random row sketches <c>S·Z</c>.</summary>
public static class RowSketch
{
    private const int BlockColumns = 4096;

    /// <summary>Returns <c>S·Z</c> (s × h) for a seeded random s × n sketch S of the given kind.</summary>
    /// <param name="z">The n × h matrix; not modified.</param>
    /// <param name="sketchRows">s ≥ 1.</param>
    /// <param name="kind">Gaussian or CountSketch.</param>
    /// <param name="seed">Seed of the random stream.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sketchRows"/> &lt; 1 or an undefined kind.</exception>
    public static Matrix<T> Apply<T>(MatrixView<T> z, int sketchRows, SketchKind kind, int seed)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (sketchRows < 1) ThrowHelper.ArgumentOutOfRange(nameof(sketchRows), sketchRows, "at least one sketch row");
        int n = z.Rows, h = z.Cols;
        var result = new Matrix<T>(sketchRows, h);
        var rng = new Random(seed);
        switch (kind)
        {
            case SketchKind.Gaussian:
            {
                T scale = T.CreateTruncating(1.0 / Math.Sqrt(sketchRows));
                for (int c0 = 0; c0 < n; c0 += BlockColumns)
                {
                    int cb = Math.Min(BlockColumns, n - c0);
                    var s = new Matrix<T>(sketchRows, cb);
                    var span = s.AsSpan();
                    for (int i = 0; i < span.Length; i += 2)
                    {
                        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                        double r = Math.Sqrt(-2.0 * Math.Log(u1));
                        span[i] = T.CreateTruncating(r * Math.Cos(2 * Math.PI * u2)) * scale;
                        if (i + 1 < span.Length) span[i + 1] = T.CreateTruncating(r * Math.Sin(2 * Math.PI * u2)) * scale;
                    }
                    Blas.Gemm(T.One, s.View, z.SliceRows(c0, cb), T.One, result.View);
                }
                break;
            }
            case SketchKind.CountSketch:
            {
                for (int i = 0; i < n; i++)
                {
                    int bucket = rng.Next(sketchRows);
                    bool negative = rng.Next(2) == 1;
                    var dst = result.Row(bucket);
                    for (int j = 0; j < h; j++)
                        dst[j] = negative ? dst[j] - z[i, j] : dst[j] + z[i, j];
                }
                break;
            }
            default:
                ThrowHelper.ArgumentOutOfRange(nameof(kind), kind, "a defined SketchKind");
                break;
        }
        return result;
    }
}
