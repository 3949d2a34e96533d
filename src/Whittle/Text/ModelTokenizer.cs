using Whittle.Onnx;

namespace Whittle.Text;

/// <summary>
/// The tokenizer a model declares in its ONNX metadata (<c>metadata_props</c> key <see cref="MetadataKey"/>), for
/// turning text into the model's token ids. Kinds known: <c>bytes</c> (each UTF-8 byte is one token,
/// <see cref="ByteTokenizer"/>) and those the importers store with <see cref="TokenizerMetadata"/> (<c>llama2c</c>,
/// <c>hf-json</c>, <c>sentencepiece</c>, their data under <c>whittle.tokenizer.data</c>). A model that declares none gets the byte-level tokenizer and a
/// <see cref="Warning"/>; one that declares a kind Whittle does not know is an error.
/// </summary>
/// <param name="Kind">The declared kind, or <c>bytes</c> when the model declares none.</param>
/// <param name="Tokenizer">The tokenizer.</param>
/// <param name="Warning">Why the tokenizer may be wrong for this model (no declaration), or null.</param>
public sealed record ModelTokenizer(string Kind, ITextTokenizer Tokenizer, string? Warning)
{
    /// <summary>The metadata key that names the tokenizer kind.</summary>
    public const string MetadataKey = TokenizerMetadata.KindKey;

    /// <summary>The tokenizer kinds <see cref="FromModel"/> knows.</summary>
    public static IReadOnlyList<string> KnownKinds { get; } =
        [TokenizerSource.BytesKind, TokenizerSource.Llama2cKind, TokenizerSource.HfJsonKind, TokenizerSource.SentencePieceKind];

    /// <summary>The tokenizer <paramref name="model"/> declares (see <see cref="ModelTokenizer"/>).</summary>
    /// <exception cref="NotSupportedException">The model declares a tokenizer kind Whittle does not know (the message names it).</exception>
    /// <exception cref="InvalidDataException">The declared tokenizer's data is missing or malformed.</exception>
    public static ModelTokenizer FromModel(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        string source = model.FilePath ?? "model";
        var declared = model.Proto.MetadataProps.FirstOrDefault(p => p.Key == MetadataKey)?.Value;
        if (declared is null)
            return new ModelTokenizer("bytes", new ByteTokenizer(),
                $"{source}: no '{MetadataKey}' metadata; tokenizing text byte-level (UTF-8 bytes as ids 0–255), right only for byte-level models.");
        string kind = declared.Trim();
        if (!KnownKinds.Contains(kind))
            throw new NotSupportedException(
                $"{source}: tokenizer kind '{kind}' (metadata '{MetadataKey}') is not supported; Whittle knows {string.Join(", ", KnownKinds.Select(k => $"'{k}'"))}.");
        var stored = new TokenizerSource(kind, TokenizerMetadata.ReadSource(model)?.Data ?? "");
        if (kind != TokenizerSource.BytesKind && stored.Data.Length == 0)
            throw new InvalidDataException($"{source}: metadata '{MetadataKey}' = '{kind}', but '{TokenizerMetadata.DataKey}' holding the tokenizer is missing or empty; re-import the model.");
        return new ModelTokenizer(kind, stored.Create(source), null);
    }
}
