using System.Collections.ObjectModel;
using System.Numerics;
using System.Runtime.InteropServices;
using Whittle.LinearAlgebra;

namespace Whittle.IO;

/// <summary>
/// An n-dimensional array as stored in a NumPy <c>.npy</c> file: element type, shape, memory order
/// and the elements themselves, held in one .NET array of the element type (see
/// <see cref="NpyDType"/>) in native byte order, in the file's order (C: last index fastest;
/// Fortran: first index fastest). Read one with <see cref="Npy.Read(string)"/> or
/// <see cref="Npz.Read(string)"/>, convert with <see cref="ToMatrix{T}"/>, <see cref="ToVector{T}"/>
/// or <see cref="ToInt64Array"/>; build one with <see cref="FromMatrix{T}(Matrix{T})"/>,
/// <see cref="FromVector{T}"/>, <see cref="FromInt64"/> or <see cref="Wrap{T}"/>.
/// </summary>
/// <remarks>Arrays hold up to <see cref="Array.MaxLength"/> elements.</remarks>
public sealed class NpyArray
{
    private readonly Array _data;
    private readonly int[] _shape;

    /// <summary>A zero-filled array of the given element type and shape.</summary>
    /// <param name="dtype">Element type.</param>
    /// <param name="shape">Dimensions; empty for a 0-d (scalar) array, which holds one element.</param>
    /// <param name="fortranOrder">True to store the elements first-index-fastest.</param>
    public NpyArray(NpyDType dtype, ReadOnlySpan<int> shape, bool fortranOrder = false)
        : this(dtype, shape.ToArray(), fortranOrder, Allocate(dtype, ElementCount(shape, nameof(shape)), zeroed: true), null)
    {
    }

    internal NpyArray(NpyDType dtype, int[] shape, bool fortranOrder, Array data, string? sourceName)
    {
        DType = dtype;
        _shape = shape;
        FortranOrder = fortranOrder;
        _data = data;
        SourceName = sourceName;
        Shape = new ReadOnlyCollection<int>(_shape);
    }

    /// <summary>Element type.</summary>
    public NpyDType DType { get; }

    /// <summary>Dimensions (empty for a 0-d array).</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements: the product of <see cref="Shape"/> (1 for a 0-d array).</summary>
    public int Length => _data.Length;

    /// <summary>True when elements are stored first-index-fastest (NumPy <c>fortran_order</c>).</summary>
    public bool FortranOrder { get; }

    /// <summary>Size of one element in bytes.</summary>
    public int ElementSize => NpyDTypes.SizeOf(DType);

    /// <summary>Size of the element data in bytes.</summary>
    public long ByteLength => (long)Length * ElementSize;

    /// <summary>Where the array was read from (a path, or "archive.npz (array 'name')"), used in error
    /// messages; null for arrays built in memory.</summary>
    public string? SourceName { get; }

    private string Source => SourceName ?? $"{DType} array {ShapeText(_shape)}";

