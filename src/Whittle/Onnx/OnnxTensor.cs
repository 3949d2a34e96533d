using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;
using Whittle.LinearAlgebra;
using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>
/// Read access to the data of one <see cref="TensorProto"/> of a model, wherever it is stored:
/// <c>raw_data</c>, the typed fields (<c>float_data</c>, <c>int32_data</c>, …) or an external data
/// file. External data is read only when asked for, and only the bytes asked for.
/// Bytes are in ONNX's layout: little-endian, row-major, 4-bit types packed two per byte.
/// </summary>
public sealed class OnnxTensor
{
    private const int CopyChunk = 1 << 20;
    private readonly string? _modelPath;
    private readonly string? _baseDirectory;

    internal OnnxTensor(TensorProto proto, string? modelPath, string? baseDirectory)
    {
        Proto = proto;
        _modelPath = modelPath;
        _baseDirectory = baseDirectory;
        if (ExternalDataInfo.IsExternal(proto)) External = ExternalDataInfo.Parse(proto, modelPath);
    }

    /// <summary>Read access to a tensor outside any model (a test input, a tensor built in memory).</summary>
    /// <param name="tensor">The tensor; shared, not copied.</param>
    /// <param name="baseDirectory">Where its external data file lives, if it has one.</param>
    public static OnnxTensor Of(TensorProto tensor, string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new OnnxTensor(tensor, null, baseDirectory is null ? null : Path.GetFullPath(baseDirectory));
    }

    /// <summary>The tensor message (shared, not copied).</summary>
    public TensorProto Proto { get; }

    /// <summary>The tensor's name.</summary>
    public string Name => Proto.Name;

    /// <summary>The element type.</summary>
    public OnnxDataType DataType => (OnnxDataType)Proto.DataType;

    /// <summary>The dimensions; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape => Proto.Dims;

    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Proto.Dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>Bytes of data in ONNX's raw layout, or −1 for strings and types Whittle does not know.</summary>
    public long ByteLength => OnnxDataTypes.ByteLength(DataType, ElementCount);

    /// <summary>Where the data lives when it is external, else null.</summary>
    public ExternalDataInfo? External { get; }

    /// <summary>The full path of the external data file, or null for inline data.</summary>
    public string? ExternalFilePath => External is null ? null : Path.Combine(_baseDirectory ?? "", External.Location);

    /// <summary>All bytes of the tensor (copied; for external data, read from the file).</summary>
    /// <exception cref="OnnxModelException">The data is missing, short or inconsistent with the shape.</exception>
    public byte[] ReadBytes()
    {
        long length = CheckedByteLength();
        if (length > Array.MaxLength) throw Error($"holds {length} bytes, more than one array can; read it in slices with ReadBytes(offset, destination)");
        var bytes = new byte[length];
        ReadBytes(0, bytes);
        return bytes;
    }

    /// <summary>Fills <paramref name="destination"/> with the bytes starting at <paramref name="offset"/>; for external data only that range is read.</summary>
    /// <exception cref="OnnxModelException">The data is missing, short or inconsistent with the shape.</exception>
    public void ReadBytes(long offset, Span<byte> destination)
    {
        long length = CheckedByteLength();
        if (offset < 0 || offset + destination.Length > length)
            ThrowHelper.ArgumentOutOfRange(nameof(offset), offset, $"a range inside the tensor's {length} bytes");
        if (External is null)
        {
            InlineBytes().Span.Slice((int)offset, destination.Length).CopyTo(destination);
            return;
        }
        using var handle = OpenExternal(length);
        int done = 0;
        while (done < destination.Length)
        {
            int n = RandomAccess.Read(handle, destination[done..], External.Offset + offset + done);
            if (n == 0) throw ShortFile(RandomAccess.GetLength(handle), length);
            done += n;
        }
    }

