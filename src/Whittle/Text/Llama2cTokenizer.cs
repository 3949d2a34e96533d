using System.Buffers.Binary;
using System.Text;

namespace Whittle.Text;

/// <summary>
/// The tokenizer of llama2.c (<c>tokenizer.bin</c>, e.g. <c>tok512.bin</c>), encoding exactly as <c>run.c</c> does:
/// a dummy-prefix space token first, then one token per UTF-8 character found in the vocabulary (else its bytes as
/// byte-fallback tokens <c>&lt;0xNN&gt;</c>, ids byte + 3), then repeatedly the adjacent pair whose concatenation is
/// in the vocabulary with the highest score is merged (ties: the leftmost). BOS is id 1.
/// </summary>
/// <remarks>
/// File format: int32 max token length, then per token float32 score, int32 byte length, the bytes. Tokens are
/// compared as bytes (held here as Latin-1 strings, one char per byte). Merging uses <see cref="PairMerger"/>, which picks
/// the same pair as <c>run.c</c>'s quadratic scan (best score, then leftmost), so long texts stay fast.
/// </remarks>
public sealed class Llama2cTokenizer : ITextTokenizer
{
    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

    private Llama2cTokenizer(string[] pieces, float[] scores)
    {
        _pieces = pieces;
        _scores = scores;
        for (int i = 0; i < pieces.Length; i++) _ids.TryAdd(pieces[i], i);
    }

    /// <inheritdoc/>
    public int? BosId => 1;

    /// <inheritdoc/>
    public int? EosId => 2;

    /// <summary>Number of tokens.</summary>
    public int VocabSize => _pieces.Length;

    /// <summary>Reads a tokenizer file.</summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is malformed.</exception>
    public static Llama2cTokenizer Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        IO.FileChecks.RequireRegularFile(full, "llama2.c tokenizer");
        return FromBytes(File.ReadAllBytes(full), full);
    }

    /// <summary>Reads a tokenizer from the bytes of its file.</summary>
    /// <param name="bytes">The file's content.</param>
    /// <param name="source">Where they came from, for messages.</param>
    /// <exception cref="InvalidDataException">The bytes are malformed.</exception>
    public static Llama2cTokenizer FromBytes(ReadOnlySpan<byte> bytes, string source = "llama2.c tokenizer")
    {
        if (bytes.Length < 4) throw new InvalidDataException($"{source}: {bytes.Length} bytes, too short for a llama2.c tokenizer.");
        int maxLength = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (maxLength <= 0 || maxLength > 1 << 16) throw new InvalidDataException($"{source}: max token length {maxLength} is not plausible; not a llama2.c tokenizer.");
        var pieces = new List<string>();
        var scores = new List<float>();
        int at = 4;
        while (at < bytes.Length)
        {
            if (at + 8 > bytes.Length) throw new InvalidDataException($"{source}: token {pieces.Count} is cut off at byte {at}.");
            float score = BinaryPrimitives.ReadSingleLittleEndian(bytes[at..]);
            int length = BinaryPrimitives.ReadInt32LittleEndian(bytes[(at + 4)..]);
            at += 8;
            if (length < 0 || length > maxLength || at + length > bytes.Length)
                throw new InvalidDataException($"{source}: token {pieces.Count} has length {length} (max {maxLength}, {bytes.Length - at} bytes left).");
            pieces.Add(Encoding.Latin1.GetString(bytes.Slice(at, length)));
            scores.Add(score);
            at += length;
        }
        if (pieces.Count < 3 + 256) throw new InvalidDataException($"{source}: {pieces.Count} tokens, fewer than the 3 special and 256 byte tokens llama2.c expects.");
        return new Llama2cTokenizer([.. pieces], [.. scores]);
    }

    /// <summary>The bytes of token <paramref name="id"/> as UTF-8 text where they decode (a byte-fallback token gives its byte).</summary>
    public string Piece(int id)
    {
        if ((uint)id >= (uint)_pieces.Length) ThrowHelper.ArgumentOutOfRange(nameof(id), id, $"a token id below {_pieces.Length}");
        var p = _pieces[id];
        if (p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' && byte.TryParse(p.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
            return Encoding.Latin1.GetString([b]);
        return Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(p));
    }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) return [];
        var utf8 = Encoding.UTF8.GetBytes(text);
        var tokens = new List<int>(utf8.Length + 1);
        if (!_ids.TryGetValue(" ", out int prefix))
            throw new InvalidOperationException("The llama2.c vocabulary has no ' ' token for the dummy prefix.");
        tokens.Add(prefix);
        for (int i = 0; i < utf8.Length;)
        {
            // One UTF-8 character: a lead byte and up to 3 continuation bytes (run.c caps the buffer at 4 bytes).
            int n = 1;
            while (i + n < utf8.Length && (utf8[i + n] & 0xC0) == 0x80 && n < 4) n++;
            string ch = Encoding.Latin1.GetString(utf8, i, n);
            if (_ids.TryGetValue(ch, out int id)) tokens.Add(id);
            else for (int j = 0; j < n; j++) tokens.Add(utf8[i + j] + 3);
            i += n;
        }
        return Merge(tokens);
    }

    private int[] Merge(List<int> tokens) => PairMerger.Merge(tokens, (left, right) =>
        _ids.TryGetValue(_pieces[left] + _pieces[right], out int merged) && _scores[merged] > -1e10f ? (merged, _scores[merged]) : null);
}
