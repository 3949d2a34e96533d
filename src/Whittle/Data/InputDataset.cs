using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>How a dataset's arrays were paired with model inputs.</summary>
public enum InputMatching
{
    /// <summary>Not paired with a model: the arrays keep their own names.</summary>
    AsGiven,

    /// <summary>By name: each array's name (the <c>.npz</c> entry name) is a model input name.</summary>
    ByName,

    /// <summary>By order: the i-th array feeds the i-th model input, because no array name matched an input name.</summary>
    ByOrder,
}

/// <summary>Which samples to use, reproducibly: an optional seeded shuffle, then an optional limit.</summary>
/// <param name="Limit">Use at most this many samples (the first ones, after shuffling); null for all. Must be positive.</param>
/// <param name="ShuffleSeed">Shuffle the samples with this seed first; null keeps file order. The same seed gives the
/// same order on every platform and .NET version (a SplitMix64 Fisher–Yates shuffle, not <see cref="Random"/>).</param>
public sealed record DataSelection(int? Limit = null, int? ShuffleSeed = null)
{
    /// <summary>All samples in file order.</summary>
    public static DataSelection All { get; } = new();

    /// <summary>The indices of the selected samples, in the order they will be used, out of <paramref name="count"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="Limit"/> is zero or negative.</exception>
    public int[] Indices(int count)
    {
        if (Limit is <= 0) ThrowHelper.ArgumentOutOfRange(nameof(Limit), Limit, "a positive sample limit");
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        if (ShuffleSeed is { } seed)
        {
            ulong state = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL);
            for (int i = count - 1; i > 0; i--)
            {
                int j = (int)(Next(ref state) % (ulong)(i + 1));
                (order[i], order[j]) = (order[j], order[i]);
            }
        }
        return Limit is { } limit && limit < count ? order[..limit] : order;
    }

    private static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>
