using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Whittle.Text;

/// <summary>
/// Tokenizers of Hugging Face checkpoints: <c>tokenizer.json</c> with a WordPiece model (BERT, through
/// Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>), a byte-level BPE model (GPT-2, Qwen2, Llama 3, through its
/// <see cref="BpeTokenizer"/>) or a SentencePiece-style BPE model (Llama 2, Mistral: metaspace <c>▁</c> and byte
/// fallback, which Microsoft.ML.Tokenizers' BPE lacks, so merged here by rank); and SentencePiece
/// <c>tokenizer.model</c> files (through its <see cref="SentencePieceTokenizer"/>).
/// </summary>
/// <remarks>
/// <see cref="Encode"/> returns the text's tokens without special tokens; <see cref="BosId"/> is the token the
/// post-processor puts first (BOS, or BERT's [CLS]), or null. Added special tokens written in the text are not
/// recognised as such.
/// </remarks>
public sealed class HfTokenizer : ITextTokenizer
{
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private readonly Func<string, int[]> _encode;

    private HfTokenizer(Func<string, int[]> encode, int? bosId, string description, int? eosId = null)
    {
        _encode = encode;
        BosId = bosId;
        EosId = eosId;
        Description = description;
    }

    /// <inheritdoc/>
    public int? BosId { get; }

    /// <inheritdoc/>
    /// <remarks>The special token whose text is one of <see cref="EosTexts"/>, or the SentencePiece model's EOS.</remarks>
    public int? EosId { get; }

    /// <summary>Texts of special tokens taken as end of sequence: <c>&lt;/s&gt;</c>, <c>&lt;|endoftext|&gt;</c>, <c>&lt;|end_of_text|&gt;</c>, <c>&lt;eos&gt;</c>.</summary>
    public static IReadOnlyList<string> EosTexts { get; } = ["</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"];

