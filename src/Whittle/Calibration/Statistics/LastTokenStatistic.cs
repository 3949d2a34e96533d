// Block-boundary hidden states for CURing's angular distances: per sequence, the hidden vector of its last real token.
// The tapped value is b × L × w (or b × w, one vector per sequence already); the last real token comes from an
// attention mask in the batch (the last nonzero position per row), else a lengths tensor (length − 1), else L − 1.
// Memory: 4·S·w bytes for S sequences (kept for every sequence: bounded by the calibration set).

using Whittle.LinearAlgebra;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>Collects, per sequence, the hidden vector of one value at the sequence's last real token.</summary>
/// <param name="value">The hidden state (float32, b × L × w or b × w).</param>
/// <param name="maskInput">A b × L attention mask among the batch's inputs, or null.</param>
/// <param name="lengthsInput">A length-b tensor of sequence lengths among the batch's inputs, or null (used when there is no mask).</param>
public sealed class LastTokenStatistic(string value, string? maskInput = null, string? lengthsInput = null) : IBatchStatistic<Matrix<float>>
{
    private LastTokenAccumulator? _states;

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Reads { get; } = [value];

    /// <inheritdoc/>
    public void AddBatch(StatisticBatch batch)
    {
        var h = batch[value];
        var shape = h.Shape;
        if (shape.Length is not (2 or 3))
            ThrowHelper.Argument(nameof(batch), $"Tap '{value}' has shape {HostTensor.FormatShape(shape)}; last-token hidden states need b × L × w or b × w.");
        int b = shape[0], positions = shape.Length == 3 ? shape[1] : 1, w = shape[^1];
        if (_states is not null && _states.Width != w)
            ThrowHelper.Argument(nameof(batch), $"Tap '{value}' has width {w} in this batch, {_states.Width} before; its feature axis must keep its size.");
        _states ??= new LastTokenAccumulator(w);
        _states.AddBatch(h.Span, b, positions, LastTokens(batch, b, positions));
    }

    /// <inheritdoc/>
    public Matrix<float> Finish() => _states?.States ?? new Matrix<float>(0, 0);

    private int[] LastTokens(StatisticBatch batch, int b, int positions)
    {
        var last = new int[b];
        if (positions == 1) return last;
        if (maskInput is not null)
        {
            var mask = Extra(batch, maskInput, [b, positions]);
            for (int i = 0; i < b; i++)
            {
                last[i] = -1;
                for (int p = positions - 1; p >= 0; p--)
                    if (NonZero(mask.Data, i * positions + p)) { last[i] = p; break; }
            }
        }
        else if (lengthsInput is not null)
        {
            var lengths = Extra(batch, lengthsInput, [b]);
            for (int i = 0; i < b; i++) last[i] = checked((int)Convert.ToInt64(lengths.Data.GetValue(i)) - 1);
        }
        else Array.Fill(last, positions - 1);
        return last;
    }

    private HostTensor Extra(StatisticBatch batch, string name, int[] shape)
    {
        if (!batch.Inputs.TryGetValue(name, out var t))
            ThrowHelper.Argument(nameof(batch), $"Tap '{value}' needs batch tensor '{name}' for last-token positions; the batch has {ValueNames.List(batch.Inputs.Keys)}.");
        if (!t.Shape.SequenceEqual(shape))
            ThrowHelper.Argument(nameof(batch), $"Batch tensor '{name}': expected shape {HostTensor.FormatShape(shape)} to match tap '{value}', got {HostTensor.FormatShape(t.Shape)}.");
        return t;
    }

    private static bool NonZero(Array data, int i) => data switch
    {
        long[] a => a[i] != 0,
        int[] a => a[i] != 0,
        float[] a => a[i] != 0,
        double[] a => a[i] != 0,
        bool[] a => a[i],
        byte[] a => a[i] != 0,
        sbyte[] a => a[i] != 0,
        _ => throw new NotSupportedException($"Mask data of type {data.GetType().Name} is not supported."),
    };
}
