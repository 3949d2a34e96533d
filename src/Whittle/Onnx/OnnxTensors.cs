using System.Numerics;
using Google.Protobuf;
using Whittle.LinearAlgebra;
using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>Builds <see cref="TensorProto"/> initializers (data in <c>raw_data</c>) from Whittle's arrays and matrices.</summary>
public static class OnnxTensors
{
    /// <summary>
    /// A tensor of <paramref name="dataType"/> holding <paramref name="values"/> converted (see
    /// <see cref="OnnxDataTypes.IsConvertible"/>; floating types round to nearest even, integers also saturate).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    public static TensorProto FromArray<T>(string name, ReadOnlySpan<T> values, IReadOnlyList<long> shape, OnnxDataType dataType)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (!OnnxDataTypes.IsConvertible(dataType))
            ThrowHelper.Argument(nameof(dataType), $"Tensor '{name}': {OnnxDataTypes.Name(dataType)} cannot be written from {typeof(T).Name}.");
        long count = shape.Aggregate(1L, (a, d) => a * d);
        if (shape.Any(d => d < 0) || count != values.Length)
            ThrowHelper.ShapeMismatch(nameof(values), $"Tensor '{name}'", $"[{string.Join(", ", shape)}] ({count} elements)", $"{values.Length} values");
        var bytes = new byte[OnnxDataTypes.ByteLength(dataType, count)];
        TensorConversion.FromFloating(dataType, values, bytes);
        return FromBytes(name, dataType, shape, bytes);
    }

    /// <summary>
    /// A tensor holding <paramref name="matrix"/> converted to <paramref name="dataType"/>, of shape
    /// [rows, cols] or <paramref name="shape"/> (any shape with rows·cols elements, e.g. a convolution kernel).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    public static TensorProto FromMatrix<T>(string name, Matrix<T> matrix, OnnxDataType dataType, IReadOnlyList<long>? shape = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(matrix);
        return FromArray<T>(name, matrix.AsSpan(), shape ?? [matrix.Rows, matrix.Cols], dataType);
    }

    /// <summary>A tensor whose <c>raw_data</c> is <paramref name="data"/> (ONNX layout), wrapped without copying: do not change it afterwards.</summary>
    public static TensorProto FromBytes(string name, OnnxDataType dataType, IReadOnlyList<long> shape, ReadOnlyMemory<byte> data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        long expected = OnnxDataTypes.ByteLength(dataType, shape.Aggregate(1L, (a, d) => a * d));
        if (expected != data.Length)
            ThrowHelper.ShapeMismatch(nameof(data), $"Tensor '{name}' of {OnnxDataTypes.Name(dataType)}", $"[{string.Join(", ", shape)}] ({expected} bytes)", $"{data.Length} bytes");
        var tensor = new TensorProto { Name = name, DataType = (int)dataType, RawData = UnsafeByteOperations.UnsafeWrap(data) };
        tensor.Dims.AddRange(shape);
        return tensor;
    }
}
