namespace Whittle.IO;

/// <summary>
/// Element types Whittle reads from and writes to NumPy <c>.npy</c> files. Each corresponds to one
/// NumPy dtype and one .NET element type; files may store them in either byte order, and arrays in
/// memory always hold native-order values.
/// </summary>
public enum NpyDType
{
    /// <summary>IEEE half precision, NumPy <c>float16</c> (<c>'&lt;f2'</c>), .NET <see cref="Half"/>.</summary>
    Float16,

    /// <summary>IEEE single precision, NumPy <c>float32</c> (<c>'&lt;f4'</c>), .NET <see cref="float"/>.</summary>
    Float32,

    /// <summary>IEEE double precision, NumPy <c>float64</c> (<c>'&lt;f8'</c>), .NET <see cref="double"/>.</summary>
    Float64,

    /// <summary>Signed 8-bit integer, NumPy <c>int8</c> (<c>'|i1'</c>), .NET <see cref="sbyte"/>.</summary>
    Int8,

    /// <summary>Signed 16-bit integer, NumPy <c>int16</c> (<c>'&lt;i2'</c>), .NET <see cref="short"/>.</summary>
    Int16,

    /// <summary>Signed 32-bit integer, NumPy <c>int32</c> (<c>'&lt;i4'</c>), .NET <see cref="int"/>.</summary>
    Int32,

    /// <summary>Signed 64-bit integer, NumPy <c>int64</c> (<c>'&lt;i8'</c>), .NET <see cref="long"/>.</summary>
    Int64,

    /// <summary>Unsigned 8-bit integer, NumPy <c>uint8</c> (<c>'|u1'</c>), .NET <see cref="byte"/>.</summary>
    UInt8,

    /// <summary>Unsigned 16-bit integer, NumPy <c>uint16</c> (<c>'&lt;u2'</c>), .NET <see cref="ushort"/>.</summary>
    UInt16,

    /// <summary>Boolean stored as one byte (0 or 1), NumPy <c>bool</c> (<c>'|b1'</c>), .NET <see cref="bool"/>.</summary>
    Bool,
}

/// <summary>Facts about each <see cref="NpyDType"/>: size, .NET type, NumPy descriptor.</summary>
internal static class NpyDTypes
{
    /// <summary>The descriptors a reader accepts, for error messages.</summary>
    public const string Supported =
        "'<f2', '<f4', '<f8', '|i1', '<i2', '<i4', '<i8', '|u1', '<u2', '|b1' (and their '>' big-endian forms)";

    public static int SizeOf(NpyDType dtype) => dtype switch
    {
        NpyDType.Float16 or NpyDType.Int16 or NpyDType.UInt16 => 2,
        NpyDType.Float32 or NpyDType.Int32 => 4,
        NpyDType.Float64 or NpyDType.Int64 => 8,
        NpyDType.Int8 or NpyDType.UInt8 or NpyDType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Expected a defined NpyDType."),
    };

    public static Type ElementType(NpyDType dtype) => dtype switch
    {
        NpyDType.Float16 => typeof(Half),
        NpyDType.Float32 => typeof(float),
        NpyDType.Float64 => typeof(double),
        NpyDType.Int8 => typeof(sbyte),
        NpyDType.Int16 => typeof(short),
        NpyDType.Int32 => typeof(int),
        NpyDType.Int64 => typeof(long),
        NpyDType.UInt8 => typeof(byte),
        NpyDType.UInt16 => typeof(ushort),
        NpyDType.Bool => typeof(bool),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Expected a defined NpyDType."),
    };

    public static bool TryFromElementType(Type type, out NpyDType dtype)
    {
        foreach (var d in Enum.GetValues<NpyDType>())
            if (ElementType(d) == type) { dtype = d; return true; }
        dtype = default;
        return false;
    }

    public static bool IsInteger(NpyDType dtype) =>
        dtype is NpyDType.Int8 or NpyDType.Int16 or NpyDType.Int32 or NpyDType.Int64 or NpyDType.UInt8 or NpyDType.UInt16;

    /// <summary>The little-endian (or byte-order-free) descriptor written to files.</summary>
    public static string Descriptor(NpyDType dtype) => dtype switch
    {
        NpyDType.Float16 => "<f2",
        NpyDType.Float32 => "<f4",
        NpyDType.Float64 => "<f8",
        NpyDType.Int8 => "|i1",
        NpyDType.Int16 => "<i2",
        NpyDType.Int32 => "<i4",
        NpyDType.Int64 => "<i8",
        NpyDType.UInt8 => "|u1",
        NpyDType.UInt16 => "<u2",
        NpyDType.Bool => "|b1",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Expected a defined NpyDType."),
    };

    /// <summary>Parses a NumPy descriptor such as <c>'&lt;f4'</c>; byte order '=' means native.</summary>
    public static bool TryParse(string descr, out NpyDType dtype, out bool bigEndian)
    {
        dtype = default;
        bigEndian = false;
        if (descr.Length < 3) return false;
        char order = descr[0];
        if (order is not ('<' or '>' or '|' or '=')) return false;
        bigEndian = order == '>' || (order == '=' && !BitConverter.IsLittleEndian);
        switch (descr.AsSpan(1))
        {
            case "f2": dtype = NpyDType.Float16; break;
            case "f4": dtype = NpyDType.Float32; break;
            case "f8": dtype = NpyDType.Float64; break;
            case "i1": dtype = NpyDType.Int8; break;
            case "i2": dtype = NpyDType.Int16; break;
            case "i4": dtype = NpyDType.Int32; break;
            case "i8": dtype = NpyDType.Int64; break;
            case "u1": dtype = NpyDType.UInt8; break;
            case "u2": dtype = NpyDType.UInt16; break;
            case "b1": dtype = NpyDType.Bool; break;
            default: return false;
        }
        // '|' (not applicable) only makes sense for one-byte types; NumPy never writes it otherwise.
        if (order == '|' && SizeOf(dtype) != 1) return false;
        return true;
    }
}
