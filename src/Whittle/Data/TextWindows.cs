// Language-model windows from documents, by one of three scoring protocols.
//
// Every document is tokenized on its own and starts with the model's start token (BOS; EOS where the tokenizer has
// no BOS, as GPT-2 uses <|endoftext|>; none when it has neither). Then, with window length W:
//   documents      each document cut into non-overlapping windows of W; every token of a window but its first is
//                  scored; the last, shorter window too. A document shorter than W is one window of its own length.
//                  (llama2.c's per-story evaluation.)
//   stride         each document scored by the Hugging Face sliding window: windows of W starting every S tokens,
//                  each scoring only the tokens the previous window did not (so every token but the first is
//                  scored once, with up to W − 1 tokens of context).
//   concatenated   all documents joined into one stream (each still after its start token: llama2.c's
//                  pretokenized training data), cut as in documents (WikiText-style text).
// Windows never cross documents except in concatenated. Windows shorter than the longest are padded at the end
// (EOS, else 0; attention mask 0 there) and their padding is never scored: a causal model's earlier positions do
// not see later ones. TokenTargets say, per logits position, which token it must predict (−1: not scored) and
// which document that token belongs to (for per-document NLL).

using Whittle.Runtime;
using Whittle.Text;

namespace Whittle.Data;

/// <summary>How a language model's text is cut into scored windows; see the header of <c>TextWindows.cs</c>.</summary>
public enum TextProtocol
{
    /// <summary>Non-overlapping windows within each document (llama2.c's per-story evaluation).</summary>
    Documents,

    /// <summary>The Hugging Face sliding window within each document: window W, stride S, only the new tokens scored.</summary>
    Stride,

    /// <summary>One stream of all documents, cut into non-overlapping windows (WikiText-style text).</summary>
    Concatenated,
}

/// <summary>How <see cref="TextWindows"/> cuts documents into windows. Immutable.</summary>
public sealed record TextWindowing
{
    /// <summary>The scoring protocol; default <see cref="TextProtocol.Documents"/>.</summary>
    public TextProtocol Protocol { get; init; } = TextProtocol.Documents;

    /// <summary>W: the most tokens per window, the start token included; default 128.</summary>
    public int Length { get; init; } = 128;

    /// <summary>S for <see cref="TextProtocol.Stride"/>: tokens between window starts, 1 ≤ S ≤ W; null: W / 2.</summary>
    public int? Stride { get; init; }

    /// <summary>Pad every window to <see cref="Length"/> (a model whose sequence length is fixed); otherwise to the longest window.</summary>
    public bool PadToLength { get; init; }

    /// <summary>Keep only windows of exactly <see cref="Length"/> tokens (calibration: no padding in the statistics).</summary>
    public bool FullWindowsOnly { get; init; }

    /// <summary>The stride <see cref="TextProtocol.Stride"/> uses.</summary>
    public int EffectiveStride => Stride ?? Math.Max(1, Length / 2);

    /// <summary>The protocol's name in reports and on the command line: <c>documents</c>, <c>stride</c>, <c>concatenated</c>.</summary>
    public static string Name(TextProtocol protocol) => protocol switch
    {
        TextProtocol.Stride => "stride",
        TextProtocol.Concatenated => "concatenated",
        _ => "documents",
    };

    /// <summary>The protocol named <paramref name="name"/> (<see cref="Name"/>).</summary>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static TextProtocol Parse(string name) => name switch
    {
        "documents" => TextProtocol.Documents,
        "stride" => TextProtocol.Stride,
        "concatenated" => TextProtocol.Concatenated,
        _ => throw new ArgumentException($"Unknown text protocol '{name}'; expected documents, stride or concatenated."),
    };

    /// <summary>For reports: <c>documents, window 128</c>, <c>stride, window 256, stride 128</c>.</summary>
    public override string ToString() =>
        $"{Name(Protocol)}, window {Length}" + (Protocol == TextProtocol.Stride ? $", stride {EffectiveStride}" : "");
}

