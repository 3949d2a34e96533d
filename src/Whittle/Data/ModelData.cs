// The one data loader: files named on a command line (or in a job) → a model's inputs, and labels.
//
// Formats, chosen by file name
//   *.npz, *.npy          arrays matched to inputs by name or order (NpyInputs); in an .npz an array named
//                         labels / label / y that is not a model input becomes the labels
//   *-idx3-ubyte[.gz]     IDX images (Idx.ReadImages: bytes / 255) for a model with one float input,
//                         reshaped to the input's fixed sample shape ([28,28] → [1,28,28] or [784])
//   *.txt, or Text        UTF-8 text split into documents (TextDocuments: a separator, blank lines, or one
//                         document), tokenized by the model's tokenizer (ModelTokenizer) and cut into windows
//                         by a protocol (TextWindows) for the model's int64 token-id input (and attention mask)
//   *.jsonl               JSON Lines, one document per line's "text", then as text
//   Labels file           IDX labels (*-idx1-ubyte[.gz]) or an integer .npy, one per sample
// Every failure is an InputDataException (or NotSupportedException for an unknown tokenizer) naming the
// file, the array or input, and what was expected.

using Whittle.Text;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>What kind of file the samples came from.</summary>
public enum DataKind
{
    /// <summary>NumPy arrays (<c>.npz</c>, <c>.npy</c>).</summary>
    Arrays,

    /// <summary>IDX images (MNIST, Fashion-MNIST).</summary>
    Images,

    /// <summary>Text cut into token windows.</summary>
    Text,
}

/// <summary>The files to read a model's data from; see <see cref="ModelData.Load"/>.</summary>
/// <param name="Data">A <c>.npz</c> or <c>.npy</c> file, IDX images (<c>*-idx3-ubyte[.gz]</c>) or a <c>.txt</c> file; null when
/// <paramref name="Text"/> is given.</param>
/// <param name="Labels">Labels, one per sample: IDX labels (<c>*-idx1-ubyte[.gz]</c>) or an integer <c>.npy</c>; or null.</param>
/// <param name="Text">A UTF-8 text file (or a <c>.jsonl</c> file of <c>{"text": …}</c> lines) for a language model, or null.</param>
public sealed record DataSource(string? Data = null, string? Labels = null, string? Text = null)
{
    /// <summary>Tokens per text window; null takes the model's fixed sequence length, else <see cref="DefaultWindowLength"/>.</summary>
    public int? WindowLength { get; init; }

    /// <summary>Text given inline (a command line's <c>--text-string</c>) instead of a file, or null.</summary>
    public string? TextString { get; init; }

    /// <summary>How text is scored; default <see cref="TextProtocol.Documents"/>.</summary>
    public TextProtocol Protocol { get; init; } = TextProtocol.Documents;

    /// <summary>The stride of <see cref="TextProtocol.Stride"/>; null: half the window.</summary>
    public int? Stride { get; init; }

    /// <summary>What splits a text into documents (<see cref="TextDocuments.Split"/>): a string such as <c>&lt;|endoftext|&gt;</c>,
    /// <see cref="TextDocuments.BlankLine"/>, or null for one document. A <c>.jsonl</c> file is one document per line.</summary>
    public string? DocumentSeparator { get; init; }

    /// <summary>Keep only full windows (calibration: no padding enters the statistics); default false.</summary>
    public bool FullWindowsOnly { get; init; }

    /// <summary>The window length when neither the model nor <see cref="WindowLength"/> fixes one.</summary>
    public const int DefaultWindowLength = 128;

    /// <summary>Names of <c>.npz</c> arrays taken as labels when they are not model inputs.</summary>
    public static IReadOnlyList<string> LabelArrayNames { get; } = ["labels", "label", "y"];
}

