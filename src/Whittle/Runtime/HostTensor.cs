// A dense tensor in managed memory: element type, shape and a flat row-major array.
//
// Contract
//   Data.Length == product(Shape) (an empty shape is a scalar: one element). The array's CLR type
//   matches ElementType: float[] (Float), double[] (Double), long[] (Int64), int[] (Int32),
//   bool[] (Bool), byte[] (UInt8), sbyte[] (Int8). A HostTensor shares its array with whoever made it:
//   nothing in Whittle writes into an input tensor's array.
//   Axis 0 is the sample (batch) axis wherever one is needed (Rows, SampleLength, SelectRows); those
//   members refuse a scalar.
//
// Where it lives
//   Whittle.Runtime, because ONNX Runtime sessions and calibration consume it; Whittle.Data builds
//   datasets of it (Data → Runtime, never the other way).

using Whittle.Onnx;

namespace Whittle.Runtime;

/// <summary>
/// A dense row-major tensor held in a managed array: the one tensor type of Whittle — inputs and outputs of
/// <see cref="TappedSession"/>, calibration batches, and datasets (<c>Whittle.Data.InputBatch</c> maps input
/// names to them).
/// </summary>
/// <remarks>The tensor does not copy <see cref="Data"/>; Whittle never writes into an input tensor's array.</remarks>
public sealed class HostTensor
{
    private HostTensor(OnnxDataType elementType, Array data, int[] shape)
    {
        ElementType = elementType;
        Data = data;
        Shape = shape;
    }

    /// <summary>The ONNX element type.</summary>
    public OnnxDataType ElementType { get; }

    /// <summary>The flat row-major data: <c>float[]</c>, <c>double[]</c>, <c>long[]</c>, <c>int[]</c>, <c>bool[]</c>, <c>byte[]</c> or <c>sbyte[]</c> by <see cref="ElementType"/>.</summary>
    public Array Data { get; }

    /// <summary>The dimensions (non-negative; empty for a scalar). Treat as read-only.</summary>
    public int[] Shape { get; }

    /// <summary>The number of elements, the product of <see cref="Shape"/>.</summary>
    public long Length => Data.LongLength;

    /// <summary>The number of dimensions (0 for a scalar).</summary>
    public int Rank => Shape.Length;

    /// <summary>The number of samples: the size of axis 0.</summary>
    /// <exception cref="InvalidOperationException">The tensor is a scalar (no sample axis).</exception>
    public int Rows => Shape.Length > 0 ? Shape[0] : throw NoSampleAxis();

    /// <summary>The number of elements in one sample: the product of every dimension after the first.</summary>
    /// <exception cref="InvalidOperationException">The tensor is a scalar (no sample axis).</exception>
    public int SampleLength
    {
        get
        {
            if (Shape.Length == 0) throw NoSampleAxis();
            int n = 1;
            for (int i = 1; i < Shape.Length; i++) n *= Shape[i];
            return n;
        }
    }

    /// <summary>A float32 tensor over <paramref name="data"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The length is not the product of the shape, or a dimension is negative.</exception>
    public static HostTensor Float(float[] data, params int[] shape) => Create(OnnxDataType.Float, data, shape);

    /// <summary>A float64 tensor over <paramref name="data"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The length is not the product of the shape, or a dimension is negative.</exception>
    public static HostTensor Double(double[] data, params int[] shape) => Create(OnnxDataType.Double, data, shape);

    /// <summary>An int64 tensor over <paramref name="data"/> (not copied): token ids, attention masks, lengths.</summary>
    /// <exception cref="ArgumentException">The length is not the product of the shape, or a dimension is negative.</exception>
    public static HostTensor Int64(long[] data, params int[] shape) => Create(OnnxDataType.Int64, data, shape);

    /// <summary>An int32 tensor over <paramref name="data"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The length is not the product of the shape, or a dimension is negative.</exception>
    public static HostTensor Int32(int[] data, params int[] shape) => Create(OnnxDataType.Int32, data, shape);

    /// <summary>A boolean tensor over <paramref name="data"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The length is not the product of the shape, or a dimension is negative.</exception>
    public static HostTensor Bool(bool[] data, params int[] shape) => Create(OnnxDataType.Bool, data, shape);

