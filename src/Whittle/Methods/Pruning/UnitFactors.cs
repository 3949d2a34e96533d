// One calibration of a segment for the pruning units it holds: the statistic of its activation Z, turned into a factor A with
// AᵀA = ZᵀZ (exactly for the R factor and the Gram matrix, approximately for a sketch), plus what the next layer
// says about Z's columns: their weights for the STAT column scaling and the consumer weight for predicted errors.
// A Gram statistic is kept as it is and turned into A only when a path asks for it (the ID's column path does not).
//
// Shapes: Z is n × c (rows = samples × positions or pixels, c = width·group size columns); A is m × c with
// m ≤ c for the R factor and the Gram (rank × c), s for a sketch; the consumer matrix is out × c.

using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Compression;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Rewriting;

namespace Whittle.Methods.Pruning;

/// <summary>What ranking a unit's columns needs.</summary>
/// <param name="Unit">The unit.</param>
/// <param name="Width">Its current width (units).</param>
/// <param name="Scale">Per column, the norm of the next layer's weights reading it; null when not scaled.</param>
/// <param name="Consumer">The consumers' weights stacked (out × c) when they are fully connected and read Z directly; else null.</param>
/// <param name="Rows">n, the rows of Z seen (samples × positions or pixels).</param>
internal sealed record UnitFactor(PruningUnit Unit, int Width, double[]? Scale, Matrix<double>? Consumer, long Rows)
{
    private Lazy<Matrix<double>> _a = null!;

    /// <summary>m × c with <c>AᵀA = ZᵀZ</c> (from the Gram matrix on first use, where that was the statistic).</summary>
    public Matrix<double> A => _a.Value;

    private double? _outputNorm;

    /// <summary><c>‖Z·Wᵀ‖_F = ‖A·Wᵀ‖_F</c> for the consumer W (null without one); computed once, every budget's choice divides by it.</summary>
    public double? OutputNorm => Consumer is not { } w ? null
        : _outputNorm ??= MatrixNorms.Frobenius(Blas.Multiply(A.View, w.Transpose()).View);

    /// <summary>c, the columns of Z (read from the Gram when there is one, so asking never builds A).</summary>
    public int Columns => Gram?.Cols ?? A.Cols;

    /// <summary><c>ZᵀZ</c> where the statistic was the Gram matrix, else null: paths that can work from it skip A.</summary>
    public Matrix<double>? Gram { get; private init; }

    /// <summary>A factor known by A itself.</summary>
    public static UnitFactor Of(PruningUnit unit, int width, Matrix<double> a, double[]? scale, Matrix<double>? consumer, long rows) =>
        new(unit, width, scale, consumer, rows) { _a = new(a) };

    /// <summary>A factor known by its Gram matrix; A comes from a pivoted Cholesky when first asked for.</summary>
    public static UnitFactor OfGram(PruningUnit unit, int width, Matrix<double> gram, double[]? scale, Matrix<double>? consumer, long rows) =>
        new(unit, width, scale, consumer, rows) { _a = new(() => FromGram(gram)), Gram = gram };

    /// <summary>A = R·Πᵀ from the pivoted Cholesky Πᵀ·G·Π ≈ RᵀR, so that AᵀA ≈ G.</summary>
    private static Matrix<double> FromGram(Matrix<double> gram)
    {
        var chol = PivotedCholesky.Compute(gram.View);
        var a = new Matrix<double>(chol.Rank, gram.Cols);
        var pivots = chol.Pivots;
        for (int i = 0; i < chol.Rank; i++)
            for (int j = 0; j < gram.Cols; j++) a[i, pivots[j]] = chol.R[i, j];
        return a;
    }
}