/// A set of samples for calibration or evaluation: every array holds all samples stacked along axis 0, and
/// <see cref="Batches"/> cuts them into <see cref="InputBatch"/>es. Build one with <see cref="NpyInputs"/>,
/// <see cref="Idx"/> or <see cref="TextWindows"/>, pair it with a model with <see cref="Bind"/>.
/// </summary>
public sealed class InputDataset
{
    /// <summary>Creates a dataset over <paramref name="samples"/>.</summary>
    /// <param name="samples">All samples; axis 0 of every tensor indexes them.</param>
    /// <param name="source">The file (or files) the data came from, for messages.</param>
    /// <param name="matching">How the arrays were paired with model inputs.</param>
    /// <param name="arrayNames">For each tensor of <paramref name="samples"/>, the array it came from (the names in the file),
    /// when they differ from the input names; null when they are the same.</param>
    public InputDataset(InputBatch samples, string source, InputMatching matching = InputMatching.AsGiven, IReadOnlyList<string>? arrayNames = null)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(source);
        if (arrayNames is not null && arrayNames.Count != samples.Count)
            ThrowHelper.Argument(nameof(arrayNames), $"{arrayNames.Count} array names for {samples.Count} tensors.");
        Samples = samples;
        Source = source;
        Matching = matching;
        ArrayNames = arrayNames ?? samples.Names;
    }

    /// <summary>All samples, by input name.</summary>
    public InputBatch Samples { get; }

    /// <summary>The number of samples.</summary>
    public int Count => Samples.BatchSize;

    /// <summary>The file the data came from.</summary>
    public string Source { get; }

    /// <summary>How the arrays were paired with the model's inputs.</summary>
    public InputMatching Matching { get; }

    /// <summary>For each of <see cref="InputBatch.Names"/> of <see cref="Samples"/>, the array name in the file.</summary>
    public IReadOnlyList<string> ArrayNames { get; }

    /// <summary>How arrays were paired, for logs: <c>by order: arr_0 → input</c>.</summary>
    public string MatchingDescription => Matching switch
    {
        InputMatching.ByName => "by name: " + string.Join(", ", Samples.Names),
        InputMatching.ByOrder => "by order: " + string.Join(", ", Samples.Names.Select((n, i) => $"{ArrayNames[i]} → {n}")),
        _ => "as given: " + string.Join(", ", Samples.Names),
    };

    /// <summary>
    /// Pairs this dataset with <paramref name="inputs"/> and checks it: arrays whose names are all model inputs are
    /// kept (<see cref="InputMatching.ByName"/> when the dataset was <see cref="InputMatching.AsGiven"/>); when no array
    /// name is an input name, arrays feed inputs in order (<see cref="InputMatching.ByOrder"/>). Then every sample is
    /// validated as <see cref="InputValidator.Validate"/> does, except axis 0 (the batch size is checked per batch).
    /// </summary>
    /// <param name="inputs">The model's inputs (<see cref="ModelInput.FromModel"/>).</param>
    /// <param name="reshapeSamples">When a sample's shape differs from an input whose non-batch dimensions are all fixed
    /// but holds the same number of elements, reshape it (an IDX image [28,28] for an input [N,1,28,28] or [N,784]).</param>
    /// <exception cref="InputDataException">A missing input, an extra array, a wrong element type or a shape mismatch.</exception>
    public InputDataset Bind(IReadOnlyList<ModelInput> inputs, bool reshapeSamples = false)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var names = Samples.Names;
        bool anyByName = names.Any(n => inputs.Any(i => i.Name == n));
        var matching = Matching != InputMatching.AsGiven ? Matching : anyByName ? InputMatching.ByName : InputMatching.ByOrder;
        var pairs = new List<KeyValuePair<string, HostTensor>>();
        var arrays = new List<string>();
        for (int k = 0; k < names.Count; k++)
        {
            string target = names[k];
            if (matching == InputMatching.ByOrder && Matching == InputMatching.AsGiven)
            {
                if (k >= inputs.Count)
                    throw new InputDataException(
                        $"{Source}: extra array '{names[k]}' ({Samples[names[k]]}): matched by order (no array name is an input name), and the model has only {inputs.Count} input(s): {InputValidator.List(inputs)}.",
                        Source, names[k]);
                target = inputs[k].Name;
            }
            var tensor = Samples[names[k]];
            var input = inputs.FirstOrDefault(i => i.Name == target);
            if (reshapeSamples && input?.Shape is { Count: > 0 } shape && shape.Skip(1).All(d => d.IsFixed))
            {
                long sample = shape.Skip(1).Aggregate(1L, (a, d) => a * d.Value!.Value);
                int[] wanted = [tensor.Rows, .. shape.Skip(1).Select(d => (int)d.Value!.Value)];
                if (sample == tensor.SampleLength && !wanted.SequenceEqual(tensor.Shape)) tensor = tensor.Reshape(wanted);
            }
            pairs.Add(new(target, tensor));
            arrays.Add(ArrayNames[k]);
        }
        var bound = new InputDataset(new InputBatch(pairs, Source), Source, matching, arrays);
        InputValidator.Validate(WithFreeBatchAxis(inputs), bound.Samples);
        return bound;
    }

    /// <summary>
    /// The selected samples in batches of <paramref name="batchSize"/> (the last one may be smaller), each a new
    /// <see cref="InputBatch"/> whose <see cref="InputBatch.Source"/> names the file and the sample range.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is not positive, or the limit is not positive.</exception>
    public IEnumerable<InputBatch> Batches(int batchSize, DataSelection? selection = null)
    {
        if (batchSize <= 0) ThrowHelper.ArgumentOutOfRange(nameof(batchSize), batchSize, "a positive batch size");
        var indices = (selection ?? DataSelection.All).Indices(Count);
        return Iterate(indices, batchSize);
    }

    private IEnumerable<InputBatch> Iterate(int[] indices, int batchSize)
    {
        for (int start = 0, b = 0; start < indices.Length; start += batchSize, b++)
        {
            int n = Math.Min(batchSize, indices.Length - start);
            yield return Samples.SelectRows(indices.AsSpan(start, n), $"{Source}, batch {b} (selected samples {start}–{start + n - 1})");
        }
    }

    /// <summary>The inputs with axis 0 made free: a dataset's sample count need not equal a fixed batch size.</summary>
    private static List<ModelInput> WithFreeBatchAxis(IReadOnlyList<ModelInput> inputs) =>
        [.. inputs.Select(i => i.Shape is [{ Value: { } v }, ..] s ? i with { Shape = [new ModelDim(null, $"{v} per batch"), .. s.Skip(1)] } : i)];
}