    /// <summary>A tensor of <paramref name="elementType"/> filled with zeros or ones.</summary>
    /// <exception cref="NotSupportedException">An element type other than those of <see cref="Data"/>.</exception>
    public static HostTensor Filled(OnnxDataType elementType, int[] shape, bool ones)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = CheckShape(shape);
        if (n > Array.MaxLength) ThrowHelper.Argument(nameof(shape), $"Shape [{string.Join(",", shape)}] has {n} elements, more than an array can hold.");
        int count = (int)n;
        Array data = elementType switch
        {
            OnnxDataType.Float => Fill(new float[count], ones ? 1f : 0f),
            OnnxDataType.Double => Fill(new double[count], ones ? 1d : 0d),
            OnnxDataType.Int64 => Fill(new long[count], ones ? 1L : 0L),
            OnnxDataType.Int32 => Fill(new int[count], ones ? 1 : 0),
            OnnxDataType.Bool => Fill(new bool[count], ones),
            OnnxDataType.UInt8 => Fill(new byte[count], (byte)(ones ? 1 : 0)),
            OnnxDataType.Int8 => Fill(new sbyte[count], (sbyte)(ones ? 1 : 0)),
            _ => throw new NotSupportedException(
                $"Element type {OnnxDataTypes.Name(elementType)} has no managed HostTensor form; use float, double, int64, int32, bool, uint8 or int8."),
        };
        return new HostTensor(elementType, data, (int[])shape.Clone());
    }

    /// <summary>The data as <c>float[]</c>.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not float32.</exception>
    public float[] AsFloats() => Data as float[] ?? throw WrongType("float32");

    /// <summary>The data as <c>long[]</c>.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not int64.</exception>
    public long[] AsInt64() => Data as long[] ?? throw WrongType("int64");

    /// <summary>Samples <c>indices[0]</c>, <c>indices[1]</c>, … stacked along axis 0 into a new tensor (a copy).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, <see cref="Rows"/>).</exception>
    /// <exception cref="InvalidOperationException">The tensor is a scalar (no sample axis).</exception>
    public HostTensor SelectRows(ReadOnlySpan<int> indices)
    {
        int rows = Rows, sample = SampleLength;
        foreach (int i in indices)
            if ((uint)i >= (uint)rows) ThrowHelper.ArgumentOutOfRange(nameof(indices), i, $"a sample index in [0, {rows})");
        int[] shape = [.. Shape];
        shape[0] = indices.Length;
        var data = Array.CreateInstance(Data.GetType().GetElementType()!, (long)indices.Length * sample);
        for (int k = 0; k < indices.Length; k++) Array.Copy(Data, (long)indices[k] * sample, data, (long)k * sample, sample);
        return new HostTensor(ElementType, data, shape);
    }

    /// <summary>The same elements with another shape of the same element count (the data is shared, not copied).</summary>
    /// <exception cref="ArgumentException">A negative dimension, or a shape that holds a different number of elements.</exception>
    public HostTensor Reshape(params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = CheckShape(shape);
        if (n != Length) ThrowHelper.Argument(nameof(shape), $"Shape {FormatShape(shape)} holds {n} elements, but the tensor {this} has {Length}.");
        return new HostTensor(ElementType, Data, (int[])shape.Clone());
    }

    /// <summary>The element type and shape, NumPy style: <c>float32[2,3,32,32]</c>, <c>int64[8,128]</c>.</summary>
    public override string ToString() => TypeName(ElementType) + FormatShape(Shape);

    /// <summary>The NumPy-style name of an element type: <c>float32</c>, <c>float64</c>, <c>int64</c>, <c>int32</c>,
    /// <c>bool</c>, <c>uint8</c>, <c>int8</c> (other types: their ONNX name).</summary>
    public static string TypeName(OnnxDataType type) => type switch
    {
        OnnxDataType.Float => "float32",
        OnnxDataType.Double => "float64",
        _ => OnnxDataTypes.Name(type),
    };

    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(",", shape) + "]";

    internal static string FormatShape(IEnumerable<int> shape) => "[" + string.Join(",", shape) + "]";

    internal static Type? ClrType(OnnxDataType type) => type switch
    {
        OnnxDataType.Float => typeof(float),
        OnnxDataType.Double => typeof(double),
        OnnxDataType.Int64 => typeof(long),
        OnnxDataType.Int32 => typeof(int),
        OnnxDataType.Bool => typeof(bool),
        OnnxDataType.UInt8 => typeof(byte),
        OnnxDataType.Int8 => typeof(sbyte),
        _ => null,
    };

    /// <summary>Wraps an array whose element type was already checked against <paramref name="type"/>.</summary>
    internal static HostTensor Wrap(OnnxDataType type, Array data, int[] shape) => new(type, data, shape);

    private static HostTensor Create(OnnxDataType type, Array data, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        long n = CheckShape(shape);
        if (n != data.LongLength)
            ThrowHelper.Argument(nameof(data), $"A {OnnxDataTypes.Name(type)}{FormatShape(shape)} tensor needs {n} elements, got {data.LongLength}; fix the shape or the data.");
        return new HostTensor(type, data, (int[])shape.Clone());
    }

    private static long CheckShape(int[] shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) ThrowHelper.Argument(nameof(shape), $"Shape {FormatShape(shape)} has a negative dimension; dimensions must be ≥ 0.");
            n = checked(n * d);
        }
        return n;
    }

    private static T[] Fill<T>(T[] array, T value)
    {
        Array.Fill(array, value);
        return array;
    }

    private InvalidOperationException NoSampleAxis() =>
        new($"The tensor is a scalar ({this}); it has no sample axis (axis 0).");

    private InvalidOperationException WrongType(string wanted) =>
        new($"The tensor is {this}, not {wanted}.");
}
