namespace Whittle.Onnx;

/// <summary>Element types of ONNX tensors (the values of <c>TensorProto.DataType</c>).</summary>
public enum OnnxDataType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>32-bit IEEE float.</summary>
    Float = 1,
    /// <summary>Unsigned 8-bit integer.</summary>
    UInt8 = 2,
    /// <summary>Signed 8-bit integer.</summary>
    Int8 = 3,
    /// <summary>Unsigned 16-bit integer.</summary>
    UInt16 = 4,
    /// <summary>Signed 16-bit integer.</summary>
    Int16 = 5,
    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 6,
    /// <summary>Signed 64-bit integer.</summary>
    Int64 = 7,
    /// <summary>UTF-8 string (no fixed size; held in <c>string_data</c>).</summary>
    String = 8,
    /// <summary>Boolean, one byte.</summary>
    Bool = 9,
    /// <summary>16-bit IEEE float.</summary>
    Float16 = 10,
    /// <summary>64-bit IEEE float.</summary>
    Double = 11,
    /// <summary>Unsigned 32-bit integer.</summary>
    UInt32 = 12,
    /// <summary>Unsigned 64-bit integer.</summary>
    UInt64 = 13,
    /// <summary>Complex number of two 32-bit floats.</summary>
    Complex64 = 14,
    /// <summary>Complex number of two 64-bit floats.</summary>
    Complex128 = 15,
    /// <summary>Brain float: the upper 16 bits of a 32-bit float.</summary>
    BFloat16 = 16,
    /// <summary>8-bit float, 4 exponent and 3 mantissa bits, finite only.</summary>
    Float8E4M3FN = 17,
    /// <summary>8-bit float, 4 exponent and 3 mantissa bits, finite only, no negative zero.</summary>
    Float8E4M3FNUZ = 18,
    /// <summary>8-bit float, 5 exponent and 2 mantissa bits.</summary>
    Float8E5M2 = 19,
    /// <summary>8-bit float, 5 exponent and 2 mantissa bits, finite only, no negative zero.</summary>
    Float8E5M2FNUZ = 20,
    /// <summary>Unsigned 4-bit integer, two per byte.</summary>
    UInt4 = 21,
    /// <summary>Signed 4-bit integer, two per byte.</summary>
    Int4 = 22,
    /// <summary>4-bit float, two per byte.</summary>
    Float4E2M1 = 23,
}

/// <summary>Sizes and names of <see cref="OnnxDataType"/> values.</summary>
public static class OnnxDataTypes
{
    /// <summary>
    /// Bits per element of <paramref name="type"/> in <c>raw_data</c> (4 for the packed 4-bit types),
    /// or 0 where the type has no fixed size (string, undefined or unknown to Whittle).
    /// </summary>
    public static int BitsPerElement(OnnxDataType type) => type switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 32,
        OnnxDataType.Double or OnnxDataType.Int64 or OnnxDataType.UInt64 or OnnxDataType.Complex64 => 64,
        OnnxDataType.Complex128 => 128,
        OnnxDataType.UInt8 or OnnxDataType.Int8 or OnnxDataType.Bool or OnnxDataType.Float8E4M3FN or OnnxDataType.Float8E4M3FNUZ
            or OnnxDataType.Float8E5M2 or OnnxDataType.Float8E5M2FNUZ => 8,
        OnnxDataType.UInt16 or OnnxDataType.Int16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 => 16,
        OnnxDataType.UInt4 or OnnxDataType.Int4 or OnnxDataType.Float4E2M1 => 4,
        _ => 0,
    };

    /// <summary>Bytes that <paramref name="elements"/> elements of <paramref name="type"/> take in <c>raw_data</c>, or −1 where the type has no fixed size.</summary>
    public static long ByteLength(OnnxDataType type, long elements)
    {
        int bits = BitsPerElement(type);
        return bits == 0 ? -1 : (elements * bits + 7) / 8;
    }

    /// <summary>Whether values of <paramref name="type"/> convert to and from <see cref="float"/> and <see cref="double"/> (<see cref="OnnxTensor.ToArray{T}"/>, <see cref="OnnxTensors.FromArray{T}"/>).</summary>
    public static bool IsConvertible(OnnxDataType type) => type is OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16
        or OnnxDataType.Double or OnnxDataType.Int8 or OnnxDataType.Int16 or OnnxDataType.Int32 or OnnxDataType.Int64
        or OnnxDataType.UInt8 or OnnxDataType.UInt16 or OnnxDataType.UInt32 or OnnxDataType.UInt64 or OnnxDataType.Bool;

    /// <summary>The ONNX name of <paramref name="type"/> in lower case (<c>float</c>, <c>float16</c>, …), or its number where unknown.</summary>
    public static string Name(OnnxDataType type) =>
        Enum.IsDefined(type) ? type.ToString().ToLowerInvariant() : $"data type {(int)type}";
}
