using Whittle.Calibration;
using Whittle.Compression;
using Whittle.LinearAlgebra;

namespace Whittle.Methods;

/// <summary>The input Gram matrix of one factor site on the calibration data: <c>G = XᵀX</c> (n × n, float64) over T rows.</summary>
/// <param name="Gram">XᵀX, the rows of X being the layer's inputs (linear: tokens/samples; conv: im2col patches).</param>
/// <param name="Rows">T.</param>
internal sealed record SiteGram(Matrix<double> Gram, long Rows)
{
    /// <summary>Per-input RMS <c>a_j = sqrt(G_jj / T)</c>.</summary>
    public double[] Rms() => [.. Enumerable.Range(0, Gram.Rows).Select(j => Rows == 0 ? 0.0 : Math.Sqrt(Math.Max(0, Gram[j, j]) / Rows))];

    /// <summary>
    /// The relative output error of replacing W by Ŵ on the calibration inputs: <c>‖(W − Ŵ)Xᵀ‖_F / ‖W Xᵀ‖_F</c> =
    /// sqrt(tr(E G Eᵀ) / tr(W G Wᵀ)), E = W − Ŵ (0 when W X is 0).
    /// </summary>
    public double OutputError(MatrixView<double> w, MatrixView<double> approximation)
    {
        int m = w.Rows, n = w.Cols;
        var e = new Matrix<double>(m, n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) e[i, j] = w[i, j] - approximation[i, j];
        double num = Quadratic(e, Gram), den = Quadratic(w, Gram);
        return den > 0 ? Math.Sqrt(Math.Max(0, num) / den) : 0;
    }

    // tr(A G Aᵀ) = Σ_i a_iᵀ G a_i.
    private static double Quadratic(MatrixView<double> a, Matrix<double> g)
    {
        var ag = Blas.Multiply(a, g.View);
        double sum = 0;
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++) sum += ag[i, j] * a[i, j];
        return sum;
    }
}

/// <summary>Collects <see cref="SiteGram"/>s of factor sites in one calibration pass per kind (linear inputs, conv patches).</summary>
internal static class SiteStatistics
{
    /// <summary>
    /// The input Gram of every site that has one: linear sites by <see cref="CalibrationRunner"/> (one tap per distinct input),
    /// 2-D convolutions by <see cref="ConvPatchGram"/>. Sites whose inputs cannot be described (a constant-left MatMul, whose
    /// features lie on the second-to-last axis; a convolution that is not 2-D) are returned in <paramref name="unavailable"/>.
    /// </summary>
    public static Dictionary<string, SiteGram> Collect(CompressionJob job, IReadOnlyList<FactorSite> sites,
        out List<(FactorSite Site, string Reason)> unavailable, CancellationToken cancellationToken)
    {
        unavailable = [];
        var result = new Dictionary<string, SiteGram>(StringComparer.Ordinal);
        var linear = new List<LinearFactorSite>();
        var conv = new List<ConvFactorSite>();
        foreach (var s in sites)
        {
            switch (s)
            {
                case LinearFactorSite l when l.Site.WeightIsLeftOperand:
                    unavailable.Add((s, "its input features lie on the second-to-last axis (W·x), which calibration does not collect"));
                    break;
                case LinearFactorSite l:
                    linear.Add(l);
                    break;
                case ConvFactorSite c when c.Site.Kernel.Count != 2:
                    unavailable.Add((s, $"patch statistics are collected for 2-D convolutions only (this kernel is {c.Site.Kernel.Count}-D)"));
                    break;
                case ConvFactorSite c:
                    conv.Add(c);
                    break;
            }
        }

        int passes = (linear.Count > 0 ? 1 : 0) + (conv.Count > 0 ? 1 : 0), pass = 0;
        if (linear.Count > 0)
        {
            var taps = linear.Select(l => l.Input).Distinct(StringComparer.Ordinal).Select(i => new TapRequest(i) { Gram = true }).ToList();
            var request = new CalibrationRequest(taps) { Runtime = job.Runtime, ExpectedBatches = job.Calibration.Count };
            var progress = job.Progress is { } p ? new Relay<CalibrationProgress>(c => p.Report(new CompressionProgress(Stages.Calibration, pass * job.Calibration.Count + c.Batches, passes * job.Calibration.Count, "layer inputs"))) : null;
            var stats = CalibrationRunner.Run(job.Model, request, job.Calibration, progress, cancellationToken);
            foreach (var l in linear)
            {
                var t = stats[l.Input];
                result[l.Name] = new SiteGram(t.Gram!, t.Rows);
            }
            pass++;
        }
        if (conv.Count > 0)
        {
            job.Progress?.Report(new CompressionProgress(Stages.Calibration, pass * job.Calibration.Count, passes * job.Calibration.Count, "convolution patches"));
            var stats = ConvPatchGram.Run(job.Model, [.. conv.Select(c => c.Site)], job.Calibration, job.Runtime, cancellationToken);
            foreach (var c in conv) result[c.Name] = new SiteGram(stats[c.Name].Gram, stats[c.Name].Rows);
        }
        job.Progress?.Report(new CompressionProgress(Stages.Calibration, passes * job.Calibration.Count, passes * job.Calibration.Count));
        return result;
    }

    /// <summary>Forwards reports synchronously (no thread-pool post, unlike <see cref="Progress{T}"/>).</summary>
    internal sealed class Relay<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
