using Whittle.Runtime;

namespace Whittle.Compression;

/// <summary>
/// The unlabeled (or labeled) samples a method calibrates on, already cut into batches of named model inputs.
/// Held in memory and enumerable any number of times, so a method can run them again through a partly
/// compressed model (the greedy ID schedule, the low-rank rank search). Immutable; the tensors are shared.
/// </summary>
/// <param name="Batches">Named model inputs per batch (at least one batch).</param>
/// <param name="Source">Where the samples came from, for reports and messages.</param>
public sealed record CalibrationSet(IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> Batches, string Source)
{
    /// <summary>Class labels per batch (int64 [batch]) for a classifier's task loss, or null when unlabeled.</summary>
    public IReadOnlyList<HostTensor>? Labels { get; init; }

    /// <summary>Samples: the first-axis size of each batch's first tensor, summed.</summary>
    public long SampleCount => Batches.Sum(b => b.Values.FirstOrDefault() is { Shape.Length: > 0 } t ? (long)t.Shape[0] : 0L);

    /// <summary>The input shapes of the first batch with the first axis set to 1: one example, for MAC counts.</summary>
    /// <exception cref="InvalidOperationException">There is no batch.</exception>
    public IReadOnlyDictionary<string, int[]> ExampleShapes()
    {
        if (Batches.Count == 0) throw new InvalidOperationException($"Calibration set '{Source}' holds no batch.");
        return Batches[0].ToDictionary(p => p.Key, p => p.Value.Shape is [_, .. var rest] ? (int[])[1, .. rest] : p.Value.Shape, StringComparer.Ordinal);
    }
}
