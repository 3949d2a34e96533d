// Column-pivoted Householder QR (Businger–Golub): A·Π = Q·R, truncated at rank k.
//
// Contract
//   A is m × n (any shape, including empty); the input is never modified. Step j (0-based) moves the
//   remaining column of largest norm (norm of its rows j..m after the previous j reflectors) to
//   position j, then annihilates it below the diagonal. With k = Rank (the number of steps taken):
//     Pivots  int[n], a permutation of 0..n−1: column Pivots[j] of A is column j of A·Π; the first
//             k entries are the chosen columns in pivot order (ties: the lowest current index wins,
//             as LAPACK's idamax);
//     R       k × n upper trapezoidal, in pivoted column order: A·Π = Q·[R; R̃] where R̃ (rows k..m)
//             is the unfactored remainder, so R = [R11 R12] with R11 k × k upper triangular;
//     Q()     m × k with orthonormal columns (formed on demand from the reflectors, as orgqr);
//     |r_jj| non-increasing in exact arithmetic; DiagonalMagnitudes holds them.
//   Stopping: k ≤ min(m, n, MaxRank); the step that would give |r_kk| ≤ RelativeTolerance·|r_00| is
//   not taken; a step whose pivot column is exactly zero is never taken (so a zero matrix has rank 0).
//
// Reference
//   Golub & Van Loan, Matrix Computations (4th ed.), Alg. 5.4.1 (QR with column pivoting) and
//   §5.4.2; Businger & Golub (1965). The blocked scheme mirrors LAPACK dgeqp3 / dlaqps
//   (Quintana-Ortí, Sun & Bischof 1998): within a panel of nb columns, the trailing matrix is not
//   updated; instead F (n × nb, with A_updated = A − V·Fᵀ) accumulates the pending update, only the
//   pivot column and the current row of R are brought up to date at each step, and the trailing
//   matrix gets one GEMM per panel. Partial column norms are downdated with LAPACK's safe formula
//   (dlaqps/dlaqp2, after Drmač & Bujanović 2008) and recomputed from scratch when cancellation makes
//   the downdate unreliable (tol3z = √ε test); a panel ends early when a norm needs recomputing,
//   because that needs the trailing matrix up to date.
//
// Layout
//   The working matrix is kept transposed (n × m row-major: row j = column j), so Householder
//   vectors, column norms, column swaps and the dominant Aᵀ·v products are contiguous; F is kept
//   transposed too (nb × n).
//
// Numerical caveats
//   R and Q are backward stable like unpivoted QR. The pivot order depends on rounding when two
//   remaining norms are within a few ulps of each other, so bit-for-bit agreement with another
//   implementation is only expected for well-separated norms. CPQR is rank revealing in practice but
//   not in the worst case (Kahan's matrix): |r_kk| can overestimate σ_k by a factor up to ~2ⁿ.

using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using Whittle.LinearAlgebra.Kernels;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>Options for <see cref="PivotedQr.Compute{T}(MatrixView{T}, PivotedQrOptions?)"/>.</summary>
/// <param name="MaxRank">Take at most this many steps (null: min(m, n)); must be non-negative.</param>
/// <param name="RelativeTolerance">Stop before the step whose diagonal would satisfy
/// <c>|r_kk| ≤ RelativeTolerance·|r_00|</c> (null: stop only at an exactly zero remainder); must be finite and non-negative.</param>
public sealed record PivotedQrOptions(int? MaxRank = null, double? RelativeTolerance = null);

/// <summary>Column-pivoted QR (LAPACK geqp3, blocked); see <see cref="PivotedQrResult{T}"/>.</summary>
public static class PivotedQr
{
    /// <summary>Columns per panel (LAPACK's nb for geqp3 is 32).</summary>
    internal const int BlockSize = 32;

