using System.Text;
using Whittle.Runtime;
using Whittle.Text;

namespace Whittle.Data;

/// <summary>
/// Language-model inputs from plain text: the tokenized text cut into non-overlapping windows of a fixed length,
/// <c>input_ids</c> int64 [windows, length] (plus an all-ones attention mask of the same shape when asked).
/// When the tokenizer has a <see cref="ITextTokenizer.BosId"/>, each window is that id followed by
/// <c>length − 1</c> text tokens. Tokens after the last whole window are dropped.
/// </summary>
public static class TextWindows
{
    /// <summary>Windows of <paramref name="text"/>; see <see cref="TextWindows"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="length">Tokens per window (the sequence length), including the BOS token if any.</param>
    /// <param name="source">Where the text came from, for messages.</param>
    /// <param name="inputIdsName">The model input that takes the ids.</param>
    /// <param name="attentionMaskName">The model input that takes the attention mask, or null for none.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is too small (2 with a BOS token, else 1).</exception>
    /// <exception cref="InputDataException">The text is too short for one window.</exception>
    public static InputDataset Create(string text, ITextTokenizer tokenizer, int length, string source = "text",
        string inputIdsName = "input_ids", string? attentionMaskName = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(inputIdsName);
        int bos = tokenizer.BosId is null ? 0 : 1;
        if (length < 1 + bos) ThrowHelper.ArgumentOutOfRange(nameof(length), length, bos == 1 ? "at least 2 tokens per window (BOS + 1)" : "at least 1 token per window");
        var tokens = tokenizer.Encode(text);
        int body = length - bos;
        int windows = tokens.Length / body;
        if (windows == 0)
            throw new InputDataException($"{source}: {tokens.Length} tokens, too few for one window of {length}{(bos == 1 ? " (BOS + " + body + ")" : "")}.", source);
        var ids = new long[windows * length];
        for (int w = 0; w < windows; w++)
        {
            var dst = ids.AsSpan(w * length, length);
            if (bos == 1) dst[0] = tokenizer.BosId!.Value;
            for (int j = 0; j < body; j++) dst[bos + j] = tokens[w * body + j];
        }
        var pairs = new List<KeyValuePair<string, HostTensor>> { new(inputIdsName, HostTensor.Int64(ids, windows, length)) };
        if (attentionMaskName is not null)
        {
            var mask = new long[ids.Length];
            Array.Fill(mask, 1L);
            pairs.Add(new(attentionMaskName, HostTensor.Int64(mask, windows, length)));
        }
        return new InputDataset(new InputBatch(pairs, source), source);
    }

    /// <summary>Windows of the UTF-8 text file at <paramref name="path"/>; see <see cref="Create"/>.</summary>
    public static InputDataset FromFile(string path, ITextTokenizer tokenizer, int length,
        string inputIdsName = "input_ids", string? attentionMaskName = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Create(File.ReadAllText(path, Encoding.UTF8), tokenizer, length, path, inputIdsName, attentionMaskName);
    }
}
