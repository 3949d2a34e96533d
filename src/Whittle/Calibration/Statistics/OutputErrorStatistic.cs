// How far values of a compressed model are from the original's on the same calibration batches: for each value,
// Σ‖y − ŷ‖² and Σ‖y‖² over every batch (y the reference model's, ŷ the compressed model's). Read in passes that run
// both models side by side (StatisticBatch.Reference holds the original's batch), segment by segment: a batch may show
// only the values of one segment. Memory: two doubles per value,
// plus one gathered copy of a narrowed reference value per batch.

namespace Whittle.Calibration;

/// <summary>Sums of squared differences and of squared reference values, per value compared.</summary>
/// <param name="SquaredError">Per value, <c>Σ‖y − ŷ‖²</c>.</param>
/// <param name="SquaredNorm">Per value, <c>Σ‖y‖²</c>.</param>
public sealed record OutputErrorSums(IReadOnlyDictionary<string, double> SquaredError, IReadOnlyDictionary<string, double> SquaredNorm)
{
    /// <summary><c>sqrt(Σ‖y − ŷ‖² / Σ‖y‖²)</c> over the values of <paramref name="group"/> together; NaN when the reference is all zero.</summary>
    public double Relative(IEnumerable<string> group)
    {
        double e = 0, n = 0;
        foreach (var v in group)
        {
            e += SquaredError[v];
            n += SquaredNorm[v];
        }
        return n > 0 ? Math.Sqrt(e / n) : double.NaN;
    }
}

/// <summary>Compares values of a compressed model with the reference model's on the same batches.</summary>
/// <param name="values">The values compared (present in both models).</param>
/// <param name="narrowed">Values the compressed model holds narrower (a layer that is itself pruned): the axis (−1: last)
/// and the reference indices it kept, so the reference is compared on those entries only.</param>
public sealed class OutputErrorStatistic(IReadOnlyCollection<string> values, IReadOnlyDictionary<string, (int Axis, int[] Kept)>? narrowed = null)
    : IBatchStatistic<OutputErrorSums>
{
    private readonly Dictionary<string, double> _error = values.ToDictionary(v => v, _ => 0.0, StringComparer.Ordinal);
    private readonly Dictionary<string, double> _norm = values.ToDictionary(v => v, _ => 0.0, StringComparer.Ordinal);

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Reads => _error.Keys;

    /// <inheritdoc/>
    public void AddBatch(StatisticBatch batch)
    {
        var reference = batch.Reference
            ?? throw new InvalidOperationException("OutputErrorStatistic compares two models: run it in a pass with a reference model.");
        foreach (var v in _error.Keys)
        {
            if (!batch.Contains(v)) continue; // a pass segment by segment shows each value in its own segment
            var y = reference[v];
            ReadOnlySpan<float> a = narrowed is not null && narrowed.TryGetValue(v, out var keep) ? Gather(y, keep.Axis, keep.Kept) : y.Span;
            var b = batch[v].Span;
            if (a.Length != b.Length)
                throw new InvalidOperationException($"'{v}' holds {b.Length} values in the compressed model, {a.Length} expected.");
            double e = 0, n = 0;
            for (int i = 0; i < a.Length; i++)
            {
                double d = a[i] - b[i];
                e += d * d;
                n += (double)a[i] * a[i];
            }
            _error[v] += e;
            _norm[v] += n;
        }
    }

    /// <inheritdoc/>
    public OutputErrorSums Finish() => new(new Dictionary<string, double>(_error), new Dictionary<string, double>(_norm));

    /// <summary>The entries of <paramref name="t"/> at <paramref name="kept"/> along <paramref name="axis"/> (−1: last), row-major.</summary>
    private static float[] Gather(TapValues t, int axis, int[] kept)
    {
        var data = t.Span;
        int[] shape = t.Shape;
        if (axis < 0) axis += shape.Length;
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        var result = new float[outer * kept.Length * inner];
        for (long o = 0; o < outer; o++)
            for (int j = 0; j < kept.Length; j++)
                data.Slice((int)((o * shape[axis] + kept[j]) * inner), (int)inner).CopyTo(result.AsSpan((int)((o * kept.Length + j) * inner)));
        return result;
    }
}