/// <summary>Calibrates the units of a model and builds their factors.</summary>
internal static class UnitFactors
{
    /// <summary>The factors of <paramref name="units"/> (all in <paramref name="step"/>'s segment) at their current <paramref name="widths"/>, from one calibration of the segment.</summary>
    public static List<UnitFactor> Collect(SegmentStep step, ModelStructure structure, IReadOnlyList<PruningUnit> units, IReadOnlyList<int> widths,
        PruningOptions options, int seed)
    {
        // One statistic per unit; a residual stream's Z stacks several values, whose Gram matrices add up (ZᵀZ = Σ_v Z_vᵀZ_v).
        var statistics = new List<IBatchStatistic[]>(units.Count);
        for (int u = 0; u < units.Count; u++)
        {
            var unit = units[u];
            int columns = widths[u] * unit.GroupSize;
            var statistic = options.Statistic == ActivationStatistic.Auto
                ? columns > options.AutoGramColumns || unit.Activations.Count > 1 ? ActivationStatistic.Gram : ActivationStatistic.RFactor
                : options.Statistic;
            if (unit.Activations.Count > 1 && statistic != ActivationStatistic.Gram)
                throw new ArgumentException($"Site '{unit.Name}' is a residual stream read at {unit.Activations.Count} points; its statistic is their summed Gram matrix (--id-source gram or auto), not {statistic}.");
            statistics.Add(statistic switch
            {
                ActivationStatistic.Gram => [.. unit.Activations.Select(v => new GramStatistic(v, unit.Axis))],
                ActivationStatistic.Sketch => [new SketchStatistic(unit.Activation, options.SketchRows ?? Math.Max(16, 2 * columns), unit.Axis, SketchKind.Gaussian, seed + u)],
                _ => [new RFactorStatistic(unit.Activation, unit.Axis)],
            });
        }
        step.Calibrate([.. statistics.SelectMany(s => s)]);

        var factors = new List<UnitFactor>(units.Count);
        for (int u = 0; u < units.Count; u++)
        {
            var unit = units[u];
            int columns = widths[u] * unit.GroupSize;
            bool scaled = options.Scaling == ColumnScaling.On || (options.Scaling == ColumnScaling.Auto && unit.Transformer);
            var (scale, consumer) = Consumers(step.Source, structure, unit, columns, scaled);
            var factor = statistics[u][0] switch
            {
                GramStatistic => Summed(statistics[u]) is var gram ? UnitFactor.OfGram(unit, widths[u], gram.Gram, scale, consumer, gram.Rows) : null,
                SketchStatistic k => k.Finish() is var sketch ? UnitFactor.Of(unit, widths[u], sketch.Sketch, scale, consumer, sketch.Rows) : null,
                RFactorStatistic r => r.Finish() is var rf ? UnitFactor.Of(unit, widths[u], rf.R, scale, consumer, rf.Rows) : null,
                _ => null,
            } ?? throw new InvalidOperationException("Unknown statistic.");
            int seen = factor.Columns;
            if (seen != columns)
                throw new InvalidOperationException($"Site '{unit.Name}': its activation '{unit.Activation}' has {seen} columns, expected {columns}.");
            factors.Add(factor);
        }
        return factors;
    }

    /// <summary>Σ_v Z_vᵀZ_v and the rows seen, over the Gram statistics of one unit.</summary>
    private static GramMatrix Summed(IBatchStatistic[] statistics)
    {
        var grams = statistics.Cast<GramStatistic>().Select(g => g.Finish()).ToList();
        var sum = grams[0].Gram;
        foreach (var g in grams.Skip(1))
        {
            var a = sum.AsSpan();
            var b = g.Gram.AsSpan();
            for (int i = 0; i < a.Length; i++) a[i] += b[i];
        }
        return new GramMatrix(sum, grams.Sum(g => g.Rows));
    }

    /// <summary>Column norms of the consumers' weights per column of Z (when scaled), and the stacked consumer weight (fully connected consumers).</summary>
    private static (double[]? Scale, Matrix<double>? Consumer) Consumers(OnnxModel model, ModelStructure structure, PruningUnit unit, int columns, bool scaled)
    {
        var sq = new double[columns];
        var rows = new List<Matrix<float>>();
        bool direct = true;
        foreach (var name in unit.Consumers)
        {
            if (structure.LinearSites.FirstOrDefault(s => s.Name == name) is { } l)
            {
                Matrix<float> w;
                try { w = SiteWeights.Weight(model, l); }
                catch (NotSupportedException) { return (null, null); }
                int factor = w.Cols / columns;
                direct &= factor == 1;
                if (factor == 1) rows.Add(w);
                for (int o = 0; o < w.Rows; o++)
                    for (int c = 0; c < w.Cols; c++) sq[c / factor] += (double)w[o, c] * w[o, c];
            }
            else if (structure.ConvSites.FirstOrDefault(s => s.Name == name) is { } conv)
            {
                direct = false;
                if (!scaled) continue;
                if (GraphQuery.ConstantTensor(model.Graph, conv.Weight.Initializer) is not { } t || (OnnxDataType)t.DataType is not (OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Double))
                    return (null, null);
                var k = model.Tensor(t).ToMatrix<double>(); // Cout × (Cin·kh·kw)
                int per = k.Cols / columns;
                for (int o = 0; o < k.Rows; o++)
                    for (int c = 0; c < k.Cols; c++) sq[c / per] += k[o, c] * k[o, c];
            }
        }
        Matrix<double>? consumer = null;
        if (direct && rows.Count > 0)
        {
            consumer = new Matrix<double>(rows.Sum(r => r.Rows), columns);
            int at = 0;
            foreach (var w in rows)
            {
                for (int o = 0; o < w.Rows; o++)
                    for (int c = 0; c < columns; c++) consumer[at + o, c] = w[o, c];
                at += w.Rows;
            }
        }
        return (scaled ? [.. sq.Select(Math.Sqrt)] : null, consumer);
    }
}
