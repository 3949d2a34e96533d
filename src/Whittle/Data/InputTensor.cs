using System.Globalization;

namespace Whittle.Data;

/// <summary>The element types a model input can be fed: what ONNX calls <c>float</c> and <c>int64</c>.</summary>
public enum InputElementType
{
    /// <summary>32-bit IEEE float (ONNX <c>float</c>): images, features, embeddings.</summary>
    Float32,

    /// <summary>Signed 64-bit integer (ONNX <c>int64</c>): token ids, attention masks, labels.</summary>
    Int64,
}

/// <summary>
/// One dense tensor fed to one model input: an element type (<see cref="InputElementType.Float32"/> or
/// <see cref="InputElementType.Int64"/>), a shape and its elements in C order (last index fastest).
/// Axis 0 is the sample (batch) axis; every tensor has rank ≥ 1. Immutable: the factories take ownership
/// of the array they are given, and callers must not change it afterwards.
/// </summary>
public sealed class InputTensor
{
    private readonly float[]? _floats;
    private readonly long[]? _longs;
    private readonly int[] _shape;

    private InputTensor(float[]? floats, long[]? longs, int[] shape)
    {
        _floats = floats;
        _longs = longs;
        _shape = shape;
    }

    /// <summary>A float32 tensor over <paramref name="data"/> (not copied) with the given shape.</summary>
    /// <exception cref="ArgumentException">The shape is empty (rank 0), has a negative dimension, or does not hold <c>data.Length</c> elements.</exception>
    public static InputTensor Float32(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        return new InputTensor(data, null, CheckShape(shape, data.Length));
    }

    /// <summary>An int64 tensor over <paramref name="data"/> (not copied) with the given shape.</summary>
    /// <exception cref="ArgumentException">The shape is empty (rank 0), has a negative dimension, or does not hold <c>data.Length</c> elements.</exception>
    public static InputTensor Int64(long[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        return new InputTensor(null, data, CheckShape(shape, data.Length));
    }

    /// <summary>The element type.</summary>
    public InputElementType ElementType => _floats is not null ? InputElementType.Float32 : InputElementType.Int64;

    /// <summary>The dimensions; <c>Shape[0]</c> is the number of samples.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>The number of dimensions (at least 1).</summary>
    public int Rank => _shape.Length;

    /// <summary>The number of samples: the size of axis 0.</summary>
    public int Rows => _shape[0];

    /// <summary>The number of elements.</summary>
    public int Length => _floats?.Length ?? _longs!.Length;

    /// <summary>The elements of a float32 tensor, in C order.</summary>
    /// <exception cref="InvalidOperationException">The tensor holds int64 elements.</exception>
    public ReadOnlySpan<float> Float32Data => _floats ?? throw new InvalidOperationException($"The tensor is {this}, not float32.");

    /// <summary>The elements of an int64 tensor, in C order.</summary>
    /// <exception cref="InvalidOperationException">The tensor holds float32 elements.</exception>
    public ReadOnlySpan<long> Int64Data => _longs ?? throw new InvalidOperationException($"The tensor is {this}, not int64.");

    /// <summary>The number of elements in one sample (the product of every dimension after the first).</summary>
    public int SampleLength
    {
        get
        {
            int n = 1;
            for (int i = 1; i < _shape.Length; i++) n *= _shape[i];
            return n;
        }
    }

    /// <summary>Samples <c>indices[0]</c>, <c>indices[1]</c>, … stacked along axis 0 into a new tensor.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, <see cref="Rows"/>).</exception>
    public InputTensor SelectRows(ReadOnlySpan<int> indices)
    {
        int sample = SampleLength;
        int[] shape = [.. _shape];
        shape[0] = indices.Length;
        foreach (int i in indices)
            if ((uint)i >= (uint)Rows) ThrowHelper.ArgumentOutOfRange(nameof(indices), i, $"a sample index in [0, {Rows})");
        if (_floats is not null)
        {
            var data = new float[indices.Length * sample];
            for (int k = 0; k < indices.Length; k++) _floats.AsSpan(indices[k] * sample, sample).CopyTo(data.AsSpan(k * sample));
            return new InputTensor(data, null, shape);
        }
        var longs = new long[indices.Length * sample];
        for (int k = 0; k < indices.Length; k++) _longs.AsSpan(indices[k] * sample, sample).CopyTo(longs.AsSpan(k * sample));
        return new InputTensor(null, longs, shape);
    }

    /// <summary>The same elements with another shape of the same element count (the data is shared, not copied).</summary>
    /// <exception cref="ArgumentException">The shape is empty or holds a different number of elements.</exception>
    public InputTensor Reshape(params int[] shape) => new(_floats, _longs, CheckShape(shape, Length));

    /// <summary>The type and shape, as <c>float32[2,3,32,32]</c>.</summary>
    public override string ToString() => TypeName(ElementType) + ShapeText(_shape);

    /// <summary>The lower-case name of an element type: <c>float32</c> or <c>int64</c>.</summary>
    public static string TypeName(InputElementType type) => type == InputElementType.Float32 ? "float32" : "int64";

    internal static string ShapeText(IEnumerable<int> shape) =>
        "[" + string.Join(",", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    private static int[] CheckShape(int[] shape, int length)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Length == 0) ThrowHelper.Argument(nameof(shape), "An input tensor needs rank ≥ 1: axis 0 is the sample axis.");
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) ThrowHelper.Argument(nameof(shape), $"Shape {ShapeText(shape)} has a negative dimension.");
            n *= d;
        }
        if (n != length) ThrowHelper.Argument(nameof(shape), $"Shape {ShapeText(shape)} holds {n} elements, but the data has {length}.");
        return [.. shape];
    }
}