    /// <summary>Factors <c>A·Π = Q·R</c>, greedily choosing the column of largest remaining norm. The input is not modified.</summary>
    /// <param name="a">The m × n matrix; every entry must be finite.</param>
    /// <param name="options">Rank limit and relative tolerance; null for a full factorization.</param>
    /// <exception cref="ArgumentException"><paramref name="a"/> contains NaN or infinity.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is negative or not finite.</exception>
    public static PivotedQrResult<T> Compute<T>(MatrixView<T> a, PivotedQrOptions? options = null)
        where T : unmanaged, IFloatingPointIeee754<T> => Compute(a, options, BlockSize);

    /// <summary>As <see cref="Compute{T}(MatrixView{T}, PivotedQrOptions?)"/> with an explicit panel width (1 = unblocked).</summary>
    internal static PivotedQrResult<T> Compute<T>(MatrixView<T> a, PivotedQrOptions? options, int blockSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (options is { MaxRank: < 0 })
            ThrowHelper.ArgumentOutOfRange(nameof(options), options.MaxRank, "MaxRank ≥ 0 (or null for no limit)");
        if (options?.RelativeTolerance is double tol && !(tol >= 0 && double.IsFinite(tol)))
            ThrowHelper.ArgumentOutOfRange(nameof(options), options.RelativeTolerance, "a finite RelativeTolerance ≥ 0 (or null)");
        MatrixChecks.RequireFinite(a, nameof(a));
        Debug.Assert(blockSize >= 1);

        int m = a.Rows, n = a.Cols;
        int kMax = Math.Min(Math.Min(m, n), options?.MaxRank ?? int.MaxValue);
        var state = new Factorization<T>(QrInput.TransposedCopy(a), blockSize, T.CreateTruncating(options?.RelativeTolerance ?? 0.0));
        int k = 0;
        while (k < kMax)
        {
            int steps = state.Panel(k, Math.Min(blockSize, kMax - k), updateTrailing: true, out bool stop, kMax);
            k += steps;
            if (stop) break;
        }
        Debug.Assert(state.Pivots.Order().SequenceEqual(Enumerable.Range(0, n)), "pivots form a permutation");
        return new PivotedQrResult<T>(state.FactorsT, state.Tau.AsSpan(0, k).ToArray(), state.Pivots, k);
    }

    /// <summary>The working state of one factorization (dgeqp3's A, jpvt, tau, vn1, vn2 and dlaqps's F).</summary>
    private sealed class Factorization<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public readonly Matrix<T> FactorsT; // n × m: row j is column j of the working matrix
        public readonly int[] Pivots;
        public readonly T[] Tau;
        private readonly T[] _vn1; // partial column norms (downdated)
        private readonly T[] _vn2; // the norms at their last exact computation
        private readonly Matrix<T> _ft; // Fᵀ: nb × n, row i = column i of F (global column indexing)
        private readonly T[] _aux, _row, _swap;
        private readonly List<int> _stale = new();
        private readonly T _tol3z, _relTol;
        private T _r00;
        private readonly int _m, _n;

        public Factorization(Matrix<T> factorsT, int blockSize, T relTol)
        {
            FactorsT = factorsT;
            _n = factorsT.Rows;
            _m = factorsT.Cols;
            Pivots = new int[_n];
            Tau = new T[Math.Min(_m, _n)];
            _vn1 = new T[_n];
            _vn2 = new T[_n];
            for (int j = 0; j < _n; j++)
            {
                Pivots[j] = j;
                _vn1[j] = _vn2[j] = VectorKernels.Norm2<T>(factorsT.Row(j));
            }
            _ft = new Matrix<T>(Math.Min(blockSize, Math.Max(1, Tau.Length)), _n);
            _aux = new T[_ft.Rows];
            _row = new T[_n];
            _swap = new T[_m];
            _tol3z = T.Sqrt(T.CreateTruncating(Precision.UnitRoundoff<T>())); // LAPACK: sqrt(dlamch('Epsilon')), which is u
            _relTol = relTol;
        }

