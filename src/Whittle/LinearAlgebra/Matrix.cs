using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Whittle.LinearAlgebra;

/// <summary>
/// A dense matrix that owns contiguous row-major storage. Use <see cref="View"/>,
/// <see cref="Transpose"/> and <see cref="Slice"/> for cheap views; every routine in
/// <see cref="Whittle.LinearAlgebra"/> takes <see cref="MatrixView{T}"/> and a matrix converts implicitly.
/// </summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
[DebuggerDisplay("{Rows}×{Cols} matrix")]
public sealed class Matrix<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly T[] _data;

    static Matrix()
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            ThrowHelper.NotSupportedElementType(typeof(T));
    }

    /// <summary>A zero-filled <paramref name="rows"/> × <paramref name="cols"/> matrix.</summary>
    public Matrix(int rows, int cols)
    {
        if (rows < 0) ThrowHelper.ArgumentOutOfRange(nameof(rows), rows, "a non-negative row count");
        if (cols < 0) ThrowHelper.ArgumentOutOfRange(nameof(cols), cols, "a non-negative column count");
        if ((long)rows * cols > System.Array.MaxLength)
            ThrowHelper.ArgumentOutOfRange(nameof(cols), $"{rows}×{cols}", $"at most {System.Array.MaxLength} elements");
        Rows = rows;
        Cols = cols;
        _data = rows * cols == 0 ? System.Array.Empty<T>() : new T[rows * cols];
    }

    /// <summary>Wraps <paramref name="data"/> (row-major, length rows·cols) without copying.</summary>
    public Matrix(int rows, int cols, T[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (rows < 0) ThrowHelper.ArgumentOutOfRange(nameof(rows), rows, "a non-negative row count");
        if (cols < 0) ThrowHelper.ArgumentOutOfRange(nameof(cols), cols, "a non-negative column count");
        if ((long)rows * cols != data.Length)
            ThrowHelper.ShapeMismatch(nameof(data), "Matrix data", $"{rows}·{cols} = {(long)rows * cols} elements", $"{data.Length}");
        Rows = rows;
        Cols = cols;
        _data = data;
    }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Number of columns.</summary>
    public int Cols { get; }

    /// <summary>The row-major storage (length Rows·Cols), shared, not copied.</summary>
    public Span<T> AsSpan() => _data;

    /// <summary>A view of the whole matrix.</summary>
    public MatrixView<T> View => new(_data, 0, Rows, Cols, Cols, 1);

    /// <summary>Reference to element (i, j). Bounds are checked in debug builds only.</summary>
    public ref T this[int i, int j]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            Debug.Assert((uint)i < (uint)Rows && (uint)j < (uint)Cols);
            return ref _data[i * Cols + j];
        }
    }

    /// <summary>Row <paramref name="i"/> as a contiguous span.</summary>
    public Span<T> Row(int i)
    {
        if ((uint)i >= (uint)Rows) ThrowHelper.ArgumentOutOfRange(nameof(i), i, $"a row index in 0..{Rows - 1}");
        return _data.AsSpan(i * Cols, Cols);
    }

    /// <summary>The transpose, as a view of the same storage.</summary>
    public MatrixView<T> Transpose() => View.Transpose();

    /// <summary>A sub-matrix view.</summary>
    public MatrixView<T> Slice(int row, int col, int rows, int cols) => View.Slice(row, col, rows, cols);

    /// <summary>Rows <paramref name="start"/> .. <paramref name="start"/>+<paramref name="count"/>, as a view.</summary>
    public MatrixView<T> SliceRows(int start, int count) => View.SliceRows(start, count);

    /// <summary>Columns <paramref name="start"/> .. <paramref name="start"/>+<paramref name="count"/>, as a view.</summary>
    public MatrixView<T> SliceCols(int start, int count) => View.SliceCols(start, count);

    /// <summary>A deep copy.</summary>
    public Matrix<T> Clone() => new(Rows, Cols, (T[])_data.Clone());

    /// <summary>Copy of column <paramref name="j"/>.</summary>
    public T[] Column(int j)
    {
        if ((uint)j >= (uint)Cols) ThrowHelper.ArgumentOutOfRange(nameof(j), j, $"a column index in 0..{Cols - 1}");
        var c = new T[Rows];
        for (int i = 0; i < Rows; i++) c[i] = _data[i * Cols + j];
        return c;
    }

    /// <summary>The n × n identity.</summary>
    public static Matrix<T> Identity(int n)
    {
        var m = new Matrix<T>(n, n);
        for (int i = 0; i < n; i++) m[i, i] = T.One;
        return m;
    }

    /// <summary>A matrix with entries <paramref name="value"/>(i, j).</summary>
    public static Matrix<T> Create(int rows, int cols, Func<int, int, T> value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var m = new Matrix<T>(rows, cols);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                m[i, j] = value(i, j);
        return m;
    }

    /// <summary>A diagonal matrix of the given size with <paramref name="diagonal"/> on its diagonal.</summary>
    public static Matrix<T> Diagonal(ReadOnlySpan<T> diagonal, int rows, int cols)
    {
        var m = new Matrix<T>(rows, cols);
        for (int i = 0; i < Math.Min(diagonal.Length, Math.Min(rows, cols)); i++) m[i, i] = diagonal[i];
        return m;
    }

    /// <summary>Views the matrix.</summary>
    public static implicit operator MatrixView<T>(Matrix<T> matrix) => matrix.View;
}