    /// <summary>Writes all bytes of the tensor to <paramref name="destination"/>, streaming external data in chunks.</summary>
    /// <exception cref="OnnxModelException">The data is missing, short or inconsistent with the shape.</exception>
    public void CopyTo(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        long length = CheckedByteLength();
        if (External is null)
        {
            destination.Write(InlineBytes().Span);
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(CopyChunk, Math.Max(length, 1)));
        try
        {
            for (long done = 0; done < length;)
            {
                int n = (int)Math.Min(buffer.Length, length - done);
                ReadBytes(done, buffer.AsSpan(0, n));
                destination.Write(buffer, 0, n);
                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The elements of a string tensor.</summary>
    public IReadOnlyList<ByteString> ReadStrings()
    {
        if (DataType != OnnxDataType.String) throw Error($"is {OnnxDataTypes.Name(DataType)}, not string");
        return Proto.StringData;
    }

    /// <summary>The elements converted to <typeparamref name="T"/>, flat in row-major order, with the shape.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <exception cref="OnnxModelException">The data is missing or short, or its type does not convert (see <see cref="OnnxDataTypes.IsConvertible"/>).</exception>
    public TensorValues<T> ToValues<T>() where T : unmanaged, IFloatingPointIeee754<T> => new(ToArray<T>(), [.. Proto.Dims]);

    /// <summary>The elements converted to <typeparamref name="T"/>, flat in row-major order.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <exception cref="OnnxModelException">The data is missing or short, or its type does not convert (see <see cref="OnnxDataTypes.IsConvertible"/>).</exception>
    public T[] ToArray<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!OnnxDataTypes.IsConvertible(DataType))
            throw Error($"is {OnnxDataTypes.Name(DataType)}, which does not convert to {typeof(T).Name}");
        long count = ElementCount;
        if (count > Array.MaxLength) throw Error($"has {count} elements, more than one array can hold");
        var values = new T[count];
        var bytes = ReadBytes();
        TensorConversion.ToFloating(DataType, bytes, values.AsSpan());
        return values;
    }

    /// <summary>
    /// The tensor as a matrix: a rank-2 tensor as is; higher ranks with the first dimension as rows and
    /// the rest flattened into columns (a convolution kernel [out, in, kh, kw] becomes out × in·kh·kw);
    /// a vector as one row.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    public Matrix<T> ToMatrix<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var dims = Proto.Dims;
        long rows = dims.Count >= 2 ? dims[0] : 1;
        long cols = dims.Count >= 2 ? ElementCount / Math.Max(rows, 1) : ElementCount;
        if (rows > int.MaxValue || cols > int.MaxValue) throw Error($"of shape [{string.Join(", ", dims)}] is too large for a matrix");
        return new Matrix<T>((int)rows, (int)cols, ToArray<T>());
    }

    private long CheckedByteLength()
    {
        if (Proto.Dims.Any(d => d < 0)) throw Error($"has a negative dimension in [{string.Join(", ", Proto.Dims)}]");
        long count = 1;
        foreach (long d in Proto.Dims)
            if (d != 0 && count > (long.MaxValue >> 4) / d) throw Error($"has shape [{string.Join(", ", Proto.Dims)}], too many elements to address");
            else count *= d;
        long length = ByteLength;
        if (length < 0) throw Error($"is {OnnxDataTypes.Name(DataType)}, which has no fixed-size byte layout");
        if (External?.Length is { } stated && stated != length)
            throw Error($"states {stated} bytes of external data in '{External.Location}', but shape [{string.Join(", ", Proto.Dims)}] of {OnnxDataTypes.Name(DataType)} needs {length}");
        if (External is null)
        {
            int inline = InlineLength();
            if (inline != length)
                throw Error($"holds {inline} bytes of data, but shape [{string.Join(", ", Proto.Dims)}] of {OnnxDataTypes.Name(DataType)} needs {length}");
        }
        return length;
    }

    /// <summary>Checks that inline data has the bytes the type and shape need (strings: one element per value).</summary>
    internal void CheckInlineData()
    {
        if (DataType == OnnxDataType.String)
        {
            if (Proto.Dims.Any(d => d < 0)) throw Error($"has a negative dimension in [{string.Join(", ", Proto.Dims)}]");
            if (Proto.StringData.Count != ElementCount) throw Error($"holds {Proto.StringData.Count} strings, but shape [{string.Join(", ", Proto.Dims)}] needs {ElementCount}");
            return;
        }
        CheckedByteLength();
    }

    /// <summary>Checks that the external file exists and holds the tensor's bytes, without reading them.</summary>
    internal void CheckExternalData()
    {
        if (External is null) return;
        long length = CheckedByteLength();
        using var handle = OpenExternal(length);
    }