        /// <summary>
        /// dlaqps: up to <paramref name="nb"/> steps starting at row/column <paramref name="s"/>. Returns the
        /// number of steps taken; <paramref name="stop"/> is set when the tolerance (or a zero pivot) ended
        /// the factorization. The trailing update is skipped when no further step will be taken.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // long loops, few calls: skip tier-0/OSR
        public int Panel(int s, int nb, bool updateTrailing, out bool stop, int kMax)
        {
            int m = _m, n = _n;
            var at = FactorsT;
            var ft = _ft;
            stop = false;
            _stale.Clear();
            int kk = 0;
            for (; kk < nb; kk++)
            {
                int c = s + kk, rk = s + kk;

                // Pivot: the largest partial norm among columns c..n (first one on ties, as idamax).
                int p = c;
                T best = _vn1[c];
                for (int j = c + 1; j < n; j++)
                    if (_vn1[j] > best) { best = _vn1[j]; p = j; }
                if (p != c)
                {
                    var rowP = at.Row(p);
                    var rowC = at.Row(c);
                    rowP.CopyTo(_swap);
                    rowC.CopyTo(rowP);
                    _swap.AsSpan(0, m).CopyTo(rowC);
                    for (int i = 0; i < kk; i++) (ft[i, p], ft[i, c]) = (ft[i, c], ft[i, p]);
                    (Pivots[p], Pivots[c]) = (Pivots[c], Pivots[p]);
                    (_vn1[p], _vn1[c]) = (_vn1[c], _vn1[p]);
                    (_vn2[p], _vn2[c]) = (_vn2[c], _vn2[p]);
                }

                // Bring column c up to date: A[rk:m, c] −= A[rk:m, s:c]·F[c, 0:kk]ᵀ.
                var col = at.Row(c).Slice(rk);
                for (int i = 0; i < kk; i++)
                    VectorKernels.Axpy<T>(-ft[i, c], at.Row(s + i).Slice(rk), col);

                T tau = Householder.Generate(at.Slice(c, rk, 1, m - rk).Transpose());
                T beta = T.Abs(col[0]);
                if (c == 0) _r00 = beta;
                if (beta == T.Zero || beta <= _relTol * _r00)
                {
                    // Not taken: R's rows above rk are complete for every column, and nothing below is needed.
                    stop = true;
                    return kk;
                }
                Debug.Assert(c == 0 || beta <= _r00 * (T.One + T.CreateTruncating(1e-3)), "|r_kk| exceeds |r_00| beyond rounding");
                Tau[c] = tau;
                T akk = col[0];
                col[0] = T.One;

                int rest = n - c - 1;
                var fk = ft.Row(kk);
                if (rest > 0)
                {
                    // F[c+1:n, kk] = τ·A[rk:m, c+1:n]ᵀ·v − τ·F[c+1:n, 0:kk]·(A[rk:m, s:c]ᵀ·v)
                    Blas.Gemv(tau, at.Slice(c + 1, rk, rest, m - rk), col, T.Zero, fk.Slice(c + 1));
                    for (int i = 0; i < kk; i++)
                        _aux[i] = -tau * VectorKernels.Dot<T>(at.Row(s + i).Slice(rk), col);
                    for (int i = 0; i < kk; i++)
                        if (_aux[i] != T.Zero)
                            VectorKernels.Axpy<T>(_aux[i], ft.Row(i).Slice(c + 1), fk.Slice(c + 1));

                    // Row rk of R: A[rk, c+1:n] −= A[rk, s:c+1]·F[c+1:n, 0:kk+1]ᵀ.
                    var row = _row.AsSpan(c + 1, rest);
                    fk.Slice(c + 1).CopyTo(row); // A[rk, c] = v[0] = 1
                    for (int i = 0; i < kk; i++)
                    {
                        T ari = at[s + i, rk];
                        if (ari != T.Zero) VectorKernels.Axpy<T>(ari, ft.Row(i).Slice(c + 1), row);
                    }

                    // Downdate the partial norms with the new row; flag those that cancelled.
                    bool downdate = rk < Math.Min(m, n) - 1;
                    var data = at.AsSpan();
                    for (int j = c + 1, idx = (c + 1) * m + rk; j < n; j++, idx += m)
                    {
                        T arj = data[idx] - row[j - c - 1];
                        data[idx] = arj;
                        if (!downdate || _vn1[j] == T.Zero) continue;
                        T temp = T.Abs(arj) / _vn1[j];
                        temp = T.Max(T.Zero, (T.One + temp) * (T.One - temp));
                        T ratio = _vn1[j] / _vn2[j];
                        if (temp * ratio * ratio <= _tol3z) _stale.Add(j);
                        else _vn1[j] *= T.Sqrt(temp);
                    }
                }
                col[0] = akk;
                if (_stale.Count > 0)
                {
                    kk++;
                    break;
                }
            }

            int kb = kk, r0 = s + kb;
            Debug.Assert(kb >= 1 || stop, "a panel always takes at least one step unless the factorization stops");
            if (updateTrailing && s + kb < kMax && r0 < m)
            {
                // A[r0:m, r0:n] −= A[r0:m, s:r0]·F[r0:n, 0:kb]ᵀ, i.e. (transposed) At[r0:n, r0:m] −= F·V.
                Blas.Gemm(-T.One, ft.Slice(0, r0, kb, n - r0).Transpose(), at.Slice(s, r0, kb, m - r0), T.One,
                    at.Slice(r0, r0, n - r0, m - r0));
                foreach (int j in _stale)
                {
                    Debug.Assert(j >= r0);
                    _vn1[j] = _vn2[j] = VectorKernels.Norm2<T>(at.Row(j).Slice(r0));
                }
            }
            return kb;
        }
    }
}

