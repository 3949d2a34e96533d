// A tapped activation as the rows × features matrix statistics accumulate: the last axis as features (a view, no
// copy), or axis 1 of an NCHW tensor (one row per sample and pixel: transposed into a reusable buffer). Token activations
// lose the rows of padded positions (attention mask 0): the model computes them but nothing reads them.

using Whittle.LinearAlgebra;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>Which axis of a tapped tensor holds the features; every other axis becomes rows.</summary>
public enum FeatureAxis
{
    /// <summary>The last axis: <c>[..., h]</c> → rows = product of the other dims (MatMul / Gemm inputs, token activations).</summary>
    Last,

    /// <summary>Axis 1 of an NCHW tensor: <c>[N, C, H, W…]</c> → (N·H·W…) × C rows (conv activations, one row per pixel).</summary>
    Channel,
}

/// <summary>Turns one value's tensors into rows × features, checking that the feature count stays the same from batch to batch.</summary>
internal sealed class ActivationRows(string name, FeatureAxis axis)
{
    private float[] _rows = [];
    private int[]? _firstShape;

    public string Name { get; } = name;

    public FeatureAxis Axis { get; } = axis;

    /// <summary>h, or −1 before the first batch.</summary>
    public int Features { get; private set; } = -1;

    /// <summary>
    /// The rows × features matrix of <paramref name="values"/> (valid until the next call), without the rows of token
    /// positions <paramref name="tokenMask"/> marks 0 when the values are token activations <c>[batch, sequence, h]</c>.
    /// </summary>
    public MatrixView<float> Rows(TapValues values, HostTensor? tokenMask = null)
    {
        int rows = Check(values.Shape, values.Length);
        if (Axis == FeatureAxis.Last && Kept(values.Shape, tokenMask) is { } keep)
        {
            // Copy the kept rows together (padding is the exception: a batch with none is passed through as a view).
            if (_rows.Length < values.Length) _rows = new float[values.Length];
            var all = values.Span;
            int kept = 0, h = Features;
            for (int r = 0; r < rows; r++)
                if (keep[r] != 0) all.Slice(r * h, h).CopyTo(_rows.AsSpan(kept++ * h, h));
            return new MatrixView<float>(_rows, 0, kept, h, h, 1);
        }
        if (Axis == FeatureAxis.Last) return new MatrixView<float>(values.Array, 0, rows, Features, Features, 1);
        // [N, C, P] → [(N·P), C]: row n·P + p, column c.
        int c = Features, n = values.Shape[0], p = n == 0 || c == 0 ? 0 : values.Length / (n * c);
        if (_rows.Length < values.Length) _rows = new float[values.Length];
        var data = values.Span;
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
            {
                var src = data.Slice((b * c + ch) * p, p);
                int dst = b * p * c + ch;
                for (int q = 0; q < p; q++) _rows[dst + q * c] = src[q];
            }
        return new MatrixView<float>(_rows, 0, rows, c, c, 1);
    }

    /// <summary>The mask per row when it marks some token position of these <c>[batch, sequence, h]</c> values as padding; else null.</summary>
    private static long[]? Kept(int[] shape, HostTensor? tokenMask)
    {
        if (tokenMask is null || shape.Length != 3 || tokenMask.Shape[0] != shape[0] || tokenMask.Shape[1] != shape[1]) return null;
        var mask = tokenMask.AsInt64();
        return Array.IndexOf(mask, 0L) >= 0 ? mask : null;
    }

    /// <summary>Checks the shape against the axis and earlier batches; returns the rows (values ÷ features).</summary>
    public int Check(int[] shape, int length)
    {
        bool channel = Axis == FeatureAxis.Channel;
        if (shape.Length < (channel ? 2 : 1))
            ThrowHelper.Argument(nameof(shape), $"Tap '{Name}' has shape {HostTensor.FormatShape(shape)}; {(channel ? "FeatureAxis.Channel needs rank ≥ 2 (N, C, …)" : "statistics need rank ≥ 1")}.");
        int features = channel ? shape[1] : shape[^1];
        if (Features >= 0 && features != Features)
            ThrowHelper.Argument(nameof(shape),
                $"Tap '{Name}' has shape {HostTensor.FormatShape(shape)} in this batch, {HostTensor.FormatShape(_firstShape!)} in the first; its feature axis must keep its size.");
        Features = features;
        _firstShape ??= (int[])shape.Clone();
        return features == 0 ? 0 : checked(length / features);
    }
}
