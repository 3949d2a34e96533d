using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Whittle.IO;

/// <summary>A tensor to write into a safetensors file: its bytes in the file's layout (little-endian, row-major).</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Data">Exactly dtype size × element count bytes.</param>
public sealed record SafeTensorData(string Name, SafeTensorsDType DType, IReadOnlyList<long> Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>A float32 tensor holding <paramref name="values"/> (copied), stored as <paramref name="dtype"/> (F32, F16 or BF16, rounded to nearest even).</summary>
    public static SafeTensorData FromFloat32(string name, ReadOnlySpan<float> values, IReadOnlyList<long> shape, SafeTensorsDType dtype = SafeTensorsDType.F32)
    {
        byte[] bytes;
        switch (dtype)
        {
            case SafeTensorsDType.F32:
                bytes = MemoryMarshal.AsBytes(values).ToArray();
                break;
            case SafeTensorsDType.F16:
                bytes = new byte[2 * values.Length];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(2 * i), (Half)values[i]);
                break;
            case SafeTensorsDType.BF16:
                bytes = new byte[2 * values.Length];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), ToBFloat16(values[i]));
                break;
            default:
                ThrowHelper.Argument(nameof(dtype), $"Tensor '{name}': float32 values are written as F32, F16 or BF16, not {SafeTensorsDTypes.Name(dtype)}.");
                return null!;
        }
        return new SafeTensorData(name, dtype, shape, bytes);
    }

    /// <summary>Rounds a float32 to bfloat16 (nearest even; NaN stays NaN).</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}

/// <summary>Writes safetensors files atomically (temporary file, then rename), header padded to 8 bytes as the reference writer does.</summary>
public static class SafeTensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (data in the given order) and <paramref name="metadata"/> to <paramref name="path"/>.</summary>
    /// <exception cref="ArgumentException">A name repeats, or a tensor's data does not match its dtype and shape.</exception>
    public static void Write(string path, IReadOnlyList<SafeTensorData> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Select(t => t.Name).Distinct().Count() != tensors.Count) ThrowHelper.Argument(nameof(tensors), "Tensor names must be unique.");
        if (tensors.Any(t => t.Name == "__metadata__")) ThrowHelper.Argument(nameof(tensors), "'__metadata__' is reserved for the header's metadata.");
        var layout = new List<(string, SafeTensorsDType, IReadOnlyList<long>, long, long)>();
        long offset = 0;
        foreach (var t in tensors)
        {
            long expected = t.Shape.Aggregate(1L, (a, d) => a * d) * SafeTensorsDTypes.Size(t.DType);
            if (t.Shape.Any(d => d < 0) || expected != t.Data.Length)
                ThrowHelper.ShapeMismatch(nameof(tensors), $"Tensor '{t.Name}' of {SafeTensorsDTypes.Name(t.DType)}", $"[{string.Join(", ", t.Shape)}] ({expected} bytes)", $"{t.Data.Length} bytes");
            layout.Add((t.Name, t.DType, t.Shape, offset, offset + t.Data.Length));
            offset += t.Data.Length;
        }
        var header = Encoding.UTF8.GetBytes(SafeTensorsFile.HeaderJson(layout, metadata));
        int padded = (header.Length + 7) / 8 * 8;
        AtomicFile.Write(path, stream =>
        {
            Span<byte> n = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(n, (ulong)padded);
            stream.Write(n);
            stream.Write(header);
            for (int i = header.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var t in tensors) stream.Write(t.Data.Span);
        });
    }
}
