using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Whittle.IO;

/// <summary>A malformed or inconsistent safetensors file; the message names the file and, where one is at fault, the tensor.</summary>
public sealed class SafeTensorsException : IOException
{
    /// <summary>Creates the exception.</summary>
    public SafeTensorsException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file at fault, where known.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor at fault, where one is.</summary>
    public string? TensorName { get; }
}

/// <summary>Element types of safetensors files (the header's <c>dtype</c> strings).</summary>
public enum SafeTensorsDType
{
    /// <summary><c>BOOL</c>, one byte.</summary>
    Bool,
    /// <summary><c>U8</c>.</summary>
    U8,
    /// <summary><c>I8</c>.</summary>
    I8,
    /// <summary><c>F8_E4M3</c>.</summary>
    F8E4M3,
    /// <summary><c>F8_E5M2</c>.</summary>
    F8E5M2,
    /// <summary><c>U16</c>.</summary>
    U16,
    /// <summary><c>I16</c>.</summary>
    I16,
    /// <summary><c>F16</c>: IEEE half.</summary>
    F16,
    /// <summary><c>BF16</c>: the upper 16 bits of a float32.</summary>
    BF16,
    /// <summary><c>U32</c>.</summary>
    U32,
    /// <summary><c>I32</c>.</summary>
    I32,
    /// <summary><c>F32</c>.</summary>
    F32,
    /// <summary><c>U64</c>.</summary>
    U64,
    /// <summary><c>I64</c>.</summary>
    I64,
    /// <summary><c>F64</c>.</summary>
    F64,
}

/// <summary>Names and sizes of <see cref="SafeTensorsDType"/> values.</summary>
public static class SafeTensorsDTypes
{
    private static readonly (SafeTensorsDType Type, string Name, int Size)[] Table =
    [
        (SafeTensorsDType.Bool, "BOOL", 1), (SafeTensorsDType.U8, "U8", 1), (SafeTensorsDType.I8, "I8", 1),
        (SafeTensorsDType.F8E4M3, "F8_E4M3", 1), (SafeTensorsDType.F8E5M2, "F8_E5M2", 1),
        (SafeTensorsDType.U16, "U16", 2), (SafeTensorsDType.I16, "I16", 2), (SafeTensorsDType.F16, "F16", 2), (SafeTensorsDType.BF16, "BF16", 2),
        (SafeTensorsDType.U32, "U32", 4), (SafeTensorsDType.I32, "I32", 4), (SafeTensorsDType.F32, "F32", 4),
        (SafeTensorsDType.U64, "U64", 8), (SafeTensorsDType.I64, "I64", 8), (SafeTensorsDType.F64, "F64", 8),
    ];

    /// <summary>Bytes per element.</summary>
    public static int Size(SafeTensorsDType type) => Table.First(t => t.Type == type).Size;

    /// <summary>The header string (<c>F32</c>, <c>BF16</c>, …).</summary>
    public static string Name(SafeTensorsDType type) => Table.First(t => t.Type == type).Name;

    /// <summary>The type of a header string, or null for one Whittle does not know.</summary>
    public static SafeTensorsDType? Parse(string name)
    {
        foreach (var t in Table) if (t.Name == name) return t.Type;
        return null;
    }
}

/// <summary>One tensor of a safetensors file: name, type, shape and byte range (relative to the data section).</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions; empty for a scalar.</param>
/// <param name="Begin">First byte, relative to the data section.</param>
/// <param name="End">One past the last byte.</param>
public sealed record SafeTensorInfo(string Name, SafeTensorsDType DType, IReadOnlyList<long> Shape, long Begin, long End)
{
    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Number of bytes.</summary>
    public long ByteLength => End - Begin;
}