/// <summary>
/// Which tokens a language model is scored on, per logits position: <see cref="Ids"/>[n, p] is the token the logits at
/// position p of window n must predict, or <see cref="Unscored"/>; <see cref="Documents"/>[n, p] the document that token
/// belongs to (−1 where unscored). Both int64 <c>[windows, T]</c>, aligned with the windows' samples.
/// </summary>
/// <param name="Ids">Target token ids, int64 <c>[windows, T]</c>.</param>
/// <param name="Documents">Document indices, int64 <c>[windows, T]</c>.</param>
public sealed record TokenTargets(HostTensor Ids, HostTensor Documents)
{
    /// <summary>The target of a position that is not scored.</summary>
    public const long Unscored = -1;

    /// <summary>Every next token of <paramref name="ids"/> (int64 <c>[N, T]</c>) scored, documents unknown (−1): windows with no protocol.</summary>
    public static TokenTargets NextTokens(HostTensor ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = ids.AsInt64();
        int n = ids.Rows, t = ids.Shape[1];
        var targets = new long[tokens.Length];
        var documents = new long[tokens.Length];
        Array.Fill(documents, -1L);
        for (int i = 0; i < n; i++)
        {
            tokens.AsSpan(i * t + 1, t - 1).CopyTo(targets.AsSpan(i * t, t - 1));
            targets[i * t + t - 1] = Unscored;
        }
        return new TokenTargets(HostTensor.Int64(targets, n, t), HostTensor.Int64(documents, n, t));
    }

    /// <summary>The targets of the windows at <paramref name="indices"/>, in that order.</summary>
    public TokenTargets SelectRows(ReadOnlySpan<int> indices) => new(Ids.SelectRows(indices), Documents.SelectRows(indices));
}

/// <summary>Text cut into windows by <see cref="TextWindows.Create"/>: the inputs, what is scored, and counts for reports.</summary>
/// <param name="Inputs">The windows: <c>input_ids</c> int64 <c>[windows, T]</c> (and the attention mask when asked).</param>
/// <param name="Targets">What each position is scored on.</param>
/// <param name="Windowing">How the windows were cut.</param>
/// <param name="Documents">Documents the windows came from.</param>
/// <param name="ScoredTokens">Tokens scored over all windows.</param>
public sealed record TextWindowSet(InputDataset Inputs, TokenTargets Targets, TextWindowing Windowing, int Documents, long ScoredTokens)
{
    /// <summary>T: tokens per window after padding.</summary>
    public int WindowLength => Inputs.Samples[Inputs.Samples.Names[0]].Shape[1];
}

/// <summary>Cuts tokenized documents into language-model windows by a <see cref="TextProtocol"/>; see the header of <c>TextWindows.cs</c>.</summary>
public static class TextWindows
{
    private sealed record Window(int[] Ids, int FirstScored, int[] DocumentOf);

    /// <summary>The windows of <paramref name="documents"/>; see the header of <c>TextWindows.cs</c>.</summary>
    /// <param name="documents">The documents (<see cref="TextDocuments"/>); a single text is one document.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="windowing">Protocol and lengths.</param>
    /// <param name="source">Where the text came from, for messages.</param>
    /// <param name="inputIdsName">The model input that takes the ids.</param>
    /// <param name="attentionMaskName">The model input that takes the attention mask, or null for none.</param>
    /// <exception cref="ArgumentOutOfRangeException">A window under 2 tokens, or a stride outside 1..W.</exception>
    /// <exception cref="InputDataException">No window has a token to score (or, with <see cref="TextWindowing.FullWindowsOnly"/>, none is full).</exception>
    public static TextWindowSet Create(IReadOnlyList<string> documents, ITextTokenizer tokenizer, TextWindowing windowing, string source = "text",
        string inputIdsName = "input_ids", string? attentionMaskName = null)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(windowing);
        ArgumentNullException.ThrowIfNull(inputIdsName);
        int w = windowing.Length;
        if (w < 2) ThrowHelper.ArgumentOutOfRange(nameof(windowing), w, "at least 2 tokens per window (one predicted)");
        if (windowing.Protocol == TextProtocol.Stride && (windowing.EffectiveStride < 1 || windowing.EffectiveStride > w))
            ThrowHelper.ArgumentOutOfRange(nameof(windowing), windowing.EffectiveStride, $"a stride from 1 to the window length {w}");

