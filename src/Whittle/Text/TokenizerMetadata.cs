using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Text;

/// <summary>
/// A tokenizer in portable form: a kind and its data, as stored in a model's metadata so that compressed copies keep it.
/// Kinds: <c>bytes</c> (one token per UTF-8 byte; data: the BOS id or empty), <c>llama2c</c> (a llama2.c
/// <c>tokenizer.bin</c>, base64), <c>hf-json</c> (a Hugging Face <c>tokenizer.json</c>, as text) and
/// <c>sentencepiece</c> (a SentencePiece <c>tokenizer.model</c>, base64).
/// </summary>
/// <param name="Kind">One of the kinds above.</param>
/// <param name="Data">The kind's data.</param>
public sealed record TokenizerSource(string Kind, string Data)
{
    /// <summary>The kind of <see cref="ByteTokenizer"/>.</summary>
    public const string BytesKind = "bytes";

    /// <summary>The kind of <see cref="Llama2cTokenizer"/>.</summary>
    public const string Llama2cKind = "llama2c";

    /// <summary>The kind of <see cref="HfTokenizer"/> from <c>tokenizer.json</c>.</summary>
    public const string HfJsonKind = "hf-json";

    /// <summary>The kind of <see cref="HfTokenizer"/> from a SentencePiece <c>tokenizer.model</c>.</summary>
    public const string SentencePieceKind = "sentencepiece";

    /// <summary>The byte-level tokenizer, with an optional BOS id.</summary>
    public static TokenizerSource Bytes(int? bosId = null) => new(BytesKind, bosId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "");

    /// <summary>A llama2.c tokenizer file.</summary>
    public static TokenizerSource FromLlama2cFile(string path) => new(Llama2cKind, Convert.ToBase64String(ReadFile(path)));

    /// <summary>A Hugging Face <c>tokenizer.json</c>.</summary>
    public static TokenizerSource FromHfJsonFile(string path) => new(HfJsonKind, System.Text.Encoding.UTF8.GetString(ReadFile(path)));

    /// <summary>A SentencePiece model file (<c>tokenizer.model</c>).</summary>
    public static TokenizerSource FromSentencePieceFile(string path) => new(SentencePieceKind, Convert.ToBase64String(ReadFile(path)));

    /// <summary>The tokenizer this describes.</summary>
    /// <param name="source">Where it came from, for messages.</param>
    /// <exception cref="InvalidDataException">The data is malformed.</exception>
    /// <exception cref="NotSupportedException">The kind is unknown, or the tokenizer uses features Whittle does not support.</exception>
    public ITextTokenizer Create(string source = "tokenizer") => Kind switch
    {
        BytesKind => new ByteTokenizer(Data.Length == 0 ? null
            : int.TryParse(Data, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int bos) ? bos
            : throw new InvalidDataException($"{source}: the bytes tokenizer's data '{Data}' is not a BOS id.")),
        Llama2cKind => Llama2cTokenizer.FromBytes(Base64(source), source),
        HfJsonKind => HfTokenizer.FromJson(Data, source),
        SentencePieceKind => HfTokenizer.FromSentencePiece(Base64(source), source),
        _ => throw new NotSupportedException($"{source}: tokenizer kind '{Kind}' is not known (bytes, llama2c, hf-json, sentencepiece)."),
    };

    private byte[] Base64(string source)
    {
        try
        {
            return Convert.FromBase64String(Data);
        }
        catch (FormatException ex)
        {
            throw new InvalidDataException($"{source}: the {Kind} tokenizer data is not valid base64.", ex);
        }
    }

    private static byte[] ReadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        IO.FileChecks.RequireRegularFile(full, "tokenizer file");
        return File.ReadAllBytes(full);
    }
}

/// <summary>
/// The tokenizer and task stored in an ONNX model's <c>metadata_props</c>: <c>whittle.task</c>
/// (<c>language-model</c> or <c>encoder</c>), <c>whittle.tokenizer</c> (a <see cref="TokenizerSource.Kind"/>) and
/// <c>whittle.tokenizer.data</c>. Graph edits keep metadata, so compressed models carry their tokenizer along.
/// </summary>
public static class TokenizerMetadata
{
    /// <summary>Metadata key of the task.</summary>
    public const string TaskKey = "whittle.task";

    /// <summary>Metadata key of the tokenizer kind.</summary>
    public const string KindKey = "whittle.tokenizer";

    /// <summary>Metadata key of the tokenizer data.</summary>
    public const string DataKey = "whittle.tokenizer.data";

    /// <summary>The task of a causal language model (logits for next-token prediction).</summary>
    public const string LanguageModelTask = "language-model";

    /// <summary>The task of an encoder (hidden states).</summary>
    public const string EncoderTask = "encoder";

    /// <summary>The tokenizer stored in <paramref name="model"/>, or null when it has none.</summary>
    /// <exception cref="InvalidDataException">The stored tokenizer is malformed.</exception>
    /// <exception cref="NotSupportedException">Its kind is unknown.</exception>
    public static ITextTokenizer? Read(OnnxModel model) => ReadSource(model)?.Create(OnnxModelException.Describe(model.FilePath));

    /// <summary>The tokenizer source stored in <paramref name="model"/>, or null.</summary>
    public static TokenizerSource? ReadSource(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        string? kind = Get(model.Proto, KindKey);
        return kind is null ? null : new TokenizerSource(kind, Get(model.Proto, DataKey) ?? "");
    }

    /// <summary>The task stored in <paramref name="model"/>, or null.</summary>
    public static string? ReadTask(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Get(model.Proto, TaskKey);
    }

    /// <summary>Stores <paramref name="task"/> and <paramref name="tokenizer"/> in <paramref name="model"/>, replacing earlier entries.</summary>
    public static void Write(OnnxModel model, string task, TokenizerSource? tokenizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(task);
        Set(model.Proto, TaskKey, task);
        if (tokenizer is null) return;
        Set(model.Proto, KindKey, tokenizer.Kind);
        Set(model.Proto, DataKey, tokenizer.Data);
    }

    /// <summary>Stores <paramref name="task"/> and <paramref name="tokenizer"/> in a model being built.</summary>
    public static void Write(OnnxGraphBuilder builder, string task, TokenizerSource tokenizer)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(task);
        ArgumentNullException.ThrowIfNull(tokenizer);
        builder.Metadata(TaskKey, task);
        builder.Metadata(KindKey, tokenizer.Kind);
        builder.Metadata(DataKey, tokenizer.Data);
    }

    private static string? Get(ModelProto proto, string key) => proto.MetadataProps.FirstOrDefault(p => p.Key == key)?.Value;

    private static void Set(ModelProto proto, string key, string value)
    {
        var entry = proto.MetadataProps.FirstOrDefault(p => p.Key == key);
        if (entry is null) proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        else entry.Value = value;
    }
}