/// <summary>
/// A safetensors file, opened once and read lazily: the header is parsed and checked when the file is opened
/// (header length sane, JSON well formed, every tensor's dtype × shape equal to its byte range, ranges inside the
/// file, not overlapping and covering the data section), tensor bytes are read only when asked for.
/// </summary>
/// <remarks>Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data section.</remarks>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header Whittle accepts (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly SafeFileHandle? _file;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    private readonly long _dataStart;

    private SafeTensorsFile(string path, SafeFileHandle? file, List<SafeTensorInfo> tensors, IReadOnlyDictionary<string, string> metadata, long dataStart)
    {
        FilePath = path;
        _file = file;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name);
        Metadata = metadata;
        _dataStart = dataStart;
    }

    /// <summary>The full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>The tensors, in the order of their data.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> (string to string), empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Whether the file holds a tensor of that name.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">There is none.</exception>
    public SafeTensorInfo this[string name] => _byName.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"{FilePath}: no tensor '{name}'.");

    /// <summary>Opens and checks <paramref name="path"/>; see <see cref="SafeTensorsFile"/>.</summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="SafeTensorsException">The header is malformed or inconsistent with the file.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        FileChecks.RequireRegularFile(full, "safetensors file");
        long length = new FileInfo(full).Length;
        if (length < 8) throw new SafeTensorsException($"{full}: {length} bytes, too short for a safetensors file (8-byte header length first).", full);
        byte[] header;
        ulong n;
        using (var s = File.OpenRead(full))
        {
            Span<byte> prefix = stackalloc byte[8];
            s.ReadExactly(prefix);
            n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (n > MaxHeaderBytes) throw new SafeTensorsException($"{full}: header length {n} bytes is over the {MaxHeaderBytes}-byte limit: not a safetensors file, or corrupt.", full);
            if (8 + (long)n > length) throw new SafeTensorsException($"{full}: header length {n} bytes runs past the end of the {length}-byte file.", full);
            header = new byte[n];
            s.ReadExactly(header);
        }
        long dataStart = 8 + (long)n;
        var (tensors, metadata) = ParseHeader(full, header, length - dataStart);
        if (length == dataStart) return new SafeTensorsFile(full, null, tensors, metadata, dataStart);
        // Read, not mapped: a mapping would leave every page read resident (and counted) until the file is closed.
        return new SafeTensorsFile(full, File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.Read), tensors, metadata, dataStart);
    }

    private static (List<SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string file, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            // System.Text.Json checks UTF-8 only when a string is read: check the whole header first.
            StrictUtf8.Check(header);
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException ex)
        {
            throw new SafeTensorsException($"{file}: the header is not well-formed JSON: {ex.Message}", file, null, ex);
        }
        catch (DecoderFallbackException ex)
        {
            throw new SafeTensorsException($"{file}: the header is not UTF-8 text: {ex.Message}", file, null, ex);
        }
        using var owner = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsException($"{file}: the header is JSON {doc.RootElement.ValueKind}, expected an object of tensors.", file);
        var tensors = new List<SafeTensorInfo>();
        var metadata = new Dictionary<string, string>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                if (p.Value.ValueKind != JsonValueKind.Object) throw new SafeTensorsException($"{file}: __metadata__ is not an object of strings.", file);
                foreach (var m in p.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw new SafeTensorsException($"{file}: __metadata__ entry '{m.Name}' is not a string.", file);
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            tensors.Add(ParseTensor(file, p));
        }
        if (tensors.Select(t => t.Name).Distinct().Count() != tensors.Count)
            throw new SafeTensorsException($"{file}: a tensor name appears twice in the header.", file);
        tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expect = 0;
        foreach (var t in tensors)
        {
            if (t.End > dataLength)
                throw new SafeTensorsException($"{file}: tensor '{t.Name}' occupies bytes {t.Begin}..{t.End} of the data section, which holds only {dataLength} bytes (file truncated?).", file, t.Name);
            if (t.Begin < expect)
                throw new SafeTensorsException($"{file}: tensor '{t.Name}' (bytes {t.Begin}..{t.End}) overlaps the tensor before it (which ends at {expect}).", file, t.Name);
            if (t.Begin > expect)
                throw new SafeTensorsException($"{file}: bytes {expect}..{t.Begin} of the data section belong to no tensor (a hole before '{t.Name}').", file, t.Name);
            expect = t.End;
        }
        if (expect != dataLength)
            throw new SafeTensorsException($"{file}: the tensors cover {expect} bytes of data but the file has {dataLength} after the header.", file);
        return (tensors, metadata);
    }

    private static SafeTensorInfo ParseTensor(string file, JsonProperty p)
    {
        string name = p.Name;
        SafeTensorsException Bad(string what) => new($"{file}: tensor '{name}': {what}.", file, name);
        var v = p.Value;
        if (v.ValueKind != JsonValueKind.Object) throw Bad("the header entry is not an object with dtype, shape and data_offsets");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad("no dtype string");
        var dtype = SafeTensorsDTypes.Parse(dt.GetString()!) ?? throw Bad($"unknown dtype '{dt.GetString()}'");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad("no shape array");
        var shape = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long x) || x < 0) throw Bad($"shape entry {d} is not a non-negative integer");
            shape.Add(x);
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad("data_offsets is not a pair [begin, end]");
        long begin = 0, end = 0;
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out begin) || !off[1].TryGetInt64(out end) || begin < 0 || end < begin)
            throw Bad($"data_offsets {off} is not an ordered pair of non-negative integers");
        long count = 1;
        foreach (var d in shape)
            if (d != 0 && count > long.MaxValue / d) throw Bad($"shape [{string.Join(", ", shape)}] overflows");
            else count *= d;
        long bytes = count * SafeTensorsDTypes.Size(dtype);
        if (bytes != end - begin)
            throw Bad($"{SafeTensorsDTypes.Name(dtype)} of shape [{string.Join(", ", shape)}] needs {bytes} bytes, but data_offsets [{begin}, {end}] span {end - begin}");
        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    /// <summary>Copies the bytes of <paramref name="name"/> (little-endian, row-major) into <paramref name="destination"/>, which must be exactly its size.</summary>
    public void ReadBytes(string name, Span<byte> destination)
    {
        var t = this[name];
        if (destination.Length != t.ByteLength)
            ThrowHelper.Argument(nameof(destination), $"Tensor '{name}' has {t.ByteLength} bytes; the destination holds {destination.Length}.");
        if (t.ByteLength == 0) return;
        ObjectDisposedException.ThrowIf(_file is null || _file.IsClosed, this);
        for (int done = 0; done < destination.Length;)
        {
            int n = RandomAccess.Read(_file, destination[done..], _dataStart + t.Begin + done);
            if (n == 0) throw new SafeTensorsException($"{FilePath}: the file ended while reading tensor '{name}' (truncated since it was opened?).", FilePath, name);
            done += n;
        }
    }

    /// <summary>The bytes of <paramref name="name"/> (copied).</summary>
    public byte[] ReadBytes(string name)
    {
        var bytes = new byte[this[name].ByteLength];
        ReadBytes(name, bytes);
        return bytes;
    }

    /// <summary>The elements of a floating-point tensor (F32, F16, BF16, F64) as float32, row-major.</summary>
    /// <exception cref="SafeTensorsException">The tensor is not floating point.</exception>
    public float[] ReadFloat32(string name)
    {
        var t = this[name];
        var bytes = ReadBytes(name);
        var values = new float[t.ElementCount];
        switch (t.DType)
        {
            case SafeTensorsDType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(values);
                break;
            case SafeTensorsDType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(bytes);
                for (int i = 0; i < values.Length; i++) values[i] = (float)halves[i];
                break;
            case SafeTensorsDType.BF16:
                var raw = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < values.Length; i++) values[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
                break;
            case SafeTensorsDType.F64:
                var doubles = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < values.Length; i++) values[i] = (float)doubles[i];
                break;
            default:
                throw new SafeTensorsException($"{FilePath}: tensor '{name}' is {SafeTensorsDTypes.Name(t.DType)}, not a floating-point type.", FilePath, name);
        }
        return values;
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file?.Dispose();

    internal static string HeaderJson(IEnumerable<(string Name, SafeTensorsDType DType, IReadOnlyList<long> Shape, long Begin, long End)> tensors,
        IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (var t in tensors)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", SafeTensorsDTypes.Name(t.DType));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(t.Begin);
                w.WriteNumberValue(t.End);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
