// Block-boundary hidden states for angular distance (METHODS.md §1 step 2): per sequence, the
// hidden vector of its last non-padding token.
//
// Contract
//   Each batch is a b × L × w tensor (sequences × positions × width) with, per sequence, the index of
//   its last real token (from an attention mask, from lengths, or L − 1). The selected vectors are
//   kept for ALL sequences: memory grows as (sequences seen) × w floats (e.g. 128 sequences × 4096
//   wide = 2 MiB per boundary) — bounded by the calibration set, not by the batch.

using Whittle.LinearAlgebra;

namespace Whittle.Calibration;

/// <summary>Collects, per sequence, the hidden vector of its last non-padding token.</summary>
/// <remarks>Memory: <c>4·S·w</c> bytes for S sequences of width w (kept for every sequence).</remarks>
public sealed class LastTokenAccumulator
{
    private readonly List<float[]> _states = [];

    /// <summary>An empty collection of vectors of width <paramref name="width"/>.</summary>
    /// <param name="width">w ≥ 0, the hidden size.</param>
    public LastTokenAccumulator(int width)
    {
        if (width < 0) ThrowHelper.ArgumentOutOfRange(nameof(width), width, "a non-negative width");
        Width = width;
    }

    /// <summary>w, the hidden size.</summary>
    public int Width { get; }

    /// <summary>Sequences seen so far.</summary>
    public int Sequences => _states.Count;

    /// <summary>The collected states, one row per sequence in the order fed (S × w, a new matrix).</summary>
    public Matrix<float> States
    {
        get
        {
            var m = new Matrix<float>(_states.Count, Width);
            for (int i = 0; i < _states.Count; i++) _states[i].CopyTo(m.Row(i));
            return m;
        }
    }

    /// <summary>Adds one batch of hidden states.</summary>
    /// <param name="hidden">b·L·w values, row-major b × L × w; not modified.</param>
    /// <param name="sequences">b.</param>
    /// <param name="positions">L ≥ 1.</param>
    /// <param name="lastIndex">Per sequence, the position (0 ≤ p &lt; L) of its last real token.</param>
    /// <exception cref="ArgumentException">Sizes disagree or an index is out of range.</exception>
    public void AddBatch(ReadOnlySpan<float> hidden, int sequences, int positions, ReadOnlySpan<int> lastIndex)
    {
        if (sequences < 0 || positions < 1 || (long)sequences * positions * Width != hidden.Length)
            ThrowHelper.ShapeMismatch(nameof(hidden), "LastTokenAccumulator.AddBatch: hidden must be b × L × w", $"{sequences}×{positions}×{Width}", $"{hidden.Length} values");
        if (lastIndex.Length != sequences)
            ThrowHelper.ShapeMismatch(nameof(lastIndex), "LastTokenAccumulator.AddBatch: one index per sequence", $"{sequences}", $"{lastIndex.Length}");
        for (int b = 0; b < sequences; b++)
        {
            int p = lastIndex[b];
            if ((uint)p >= (uint)positions)
                ThrowHelper.ArgumentOutOfRange(nameof(lastIndex), p, $"a position in [0, {positions}) for sequence {b} (a sequence with no real token?)");
            _states.Add(hidden.Slice((b * positions + p) * Width, Width).ToArray());
        }
    }
}