/// <summary>
/// A model's data: its inputs (bound to the model), the labels where there are any, and how they were read.
/// Load with <see cref="Load"/>; cut into a fixed <see cref="BatchSet"/> with <see cref="Batches"/>.
/// </summary>
public sealed class ModelData
{
    /// <summary>Creates model data from inputs already bound to a model.</summary>
    /// <param name="inputs">The samples.</param>
    /// <param name="labels">int64 <c>[samples]</c>, or null.</param>
    /// <param name="kind">What the samples were read from.</param>
    /// <param name="description">How the data was read, for reports.</param>
    /// <param name="warnings">Doubts about the data (a guessed tokenizer), or null.</param>
    /// <param name="text">Text windows: what each position is scored on and how the windows were cut; or null.</param>
    /// <exception cref="InputDataException">The labels are not int64 <c>[samples]</c>.</exception>
    public ModelData(InputDataset inputs, HostTensor? labels, DataKind kind, string description, IReadOnlyList<string>? warnings = null,
        TextWindowSet? text = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(description);
        if (labels is not null && (labels.ElementType != OnnxDataType.Int64 || labels.Rank != 1 || labels.Rows != inputs.Count))
            throw new InputDataException($"{inputs.Source}: {inputs.Count} samples but labels {labels}; expected int64[{inputs.Count}], one label per sample.", inputs.Source);
        if (inputs.Count == 0) throw new InputDataException($"{inputs.Source}: no samples (axis 0 of every array has length 0).", inputs.Source);
        var doubts = new List<string>(warnings ?? []);
        foreach (var (name, tensor) in inputs.Samples)
        {
            if (tensor.ElementType == OnnxDataType.Int64 && name.Contains("ids", StringComparison.OrdinalIgnoreCase) && tensor.AsInt64().AsSpan().IndexOfAnyInRange(long.MinValue, -1L) is int at and >= 0)
                throw new InputDataException($"{inputs.Source}: '{name}' holds token id {tensor.AsInt64()[at]} at element {at}; token ids are non-negative.", inputs.Source, name);
            if (tensor.ElementType == OnnxDataType.Float && NonFinite(tensor.AsFloats()) is var (count, first) && count > 0)
                doubts.Add($"{inputs.Source}: '{name}' holds {count} NaN or infinite value(s) (the first at element {first}); every figure computed from them is suspect.");
        }
        Inputs = inputs;
        Labels = labels;
        Kind = kind;
        Description = description;
        Warnings = doubts;
        Text = text;
    }

    private static (long Count, long First) NonFinite(float[] values)
    {
        long count = 0, first = -1;
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
            {
                if (count++ == 0) first = i;
            }
        return (count, first);
    }

    /// <summary>Text data: the windows' targets, protocol and counts; null for arrays and images.</summary>
    public TextWindowSet? Text { get; }

    /// <summary>The samples, bound to the model's inputs.</summary>
    public InputDataset Inputs { get; }

    /// <summary>One class index per sample (int64 <c>[samples]</c>), or null.</summary>
    public HostTensor? Labels { get; }

    /// <summary>What the samples were read from.</summary>
    public DataKind Kind { get; }

    /// <summary>How the data was read: files, matching, shapes, tokenizer.</summary>
    public string Description { get; }

    /// <summary>Doubts about the data, for the user (e.g. a tokenizer guessed because the model declares none).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The number of samples.</summary>
    public int Count => Inputs.Count;

    /// <summary>The selected samples in batches of <paramref name="batchSize"/> (the last may be smaller), with their labels.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> or the selection's limit is not positive.</exception>
    public BatchSet Batches(int batchSize, DataSelection? selection = null)
    {
        selection ??= DataSelection.All;
        var batches = Inputs.Batches(batchSize, selection).ToList();
        List<HostTensor>? labels = null;
        if (Labels is not null)
        {
            var indices = selection.Indices(Count);
            labels = [];
            for (int start = 0; start < indices.Length; start += batchSize)
                labels.Add(Labels.SelectRows(indices.AsSpan(start, Math.Min(batchSize, indices.Length - start))));
        }
        List<TokenTargets>? targets = null;
        if (Text is not null)
        {
            var indices = selection.Indices(Count);
            targets = [];
            for (int start = 0; start < indices.Length; start += batchSize)
                targets.Add(Text.Targets.SelectRows(indices.AsSpan(start, Math.Min(batchSize, indices.Length - start))));
        }
        return new BatchSet(batches, labels, Description, targets) { Windowing = Text?.Windowing };
    }

