// Streaming TSQR: the R factor of a tall matrix Z = [Z_0; Z_1; …] fed one row batch at a time.
//
// Contract
//   Shapes: Z is n × h (rows = samples, columns = neurons), fed as batches Z_b (n_b × h). After any
//   number of batches, R (p × h, p = min(rows seen, h), upper trapezoidal) satisfies RᵀR = ZᵀZ for the
//   rows seen so far, i.e. Z = Q·R for some Q with orthonormal columns. Batches are copied into a
//   buffer; once it holds at least h rows (and whenever R is read) R is replaced by the R factor of
//   [R; buffer] (Householder QR). Memory stays O((h + n_b)·h) however many rows arrive, and small
//   batches cost O(h²) per row instead of O(h³/n_b) (re-factoring the h × h R for every batch of n_b
//   rows would dominate). Feed R to InterpolativeDecompositions.FromRFactors: column-pivoted QR of R
//   chooses the same columns as that of Z. Batches are copied, never modified.
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
    private T[] _pending = [];
    private int _pendingRows;

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

    /// <summary>The current p × h upper trapezoidal factor (p = min(rows seen, h)) with RᵀR = ZᵀZ for every row
    /// added; a new instance after rows were added, never modified afterwards (treat it as read-only).</summary>
    public Matrix<T> R
    {
        get
        {
            Flush();
            return _r;
        }
    }

    /// <summary>Adds a batch of rows (buffered: R becomes the R factor of [R; buffer] once h rows wait, or when read).</summary>
    /// <param name="rows">n_b × h rows of Z; finite. Not modified. An empty batch changes nothing.</param>
    /// <exception cref="ArgumentException">Wrong column count or non-finite entries.</exception>
    public void AddBatch(MatrixView<T> rows)
    {
        if (rows.Cols != Columns)
            ThrowHelper.ShapeMismatch(nameof(rows), "TsqrAccumulator.AddBatch: every batch needs h columns",
                $"n×{Columns}", $"{rows.Rows}×{rows.Cols}");
        if (rows.Rows == 0) return;
        MatrixChecks.RequireFinite(rows, nameof(rows));
        int needed = (_pendingRows + rows.Rows) * Columns;
        if (_pending.Length < needed) Array.Resize(ref _pending, Math.Max(needed, 2 * _pending.Length));
        rows.CopyTo(new MatrixView<T>(_pending, _pendingRows * Columns, rows.Rows, Columns, Columns, 1));
        _pendingRows += rows.Rows;
        RowsSeen += rows.Rows;
        if (_pendingRows >= Columns) Flush();
    }

    /// <summary>R ← the R factor of [R; buffered rows].</summary>
    private void Flush()
    {
        if (_pendingRows == 0) return;
        var stacked = new Matrix<T>(_r.Rows + _pendingRows, Columns);
        _r.View.CopyTo(stacked.Slice(0, 0, _r.Rows, Columns));
        new MatrixView<T>(_pending, 0, _pendingRows, Columns, Columns, 1).CopyTo(stacked.Slice(_r.Rows, 0, _pendingRows, Columns));
        _r = HouseholderQr.Compute<T>(stacked).R;
        _pendingRows = 0;
    }
}
