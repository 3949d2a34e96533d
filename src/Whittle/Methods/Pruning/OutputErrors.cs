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
    /// <returns>[model][group], NaN where the original's values are all zero.</returns>
    public static double[][] Measure(OnnxModel original, IReadOnlyList<OnnxModel> models, IReadOnlyList<IReadOnlyList<string>> groups,
        BatchSet calibration, RuntimeOptions runtime, CancellationToken cancellationToken)
    {
        var taps = groups.SelectMany(g => g).Distinct(StringComparer.Ordinal).ToList();
        var index = taps.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
        var diff = new double[models.Count][];
        var norm = new double[taps.Count];
        for (int m = 0; m < models.Count; m++) diff[m] = new double[taps.Count];
        using var reference = TappedSession.Create(original, taps, runtime);
        var sessions = new List<TappedSession>();
        try
        {
            foreach (var m in models) sessions.Add(TappedSession.Create(m, taps, runtime));
            foreach (var batch in calibration)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var y = reference.Run(batch, taps);
                for (int t = 0; t < taps.Count; t++)
                    foreach (float v in y[taps[t]].AsFloats()) norm[t] += (double)v * v;
                for (int m = 0; m < sessions.Count; m++)
                {
                    var yh = sessions[m].Run(batch, taps);
                    for (int t = 0; t < taps.Count; t++)
                    {
                        var a = y[taps[t]].AsFloats();
                        var b = yh[taps[t]].AsFloats();
                        double s = 0;
                        for (int i = 0; i < a.Length; i++) { double d = a[i] - b[i]; s += d * d; }
                        diff[m][t] += s;
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
                double n = g.Sum(t => norm[index[t]]), d = g.Sum(t => diff[m][index[t]]);
                return n > 0 ? Math.Sqrt(d / n) : double.NaN;
            })];
        return result;
    }
}
