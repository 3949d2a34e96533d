using Whittle.LinearAlgebra;
using Whittle.Onnx;

namespace Whittle.Tests.Evaluation;

/// <summary>Perturbed copies of models, and the test's own float64 softmax math (independent of LogitMetrics).</summary>
internal static class EvalTestModels
{
    /// <summary>A copy of <paramref name="model"/> (in memory) whose float weight matrices get Gaussian noise of
    /// <paramref name="relative"/> × their RMS.</summary>
    public static OnnxModel Perturbed(OnnxModel model, double relative, int seed)
    {
        var copy = OnnxModel.FromProto(model.Proto.Clone(), model.BaseDirectory);
        int k = 0;
        foreach (var name in copy.Graph.InitializerNames)
        {
            var t = copy.Graph.GetInitializer(name);
            if (t.DataType != OnnxDataType.Float || t.Shape.Count < 2) continue;
            var values = t.ToArray<float>();
            double rms = Math.Sqrt(values.Sum(v => (double)v * v) / values.Length);
            var noise = RandomMatrix.Gaussian<float>(1, values.Length, seed: seed + k++).AsSpan();
            for (int i = 0; i < values.Length; i++) values[i] += (float)(relative * rms * noise[i]);
            copy.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>(name, values, t.Shape, OnnxDataType.Float));
        }
        return copy;
    }

    /// <summary>log softmax in float64, written out directly.</summary>
    public static double[] LogSoftmax(ReadOnlySpan<float> z)
    {
        double max = double.NegativeInfinity;
        foreach (var v in z) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in z) sum += Math.Exp(v - max);
        var result = new double[z.Length];
        for (int i = 0; i < z.Length; i++) result[i] = z[i] - max - Math.Log(sum);
        return result;
    }

    /// <summary>Σ p (log p − log q) with p, q the softmaxes of the rows.</summary>
    public static double Kl(ReadOnlySpan<float> reference, ReadOnlySpan<float> model)
    {
        var lp = LogSoftmax(reference);
        var lq = LogSoftmax(model);
        return lp.Select((l, i) => Math.Exp(l) * (l - lq[i])).Sum();
    }

    public static int ArgMax(ReadOnlySpan<float> z)
    {
        int best = 0;
        for (int i = 1; i < z.Length; i++)
            if (z[i] > z[best]) best = i;
        return best;
    }
}
