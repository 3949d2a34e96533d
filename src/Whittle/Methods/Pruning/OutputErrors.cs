using Whittle.Data;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Methods.Pruning;

/// <summary>Measures, on calibration data, how far tapped values of compressed models are from the original's.</summary>
internal static class OutputErrors
{
    /// <summary>
    /// For every model and every group of taps, <c>sqrt(Σ‖y − ŷ‖²) / sqrt(Σ‖y‖²)</c> over all batches and the group's values
    /// (the original and each model run on the same batch, one batch at a time).
    /// </summary>
    /// <param name="original">The original model.</param>
    /// <param name="models">The compressed models.</param>
    /// <param name="groups">Tap names per group (a unit's consumers).</param>
    /// <param name="narrowed">Per model, taps that the model holds narrower (a consumer that is itself pruned): the axis and
    /// the original indices it kept, so the original's value is compared on those entries only (the others are that site's own pruning).</param>
    /// <param name="calibration">The batches.</param>
    /// <param name="runtime">Session settings.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>[model][group], NaN where the original's values are all zero.</returns>
    public static double[][] Measure(OnnxModel original, IReadOnlyList<OnnxModel> models, IReadOnlyList<IReadOnlyList<string>> groups,
        IReadOnlyList<IReadOnlyDictionary<string, (int Axis, int[] Kept)>> narrowed, BatchSet calibration, RuntimeOptions runtime, CancellationToken cancellationToken)
    {
        var taps = groups.SelectMany(g => g).Distinct(StringComparer.Ordinal).ToList();
        var index = taps.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
        var diff = new double[models.Count][];
        var norm = new double[models.Count][];
        for (int m = 0; m < models.Count; m++) { diff[m] = new double[taps.Count]; norm[m] = new double[taps.Count]; }
        using var reference = TappedSession.Create(original, taps, runtime);
        var sessions = new List<TappedSession>();
        try
        {
            foreach (var m in models) sessions.Add(TappedSession.Create(m, taps, runtime));
            foreach (var batch in calibration)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var y = reference.Run(batch, taps);
                for (int m = 0; m < sessions.Count; m++)
                {
                    var yh = sessions[m].Run(batch, taps);
                    for (int t = 0; t < taps.Count; t++)
                    {
                        var a = narrowed[m].TryGetValue(taps[t], out var keep) ? Gather(y[taps[t]], keep.Axis, keep.Kept) : y[taps[t]].AsFloats();
                        var b = yh[taps[t]].AsFloats();
                        double s = 0;
                        if (a.Length != b.Length) throw new InvalidOperationException($"'{taps[t]}' holds {b.Length} values in the compressed model, {a.Length} expected.");
                        for (int i = 0; i < a.Length; i++) { double d = a[i] - b[i]; s += d * d; }
                        diff[m][t] += s;
                        norm[m][t] += Energy(a);
                    }
                }
            }
        }
        finally
        {
            foreach (var s in sessions) s.Dispose();
        }
        var result = new double[models.Count][];
        for (int m = 0; m < models.Count; m++)
            result[m] = [.. groups.Select(g =>
            {
                double n = g.Sum(t => norm[m][index[t]]), d = g.Sum(t => diff[m][index[t]]);
                return n > 0 ? Math.Sqrt(d / n) : double.NaN;
            })];
        return result;
    }

    private static double Energy(float[] v)
    {
        double e = 0;
        foreach (float x in v) e += (double)x * x;
        return e;
    }

    /// <summary>The entries of <paramref name="t"/> at <paramref name="kept"/> along <paramref name="axis"/> (−1: last), row-major.</summary>
    private static float[] Gather(HostTensor t, int axis, int[] kept)
    {
        var data = t.AsFloats();
        int[] shape = t.Shape;
        if (axis < 0) axis += shape.Length;
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        var result = new float[outer * kept.Length * inner];
        for (long o = 0; o < outer; o++)
            for (int j = 0; j < kept.Length; j++)
                Array.Copy(data, (o * shape[axis] + kept[j]) * inner, result, (o * kept.Length + j) * inner, inner);
        return result;
    }
}