    /// <summary>Which model and implementation, for reports (e.g. <c>WordPiece (BertTokenizer)</c>).</summary>
    public string Description { get; }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Length == 0 ? [] : _encode(text);
    }

    /// <summary>A tokenizer from the text of a <c>tokenizer.json</c>.</summary>
    /// <exception cref="InvalidDataException">The JSON is malformed or lacks the model's vocabulary.</exception>
    /// <exception cref="NotSupportedException">The model type is not WordPiece or BPE.</exception>
    public static HfTokenizer FromJson(string json, string source = "tokenizer.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{source}: not well-formed JSON: {ex.Message}", ex);
        }
        using var owner = doc;
        try
        {
            return FromDocument(doc.RootElement, source);
        }
        catch (Exception ex) when (ex is InvalidOperationException or KeyNotFoundException or IndexOutOfRangeException or FormatException
            or (ArgumentException and not ArgumentNullException))
        {
            // A value of the wrong type, or a vocabulary and merges that do not fit together, somewhere the checks below do
            // not reach: still the file's fault, not a crash.
            throw new InvalidDataException($"{source}: the tokenizer cannot be built: {ex.Message}", ex);
        }
    }

    private static HfTokenizer FromDocument(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{source}: no \"model\" object; not a Hugging Face tokenizer.json.");
        if (!model.TryGetProperty("vocab", out var vocabJson) || vocabJson.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{source}: the model has no \"vocab\" object (only WordPiece and BPE models are supported).");
        var vocab = vocabJson.EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, Id(p.Value, source, $"model.vocab[\"{p.Name}\"]"))).ToList();
        string type = Str(model, "type") ?? (model.TryGetProperty("merges", out _) ? "BPE" : "WordPiece");
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var t in added.EnumerateArray())
                if (t.ValueKind == JsonValueKind.Object && t.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True && Str(t, "content") is { } content)
                    special[content] = Id(t.TryGetProperty("id", out var id) ? id : default, source, $"added_tokens[\"{content}\"].id");
        int? bos = FirstSpecial(root, special);
        var tokenizer = type switch
        {
            "WordPiece" => WordPiece(root, model, vocab, bos),
            "BPE" when IsByteLevel(root) => ByteLevelBpe(root, model, vocab, special, bos, source),
            "BPE" => MetaspaceBpe(root, model, vocab, bos, source),
            _ => throw new NotSupportedException($"{source}: tokenizer model type '{type}' is not supported (WordPiece, BPE)."),
        };
        int? eos = EosTexts.Select(t => special.TryGetValue(t, out int id) ? id : (int?)null).FirstOrDefault(id => id is not null);
        return eos is null ? tokenizer : new HfTokenizer(tokenizer._encode, tokenizer.BosId, tokenizer.Description, eos);
    }

    /// <summary>A tokenizer from a SentencePiece model file's bytes (<c>tokenizer.model</c>), with BOS as the model defines it.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a SentencePiece model.</exception>
    public static HfTokenizer FromSentencePiece(byte[] model, string source = "tokenizer.model")
    {
        ArgumentNullException.ThrowIfNull(model);
        SentencePieceTokenizer sp;
        try
        {
            sp = SentencePieceTokenizer.Create(new MemoryStream(model, writable: false), addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException or Google.Protobuf.InvalidProtocolBufferException)
        {
            throw new InvalidDataException($"{source}: not a SentencePiece model: {ex.Message}", ex);
        }
        return new HfTokenizer(t => [.. sp.EncodeToIds(t, addBeginningOfSentence: false, addEndOfSentence: false)], sp.BeginningOfSentenceId,
            "SentencePiece (SentencePieceTokenizer)", sp.EndOfSentenceId);
    }

    private static HfTokenizer WordPiece(JsonElement root, JsonElement model, List<KeyValuePair<string, int>> vocab, int? bos)
    {
        var lines = new StringBuilder();
        foreach (var (token, _) in vocab.OrderBy(p => p.Value)) lines.Append(token).Append('\n');
        bool lower = true, stripAccents = true, chinese = true;
        if (root.TryGetProperty("normalizer", out var n) && n.ValueKind == JsonValueKind.Object && Str(n, "type") == "BertNormalizer")
        {
            lower = Bool(n, "lowercase") ?? true;
            stripAccents = Bool(n, "strip_accents") ?? lower;
            chinese = Bool(n, "handle_chinese_chars") ?? true;
        }
        var options = new BertOptions
        {
            LowerCaseBeforeTokenization = lower,
            RemoveNonSpacingMarks = stripAccents,
            IndividuallyTokenizeCjk = chinese,
            UnknownToken = Str(model, "unk_token") ?? "[UNK]",
            ContinuingSubwordPrefix = Str(model, "continuing_subword_prefix") ?? "##",
        };
        var bert = BertTokenizer.Create(new MemoryStream(Encoding.UTF8.GetBytes(lines.ToString())), options);
        return new HfTokenizer(t => [.. bert.EncodeToIds(t, addSpecialTokens: false)], bos, "WordPiece (BertTokenizer)");
    }

    private static HfTokenizer ByteLevelBpe(JsonElement root, JsonElement model, List<KeyValuePair<string, int>> vocab,
        Dictionary<string, int> special, int? bos, string source)
    {
        string pattern = Gpt2Pattern;
        bool prefixSpace = false;
        foreach (var pre in PreTokenizers(root))
        {
            if (Str(pre, "type") == "Split" && pre.TryGetProperty("pattern", out var pat) && Str(pat, "Regex") is { } regex) pattern = regex;
            if (Str(pre, "type") == "ByteLevel") prefixSpace = Bool(pre, "add_prefix_space") ?? false;
        }
        var options = new BpeOptions(vocab)
        {
            Merges = Merges(model, source),
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), null),
            UnknownToken = Str(model, "unk_token"),
        };
        var bpe = BpeTokenizer.Create(options);
        return new HfTokenizer(t => [.. bpe.EncodeToIds(prefixSpace && !t.StartsWith(' ') ? " " + t : t)], bos, "byte-level BPE (BpeTokenizer)");
    }

    /// <summary>SentencePiece-style BPE: spaces become ▁ (and one is prepended), characters merge by rank, unknown characters fall back to &lt;0xNN&gt; bytes.</summary>
    private static HfTokenizer MetaspaceBpe(JsonElement root, JsonElement model, List<KeyValuePair<string, int>> vocab, int? bos, string source)
    {
        var ids = vocab.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var pieces = new Dictionary<int, string>();
        foreach (var (k, v) in vocab) pieces.TryAdd(v, k);
        var ranks = new Dictionary<(int, int), (int Merged, int Rank)>();
        var merges = Merges(model, source);
        for (int r = 0; r < merges.Count; r++)
        {
            var parts = merges[r].Split(' ', 2);
            if (parts.Length == 2 && ids.TryGetValue(parts[0], out int a) && ids.TryGetValue(parts[1], out int b) && ids.TryGetValue(parts[0] + parts[1], out int m))
                ranks.TryAdd((a, b), (m, r));
        }
        bool byteFallback = Bool(model, "byte_fallback") ?? false;
        int? unk = Str(model, "unk_token") is { } u && ids.TryGetValue(u, out int uid) ? uid : null;
        bool prepend = false;
        string replacement = "▁";
        if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object)
            foreach (var step in Steps(norm, "normalizers"))
                if (Str(step, "type") == "Prepend") prepend = true;
        foreach (var pre in PreTokenizers(root))
            if (Str(pre, "type") == "Metaspace")
            {
                replacement = Str(pre, "replacement") ?? "▁";
                prepend |= (Str(pre, "prepend_scheme") ?? ((Bool(pre, "add_prefix_space") ?? true) ? "always" : "never")) != "never";
            }
        int[] Encode(string text)
        {
            text = text.Replace(" ", replacement, StringComparison.Ordinal);
            if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal)) text = replacement + text;
            var tokens = new List<int>();
            Span<byte> utf8 = stackalloc byte[4];
            foreach (var rune in text.EnumerateRunes())
            {
                string ch = rune.ToString();
                if (ids.TryGetValue(ch, out int id)) tokens.Add(id);
                else if (byteFallback)
                {
                    int n = rune.EncodeToUtf8(utf8);
                    for (int i = 0; i < n; i++)
                        tokens.Add(ids.TryGetValue($"<0x{utf8[i]:X2}>", out int bid) ? bid
                            : unk ?? throw new InvalidDataException($"{source}: byte fallback token <0x{utf8[i]:X2}> is missing from the vocabulary."));
                }
                else if (unk is { } unkId) tokens.Add(unkId);
                else throw new InvalidDataException($"{source}: character '{ch}' is not in the vocabulary, which has no unknown token.");
            }
            return PairMerger.Merge(tokens, (l, r) => ranks.TryGetValue((l, r), out var m) ? (m.Merged, -m.Rank) : null);
        }
        return new HfTokenizer(Encode, bos, "SentencePiece-style BPE (merges by rank)");
    }

    private static List<string> Merges(JsonElement model, string source)
    {
        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out var m) || m.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{source}: the BPE model has no \"merges\" list.");
        int i = 0;
        foreach (var e in m.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String) merges.Add(e.GetString()!);
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2 && e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String)
                merges.Add($"{e[0].GetString()} {e[1].GetString()}");
            else throw new InvalidDataException($"{source}: model.merges[{i}] is {e}; expected \"a b\" or [\"a\", \"b\"].");
            i++;
        }
        return merges;
    }

    /// <summary>A token id: a non-negative int32.</summary>
    private static int Id(JsonElement v, string source, string key) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int id) && id >= 0
            ? id
            : throw new InvalidDataException($"{source}: {key} is {(v.ValueKind == JsonValueKind.Undefined ? "missing" : v.ToString())}; expected a token id (a non-negative integer).");

    /// <summary>The id of the special token the post-processor puts first in a single sequence (BOS, [CLS]), or null.</summary>
    private static int? FirstSpecial(JsonElement root, Dictionary<string, int> special)
    {
        if (!root.TryGetProperty("post_processor", out var post) || post.ValueKind != JsonValueKind.Object) return null;
        foreach (var p in Steps(post, "processors"))
        {
            switch (Str(p, "type"))
            {
                case "TemplateProcessing" when p.TryGetProperty("single", out var single) && single.GetArrayLength() > 0:
                    if (single[0].TryGetProperty("SpecialToken", out var st) && Str(st, "id") is { } name)
                    {
                        if (p.TryGetProperty("special_tokens", out var map) && map.TryGetProperty(name, out var entry) && entry.TryGetProperty("ids", out var idList) && idList.GetArrayLength() > 0)
                            return idList[0].GetInt32();
                        if (special.TryGetValue(name, out int sid)) return sid;
                    }
                    return null;
                case "BertProcessing" or "RobertaProcessing" when p.TryGetProperty("cls", out var cls) && cls.GetArrayLength() == 2:
                    return cls[1].GetInt32();
            }
        }
        return null;
    }

    private static bool IsByteLevel(JsonElement root) => PreTokenizers(root).Any(p => Str(p, "type") == "ByteLevel");

    private static IEnumerable<JsonElement> PreTokenizers(JsonElement root) =>
        root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object ? Steps(pre, "pretokenizers") : [];

    /// <summary>The element itself, or the members of a <c>Sequence</c>.</summary>
    private static IEnumerable<JsonElement> Steps(JsonElement e, string listName) =>
        Str(e, "type") == "Sequence" && e.TryGetProperty(listName, out var list) && list.ValueKind == JsonValueKind.Array ? [.. list.EnumerateArray()] : [e];

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool? Bool(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
}