    /// <summary>
    /// Reads the data for <paramref name="model"/> named by <paramref name="source"/> (formats: see the remarks) and
    /// binds it to the model's inputs.
    /// </summary>
    /// <remarks>
    /// <list type="bullet">
    /// <item><c>.npz</c> / <c>.npy</c>: arrays matched to inputs by name or order (<see cref="NpyInputs"/>); an <c>.npz</c>
    /// array named <c>labels</c>, <c>label</c> or <c>y</c> that is not a model input becomes the labels.</item>
    /// <item><c>*-idx3-ubyte[.gz]</c>: IDX images scaled to [0, 1] (<see cref="Idx.ReadImages"/>) for a model with one
    /// float input, reshaped to its fixed sample shape.</item>
    /// <item><c>.txt</c> (or <see cref="DataSource.Text"/>): UTF-8 text tokenized by <see cref="ModelTokenizer.FromModel"/>,
    /// cut into non-overlapping windows (tail dropped) for the model's int64 token-id input and its attention mask if it
    /// has one.</item>
    /// <item>Labels (<see cref="DataSource.Labels"/>): IDX labels or an integer <c>.npy</c>, one per sample.</item>
    /// </list>
    /// </remarks>
    /// <exception cref="ArgumentException">No data file, or both a data and a text file.</exception>
    /// <exception cref="InputDataException">A file that cannot be read or does not fit the model (the message names the
    /// file, the array or input, and what was expected).</exception>
    /// <exception cref="NotSupportedException">The model declares a tokenizer Whittle does not know.</exception>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    public static ModelData Load(OnnxModel model, DataSource source)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(source);
        if (new[] { source.Data, source.Text, source.TextString }.Count(x => x is not null) > 1)
            ThrowHelper.Argument(nameof(source), $"Give one of a data file, a text file or an inline text, not several (data {source.Data ?? "-"}, text {source.Text ?? "-"}, inline text {(source.TextString is null ? "-" : "given")}).");
        if (source.TextString is { } inline)
        {
            if (source.Labels is not null)
                throw new InputDataException($"{source.Labels}: labels go with arrays or images; text windows are labelled by their own next tokens.", source.Labels);
            return LoadText(model, ModelInput.FromModel(model), "inline text", TextDocuments.Split(inline, source.DocumentSeparator), source);
        }
        string? text = source.Text ?? (source.Data is { } d && (d.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || IsJsonLines(d)) ? d : null);
        if (text is null && source.Data is null) ThrowHelper.Argument(nameof(source), "No data: give a data file (.npz, .npy, IDX images, .txt) or a text file.");
        foreach (var path in new[] { source.Data, source.Labels, source.Text })
            if (path is not null) FileChecks.RequireRegularFile(path, "data file");

        var inputs = ModelInput.FromModel(model);
        if (text is not null)
        {
            if (source.Labels is not null)
                throw new InputDataException($"{source.Labels}: labels go with arrays or images; text windows are labelled by their own next tokens.", source.Labels);
            long bytes = new FileInfo(text).Length;
            if (bytes > MaxTextBytes)
                throw new InputDataException($"{text}: {bytes} bytes of text, over the {MaxTextBytes >> 20} MiB Whittle reads at once; give a sample of it.", text);
            if (IsJsonLines(text) && source.DocumentSeparator is not null)
                throw new InputDataException($"{text}: a JSON Lines file is one document per line; a document separator ('{source.DocumentSeparator}') applies to plain text only.", text);
            var documents = IsJsonLines(text) ? TextDocuments.ReadJsonLines(text) : TextDocuments.Split(File.ReadAllText(text, System.Text.Encoding.UTF8), source.DocumentSeparator);
            return LoadText(model, inputs, text, documents, source);
        }

