using System.Buffers.Binary;
using System.IO.Compression;
using Whittle.IO;
using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>Element types of IDX files (the third byte of the magic number).</summary>
public enum IdxElementType : byte
{
    /// <summary>Unsigned byte (0x08).</summary>
    UInt8 = 0x08,
    /// <summary>Signed byte (0x09).</summary>
    Int8 = 0x09,
    /// <summary>Big-endian 16-bit signed integer (0x0B).</summary>
    Int16 = 0x0B,
    /// <summary>Big-endian 32-bit signed integer (0x0C).</summary>
    Int32 = 0x0C,
    /// <summary>Big-endian IEEE float (0x0D).</summary>
    Float32 = 0x0D,
    /// <summary>Big-endian IEEE double (0x0E).</summary>
    Float64 = 0x0E,
}

/// <summary>An array read from an IDX file: its element type, shape, and elements (C order) as <see cref="double"/>s,
/// which represent every IDX element type exactly.</summary>
/// <param name="ElementType">The element type stored in the file.</param>
/// <param name="Shape">The dimensions; axis 0 indexes samples.</param>
/// <param name="Values">The elements in C order.</param>
public sealed record IdxArray(IdxElementType ElementType, IReadOnlyList<int> Shape, double[] Values);

/// <summary>
/// Reads and writes IDX files, the format of MNIST and Fashion-MNIST (<c>train-images-idx3-ubyte</c>,
/// <c>t10k-labels-idx1-ubyte.gz</c>): a magic number <c>00 00 type rank</c>, <c>rank</c> big-endian int32
/// dimensions, then the elements big-endian in C order. Gzip-compressed files are recognised by their first two
/// bytes (<c>1f 8b</c>), whatever their name.
/// </summary>
public static class Idx
{
    /// <summary>Reads the IDX file at <paramref name="path"/>, gzip-compressed or not.</summary>
    /// <exception cref="InputDataException">A bad magic number, an unknown element type, a truncated file or trailing bytes.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileChecks.RequireRegularFile(path, "IDX file");
        using var file = File.OpenRead(path);
        return Read(file, path);
    }

    /// <summary>Reads an IDX array from <paramref name="stream"/>, gzip-compressed or not; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="InputDataException">A bad magic number, an unknown element type, a truncated stream or trailing bytes.</exception>
    public static IdxArray Read(Stream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek)
        {
            var copy = new MemoryStream();
            stream.CopyTo(copy);
            copy.Position = 0;
            stream = copy;
        }
        long start = stream.Position, available = stream.Length - start;
        bool gzip = available >= 2 && stream.ReadByte() == 0x1f && stream.ReadByte() == 0x8b;
        uint? inflated = null;
        if (gzip && available >= 18)
        {
            // ISIZE, the last 4 bytes: the inflated length mod 2^32. The header is checked against it before anything
            // is allocated, and inflating stops at the length the header declares.
            Span<byte> isize = stackalloc byte[4];
            stream.Position = stream.Length - 4;
            stream.ReadExactly(isize);
            inflated = BinaryPrimitives.ReadUInt32LittleEndian(isize);
        }
        stream.Position = start;
        using var input = gzip ? new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true) : null;
        var body = (Stream?)input ?? stream;
        try
        {
            return ReadBody(body, source, gzip ? null : available, inflated);
        }
        catch (InvalidDataException e)
        {
            throw new InputDataException($"{source}: corrupt gzip data: {e.Message}", source, inner: e);
        }
    }

    private static IdxArray ReadBody(Stream body, string source, long? available, uint? inflated)
    {
        var head = new byte[4];
        int got = body.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        if (got < 4) throw new InputDataException($"{source}: truncated IDX header: {got} bytes, expected at least 4.", source);
        if (head[0] != 0 || head[1] != 0)
            throw new InputDataException($"{source}: not an IDX file: magic number {head[0]:x2} {head[1]:x2} {head[2]:x2} {head[3]:x2} does not start with 00 00.", source);
        var type = (IdxElementType)head[2];
        if (!Enum.IsDefined(type))
            throw new InputDataException($"{source}: unknown IDX element type 0x{head[2]:x2} (expected 08 ubyte, 09 byte, 0b short, 0c int, 0d float or 0e double).", source);
        int rank = head[3];
        if (rank == 0) throw new InputDataException($"{source}: IDX rank 0; expected at least one dimension.", source);
        var dims = new byte[4 * rank];
        got = body.ReadAtLeast(dims, dims.Length, throwOnEndOfStream: false);
        if (got < dims.Length)
            throw new InputDataException($"{source}: truncated IDX header: {4 + got} bytes, expected {4 + 4 * rank} for {rank} dimensions.", source);
        var shape = new int[rank];
        long count = 1;
        int size = SizeOf(type);
        for (int d = 0; d < rank; d++)
        {
            shape[d] = BinaryPrimitives.ReadInt32BigEndian(dims.AsSpan(4 * d));
            if (shape[d] < 0) throw new InputDataException($"{source}: IDX dimension {d} is negative ({shape[d]}).", source);
            if (shape[d] != 0 && count > Array.MaxLength / shape[d] / size)
                throw new InputDataException($"{source}: IDX shape {HostTensor.FormatShape(shape[..(d + 1)])}… of {type} is larger than Whittle reads into memory ({Array.MaxLength} bytes).", source);
            count *= shape[d];
        }
        long dataBytes = count * size, expected = 4 + 4L * rank + dataBytes;
        long? actual = available ?? null;
        if (inflated is { } isize && (uint)expected != isize)
            throw new InputDataException($"{source}: the header declares shape {HostTensor.FormatShape(shape)} of {type} ({expected} bytes), but the gzip data inflates to "
                + $"{isize} bytes (mod 4 GiB); a truncated or altered file.", source);
        if (actual is { } a && a != expected)
            throw new InputDataException(
                a < expected
                    ? $"{source}: truncated IDX data: shape {HostTensor.FormatShape(shape)} of {type} needs {expected} bytes, the file has {a}."
                    : $"{source}: {a - expected} trailing bytes after the IDX data (shape {HostTensor.FormatShape(shape)} of {type} takes {expected} bytes).",
                source);
        var raw = new byte[dataBytes];
        got = body.ReadAtLeast(raw, raw.Length, throwOnEndOfStream: false);
        if (got < raw.Length)
            throw new InputDataException($"{source}: truncated IDX data: shape {HostTensor.FormatShape(shape)} of {type} needs {expected} bytes, the data ends after {4 + 4 * rank + got}.", source);
        if (body.ReadByte() != -1)
            throw new InputDataException($"{source}: trailing bytes after the IDX data (shape {HostTensor.FormatShape(shape)} of {type} takes {expected} bytes).", source);
        var values = new double[count];
        var data = raw.AsSpan();
        for (int i = 0; i < values.Length; i++)
        {
            var e = data.Slice(i * size, size);
            values[i] = type switch
            {
                IdxElementType.UInt8 => e[0],
                IdxElementType.Int8 => (sbyte)e[0],
                IdxElementType.Int16 => BinaryPrimitives.ReadInt16BigEndian(e),
                IdxElementType.Int32 => BinaryPrimitives.ReadInt32BigEndian(e),
                IdxElementType.Float32 => BinaryPrimitives.ReadSingleBigEndian(e),
                _ => BinaryPrimitives.ReadDoubleBigEndian(e),
            };
        }
        return new IdxArray(type, shape, values);
    }

    /// <summary>
    /// Writes <paramref name="values"/> as an IDX file of the given element type and shape, gzip-compressed when
    /// <paramref name="gzip"/> is set. Values are converted to the element type (integers must be exact and in range).
    /// </summary>
    /// <exception cref="ArgumentException">The shape is empty or does not hold <c>values.Length</c> elements, or a value
    /// does not fit an integer element type.</exception>
    public static void Write(string path, IdxElementType type, ReadOnlySpan<int> shape, ReadOnlySpan<double> values, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (shape.Length is 0 or > 255) ThrowHelper.Argument(nameof(shape), $"An IDX array has 1 to 255 dimensions, not {shape.Length}.");
        long count = 1;
        foreach (int d in shape) count *= d;
        if (count != values.Length) ThrowHelper.Argument(nameof(values), $"Shape {HostTensor.FormatShape(shape.ToArray())} holds {count} elements, got {values.Length}.");
        int size = SizeOf(type);
        var bytes = new byte[4 + 4 * shape.Length + values.Length * size];
        bytes[2] = (byte)type;
        bytes[3] = (byte)shape.Length;
        for (int d = 0; d < shape.Length; d++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), shape[d]);
        var data = bytes.AsSpan(4 + 4 * shape.Length);
        for (int i = 0; i < values.Length; i++)
        {
            var e = data.Slice(i * size, size);
            double v = values[i];
            switch (type)
            {
                case IdxElementType.UInt8: e[0] = checked((byte)Integer(v, byte.MinValue, byte.MaxValue)); break;
                case IdxElementType.Int8: e[0] = unchecked((byte)checked((sbyte)Integer(v, sbyte.MinValue, sbyte.MaxValue))); break;
                case IdxElementType.Int16: BinaryPrimitives.WriteInt16BigEndian(e, (short)Integer(v, short.MinValue, short.MaxValue)); break;
                case IdxElementType.Int32: BinaryPrimitives.WriteInt32BigEndian(e, (int)Integer(v, int.MinValue, int.MaxValue)); break;
                case IdxElementType.Float32: BinaryPrimitives.WriteSingleBigEndian(e, (float)v); break;
                default: BinaryPrimitives.WriteDoubleBigEndian(e, v); break;
            }
        }
        using var file = File.Create(path);
        if (gzip)
        {
            using var gz = new GZipStream(file, CompressionLevel.Optimal);
            gz.Write(bytes);
        }
        else
        {
            file.Write(bytes);
        }
    }

    /// <summary>
    /// Reads an IDX image file as a float32 tensor of the same shape (<c>[N, rows, cols]</c> for MNIST). Unsigned bytes
    /// are divided by 255 and signed bytes, shorts and ints by their largest positive value, so non-negative pixel data
    /// lands in [0, 1]; float and double files are taken as stored. Then, when <paramref name="mean"/> and
    /// <paramref name="std"/> are given, each value becomes (x − mean) / std.
    /// </summary>
    /// <exception cref="InputDataException">The file cannot be read as IDX.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="std"/> is not positive, or only one of mean and std is given.</exception>
    public static HostTensor ReadImages(string path, float? mean = null, float? std = null)
    {
        if (mean.HasValue != std.HasValue) ThrowHelper.ArgumentOutOfRange(nameof(std), std, "mean and std given together");
        if (std is { } s && !(s > 0)) ThrowHelper.ArgumentOutOfRange(nameof(std), s, "a positive standard deviation");
        var array = Read(path);
        double scale = array.ElementType switch
        {
            IdxElementType.UInt8 => byte.MaxValue,
            IdxElementType.Int8 => sbyte.MaxValue,
            IdxElementType.Int16 => short.MaxValue,
            IdxElementType.Int32 => int.MaxValue,
            _ => 1,
        };
        float m = mean ?? 0, sd = std ?? 1;
        var data = new float[array.Values.Length];
        for (int i = 0; i < data.Length; i++) data[i] = ((float)(array.Values[i] / scale) - m) / sd;
        return HostTensor.Float(data, [.. array.Shape]);
    }

    /// <summary>Reads an IDX label file (integer element type, any rank, usually <c>[N]</c>) as an int64 tensor.</summary>
    /// <exception cref="InputDataException">The file cannot be read as IDX, or holds floating-point values.</exception>
    public static HostTensor ReadLabels(string path)
    {
        var array = Read(path);
        if (array.ElementType is IdxElementType.Float32 or IdxElementType.Float64)
            throw new InputDataException($"{path}: labels must be integers, but the IDX file holds {array.ElementType} values.", path);
        return HostTensor.Int64([.. array.Values.Select(v => (long)v)], [.. array.Shape]);
    }

    /// <summary>
    /// An IDX image file as a dataset for a single-input model: the images (see <see cref="ReadImages"/>) under
    /// <paramref name="inputName"/>. Pass <c>reshapeSamples: true</c> to <see cref="InputDataset.Bind"/> to feed
    /// <c>[N, 28, 28]</c> images to an input declared <c>[N, 1, 28, 28]</c> or <c>[N, 784]</c>.
    /// </summary>
    public static InputDataset LoadImages(string path, string inputName, float? mean = null, float? std = null)
    {
        ArgumentNullException.ThrowIfNull(inputName);
        return new InputDataset(new InputBatch(inputName, ReadImages(path, mean, std), path), path);
    }

    private static long Integer(double v, long min, long max)
    {
        if (v != Math.Floor(v) || v < min || v > max) ThrowHelper.Argument(nameof(v), $"{v:R} is not an integer in [{min}, {max}].");
        return (long)v;
    }

    private static int SizeOf(IdxElementType type) => type switch
    {
        IdxElementType.UInt8 or IdxElementType.Int8 => 1,
        IdxElementType.Int16 => 2,
        IdxElementType.Int32 or IdxElementType.Float32 => 4,
        _ => 8,
    };
}
