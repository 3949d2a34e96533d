using Google.Protobuf;
using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>
/// An external data file being written: tensors are appended one after another (large ones page-aligned, so ONNX
/// Runtime can map them), and each tensor message is rewritten to point at its bytes.
/// </summary>
internal sealed class ExternalDataStream : IDisposable
{
    private readonly FileStream _stream;

    /// <summary>Creates <paramref name="path"/> (which must not exist); tensors will name <paramref name="location"/> as their file.</summary>
    public ExternalDataStream(string path, string location)
    {
        _stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 20);
        Location = location;
    }

    /// <summary>The file name tensors record (relative to the model's folder).</summary>
    public string Location { get; }

    /// <summary>Bytes written so far.</summary>
    public long Length => _stream.Position;

    /// <summary>Appends <paramref name="source"/>'s bytes and makes <paramref name="target"/> (the same tensor, or a copy of it) point at them.</summary>
    public void Append(OnnxTensor source, TensorProto target)
    {
        long offset = Align(source.ByteLength);
        source.CopyTo(_stream);
        _stream.Flush(); // readable at once, by Whittle and by ONNX Runtime
        Point(target, offset, source.ByteLength);
    }

    /// <summary>Appends <paramref name="bytes"/> and makes <paramref name="target"/> point at them.</summary>
    public void Append(ReadOnlySpan<byte> bytes, TensorProto target)
    {
        long offset = Align(bytes.Length);
        _stream.Write(bytes);
        _stream.Flush();
        Point(target, offset, bytes.Length);
    }

    /// <summary>Flushes everything to disk.</summary>
    public void Flush() => _stream.Flush(flushToDisk: true);

    public void Dispose() => _stream.Dispose();

    private long Align(long length)
    {
        long alignment = length >= 1 << 16 ? 4096 : 64;
        long offset = (_stream.Position + alignment - 1) / alignment * alignment;
        if (offset > _stream.Position) _stream.Write(new byte[offset - _stream.Position]);
        return offset;
    }

    private void Point(TensorProto p, long offset, long length)
    {
        ClearData(p);
        p.ExternalData.Add(new ExternalDataInfo(Location, offset, length).ToEntries());
        p.DataLocation = TensorProto.Types.DataLocation.External;
    }

    /// <summary>Removes every kind of data a tensor message may hold.</summary>
    internal static void ClearData(TensorProto p)
    {
        p.ClearRawData();
        p.FloatData.Clear();
        p.Int32Data.Clear();
        p.Int64Data.Clear();
        p.DoubleData.Clear();
        p.Uint64Data.Clear();
        p.ExternalData.Clear();
    }

    /// <summary>Puts <paramref name="bytes"/> back inline in <paramref name="p"/>.</summary>
    internal static void Inline(TensorProto p, byte[] bytes)
    {
        ClearData(p);
        p.ClearDataLocation();
        p.RawData = UnsafeByteOperations.UnsafeWrap(bytes);
    }
}