    /// <summary>
    /// The elements in storage order (see <see cref="FortranOrder"/>), shared, not copied.
    /// <typeparamref name="T"/> must be the .NET type of <see cref="DType"/> (for example
    /// <see cref="float"/> for <see cref="NpyDType.Float32"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> is not the element type.</exception>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        if (_data.GetType() != typeof(T[]))
            throw new InvalidOperationException(
                $"{Source} holds {NpyDTypes.ElementType(DType).Name} elements ({DType}); AsSpan<{typeof(T).Name}>() needs {NpyDTypes.ElementType(DType).Name}.");
        return (T[])_data;
    }

    /// <summary>
    /// Wraps <paramref name="data"/> (not copied) as an array of the given shape.
    /// <typeparamref name="T"/> is one of the element types of <see cref="NpyDType"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Unsupported element type, or the shape does not have <c>data.Length</c> elements.</exception>
    public static NpyArray Wrap<T>(T[] data, ReadOnlySpan<int> shape, bool fortranOrder = false) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        var dtype = DTypeOf<T>(nameof(data));
        long n = ElementCount(shape, nameof(shape));
        if (n != data.Length)
            ThrowHelper.ShapeMismatch(nameof(shape), "NpyArray data", $"{ShapeText(shape)} with {n} elements", $"{data.Length} elements");
        return new NpyArray(dtype, shape.ToArray(), fortranOrder, data, null);
    }

    /// <summary>A C-order 2-D array (<c>float32</c> or <c>float64</c>) holding a copy of <paramref name="matrix"/>.</summary>
    public static NpyArray FromMatrix<T>(Matrix<T> matrix) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(matrix);
        return FromMatrix(matrix.View);
    }

    /// <summary>A C-order 2-D array (<c>float32</c> or <c>float64</c>) holding a copy of the viewed elements.</summary>
    public static NpyArray FromMatrix<T>(MatrixView<T> matrix) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var data = new T[(long)matrix.Rows * matrix.Cols];
        matrix.CopyTo(new Matrix<T>(matrix.Rows, matrix.Cols, data));
        return new NpyArray(DTypeOf<T>(nameof(matrix)), [matrix.Rows, matrix.Cols], false, data, null);
    }

    /// <summary>A 1-D array holding a copy of <paramref name="values"/>; <typeparamref name="T"/> is one of
    /// the element types of <see cref="NpyDType"/>.</summary>
    /// <exception cref="ArgumentException">Unsupported element type.</exception>
    public static NpyArray FromVector<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var dtype = DTypeOf<T>(nameof(values));
        return new NpyArray(dtype, [values.Length], false, values.ToArray(), null);
    }

    /// <summary>An <c>int64</c> array of the given shape (C order) holding a copy of <paramref name="values"/>.</summary>
    /// <exception cref="ArgumentException">The shape does not have <c>values.Length</c> elements.</exception>
    public static NpyArray FromInt64(ReadOnlySpan<long> values, ReadOnlySpan<int> shape)
    {
        long n = ElementCount(shape, nameof(shape));
        if (n != values.Length)
            ThrowHelper.ShapeMismatch(nameof(shape), "Int64 array", $"{ShapeText(shape)} with {n} elements", $"{values.Length} values");
        return new NpyArray(NpyDType.Int64, shape.ToArray(), false, values.ToArray(), null);
    }

    /// <summary>
    /// Copies the array into a row-major matrix, converting each element to <typeparamref name="T"/>
    /// (integers and booleans convert to their values; float64 → float32 rounds to nearest).
    /// A 2-D array of shape (r, c) gives an r × c matrix whatever its memory order. A 1-D array of
    /// length n gives a 1 × n row vector, or an n × 1 column when <paramref name="vectorAsColumn"/>;
    /// a 0-d array gives 1 × 1.
    /// </summary>
    /// <param name="requireFinite">Reject NaN and ±∞ (after conversion, so float64 values beyond
    /// the float32 range are caught too), naming the first offending index.</param>
    /// <param name="vectorAsColumn">Shape a 1-D array as n × 1 instead of 1 × n.</param>
    /// <exception cref="InvalidDataException">The array has more than 2 dimensions, or holds a non-finite
    /// value when <paramref name="requireFinite"/> is set.</exception>
    public Matrix<T> ToMatrix<T>(bool requireFinite = false, bool vectorAsColumn = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double)) ThrowHelper.NotSupportedElementType(typeof(T));
        if (Rank > 2) NpyErrors.WrongKind(Source, "a 0-, 1- or 2-dimensional array for a matrix", $"shape {ShapeText(_shape)}");
        int rows = Rank switch { 2 => _shape[0], 1 => vectorAsColumn ? _shape[0] : 1, _ => 1 };
        int cols = Rank switch { 2 => _shape[1], 1 => vectorAsColumn ? 1 : _shape[0], _ => 1 };
        var data = GC.AllocateUninitializedArray<T>(Length);
        ConvertInto<T>(data);
        if (requireFinite) CheckFinite<T>(data, matrixCols: cols);
        return new Matrix<T>(rows, cols, data);
    }

    /// <summary>
    /// Copies a 1-D (or 0-d) array into a new .NET array, converting each element to
    /// <typeparamref name="T"/> as <see cref="ToMatrix{T}"/> does.
    /// </summary>
    /// <param name="requireFinite">Reject NaN and ±∞, naming the first offending index.</param>
    /// <exception cref="InvalidDataException">The array has 2 or more dimensions, or holds a non-finite
    /// value when <paramref name="requireFinite"/> is set.</exception>
    public T[] ToVector<T>(bool requireFinite = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Rank > 1) NpyErrors.WrongKind(Source, "a 1-dimensional array for a vector", $"shape {ShapeText(_shape)}");
        var data = GC.AllocateUninitializedArray<T>(Length);
        ConvertInto<T>(data);
        if (requireFinite) CheckFinite<T>(data, matrixCols: 0);
        return data;
    }

    /// <summary>
    /// Copies an integer or boolean array of any shape into a new <see cref="long"/> array, flattened
    /// in C order (last index fastest) whatever the memory order.
    /// </summary>
    /// <exception cref="InvalidDataException">The array holds floating-point values.</exception>
    public long[] ToInt64Array()
    {
        if (!NpyDTypes.IsInteger(DType) && DType != NpyDType.Bool)
            NpyErrors.WrongKind(Source, "an integer or boolean array", $"{DType} ('{NpyDTypes.Descriptor(DType)}')");
        var data = GC.AllocateUninitializedArray<long>(Length);
        ConvertInto<long>(data);
        return data;
    }

    /// <summary>Converts every element into <paramref name="destination"/> in C order.</summary>
    private void ConvertInto<TDst>(Span<TDst> destination) where TDst : unmanaged, INumberBase<TDst>
    {
        // Dispatch on DType, not on the array's runtime type: the CLR lets a byte[] match "is sbyte[]"
        // (and ushort[] match short[]), so type patterns would pick the wrong conversion.
        switch (DType)
        {
            case NpyDType.Float16: Gather<Half, TDst>((Half[])_data, destination); break;
            case NpyDType.Float32: Gather<float, TDst>((float[])_data, destination); break;
            case NpyDType.Float64: Gather<double, TDst>((double[])_data, destination); break;
            case NpyDType.Int8: Gather<sbyte, TDst>((sbyte[])_data, destination); break;
            case NpyDType.Int16: Gather<short, TDst>((short[])_data, destination); break;
            case NpyDType.Int32: Gather<int, TDst>((int[])_data, destination); break;
            case NpyDType.Int64: Gather<long, TDst>((long[])_data, destination); break;
            case NpyDType.UInt8: Gather<byte, TDst>((byte[])_data, destination); break;
            case NpyDType.UInt16: Gather<ushort, TDst>((ushort[])_data, destination); break;
            // bool is stored as 0/1 bytes (the reader normalises any non-zero byte to 1).
            case NpyDType.Bool: Gather<byte, TDst>(MemoryMarshal.Cast<bool, byte>((bool[])_data), destination); break;
            default: throw new InvalidOperationException($"Unexpected storage {_data.GetType().Name}.");
        }
    }

    private void Gather<TSrc, TDst>(ReadOnlySpan<TSrc> src, Span<TDst> dst)
        where TSrc : unmanaged, INumberBase<TSrc> where TDst : unmanaged, INumberBase<TDst>
    {
        if (!FortranOrder || Rank <= 1)
        {
            if (typeof(TSrc) == typeof(TDst))
                MemoryMarshal.Cast<TSrc, TDst>(src).CopyTo(dst);
            else
                for (int i = 0; i < src.Length; i++) dst[i] = TDst.CreateTruncating(src[i]);
            return;
        }
        if (Rank == 2)
        {
            // Fortran (r, c): element (i, j) at j·r + i. Read contiguously, write strided.
            int r = _shape[0], c = _shape[1];
            for (int j = 0; j < c; j++)
            {
                var column = src.Slice(j * r, r);
                for (int i = 0; i < r; i++) dst[i * c + j] = TDst.CreateTruncating(column[i]);
            }
            return;
        }
        // General rank: walk C order with an odometer, tracking the Fortran offset.
        int rank = Rank;
        Span<int> index = stackalloc int[rank];
        Span<long> stride = stackalloc long[rank];
        long s = 1;
        for (int k = 0; k < rank; k++) { stride[k] = s; s *= _shape[k]; }
        long offset = 0;
        for (int p = 0; p < dst.Length; p++)
        {
            dst[p] = TDst.CreateTruncating(src[(int)offset]);
            for (int k = rank - 1; k >= 0; k--)
            {
                if (++index[k] < _shape[k]) { offset += stride[k]; break; }
                offset -= stride[k] * (index[k] - 1);
                index[k] = 0;
            }
        }
    }

    private void CheckFinite<T>(ReadOnlySpan<T> data, int matrixCols) where T : IFloatingPointIeee754<T>
    {
        for (int p = 0; p < data.Length; p++)
        {
            if (T.IsFinite(data[p])) continue;
            string where = Rank == 2 ? $"element [{p / matrixCols}, {p % matrixCols}]"
                : Rank == 1 ? $"element [{p}]" : "the scalar element";
            string what = T.IsNaN(data[p]) ? "NaN" : T.IsPositive(data[p]) ? "+Infinity" : "-Infinity";
            string conv = NpyDTypes.ElementType(DType) == typeof(T) ? "" : $" after conversion to {typeof(T).Name}";
            NpyErrors.InvalidData(Source, $"{where} is {what}{conv}; expected finite values (first of the non-finite elements, in C order).");
        }
    }

    internal static NpyDType DTypeOf<T>(string paramName)
    {
        if (!NpyDTypes.TryFromElementType(typeof(T), out var dtype))
            ThrowHelper.Argument(paramName,
                $"Element type {typeof(T).Name} has no .npy dtype; use Half, float, double, sbyte, short, int, long, byte, ushort or bool.");
        return dtype;
    }

    /// <summary>Number of elements of <paramref name="shape"/>; throws if negative or over <see cref="Array.MaxLength"/>.</summary>
    private static int ElementCount(ReadOnlySpan<int> shape, string paramName)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) ThrowHelper.ArgumentOutOfRange(paramName, ShapeText(shape), "non-negative dimensions");
            n *= d;
            if (n > Array.MaxLength)
                ThrowHelper.ArgumentOutOfRange(paramName, ShapeText(shape), $"at most {Array.MaxLength} elements");
        }
        return (int)n;
    }

    internal static Array Allocate(NpyDType dtype, int length, bool zeroed) => dtype switch
    {
        NpyDType.Float16 => Alloc<Half>(length, zeroed),
        NpyDType.Float32 => Alloc<float>(length, zeroed),
        NpyDType.Float64 => Alloc<double>(length, zeroed),
        NpyDType.Int8 => Alloc<sbyte>(length, zeroed),
        NpyDType.Int16 => Alloc<short>(length, zeroed),
        NpyDType.Int32 => Alloc<int>(length, zeroed),
        NpyDType.Int64 => Alloc<long>(length, zeroed),
        NpyDType.UInt8 => Alloc<byte>(length, zeroed),
        NpyDType.UInt16 => Alloc<ushort>(length, zeroed),
        NpyDType.Bool => Alloc<bool>(length, zeroed),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Expected a defined NpyDType."),
    };

    private static T[] Alloc<T>(int length, bool zeroed) =>
        zeroed ? new T[length] : GC.AllocateUninitializedArray<T>(length);

    /// <summary>NumPy's spelling of a shape: (), (5,), (3, 4).</summary>
    internal static string ShapeText(ReadOnlySpan<int> shape) =>
        shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape.ToArray())})";

    internal ReadOnlySpan<int> ShapeSpan => _shape;

    internal Array Storage => _data;

    /// <summary>The same array, labelled with where it was read from.</summary>
    internal NpyArray WithSource(string source) => new(DType, _shape, FortranOrder, _data, source);
}