        int? start = tokenizer.BosId ?? tokenizer.EosId;
        var tokenized = documents.Select(d => start is { } s ? [s, .. tokenizer.Encode(d)] : tokenizer.Encode(d)).ToList();
        var windows = windowing.Protocol switch
        {
            TextProtocol.Stride => [.. tokenized.SelectMany((d, i) => Strided(d, i, w, windowing.EffectiveStride))],
            TextProtocol.Concatenated => Cut([.. tokenized.SelectMany(d => d)], [.. tokenized.SelectMany((d, i) => Enumerable.Repeat(i, d.Length))], w),
            _ => tokenized.SelectMany((d, i) => Cut(d, [.. Enumerable.Repeat(i, d.Length)], w)).ToList(),
        };
        int longest = tokenized.Count == 0 ? 0 : tokenized.Max(d => d.Length);
        if (windowing.FullWindowsOnly)
        {
            windows = [.. windows.Where(x => x.Ids.Length == w)];
            if (windows.Count == 0)
                throw new InputDataException($"{source}: no {w}-token window to calibrate on: the longest of {documents.Count} document(s) has {longest} tokens; give a shorter --window or longer documents.", source);
        }
        if (windows.Count == 0)
            throw new InputDataException($"{source}: nothing to score: {documents.Count} document(s), the longest {longest} token(s); a window needs at least 2 tokens.", source);

        int t = windowing.PadToLength ? w : windows.Max(x => x.Ids.Length);
        long pad = tokenizer.EosId ?? 0;
        var ids = new long[windows.Count * t];
        var mask = new long[ids.Length];
        var targets = new long[ids.Length];
        var owners = new long[ids.Length];
        Array.Fill(ids, pad);
        Array.Fill(targets, TokenTargets.Unscored);
        Array.Fill(owners, -1L);
        long scored = 0;
        for (int n = 0; n < windows.Count; n++)
        {
            var x = windows[n];
            int row = n * t;
            for (int p = 0; p < x.Ids.Length; p++)
            {
                ids[row + p] = x.Ids[p];
                mask[row + p] = 1;
            }
            // Logits at p predict token p + 1.
            for (int p = x.FirstScored - 1; p < x.Ids.Length - 1; p++)
            {
                targets[row + p] = x.Ids[p + 1];
                owners[row + p] = x.DocumentOf[p + 1];
                scored++;
            }
        }
        var pairs = new List<KeyValuePair<string, HostTensor>> { new(inputIdsName, HostTensor.Int64(ids, windows.Count, t)) };
        if (attentionMaskName is not null) pairs.Add(new(attentionMaskName, HostTensor.Int64(mask, windows.Count, t)));
        var inputs = new InputDataset(new InputBatch(pairs, source), source);
        var tokenTargets = new TokenTargets(HostTensor.Int64(targets, windows.Count, t), HostTensor.Int64(owners, windows.Count, t));
        return new TextWindowSet(inputs, tokenTargets, windowing, documents.Count, scored);
    }

    /// <summary>Non-overlapping windows of <paramref name="w"/> over a token stream, each scoring all but its first token.</summary>
    private static List<Window> Cut(int[] tokens, int[] documentOf, int w)
    {
        var windows = new List<Window>();
        for (int k = 0; k < tokens.Length; k += w)
        {
            int end = Math.Min(k + w, tokens.Length);
            if (end - k >= 2) windows.Add(new Window(tokens[k..end], 1, documentOf[k..end]));
        }
        return windows;
    }

    /// <summary>The Hugging Face sliding window over one document: each window scores the tokens after the previous window's end.</summary>
    private static IEnumerable<Window> Strided(int[] tokens, int document, int w, int stride)
    {
        int previousEnd = 0;
        for (int begin = 0; begin < tokens.Length; begin += stride)
        {
            int end = Math.Min(begin + w, tokens.Length);
            int fresh = end - previousEnd;
            int firstScored = Math.Max(1, end - begin - fresh);
            if (firstScored < end - begin) yield return new Window(tokens[begin..end], firstScored, [.. Enumerable.Repeat(document, end - begin)]);
            previousEnd = end;
            if (end == tokens.Length) break;
        }
    }
}
