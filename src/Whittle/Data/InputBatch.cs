using System.Collections;
using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>
/// An immutable map from model input name to <see cref="HostTensor"/>: what one run of a model is fed. Being an
/// <see cref="IReadOnlyDictionary{TKey, TValue}"/> of <see cref="HostTensor"/>, a batch goes straight to
/// <see cref="TappedSession.Run(IReadOnlyDictionary{string, HostTensor}, IReadOnlyList{string}?)"/> and to
/// <c>Whittle.Calibration.CalibrationRunner.Run</c>.
/// Contract: every tensor has rank ≥ 1 and the same size along axis 0, <see cref="BatchSize"/>; datasets hold float
/// inputs as float32 and integer inputs (ids, masks, labels) as int64; elements are in C order. Names keep the order
/// they were given in. The tensors are shared, not copied.
/// </summary>
public sealed class InputBatch : IReadOnlyDictionary<string, HostTensor>, IDescribedInputs
{
    private readonly Dictionary<string, HostTensor> _tensors = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];

    /// <summary>Creates a batch from (name, tensor) pairs.</summary>
    /// <param name="tensors">The tensors by input name; names must be distinct.</param>
    /// <param name="source">Where the data came from (a file, a window of a file), for error messages.</param>
    /// <exception cref="ArgumentException">No tensors, a repeated name, a scalar (no axis 0), or tensors that disagree on the size of axis 0.</exception>
    public InputBatch(IEnumerable<KeyValuePair<string, HostTensor>> tensors, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        foreach (var (name, tensor) in tensors)
        {
            ArgumentNullException.ThrowIfNull(name, nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor, nameof(tensors));
            if (tensor.Rank == 0)
                ThrowHelper.Argument(nameof(tensors), $"{source ?? "batch"}: '{name}' is a scalar ({tensor}); a batch tensor needs rank ≥ 1: axis 0 is the sample axis.");
            if (!_tensors.TryAdd(name, tensor)) ThrowHelper.Argument(nameof(tensors), $"Input '{name}' is given twice.");
            _names.Add(name);
        }
        if (_names.Count == 0) ThrowHelper.Argument(nameof(tensors), "A batch needs at least one tensor.");
        BatchSize = _tensors[_names[0]].Rows;
        foreach (var name in _names)
            if (_tensors[name].Rows != BatchSize)
                ThrowHelper.Argument(nameof(tensors),
                    $"{source ?? "batch"}: '{name}' has {_tensors[name].Rows} samples along axis 0 but '{_names[0]}' has {BatchSize}.");
        Source = source;
    }

    /// <summary>Creates a batch holding one tensor.</summary>
    public InputBatch(string name, HostTensor tensor, string? source = null) : this([new(name, tensor)], source) { }

    /// <summary>Where the data came from, for error messages; null if unknown.</summary>
    public string? Source { get; }

    /// <summary>The input names, in the order given.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>The number of samples: the common size of axis 0.</summary>
    public int BatchSize { get; }

    /// <summary>The tensor for input <paramref name="key"/>.</summary>
    public HostTensor this[string key] => _tensors.TryGetValue(key, out var t) ? t
        : throw new KeyNotFoundException($"{Source ?? "batch"} has no tensor '{key}' (it has {string.Join(", ", _names.Select(n => $"'{n}'"))}).");

    /// <inheritdoc/>
    public IEnumerable<string> Keys => _names;

    /// <inheritdoc/>
    public IEnumerable<HostTensor> Values => _names.Select(n => _tensors[n]);

    /// <inheritdoc/>
    public int Count => _names.Count;

    /// <inheritdoc/>
    public bool ContainsKey(string key) => _tensors.ContainsKey(key);

    /// <inheritdoc/>
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out HostTensor value) => _tensors.TryGetValue(key, out value);

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, HostTensor>> GetEnumerator() =>
        _names.Select(n => new KeyValuePair<string, HostTensor>(n, _tensors[n])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The samples at <paramref name="indices"/> of every tensor, as a new batch.</summary>
    public InputBatch SelectRows(ReadOnlySpan<int> indices, string? source = null)
    {
        var pairs = new List<KeyValuePair<string, HostTensor>>(_names.Count);
        foreach (var n in _names) pairs.Add(new(n, _tensors[n].SelectRows(indices)));
        return new InputBatch(pairs, source ?? Source);
    }

    /// <summary>Names, types and shapes, as <c>input_ids: int64[8,128], attention_mask: int64[8,128]</c>.</summary>
    public override string ToString() => string.Join(", ", _names.Select(n => $"{n}: {_tensors[n]}"));
}
