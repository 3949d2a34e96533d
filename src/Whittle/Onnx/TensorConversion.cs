using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Whittle.Onnx;

/// <summary>
/// Element conversions between ONNX's little-endian tensor bytes and <see cref="float"/> or <see cref="double"/>.
/// Floating types round to nearest even; integer types round to nearest even and saturate (NaN becomes 0);
/// bool is 1 for every non-zero value.
/// </summary>
internal static class TensorConversion
{
    public static void ToFloating<T>(OnnxDataType type, ReadOnlySpan<byte> src, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float) && type == OnnxDataType.Float)
        {
            MemoryMarshal.Cast<byte, float>(src).CopyTo(MemoryMarshal.Cast<T, float>(dst));
            return;
        }
        if (typeof(T) == typeof(double) && type == OnnxDataType.Double)
        {
            MemoryMarshal.Cast<byte, double>(src).CopyTo(MemoryMarshal.Cast<T, double>(dst));
            return;
        }
        if (typeof(T) == typeof(float) && type is OnnxDataType.BFloat16 or OnnxDataType.Float16 && BitConverter.IsLittleEndian)
        {
            // 16-bit weights (a 7 B model's every matrix): a tight loop, not a switch per element.
            var to = MemoryMarshal.Cast<T, float>(dst);
            if (type == OnnxDataType.BFloat16)
            {
                var bits = MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < to.Length; i++) to[i] = BFloat16ToSingle(bits[i]);
            }
            else
            {
                var halves = MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < to.Length; i++) to[i] = (float)halves[i];
            }
            return;
        }
        for (int i = 0; i < dst.Length; i++)
            dst[i] = T.CreateTruncating(Read(type, src, i));
    }

    public static void FromFloating<T>(OnnxDataType type, ReadOnlySpan<T> src, Span<byte> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float) && type == OnnxDataType.Float)
        {
            MemoryMarshal.Cast<T, byte>(src).CopyTo(dst);
            return;
        }
        if (typeof(T) == typeof(double) && type == OnnxDataType.Double)
        {
            MemoryMarshal.Cast<T, byte>(src).CopyTo(dst);
            return;
        }
        if (typeof(T) == typeof(float) && type is OnnxDataType.BFloat16 or OnnxDataType.Float16 && BitConverter.IsLittleEndian)
        {
            var from = MemoryMarshal.Cast<T, float>(src);
            if (type == OnnxDataType.BFloat16)
            {
                var bits = MemoryMarshal.Cast<byte, ushort>(dst);
                for (int i = 0; i < from.Length; i++) bits[i] = SingleToBFloat16(from[i]);
            }
            else
            {
                var halves = MemoryMarshal.Cast<byte, Half>(dst);
                for (int i = 0; i < from.Length; i++) halves[i] = (Half)from[i];
            }
            return;
        }
        for (int i = 0; i < src.Length; i++)
            Write(type, dst, i, double.CreateTruncating(src[i]));
    }

    private static double Read(OnnxDataType type, ReadOnlySpan<byte> s, int i) => type switch
    {
        OnnxDataType.Float => BinaryPrimitives.ReadSingleLittleEndian(s[(4 * i)..]),
        OnnxDataType.Double => BinaryPrimitives.ReadDoubleLittleEndian(s[(8 * i)..]),
        OnnxDataType.Float16 => (double)BinaryPrimitives.ReadHalfLittleEndian(s[(2 * i)..]),
        OnnxDataType.BFloat16 => BFloat16ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(s[(2 * i)..])),
        OnnxDataType.Int8 => (sbyte)s[i],
        OnnxDataType.UInt8 => s[i],
        OnnxDataType.Bool => s[i] != 0 ? 1 : 0,
        OnnxDataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(s[(2 * i)..]),
        OnnxDataType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(s[(2 * i)..]),
        OnnxDataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(s[(4 * i)..]),
        OnnxDataType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(s[(4 * i)..]),
        OnnxDataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(s[(8 * i)..]),
        OnnxDataType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(s[(8 * i)..]),
        _ => throw new NotSupportedException($"Tensors of {OnnxDataTypes.Name(type)} do not convert to float or double."),
    };

    private static void Write(OnnxDataType type, Span<byte> d, int i, double v)
    {
        switch (type)
        {
            case OnnxDataType.Float: BinaryPrimitives.WriteSingleLittleEndian(d[(4 * i)..], (float)v); break;
            case OnnxDataType.Double: BinaryPrimitives.WriteDoubleLittleEndian(d[(8 * i)..], v); break;
            case OnnxDataType.Float16: BinaryPrimitives.WriteHalfLittleEndian(d[(2 * i)..], (Half)v); break;
            case OnnxDataType.BFloat16: BinaryPrimitives.WriteUInt16LittleEndian(d[(2 * i)..], SingleToBFloat16((float)v)); break;
            case OnnxDataType.Int8: d[i] = (byte)(sbyte)Saturate(v, sbyte.MinValue, sbyte.MaxValue); break;
            case OnnxDataType.UInt8: d[i] = (byte)Saturate(v, byte.MinValue, byte.MaxValue); break;
            case OnnxDataType.Bool: d[i] = v != 0 && !double.IsNaN(v) ? (byte)1 : (byte)0; break;
            case OnnxDataType.Int16: BinaryPrimitives.WriteInt16LittleEndian(d[(2 * i)..], (short)Saturate(v, short.MinValue, short.MaxValue)); break;
            case OnnxDataType.UInt16: BinaryPrimitives.WriteUInt16LittleEndian(d[(2 * i)..], (ushort)Saturate(v, ushort.MinValue, ushort.MaxValue)); break;
            case OnnxDataType.Int32: BinaryPrimitives.WriteInt32LittleEndian(d[(4 * i)..], (int)Saturate(v, int.MinValue, int.MaxValue)); break;
            case OnnxDataType.UInt32: BinaryPrimitives.WriteUInt32LittleEndian(d[(4 * i)..], (uint)Saturate(v, uint.MinValue, uint.MaxValue)); break;
            case OnnxDataType.Int64: BinaryPrimitives.WriteInt64LittleEndian(d[(8 * i)..], long.CreateSaturating(double.IsNaN(v) ? 0 : Math.Round(v))); break;
            case OnnxDataType.UInt64: BinaryPrimitives.WriteUInt64LittleEndian(d[(8 * i)..], ulong.CreateSaturating(double.IsNaN(v) ? 0 : Math.Round(v))); break;
            default: throw new NotSupportedException($"Tensors of {OnnxDataTypes.Name(type)} cannot be written from float or double.");
        }
    }

    private static double Saturate(double v, double min, double max) => double.IsNaN(v) ? 0 : Math.Clamp(Math.Round(v), min, max);

    /// <summary>bfloat16 bits to float: the bits are the upper half of a float's.</summary>
    public static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>float to bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN.</summary>
    public static ushort SingleToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x0040);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
