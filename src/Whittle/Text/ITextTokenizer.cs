using System.Text;

namespace Whittle.Text;

/// <summary>Turns text into token ids for a language model.</summary>
public interface ITextTokenizer
{
    /// <summary>The token ids of <paramref name="text"/>, without any special tokens.</summary>
    int[] Encode(string text);

    /// <summary>The beginning-of-sequence token, or null when the model uses none.</summary>
    int? BosId { get; }

    /// <summary>The end-of-sequence (end-of-text) token, or null when the tokenizer defines none.</summary>
    int? EosId { get; }
}

/// <summary>
/// The fallback tokenizer: each UTF-8 byte of the text is one token, ids 0–255. Right for byte-level models
/// (and the <c>gpt2_tiny</c>/<c>llama_tiny</c> test fixtures, vocabulary 256); for others only a placeholder
/// until the model's own tokenizer is supported.
/// </summary>
/// <param name="bosId">The beginning-of-sequence id to prepend to each document, or null.</param>
/// <param name="eosId">The end-of-sequence id, or null.</param>
public sealed class ByteTokenizer(int? bosId = null, int? eosId = null) : ITextTokenizer
{
    /// <inheritdoc/>
    public int? BosId { get; } = bosId;

    /// <inheritdoc/>
    public int? EosId { get; } = eosId;

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. Encoding.UTF8.GetBytes(text).Select(b => (int)b)];
    }
}