        string data = source.Data!;
        ModelData loaded;
        if (IsIdx(data, out int idxRank))
        {
            if (idxRank == 1)
                throw new InputDataException($"{data}: an IDX label file (idx1); give it as the labels and the images (idx3) as the data.", data);
            loaded = LoadImages(inputs, data);
        }
        else if (data.EndsWith(".npz", StringComparison.OrdinalIgnoreCase) || data.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            loaded = LoadArrays(inputs, data);
        }
        else
        {
            throw new InputDataException(
                $"{data}: unknown data format; expected .npz or .npy arrays, IDX images (*-idx3-ubyte or *-idx3-ubyte.gz) or text (.txt, .jsonl).", data);
        }
        if (source.Labels is null) return loaded;
        if (loaded.Labels is not null)
            throw new InputDataException($"{source.Labels}: labels given twice: {data} already holds a labels array; drop one of them.", source.Labels);
        var labels = ReadLabels(source.Labels);
        if (labels.Rows != loaded.Count)
            throw new InputDataException($"{source.Labels}: {labels.Rows} labels, but {data} holds {loaded.Count} samples; expected one label per sample.", source.Labels);
        return new ModelData(loaded.Inputs, labels, loaded.Kind, $"{loaded.Description}; labels from {source.Labels}", loaded.Warnings);
    }

    /// <summary>True for an IDX file name (<c>…-idx3-ubyte</c>, <c>…idx1-ubyte.gz</c>); <paramref name="rank"/> is the digit.</summary>
    internal static bool IsIdx(string path, out int rank)
    {
        string name = Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".gz", StringComparison.Ordinal)) name = name[..^3];
        rank = 0;
        int at = name.LastIndexOf("idx", StringComparison.Ordinal);
        if (at < 0 || !name.EndsWith("-ubyte", StringComparison.Ordinal) || at + 4 >= name.Length || !char.IsAsciiDigit(name[at + 3])) return false;
        rank = name[at + 3] - '0';
        return name.AsSpan(at + 4).SequenceEqual("-ubyte");
    }

    private static ModelData LoadImages(IReadOnlyList<ModelInput> inputs, string path)
    {
        if (inputs.Count != 1 || inputs[0].ElementType != OnnxDataType.Float)
            throw new InputDataException(
                $"{path}: IDX images feed a model with one float input, but the model's inputs are {InputValidator.List(inputs)}; give an .npz with one array per input instead.",
                path);
        var dataset = Idx.LoadImages(path, inputs[0].Name).Bind(inputs, reshapeSamples: true);
        var images = dataset.Samples[inputs[0].Name];
        return new ModelData(dataset, null, DataKind.Images,
            $"{path}: {dataset.Count} images as '{inputs[0].Name}' {images} (pixels / 255)");
    }

    private static ModelData LoadArrays(IReadOnlyList<ModelInput> inputs, string path)
    {
        var arrays = NpyInputs.ReadArrays(path);
        HostTensor? labels = null;
        string labelNote = "";
        if (path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
        {
            var inputNames = inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
            var labelArrays = arrays.Where(a => DataSource.LabelArrayNames.Contains(a.Name) && !inputNames.Contains(a.Name)).ToList();
            if (labelArrays.Count > 1)
                throw new InputDataException(
                    $"{path}: arrays {string.Join(", ", labelArrays.Select(a => $"'{a.Name}'"))} could all be labels; keep one of them.", path, labelArrays[1].Name);
            if (labelArrays.Count == 1)
            {
                var (name, array) = labelArrays[0];
                arrays.Remove(labelArrays[0]);
                labels = LabelTensor(path, name, array);
                labelNote = $"; labels from array '{name}'";
            }
        }
        var dataset = NpyInputs.Pair(path, arrays, inputs);
        if (labels is not null && labels.Rows != dataset.Count)
            throw new InputDataException($"{path}: {labels.Rows} labels but {dataset.Count} samples; expected one label per sample.", path);
        string shapes = string.Join(", ", dataset.Samples.Select(p => $"'{p.Key}' {p.Value}"));
        return new ModelData(dataset, labels, DataKind.Arrays,
            $"{path}: {dataset.Count} samples, {shapes}, matched {dataset.MatchingDescription}{labelNote}");
    }

    /// <summary>The longest text window: 1,048,576 tokens (a model that fixes a longer sequence cannot be fed text).</summary>
    public const int MaxWindowLength = 1 << 20;

    /// <summary>The largest text file read (it is tokenized in memory): 1 GiB.</summary>
    public const long MaxTextBytes = 1L << 30;

    private static bool IsJsonLines(string path) => path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);

    private static ModelData LoadText(OnnxModel model, IReadOnlyList<ModelInput> inputs, string path, IReadOnlyList<string> documents, DataSource source)
    {
        var ids = TokenInput(inputs, path);
        var mask = inputs.FirstOrDefault(i => i.Name != ids.Name && i.ElementType == OnnxDataType.Int64 && i.Name.Contains("mask", StringComparison.OrdinalIgnoreCase));
        var derived = inputs.Where(i => i.Name != ids.Name && i.Name != mask?.Name).ToList();
        foreach (var other in derived)
            if (DerivedTextInput.Of(other) is null)
                throw new InputDataException(
                    $"{path}: model input '{other.Name}' ({other}) cannot be fed from text; text feeds the token ids ('{ids.Name}'), an attention mask, "
                    + "position_ids, token_type_ids and an empty key/value cache (past_key_values.*: [batch, heads, 0, head size]) only.",
                    path, other.Name);
        int length = source.WindowLength ?? DataSource.DefaultWindowLength;
        bool fixedLength = false;
        if (ids.Shape is [_, { Value: { } fixedValue }])
        {
            if (fixedValue is < 2 or > MaxWindowLength)
                throw new InputDataException($"{path}: model input '{ids.Name}' is {ids}: a fixed sequence length of {fixedValue} is not a window of text "
                    + $"(2 to {MaxWindowLength} tokens; every window is padded to it).", path, ids.Name);
            if (source.WindowLength is { } asked && asked != fixedValue)
                throw new InputDataException($"{path}: windows of {asked} tokens asked for, but model input '{ids.Name}' is {ids}: its sequence length is fixed at {fixedValue}.", path, ids.Name);
            length = checked((int)fixedValue);
            fixedLength = true;
        }
        if (length is < 2 or > MaxWindowLength) ThrowHelper.ArgumentOutOfRange(nameof(source), length, $"2 to {MaxWindowLength} tokens per window");
        if (source.Stride is { } stride && (source.Protocol != TextProtocol.Stride || stride < 1 || stride > length))
            ThrowHelper.ArgumentOutOfRange(nameof(source), stride, source.Protocol != TextProtocol.Stride
                ? "no stride: a stride goes with the stride protocol"
                : $"a stride from 1 to the window length {length}");
        if (documents.Count == 0) throw new InputDataException($"{path}: no text (every document is empty).", path);
        var tokenizer = ModelTokenizer.FromModel(model);
        var windowing = new TextWindowing
        {
            Protocol = source.Protocol,
            Length = length,
            Stride = source.Stride,
            PadToLength = fixedLength,
            FullWindowsOnly = source.FullWindowsOnly,
        };
        var windows = TextWindows.Create(documents, tokenizer.Tokenizer, windowing, path, ids.Name, mask?.Name);
        var dataset = (derived.Count == 0 ? windows.Inputs : DerivedTextInput.Add(windows.Inputs, ids.Name, derived, path)).Bind(inputs);
        var warnings = new List<string>();
        if (tokenizer.Warning is not null) warnings.Add(tokenizer.Warning);
        const string EndOfText = "<|endoftext|>";
        if (source.DocumentSeparator is null && documents.Count == 1 && documents[0].Contains(EndOfText, StringComparison.Ordinal))
            warnings.Add($"{path} holds '{EndOfText}' markers but no document separator was given: it is scored as one document, the markers as text; give --doc-separator '{EndOfText}' to score each document on its own.");
        return new ModelData(dataset, null, DataKind.Text,
            $"{path}: {windows.Documents} document(s), {dataset.Count} windows of up to {windows.WindowLength} tokens ({windowing}{(source.FullWindowsOnly ? ", full windows only" : "")}), "
            + $"{windows.ScoredTokens} scored tokens, '{tokenizer.Kind}' tokenizer, as '{ids.Name}'{(mask is null ? "" : $" with mask '{mask.Name}'")}",
            warnings, windows);
    }

    /// <summary>The int64 input that takes token ids: <c>input_ids</c>, else the only int64 input that is not a mask.</summary>
    private static ModelInput TokenInput(IReadOnlyList<ModelInput> inputs, string path)
    {
        bool Fits(ModelInput i) => i.ElementType == OnnxDataType.Int64 && (i.Shape is null || i.Shape.Count == 2);
        var named = inputs.FirstOrDefault(i => i.Name == "input_ids" && Fits(i));
        if (named is not null) return named;
        var candidates = inputs.Where(i => Fits(i) && !i.Name.Contains("mask", StringComparison.OrdinalIgnoreCase)).ToList();
        if (candidates.Count == 1) return candidates[0];
        throw new InputDataException(
            candidates.Count == 0
                ? $"{path}: text feeds an int64 token-id input [batch, sequence], but the model's inputs are {InputValidator.List(inputs)}."
                : $"{path}: text feeds one token-id input, but the model has several int64 [batch, sequence] inputs ({string.Join(", ", candidates.Select(c => $"'{c.Name}'"))}); name one 'input_ids'.",
            path);
    }

    private static HostTensor ReadLabels(string path)
    {
        if (IsIdx(path, out _)) return Flatten(path, "labels", Idx.ReadLabels(path));
        if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            return LabelTensor(path, Path.GetFileNameWithoutExtension(path), Npy.Read(path));
        throw new InputDataException($"{path}: unknown labels format; expected IDX labels (*-idx1-ubyte or *-idx1-ubyte.gz) or an integer .npy array.", path);
    }

    private static HostTensor LabelTensor(string path, string name, NpyArray array)
    {
        if (array.DType is NpyDType.Float16 or NpyDType.Float32 or NpyDType.Float64 or NpyDType.Bool)
            throw new InputDataException($"{path}: labels '{name}' are {array.DType}; expected integer class indices (int64, int32, uint8, …).", path, name);
        return Flatten(path, name, NpyInputs.Convert(path, name, array, input: null));
    }

    /// <summary>Labels as int64 [N]: [N] as is, [N, 1] flattened.</summary>
    private static HostTensor Flatten(string path, string name, HostTensor labels)
    {
        if (labels.Rank == 1) return labels;
        if (labels.Rank == 2 && labels.Shape[1] == 1) return labels.Reshape(labels.Rows);
        throw new InputDataException($"{path}: labels '{name}' have shape {HostTensor.FormatShape(labels.Shape)}; expected one class index per sample, [N] or [N,1].", path, name);
    }
}