    private SafeFileHandle OpenExternal(long length)
    {
        if (_baseDirectory is null)
            throw Error($"keeps its data in '{External!.Location}', but the model was not loaded from a file, so there is no folder to find it in");
        string path = ExternalFilePath!;
        var kind = IO.FileChecks.Kind(path);
        if (kind == IO.FileKind.Missing)
            throw new OnnxModelException($"{OnnxModelException.Describe(_modelPath)}: external data file '{path}' of tensor '{Name}' is missing.", path, Name);
        if (kind != IO.FileKind.Regular)
            throw new OnnxModelException($"{OnnxModelException.Describe(_modelPath)}: external data '{path}' of tensor '{Name}' is not a regular file ({kind}).", path, Name);
        // A link may not lead out of the model's folder (as ONNX Runtime requires); one into the same folder as the
        // model's own real file (a Hugging Face cache's blobs/) is fine.
        string realModelFolder = Path.GetDirectoryName(IO.FileChecks.RealPath(_modelPath ?? Path.Combine(_baseDirectory, "model.onnx")))!;
        if (!IO.FileChecks.IsInside(path, _baseDirectory) && !IO.FileChecks.IsInside(path, realModelFolder))
            throw new OnnxModelException($"{OnnxModelException.Describe(_modelPath)}: external data '{External!.Location}' of tensor '{Name}' resolves to '{IO.FileChecks.RealPath(path)}', "
                + "outside the model's folder (through a symbolic link); copy the data file into the folder.", path, Name);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = RandomAccess.GetLength(handle);
        if (fileLength < External!.Offset + length)
        {
            handle.Dispose();
            throw ShortFile(fileLength, length);
        }
        return handle;
    }

    private OnnxModelException ShortFile(long fileLength, long length) => new(
        $"{OnnxModelException.Describe(_modelPath)}: external data file '{ExternalFilePath}' is short: it holds {fileLength} bytes, "
        + $"but tensor '{Name}' needs bytes {External!.Offset}..{External.Offset + length}.", ExternalFilePath, Name);

    private OnnxModelException Error(string what) =>
        new($"{OnnxModelException.Describe(_modelPath)}: tensor '{Name}' {what}.", _modelPath, Name);

    private int InlineLength()
    {
        var p = Proto;
        if (p.HasRawData) return p.RawData.Length;
        return DataType switch
        {
            OnnxDataType.Float or OnnxDataType.Complex64 => 4 * p.FloatData.Count,
            OnnxDataType.Double or OnnxDataType.Complex128 => 8 * p.DoubleData.Count,
            OnnxDataType.Int64 => 8 * p.Int64Data.Count,
            OnnxDataType.UInt64 => 8 * p.Uint64Data.Count,
            OnnxDataType.UInt32 => 4 * p.Uint64Data.Count,
            OnnxDataType.Int32 => 4 * p.Int32Data.Count,
            OnnxDataType.Int16 or OnnxDataType.UInt16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 => 2 * p.Int32Data.Count,
            _ => p.Int32Data.Count, // one byte per entry: 8-bit types, bool, and 4-bit types packed two per entry
        };
    }

    /// <summary>The inline data as raw bytes: <c>raw_data</c> itself, or the typed field converted.</summary>
    internal ReadOnlyMemory<byte> InlineBytes()
    {
        var p = Proto;
        if (p.HasRawData) return p.RawData.Memory;
        var bytes = new byte[InlineLength()];
        var span = bytes.AsSpan();
        switch (DataType)
        {
            case OnnxDataType.Float or OnnxDataType.Complex64:
                for (int i = 0; i < p.FloatData.Count; i++) BinaryPrimitives.WriteSingleLittleEndian(span[(4 * i)..], p.FloatData[i]);
                break;
            case OnnxDataType.Double or OnnxDataType.Complex128:
                for (int i = 0; i < p.DoubleData.Count; i++) BinaryPrimitives.WriteDoubleLittleEndian(span[(8 * i)..], p.DoubleData[i]);
                break;
            case OnnxDataType.Int64:
                for (int i = 0; i < p.Int64Data.Count; i++) BinaryPrimitives.WriteInt64LittleEndian(span[(8 * i)..], p.Int64Data[i]);
                break;
            case OnnxDataType.UInt64:
                for (int i = 0; i < p.Uint64Data.Count; i++) BinaryPrimitives.WriteUInt64LittleEndian(span[(8 * i)..], p.Uint64Data[i]);
                break;
            case OnnxDataType.UInt32:
                for (int i = 0; i < p.Uint64Data.Count; i++) BinaryPrimitives.WriteUInt32LittleEndian(span[(4 * i)..], (uint)p.Uint64Data[i]);
                break;
            case OnnxDataType.Int32:
                MemoryMarshal.AsBytes(p.Int32Data.ToArray().AsSpan()).CopyTo(span);
                if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Whittle reads ONNX tensors on little-endian machines only.");
                break;
            case OnnxDataType.Int16 or OnnxDataType.UInt16 or OnnxDataType.Float16 or OnnxDataType.BFloat16:
                for (int i = 0; i < p.Int32Data.Count; i++) BinaryPrimitives.WriteUInt16LittleEndian(span[(2 * i)..], (ushort)p.Int32Data[i]);
                break;
            default:
                for (int i = 0; i < p.Int32Data.Count; i++) span[i] = (byte)p.Int32Data[i];
                break;
        }
        return bytes;
    }
}