/// <summary>
/// The column-pivoted QR factorization <c>A·Π = Q·R</c> of an m × n matrix, truncated after
/// <see cref="Rank"/> steps, from <see cref="PivotedQr.Compute{T}(MatrixView{T}, PivotedQrOptions?)"/>.
/// </summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed class PivotedQrResult<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Matrix<T> _factorsT;
    private readonly T[] _tau;
    private readonly int[] _pivots;

    internal PivotedQrResult(Matrix<T> factorsT, T[] tau, int[] pivots, int rank)
    {
        Debug.Assert(tau.Length == rank && pivots.Length == factorsT.Rows);
        _factorsT = factorsT;
        _tau = tau;
        _pivots = pivots;
        Rank = rank;
        R = QrInput.UpperTrapezoid(factorsT, rank);
        var diag = new T[rank];
        for (int i = 0; i < rank; i++) diag[i] = T.Abs(R[i, i]);
        DiagonalMagnitudes = diag;
    }

    /// <summary>Number of rows m of the factored matrix.</summary>
    public int Rows => _factorsT.Cols;

    /// <summary>Number of columns n of the factored matrix.</summary>
    public int Cols => _factorsT.Rows;

    /// <summary>The number of steps taken, k: the numerical rank under the options given.</summary>
    public int Rank { get; }

    /// <summary>The k × n upper trapezoidal factor <c>[R11 R12]</c>, columns in pivoted order (the same instance on every call; treat it as read-only).</summary>
    public Matrix<T> R { get; }

    /// <summary>The column permutation Π (length n): column <c>Pivots[j]</c> of A is column j of <c>A·Π</c>;
    /// the first <see cref="Rank"/> entries are the chosen columns in pivot order.</summary>
    public ReadOnlySpan<int> Pivots => _pivots;

    /// <summary>|r_jj| for j &lt; k, non-increasing (up to rounding).</summary>
    public IReadOnlyList<T> DiagonalMagnitudes { get; }

    /// <summary>The m × k matrix Q with orthonormal columns such that <c>(A·Π)[:, 0:k] = Q·R11</c>
    /// (and <c>A·Π ≈ Q·R</c> up to the discarded remainder); formed on each call (as LAPACK orgqr).</summary>
    public Matrix<T> Q() => Householder.FormQ(_factorsT.Transpose().SliceCols(0, Rank), _tau, Rank, PivotedQr.BlockSize);
}
