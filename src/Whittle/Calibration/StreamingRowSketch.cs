// Streaming row sketch Y = S·Z of a tall activation matrix Z fed in row batches.
//
// Contract
//   Shapes: Z is T × h (T rows over all batches), S is s × T, Y is s × h (float64). Column t of S
//   depends only on (seed, t), drawn from a counter-based generator (SplitMix64 of seed and t), so the
//   sketch is the same for any batching of the same rows, and S never exists whole: each batch's
//   rows scatter into Y as they arrive (Y += S[:, t0..t0+n_b] · Z_b).
//   Gaussian     S_kt ~ N(0, 1/s) (Box–Muller on two SplitMix64 uniforms per entry).
//   CountSketch  row t of Z is added with sign σ(t) = ±1 to row b(t) of Y (one nonzero per column of S).
//   Memory: s·h doubles for Y, plus per batch s·n_b (Gaussian block of S) and n_b·h (rows widened)
//   doubles of scratch.
//   Unlike Decompositions.RowSketch (System.Random stream over a whole Z), this sketch is
//   streamable; the two give different S for the same seed.
//
// Reference
//   Halko, Martinsson & Tropp (2011) §4; Clarkson & Woodruff (STOC 2013); Steele, Lea & Flood,
//   "Fast splittable pseudorandom number generators" (OOPSLA 2014) for SplitMix64.

using Whittle.Decompositions;
using Whittle.LinearAlgebra;

namespace Whittle.Calibration;

/// <summary>Accumulates a seeded random row sketch <c>S·Z</c> of activation rows, batch by batch, with bounded memory.</summary>
/// <remarks>Memory: <c>8·s·h</c> bytes for the sketch plus <c>8·(s + h)·n_b</c> bytes of per-batch scratch.</remarks>
public sealed class StreamingRowSketch
{
    private readonly Matrix<double> _y;
    private double[] _s = [];
    private double[] _z = [];

    /// <summary>An empty sketch with <paramref name="sketchRows"/> rows for rows of <paramref name="features"/> columns.</summary>
    /// <param name="features">h ≥ 0.</param>
    /// <param name="sketchRows">s ≥ 1.</param>
    /// <param name="kind">Gaussian or CountSketch.</param>
    /// <param name="seed">Seed: the same seed gives the same S.</param>
    public StreamingRowSketch(int features, int sketchRows, SketchKind kind = SketchKind.Gaussian, int seed = 0)
    {
        if (features < 0) ThrowHelper.ArgumentOutOfRange(nameof(features), features, "a non-negative feature count");
        if (sketchRows < 1) ThrowHelper.ArgumentOutOfRange(nameof(sketchRows), sketchRows, "at least one sketch row");
        if (!Enum.IsDefined(kind)) ThrowHelper.ArgumentOutOfRange(nameof(kind), kind, "a defined SketchKind");
        Features = features;
        SketchRows = sketchRows;
        Kind = kind;
        Seed = seed;
        _y = new Matrix<double>(sketchRows, features);
    }

    /// <summary>h, the number of features.</summary>
    public int Features { get; }

    /// <summary>s, the number of sketch rows.</summary>
    public int SketchRows { get; }

    /// <summary>The kind of S.</summary>
    public SketchKind Kind { get; }

    /// <summary>The seed of S.</summary>
    public int Seed { get; }

    /// <summary>T, the rows seen so far.</summary>
    public long RowsSeen { get; private set; }

    /// <summary>A copy of the current sketch <c>S·Z</c> (s × h).</summary>
    public Matrix<double> Sketch => _y.Clone();

    /// <summary>Writes column <paramref name="row"/> of S (the weights row t of Z gets in each sketch row) into <paramref name="column"/> (length s).</summary>
    /// <param name="row">t ≥ 0, the global index of a row of Z.</param>
    /// <param name="column">Receives S[:, t]; length s.</param>
    public void FillColumn(long row, Span<double> column)
    {
        if (row < 0) ThrowHelper.ArgumentOutOfRange(nameof(row), row, "a non-negative row index");
        if (column.Length != SketchRows) ThrowHelper.ShapeMismatch(nameof(column), "StreamingRowSketch.FillColumn", $"{SketchRows}", $"{column.Length}");
        if (Kind == SketchKind.CountSketch)
        {
            column.Clear();
            ulong h = Mix((ulong)(uint)Seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)row + 0x632BE59BD9B4E019UL));
            column[(int)((h >> 1) % (ulong)SketchRows)] = (h & 1) == 0 ? 1.0 : -1.0;
            return;
        }
        double scale = 1.0 / Math.Sqrt(SketchRows);
        ulong key = Mix((ulong)(uint)Seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)row));
        for (int k = 0; k < column.Length; k++)
        {
            ulong a = Mix(key + (ulong)(2 * k + 1) * 0xBF58476D1CE4E5B9UL);
            ulong b = Mix(a ^ 0x94D049BB133111EBUL);
            double u1 = ((a >> 11) + 1) * (1.0 / (1UL << 53)); // (0, 1]
            double u2 = (b >> 11) * (1.0 / (1UL << 53));        // [0, 1)
            column[k] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2) * scale;
        }
    }

    /// <summary>Adds a batch: <c>Y += S[:, t0..t0+n_b]·rows</c> with t0 = <see cref="RowsSeen"/>.</summary>
    /// <param name="rows">n_b × h; not modified.</param>
    /// <exception cref="ArgumentException">Wrong column count.</exception>
    public void AddBatch(MatrixView<float> rows)
    {
        if (rows.Cols != Features)
            ThrowHelper.ShapeMismatch(nameof(rows), "StreamingRowSketch.AddBatch: every batch needs h columns", $"n×{Features}", $"{rows.Rows}×{rows.Cols}");
        int n = rows.Rows, h = Features, s = SketchRows;
        if (n == 0) return;
        if (Kind == SketchKind.CountSketch)
        {
            Span<double> col = s <= 256 ? stackalloc double[s] : new double[s];
            for (int i = 0; i < n; i++)
            {
                FillColumn(RowsSeen + i, col);
                int bucket = col.IndexOfAnyExcept(0.0);
                double sign = col[bucket];
                var dst = _y.Row(bucket);
                for (int j = 0; j < h; j++) dst[j] += sign * rows[i, j];
            }
        }
        else
        {
            if (_s.Length < s * n) _s = new double[s * n];
            if (_z.Length < n * h) _z = new double[n * h];
            var col = new double[s];
            for (int i = 0; i < n; i++)
            {
                FillColumn(RowsSeen + i, col);
                for (int k = 0; k < s; k++) _s[k * n + i] = col[k];
                for (int j = 0; j < h; j++) _z[i * h + j] = rows[i, j];
            }
            Blas.Gemm(1.0, new MatrixView<double>(_s, 0, s, n, n, 1), new MatrixView<double>(_z, 0, n, h, h, 1), 1.0, _y.View);
        }
        RowsSeen += n;
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
