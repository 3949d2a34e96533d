// Streaming TSQR: the R factor of a tall matrix Z = [Z_0; Z_1; …] fed one row batch at a time.
//
// Contract
//   Shapes: Z is n × h (rows = samples, columns = neurons), fed as batches Z_b (n_b × h). After any
//   number of batches, R (p × h, p = min(rows seen, h), upper trapezoidal) satisfies RᵀR = ZᵀZ for the
//   rows seen so far, i.e. Z = Q·R for some Q with orthonormal columns. Each AddBatch replaces R by
//   the R factor of [R; Z_b] (Householder QR), so memory stays O((h + n_b)·h) however many rows
//   arrive. Feed R to InterpolativeDecompositions.FromRFactors: column-pivoted QR of R chooses the
//   same columns as that of Z. Batches are copied, never modified.
//
// Reference
//   Demmel, Grigori, Hoemmen & Langou, "Communication-optimal parallel and sequential QR and LU
//   factorizations", SISC 34 (2012) — the sequential (flat-tree) TSQR.
//
// Numerical caveats
//   Backward stable like Householder QR (R is the exact R factor of Z + E, ‖E‖ = O(ε·‖Z‖) growing
//   mildly with the number of batches); row signs of R are arbitrary, which changes nothing downstream.

using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>Accumulates the TSQR factor R of a tall matrix fed in row batches, with bounded memory.</summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed class TsqrAccumulator<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Matrix<T> _r;
    private Matrix<T>? _stackT;

    /// <summary>Starts with no rows for a matrix of <paramref name="columns"/> columns (h).</summary>
    /// <param name="columns">h ≥ 0, the number of columns of every batch.</param>
    public TsqrAccumulator(int columns)
    {
        if (columns < 0) ThrowHelper.ArgumentOutOfRange(nameof(columns), columns, "a non-negative column count");
        Columns = columns;
        _r = new Matrix<T>(0, columns);
    }

    /// <summary>h, the number of columns.</summary>
    public int Columns { get; }

    /// <summary>The total number of rows fed so far.</summary>
    public long RowsSeen { get; private set; }

    /// <summary>The current p × h upper trapezoidal factor (p = min(rows seen, h)) with RᵀR = ZᵀZ; a new
    /// instance after every batch, never modified afterwards (treat it as read-only).</summary>
    public Matrix<T> R => _r;

    /// <summary>Adds a batch of rows: R ← the R factor of [R; rows].</summary>
    /// <param name="rows">n_b × h rows of Z; finite. Not modified. An empty batch changes nothing.</param>
    /// <exception cref="ArgumentException">Wrong column count or non-finite entries.</exception>
    public void AddBatch(MatrixView<T> rows)
    {
        if (rows.Cols != Columns)
            ThrowHelper.ShapeMismatch(nameof(rows), "TsqrAccumulator.AddBatch: every batch needs h columns",
                $"n×{Columns}", $"{rows.Rows}×{rows.Cols}");
        // A batch given as a transposed view (columns contiguous) copies fastest.
        AddBatch(rows.Rows, (stackT, column0) => rows.Transpose().CopyTo(stackT.Slice(0, column0, Columns, rows.Rows)));
    }

    /// <summary>
    /// Adds a batch of <paramref name="rows"/> rows that <paramref name="write"/> puts straight into the stack, saving
    /// a copy: it must set <c>stackT[j, column0 + i] = z_ij</c> for every row i and column j (finite values).
    /// </summary>
    internal void AddBatch(int rows, Action<Matrix<T>, int> write)
    {
        if (rows == 0) return;
        // [R; rows] is stacked transposed (h × (p + n_b), row j = column j), the layout Householder QR works in, and
        // factored in place. The stack is reused while the batch size stays the same (R is copied out of it); every
        // entry is written below.
        int stacked = _r.Rows + rows;
        if (_stackT is null || _stackT.Cols != stacked) _stackT = new Matrix<T>(Columns, stacked, GC.AllocateUninitializedArray<T>(Columns * stacked));
        var stackT = _stackT;
        _r.Transpose().CopyTo(stackT.Slice(0, 0, Columns, _r.Rows));
        write(stackT, _r.Rows);
        RequireFinite(stackT, _r.Rows);
        _r = HouseholderQr.FactorTransposed(stackT).R;
        RowsSeen += rows;
    }

    private static void RequireFinite(Matrix<T> stackedT, int offset)
    {
        for (int j = 0; j < stackedT.Rows; j++)
        {
            var column = stackedT.Row(j).Slice(offset);
            if (AllFinite(column)) continue;
            for (int i = 0; i < column.Length; i++)
                if (!T.IsFinite(column[i]))
                    ThrowHelper.Argument("rows", $"TsqrAccumulator.AddBatch: expected finite values, got {column[i]} at ({i}, {j}) of the batch; remove or replace NaN and infinite entries first.");
        }
    }

    /// <summary>Whether every entry is finite: x − x is 0 for finite x and NaN for ±∞ and NaN.</summary>
    private static bool AllFinite(ReadOnlySpan<T> x)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var bad = Vector<T>.Zero;
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var v = new Vector<T>(x.Slice(i));
                bad |= ~Vector.Equals(v - v, Vector<T>.Zero);
            }
            if (bad != Vector<T>.Zero) return false;
        }
        for (; i < x.Length; i++)
            if (!T.IsFinite(x[i])) return false;
        return true;
    }
}
