using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Whittle.IO;

/// <summary>
/// Reads and writes NumPy <c>.npy</c> files (format versions 1.0, 2.0 and 3.0).
/// </summary>
/// <remarks>
/// Reading accepts the dtypes of <see cref="NpyDType"/> in either byte order, C or Fortran order,
/// and copies the data once, straight from the stream into the array. Writing produces what
/// <c>numpy.save</c> does: little-endian data, a header padded to a multiple of 64 bytes, format
/// version 1.0 unless the header needs more than 65535 bytes (then 2.0).
/// </remarks>
public static class Npy
{
    /// <summary>Reads the array in the .npy file at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a .npy file, unsupported version or dtype,
    /// malformed header, or truncated data; the message names the file.</exception>
    public static NpyArray Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileChecks.RequireRegularFile(path, ".npy file");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return NpyFormat.Read(stream, path, stream.Length);
    }

    /// <summary>Reads one .npy array from <paramref name="stream"/>, leaving it positioned after the data.</summary>
    /// <param name="stream">The stream; need not be seekable.</param>
    /// <param name="sourceName">Names the stream's origin in error messages (a path, an archive entry…).</param>
    /// <exception cref="InvalidDataException">As for <see cref="Read(string)"/>.</exception>
    public static NpyArray Read(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        long? available = stream.CanSeek ? stream.Length - stream.Position : null;
        return NpyFormat.Read(stream, sourceName, available);
    }

    /// <summary>
    /// Writes <paramref name="array"/> to <paramref name="path"/> atomically: into a temporary file in
    /// the same folder, then renamed over the target, so the target is never left half-written.
    /// </summary>
    public static void Write(string path, NpyArray array)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(array);
        AtomicFile.Write(path, stream => NpyFormat.Write(stream, array));
    }

    /// <summary>Writes <paramref name="array"/> in .npy format to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, NpyArray array)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(array);
        NpyFormat.Write(stream, array);
    }
}

