using System.Collections;

namespace Whittle.Runtime;

/// <summary>
/// One batch of named model inputs (input name → tensor), as data readers hand them to
/// <see cref="TappedSession.Run(IReadOnlyDictionary{string, HostTensor}, IReadOnlyList{string}?)"/> and to calibration.
/// Any <see cref="IReadOnlyDictionary{TKey, TValue}"/> of <see cref="HostTensor"/> works as well; this type only
/// adds a convenient constructor.
/// </summary>
/// <remarks>The tensors are shared, not copied.</remarks>
public sealed class InputBatch : IReadOnlyDictionary<string, HostTensor>
{
    private readonly Dictionary<string, HostTensor> _tensors;

    /// <summary>A batch of the given (name, tensor) pairs.</summary>
    /// <exception cref="ArgumentException">A name appears twice.</exception>
    public InputBatch(params IEnumerable<(string Name, HostTensor Tensor)> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        _tensors = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            ArgumentNullException.ThrowIfNull(name);
            ArgumentNullException.ThrowIfNull(tensor);
            if (!_tensors.TryAdd(name, tensor)) ThrowHelper.Argument(nameof(tensors), $"Input '{name}' appears twice in one batch.");
        }
    }

    /// <inheritdoc/>
    public HostTensor this[string key] => _tensors[key];

    /// <inheritdoc/>
    public IEnumerable<string> Keys => _tensors.Keys;

    /// <inheritdoc/>
    public IEnumerable<HostTensor> Values => _tensors.Values;

    /// <inheritdoc/>
    public int Count => _tensors.Count;

    /// <inheritdoc/>
    public bool ContainsKey(string key) => _tensors.ContainsKey(key);

    /// <inheritdoc/>
    public bool TryGetValue(string key, out HostTensor value) => _tensors.TryGetValue(key, out value!);

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, HostTensor>> GetEnumerator() => _tensors.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
