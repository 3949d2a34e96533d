// Activation-aware weight scaling (AWQ; Lin et al., arXiv 2306.00978, §3.2): a weight's input channels with large
// activations matter most, and scaling channel k of W up by s_k before quantization (and its input down by 1/s_k, folded
// into the op that writes the input) gives those channels relatively finer steps. The scales are s = a^α, a the
// per-channel activation magnitude (here the RMS from the calibration Gram, in place of AWQ's mean |x|), normalised
// by sqrt(max s · min s); α is chosen on a grid in [0, 1] by the calibration output error of every layer that reads
// the input (they share the scaled input, so they share s):
//   E(α) = Σ_layers ‖(Ŵ_α − W) Xᵀ‖²_F = Σ_layers tr(Δ G Δᵀ),   Ŵ_α = Q(W·diag(s))·diag(s)⁻¹,   G = XᵀX.
// α = 0 is plain round-to-nearest, so the chosen scales are never worse than it on the calibration data.
// AWQ's second step, a search over clipped weight ranges, is not done.

using Whittle.Calibration;
using Whittle.LinearAlgebra;

namespace Whittle.Quantization;

/// <summary>The scales chosen for one input and what they do. Immutable.</summary>
/// <param name="Alpha">The exponent α (0: round to nearest, no scaling).</param>
/// <param name="Scales">s_k per input channel (all 1 when α = 0).</param>
/// <param name="Errors">Per layer, the relative calibration output error <c>‖(Ŵ − W)Xᵀ‖/‖WXᵀ‖</c> at α.</param>
/// <param name="RoundToNearestErrors">Per layer, the same error of plain round to nearest (α = 0).</param>
public sealed record InputScales(double Alpha, float[] Scales, double[] Errors, double[] RoundToNearestErrors)
{
    /// <summary>Whether the input is scaled at all.</summary>
    public bool IsIdentity => Alpha == 0;
}

/// <summary>The AWQ-style scale search (see the file header).</summary>
public static class ActivationAwareScales
{
    /// <summary>The α grid's points: 0, 1/n, …, 1.</summary>
    public const int DefaultGrid = 10;

    /// <summary>
    /// Chooses α for the layers <paramref name="weights"/> (each out × in, in = the Gram's size) that read one input whose
    /// Gram is <paramref name="inputs"/>.
    /// </summary>
    public static InputScales Search(IReadOnlyList<Matrix<float>> weights, GramMatrix inputs, QuantizationFormat format, int grid = DefaultGrid)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(format);
        ArgumentOutOfRangeException.ThrowIfLessThan(grid, 1);
        int k = inputs.Features;
        foreach (var w in weights)
            if (w.Cols != k) throw new ArgumentException($"A weight reads {w.Cols} features; the input has {k}.", nameof(weights));
        var rms = inputs.Rms();
        double[] reference = [.. weights.Select(w => OutputEnergy(w, inputs.Gram))];

        (double Alpha, float[] S, double[] Errors)? best = null;
        double[]? rtn = null;
        for (int g = 0; g <= grid; g++)
        {
            double alpha = (double)g / grid;
            var s = Scales(rms, alpha);
            double[] errors = [.. weights.Select(w => ErrorEnergy(w, s, inputs.Gram, format))];
            rtn ??= errors;
            if (best is null || errors.Sum() < best.Value.Errors.Sum()) best = (alpha, s, errors);
        }
        double[] Relative(double[] e) => [.. e.Select((x, i) => reference[i] > 0 ? Math.Sqrt(x / reference[i]) : x > 0 ? double.PositiveInfinity : 0)];
        return new InputScales(best!.Value.Alpha, best.Value.S, Relative(best.Value.Errors), Relative(rtn!));
    }

    /// <summary>s = a^α normalised by sqrt(max · min); channels that never fire get the smallest non-zero magnitude.</summary>
    internal static float[] Scales(double[] rms, double alpha)
    {
        var s = new float[rms.Length];
        if (alpha == 0)
        {
            Array.Fill(s, 1f);
            return s;
        }
        double floor = rms.Where(a => a > 0).DefaultIfEmpty(1).Min();
        var raw = rms.Select(a => Math.Pow(Math.Max(a, floor), alpha)).ToArray();
        double norm = Math.Sqrt(raw.Max() * raw.Min());
        for (int i = 0; i < s.Length; i++) s[i] = (float)Math.Clamp(raw[i] / norm, 1e-4, 1e4);
        return s;
    }

    /// <summary>The weight one output row reads after scaling, quantizing and unscaling: <c>Q(w ⊙ s) ⊘ s</c>.</summary>
    internal static Matrix<float> Quantized(Matrix<float> w, ReadOnlySpan<float> s, QuantizationFormat format)
    {
        var result = new Matrix<float>(w.Rows, w.Cols);
        var scaled = new float[w.Cols];
        for (int i = 0; i < w.Rows; i++)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(w.Row(i), s, scaled);
            BlockQuantizer.RoundTrip(scaled, format, result.Row(i));
            System.Numerics.Tensors.TensorPrimitives.Divide(result.Row(i), s, result.Row(i));
        }
        return result;
    }

    /// <summary><c>tr(Δ G Δᵀ)</c> for Δ = Ŵ − W at scales <paramref name="s"/>.</summary>
    private static double ErrorEnergy(Matrix<float> w, float[] s, Matrix<double> gram, QuantizationFormat format)
    {
        var q = Quantized(w, s, format);
        var delta = Matrix<double>.Create(w.Rows, w.Cols, (i, j) => (double)q[i, j] - w[i, j]);
        return Energy(delta, gram);
    }

    private static double OutputEnergy(Matrix<float> w, Matrix<double> gram) =>
        Energy(Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j]), gram);

    /// <summary><c>tr(A G Aᵀ) = Σ (A G) ⊙ A</c>.</summary>
    private static double Energy(Matrix<double> a, Matrix<double> gram)
    {
        var ag = Blas.Multiply<double>(a, gram);
        double sum = 0;
        for (int i = 0; i < a.Rows; i++) sum += System.Numerics.Tensors.TensorPrimitives.Dot<double>(ag.Row(i), a.Row(i));
        return Math.Max(sum, 0);
    }
}
