using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Whittle.LinearAlgebra;

/// <summary>
/// A cheap, non-owning view of a dense matrix stored in an array: a sub-matrix and/or a transpose of
/// row-major storage. Creating views never copies. Element (i, j) lives at
/// <c>Offset + i·RowStride + j·ColStride</c>; one of the two strides is 1, so a view is either
/// row-major (<see cref="IsRowMajor"/>) or the transpose of row-major storage.
/// </summary>
/// <remarks>
/// A view shares storage with the matrix it came from: writes through the view change that matrix.
/// Library routines never write into views passed as inputs.
/// </remarks>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
[DebuggerDisplay("{Rows}×{Cols} view{(IsRowMajor ? \"\" : \" (transposed)\")}")]
public readonly struct MatrixView<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    internal readonly T[] Array;
    internal readonly int Offset;
    internal readonly int RowStride;
    internal readonly int ColStride;

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Number of columns.</summary>
    public int Cols { get; }

    internal MatrixView(T[] array, int offset, int rows, int cols, int rowStride, int colStride)
    {
        Debug.Assert(rowStride == 1 || colStride == 1 || rows <= 1 || cols <= 1);
        Array = array;
        Offset = offset;
        Rows = rows;
        Cols = cols;
        RowStride = rowStride;
        ColStride = colStride;
    }

    /// <summary>True when each row is contiguous in memory (the view is not transposed).</summary>
    public bool IsRowMajor => ColStride == 1;

    /// <summary>True when the view has no elements.</summary>
    public bool IsEmpty => Rows == 0 || Cols == 0;

    /// <summary>Distance in elements between consecutive rows (row-major) or columns (transposed):
    /// the "leading dimension" in BLAS terms.</summary>
    internal int LeadingDimension => IsRowMajor ? RowStride : ColStride;

    /// <summary>Reference to element (i, j). Bounds are checked in debug builds only.</summary>
    public ref T this[int i, int j]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            Debug.Assert((uint)i < (uint)Rows && (uint)j < (uint)Cols);
            return ref Array[Offset + i * RowStride + j * ColStride];
        }
    }

    /// <summary>The transpose, as a view of the same storage.</summary>
    public MatrixView<T> Transpose() => new(Array, Offset, Cols, Rows, ColStride, RowStride);

    /// <summary>The sub-matrix of <paramref name="rows"/> × <paramref name="cols"/> elements starting at (row, col).</summary>
    public MatrixView<T> Slice(int row, int col, int rows, int cols)
    {
        if ((uint)row > (uint)Rows || (uint)rows > (uint)(Rows - row))
            ThrowHelper.ArgumentOutOfRange(nameof(rows), $"rows {row}..{row + rows}", $"a row range inside 0..{Rows}");
        if ((uint)col > (uint)Cols || (uint)cols > (uint)(Cols - col))
            ThrowHelper.ArgumentOutOfRange(nameof(cols), $"columns {col}..{col + cols}", $"a column range inside 0..{Cols}");
        return new(Array, Offset + row * RowStride + col * ColStride, rows, cols, RowStride, ColStride);
    }

    /// <summary>Rows <paramref name="start"/> .. <paramref name="start"/>+<paramref name="count"/>.</summary>
    public MatrixView<T> SliceRows(int start, int count) => Slice(start, 0, count, Cols);

    /// <summary>Columns <paramref name="start"/> .. <paramref name="start"/>+<paramref name="count"/>.</summary>
    public MatrixView<T> SliceCols(int start, int count) => Slice(0, start, Rows, count);

    /// <summary>Row <paramref name="i"/> as a contiguous span. Requires a row-major view.</summary>
    public Span<T> Row(int i)
    {
        if (!IsRowMajor && Cols > 1)
            ThrowHelper.Argument(nameof(i), "Row spans need a row-major view; copy the transposed view with ToMatrix() first.");
        if ((uint)i >= (uint)Rows)
            ThrowHelper.ArgumentOutOfRange(nameof(i), i, $"a row index in 0..{Rows - 1}");
        return Array.AsSpan(Offset + i * RowStride, Cols);
    }

    /// <summary>Copies the view into a new contiguous row-major matrix.</summary>
    public Matrix<T> ToMatrix()
    {
        var m = new Matrix<T>(Rows, Cols);
        CopyTo(m);
        return m;
    }

    /// <summary>Copies every element into <paramref name="destination"/>, which must have the same shape.</summary>
    public void CopyTo(MatrixView<T> destination)
    {
        if (destination.Rows != Rows || destination.Cols != Cols)
            ThrowHelper.ShapeMismatch(nameof(destination), "Copy destination", $"{Rows}×{Cols}", $"{destination.Rows}×{destination.Cols}");
        if (IsRowMajor && destination.IsRowMajor)
        {
            for (int i = 0; i < Rows; i++)
                Array.AsSpan(Offset + i * RowStride, Cols).CopyTo(destination.Array.AsSpan(destination.Offset + i * destination.RowStride, Cols));
            return;
        }
        MatrixCopy.Transposing(this, destination);
    }

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    public void Fill(T value)
    {
        for (int i = 0; i < Rows; i++)
        {
            if (IsRowMajor)
                Array.AsSpan(Offset + i * RowStride, Cols).Fill(value);
            else
                for (int j = 0; j < Cols; j++) this[i, j] = value;
        }
    }
}
