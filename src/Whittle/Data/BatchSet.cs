using System.Collections;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>
/// A fixed list of batches of model inputs, with each batch's labels where the data has them: what evaluation and
/// task losses are measured on, many times over, always in the same order. Being a list of <see cref="InputBatch"/>es it
/// also feeds <c>Whittle.Calibration.CalibrationRunner.Run</c> directly.
/// </summary>
/// <remarks>Labels are kept beside the batches, not inside them, so a batch holds exactly the model's inputs.</remarks>
public sealed class BatchSet : IReadOnlyList<InputBatch>
{
    private readonly InputBatch[] _batches;

    /// <summary>Creates a set over <paramref name="batches"/> (shared, not copied).</summary>
    /// <param name="batches">At least one batch.</param>
    /// <param name="labels">For each batch, its labels: int64 <c>[batch size]</c>; or null when there are none.</param>
    /// <param name="description">Where the data came from and how it was read, for reports; or null.</param>
    /// <param name="targets">Language-model text: for each batch, which token each logits position is scored on; or null
    /// (every next token is scored).</param>
    /// <exception cref="ArgumentException">No batches, or labels or targets that do not match the batches in count, type or size.</exception>
    public BatchSet(IReadOnlyList<InputBatch> batches, IReadOnlyList<HostTensor>? labels = null, string? description = null,
        IReadOnlyList<TokenTargets>? targets = null)
    {
        ArgumentNullException.ThrowIfNull(batches);
        if (batches.Count == 0) ThrowHelper.Argument(nameof(batches), "A batch set needs at least one batch.");
        _batches = [.. batches];
        foreach (var b in _batches) ArgumentNullException.ThrowIfNull(b, nameof(batches));
        if (labels is not null)
        {
            if (labels.Count != _batches.Length)
                ThrowHelper.Argument(nameof(labels), $"{labels.Count} label tensors for {_batches.Length} batches; give one per batch.");
            for (int b = 0; b < labels.Count; b++)
            {
                var l = labels[b];
                ArgumentNullException.ThrowIfNull(l, nameof(labels));
                if (l.ElementType != OnnxDataType.Int64 || l.Rank != 1 || l.Rows != _batches[b].BatchSize)
                    ThrowHelper.Argument(nameof(labels), $"Labels of batch {b} are {l}; expected int64[{_batches[b].BatchSize}] (one class index per sample).");
            }
            Labels = [.. labels];
        }
        if (targets is not null)
        {
            if (targets.Count != _batches.Length)
                ThrowHelper.Argument(nameof(targets), $"{targets.Count} target tensors for {_batches.Length} batches; give one per batch.");
            for (int b = 0; b < targets.Count; b++)
            {
                var t = targets[b];
                ArgumentNullException.ThrowIfNull(t, nameof(targets));
                if (t.Ids.ElementType != OnnxDataType.Int64 || t.Ids.Rank != 2 || t.Ids.Rows != _batches[b].BatchSize || !t.Ids.Shape.SequenceEqual(t.Documents.Shape))
                    ThrowHelper.Argument(nameof(targets), $"Targets of batch {b} are {t.Ids} (documents {t.Documents}); expected int64[{_batches[b].BatchSize},T] twice.");
            }
            Targets = [.. targets];
        }
        Description = description;
        Examples = _batches.Sum(b => b.BatchSize);
    }

    /// <summary>For each batch, the token each logits position of a language model is scored on; null when every next token is.</summary>
    public IReadOnlyList<TokenTargets>? Targets { get; }

    /// <summary>How text was cut into the windows, for reports; null for other data.</summary>
    public TextWindowing? Windowing { get; init; }

    /// <summary>For each batch, its labels (int64 <c>[batch size]</c>); null when the data has none.</summary>
    public IReadOnlyList<HostTensor>? Labels { get; }

    /// <summary>Where the data came from and how it was read, or null.</summary>
    public string? Description { get; }

    /// <summary>The number of samples over all batches.</summary>
    public int Examples { get; }

    /// <summary>The first sample of the first batch: one example of every input, for shape probes and MAC counts.</summary>
    public InputBatch FirstExample() => _batches[0].SelectRows([0]);

    /// <summary>The number of batches.</summary>
    public int Count => _batches.Length;

    /// <summary>Batch <paramref name="index"/>.</summary>
    public InputBatch this[int index] => _batches[index];

    /// <inheritdoc/>
    public IEnumerator<InputBatch> GetEnumerator() => ((IEnumerable<InputBatch>)_batches).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