/// <summary>The .npy codec behind <see cref="Npy"/> and <see cref="Npz"/>.</summary>
internal static class NpyFormat
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Header sizes beyond this are rejected rather than allocated (NumPy's own limit is 10000).</summary>
    internal const int MaxHeaderLength = 1 << 20;

    /// <summary>Bytes per read or write call on the data section.</summary>
    private const int ChunkBytes = 1 << 24;

    public static NpyArray Read(Stream stream, string source, long? available)
    {
        // Preamble: magic, version, header length.
        Span<byte> pre = stackalloc byte[12];
        int got = ReadUpTo(stream, pre[..8], source);
        int cmp = Math.Min(got, 6);
        if (!pre[..cmp].SequenceEqual(Magic[..cmp]) || got == 0)
            NpyErrors.InvalidData(source, $"not a .npy file: expected the magic string \\x93NUMPY, got {Hex(pre[..Math.Min(got, 6)])}.");
        if (got < 8) NpyErrors.TruncatedHeader(source, "magic and version", 8, got);
        byte major = pre[6], minor = pre[7];
        if (minor != 0 || major is < 1 or > 3)
            NpyErrors.InvalidData(source, $"unsupported .npy format version {major}.{minor}; expected 1.0, 2.0 or 3.0.");
        int lengthBytes = major == 1 ? 2 : 4;
        got = ReadUpTo(stream, pre.Slice(8, lengthBytes), source);
        if (got < lengthBytes) NpyErrors.TruncatedHeader(source, "header length", lengthBytes, got);
        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]);
        if (headerLength > MaxHeaderLength)
            NpyErrors.InvalidData(source, $"malformed .npy header: header length {headerLength} bytes exceeds the limit of {MaxHeaderLength}.");
        long preamble = 8 + lengthBytes;
        if (available is long total && preamble + headerLength > total)
            NpyErrors.TruncatedHeader(source, "header", (int)headerLength, (int)Math.Max(0, total - preamble));

        var headerBytes = new byte[headerLength];
        got = ReadUpTo(stream, headerBytes, source);
        if (got < headerLength) NpyErrors.TruncatedHeader(source, "header", (int)headerLength, got);
        string header = major == 3 ? DecodeUtf8(headerBytes, source) : Encoding.Latin1.GetString(headerBytes);

        var (dtype, bigEndian, fortran, shape) = ParseHeader(header, source);
        long count = 1;
        foreach (long d in shape)
        {
            count *= d;
            if (count > Array.MaxLength)
                NpyErrors.InvalidData(source, $"array of shape {ShapeText(shape)} has more than {Array.MaxLength} elements, the most a .NET array holds.");
        }
        foreach (long d in shape)
            if (d > int.MaxValue) NpyErrors.InvalidData(source, $"dimension {d} of shape {ShapeText(shape)} exceeds {int.MaxValue}.");
        int size = NpyDTypes.SizeOf(dtype);
        long expected = count * size;
        if (available is long all && all - preamble - headerLength < expected)
            NpyErrors.Truncated(source, expected, all - preamble - headerLength);

        var data = NpyArray.Allocate(dtype, (int)count, zeroed: false);
        bool swap = bigEndian == BitConverter.IsLittleEndian && size > 1;
        // Dispatch on dtype: a byte[] also matches "is sbyte[]" in the CLR.
        switch (dtype)
        {
            case NpyDType.Float16: ReadData(stream, (Half[])data, swap, source, expected); break;
            case NpyDType.Float32: ReadData(stream, (float[])data, swap, source, expected); break;
            case NpyDType.Float64: ReadData(stream, (double[])data, swap, source, expected); break;
            case NpyDType.Int8: ReadData(stream, (sbyte[])data, swap, source, expected); break;
            case NpyDType.Int16: ReadData(stream, (short[])data, swap, source, expected); break;
            case NpyDType.Int32: ReadData(stream, (int[])data, swap, source, expected); break;
            case NpyDType.Int64: ReadData(stream, (long[])data, swap, source, expected); break;
            case NpyDType.UInt8: ReadData(stream, (byte[])data, swap, source, expected); break;
            case NpyDType.UInt16: ReadData(stream, (ushort[])data, swap, source, expected); break;
            case NpyDType.Bool:
                var bytes = MemoryMarshal.Cast<bool, byte>(((bool[])data).AsSpan());
                ReadData(stream, (bool[])data, false, source, expected);
                for (int i = 0; i < bytes.Length; i++) if (bytes[i] > 1) bytes[i] = 1;
                break;
        }
        // Nothing may follow the data: trailing bytes mean a wrong header (and an .npz member is never inflated past it).
        Span<byte> extra = stackalloc byte[1];
        if (ReadUpTo(stream, extra, source) > 0)
            NpyErrors.InvalidData(source, $"trailing bytes after the array data: shape {ShapeText(shape)} of {dtype} takes {expected} bytes{(available is long n ? $", the file has {n - preamble - headerLength}" : "")}.");
        return new NpyArray(dtype, Array.ConvertAll(shape, d => (int)d), fortran, data, source);
    }

    private static void ReadData<T>(Stream stream, T[] data, bool swap, string source, long expectedBytes) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        int chunk = ChunkBytes / size;
        // Advance by the part's length, not by chunk: offset + chunk could overflow near Array.MaxLength.
        for (int offset = 0; offset < data.Length; offset += Math.Min(chunk, data.Length - offset))
        {
            var part = data.AsSpan(offset, Math.Min(chunk, data.Length - offset));
            var bytes = MemoryMarshal.AsBytes(part);
            int got = ReadUpTo(stream, bytes, source);
            if (got < bytes.Length) NpyErrors.Truncated(source, expectedBytes, (long)offset * size + got);
            if (swap) ReverseEndianness(part);
        }
    }

    private static void ReverseEndianness<T>(Span<T> span) where T : unmanaged
    {
        switch (Unsafe.SizeOf<T>())
        {
            case 2: { var s = MemoryMarshal.Cast<T, ushort>(span); BinaryPrimitives.ReverseEndianness(s, s); break; }
            case 4: { var s = MemoryMarshal.Cast<T, uint>(span); BinaryPrimitives.ReverseEndianness(s, s); break; }
            case 8: { var s = MemoryMarshal.Cast<T, ulong>(span); BinaryPrimitives.ReverseEndianness(s, s); break; }
        }
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends; returns the byte count.
    /// Corrupt compressed input (an <see cref="InvalidDataException"/> from the stream) gets the source name.</summary>
    private static int ReadUpTo(Stream stream, Span<byte> buffer, string source)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            NpyErrors.InvalidData(source, $"corrupt data stream: {e.Message}", e);
            return 0;
        }
    }

    private static string DecodeUtf8(byte[] bytes, string source)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            NpyErrors.InvalidData(source, "malformed .npy header: version 3.0 headers must be UTF-8.", e);
            return "";
        }
    }

    private static string Hex(ReadOnlySpan<byte> bytes) =>
        bytes.IsEmpty ? "an empty file" : string.Join(" ", bytes.ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    private static string ShapeText(long[] shape) =>
        shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";

    // ---- Header dictionary -------------------------------------------------------------------

    /// <summary>A header value that is neither a string, a bool nor a tuple of ints (kept as text).</summary>
    private sealed record Other(string Text);

    internal static (NpyDType DType, bool BigEndian, bool Fortran, long[] Shape) ParseHeader(string header, string source)
    {
        var dict = new HeaderParser(header, source).ParseDict();
        foreach (string key in dict.Keys)
            if (key is not ("descr" or "fortran_order" or "shape"))
                NpyErrors.MalformedHeader(source, header, $"unexpected key '{key}'");
        if (!dict.TryGetValue("descr", out var descr)) NpyErrors.MalformedHeader(source, header, "no 'descr' key");
        if (!dict.TryGetValue("fortran_order", out var fortran)) NpyErrors.MalformedHeader(source, header, "no 'fortran_order' key");
        if (!dict.TryGetValue("shape", out var shape)) NpyErrors.MalformedHeader(source, header, "no 'shape' key");
        if (fortran is not bool isFortran) { NpyErrors.MalformedHeader(source, header, "'fortran_order' is not True or False"); return default; }
        if (shape is not long[] dims) { NpyErrors.MalformedHeader(source, header, "'shape' is not a tuple of integers"); return default; }
        string descrText = descr switch { string s => $"'{s}'", Other o => o.Text, _ => Convert.ToString(descr, CultureInfo.InvariantCulture) ?? "" };
        if (descr is not string d || !NpyDTypes.TryParse(d, out var dtype, out bool bigEndian))
        {
            NpyErrors.InvalidData(source, $"unsupported dtype {descrText}; supported: {NpyDTypes.Supported}.");
            return default;
        }
        return (dtype, bigEndian, isFortran, dims);
    }

    /// <summary>Parses the Python literal dict NumPy writes: string keys; string, bool, tuple-of-int values
    /// (lists and other literals are kept as text so an unsupported 'descr' can be reported).</summary>
    private ref struct HeaderParser(string text, string source)
    {
        private int _pos;

        public Dictionary<string, object> ParseDict()
        {
            var dict = new Dictionary<string, object>();
            SkipSpace();
            Expect('{');
            while (true)
            {
                SkipSpace();
                if (Peek() == '}') { _pos++; break; }
                string key = ParseString();
                SkipSpace();
                Expect(':');
                SkipSpace();
                object value = ParseValue();
                if (!dict.TryAdd(key, value)) Fail($"key '{key}' appears twice");
                SkipSpace();
                if (Peek() == ',') { _pos++; continue; }
                if (Peek() == '}') { _pos++; break; }
                Fail($"expected ',' or '}}' at offset {_pos}");
            }
            SkipSpace();
            if (_pos != text.Length) Fail($"unexpected text after the dict at offset {_pos}");
            return dict;
        }

        private object ParseValue()
        {
            char c = Peek();
            if (c is '\'' or '"') return ParseString();
            if (c == '(') return ParseTuple();
            if (c == '[') return new Other(SkipBalanced('[', ']'));
            int start = _pos;
            while (_pos < text.Length && (char.IsLetterOrDigit(text[_pos]) || text[_pos] is '_' or '-' or '.')) _pos++;
            string word = text[start.._pos];
            return word switch
            {
                "True" => true,
                "False" => false,
                "" => Fail($"expected a value at offset {start}"),
                _ => new Other(word),
            };
        }

        private long[] ParseTuple()
        {
            Expect('(');
            var dims = new List<long>();
            while (true)
            {
                SkipSpace();
                if (Peek() == ')') { _pos++; break; }
                int start = _pos;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
                if (_pos == start || !long.TryParse(text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out long d))
                {
                    Fail($"expected a non-negative integer dimension at offset {start}");
                    return [];
                }
                dims.Add(d);
                if (Peek() is 'L' or 'l') _pos++; // Python 2 long literal, as in old files
                SkipSpace();
                if (Peek() == ',') { _pos++; continue; }
                if (Peek() == ')') { _pos++; break; }
                Fail($"expected ',' or ')' in the shape at offset {_pos}");
            }
            // Python needs a trailing comma for a 1-tuple ("(3)" is the int 3, which NumPy rejects);
            // this parser is lenient and reads "(3)" as (3,).
            return dims.ToArray();
        }

        private string ParseString()
        {
            char quote = Peek();
            if (quote is not ('\'' or '"')) Fail($"expected a quoted string at offset {_pos}");
            int start = ++_pos;
            while (_pos < text.Length && text[_pos] != quote)
            {
                if (text[_pos] == '\\') Fail($"escape sequences are not supported (offset {_pos})");
                _pos++;
            }
            if (_pos >= text.Length) Fail("unterminated string");
            return text[start.._pos++];
        }

        private string SkipBalanced(char open, char close)
        {
            int start = _pos, depth = 0;
            for (; _pos < text.Length; _pos++)
            {
                if (text[_pos] == open) depth++;
                else if (text[_pos] == close && --depth == 0) { _pos++; return text[start.._pos]; }
            }
            Fail($"unbalanced '{open}'");
            return "";
        }

        private void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
        }

        private readonly char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private void Expect(char c)
        {
            if (Peek() != c) Fail($"expected '{c}' at offset {_pos}");
            _pos++;
        }

        private readonly object Fail(string problem)
        {
            NpyErrors.MalformedHeader(source, text, problem);
            return null!;
        }
    }

    // ---- Writing -----------------------------------------------------------------------------

    /// <summary>The header dict NumPy writes, padded with spaces and a final newline so that the
    /// preamble plus header is a multiple of 64 bytes.</summary>
    internal static (byte Major, byte[] Header) FormatHeader(NpyArray array)
    {
        string dict = "{'descr': '" + NpyDTypes.Descriptor(array.DType) + "', 'fortran_order': " +
            (array.FortranOrder ? "True" : "False") + ", 'shape': " + NpyArray.ShapeText(array.ShapeSpan) + ", }";
        byte major = 1;
        int preamble = 10;
        int total = (preamble + dict.Length + 1 + 63) / 64 * 64;
        if (total - preamble > ushort.MaxValue)
        {
            major = 2;
            preamble = 12;
            total = (preamble + dict.Length + 1 + 63) / 64 * 64;
        }
        string padded = dict + new string(' ', total - preamble - dict.Length - 1) + "\n";
        return (major, Encoding.Latin1.GetBytes(padded));
    }

    public static void Write(Stream stream, NpyArray array)
    {
        var (major, header) = FormatHeader(array);
        Span<byte> pre = stackalloc byte[12];
        Magic.CopyTo(pre);
        pre[6] = major;
        pre[7] = 0;
        int n = 8;
        if (major == 1) { BinaryPrimitives.WriteUInt16LittleEndian(pre[8..], (ushort)header.Length); n += 2; }
        else { BinaryPrimitives.WriteUInt32LittleEndian(pre[8..], (uint)header.Length); n += 4; }
        stream.Write(pre[..n]);
        stream.Write(header);
        var storage = array.Storage;
        switch (array.DType)
        {
            case NpyDType.Float16: WriteData<Half>(stream, (Half[])storage); break;
            case NpyDType.Float32: WriteData<float>(stream, (float[])storage); break;
            case NpyDType.Float64: WriteData<double>(stream, (double[])storage); break;
            case NpyDType.Int8: WriteData<sbyte>(stream, (sbyte[])storage); break;
            case NpyDType.Int16: WriteData<short>(stream, (short[])storage); break;
            case NpyDType.Int32: WriteData<int>(stream, (int[])storage); break;
            case NpyDType.Int64: WriteData<long>(stream, (long[])storage); break;
            case NpyDType.UInt8: WriteData<byte>(stream, (byte[])storage); break;
            case NpyDType.UInt16: WriteData<ushort>(stream, (ushort[])storage); break;
            case NpyDType.Bool: WriteData<bool>(stream, (bool[])storage); break;
        }
    }

    private static void WriteData<T>(Stream stream, ReadOnlySpan<T> data) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        int chunk = ChunkBytes / size;
        T[]? scratch = BitConverter.IsLittleEndian || size == 1 ? null : new T[Math.Min(chunk, data.Length)];
        for (int offset = 0; offset < data.Length; offset += Math.Min(chunk, data.Length - offset))
        {
            var part = data.Slice(offset, Math.Min(chunk, data.Length - offset));
            if (scratch is not null)
            {
                var s = scratch.AsSpan(0, part.Length);
                part.CopyTo(s);
                ReverseEndianness(s);
                part = s;
            }
            stream.Write(MemoryMarshal.AsBytes(part));
        }
    }
}
