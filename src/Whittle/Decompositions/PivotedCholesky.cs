// Pivoted Cholesky of a symmetric positive semidefinite matrix: Πᵀ·G·Π ≈ RᵀR, R upper trapezoidal.
//
// Contract
//   Shapes: G is h × h symmetric positive semidefinite (for the ID: G = ZᵀZ, Z n × h with rows =
//   samples, columns = neurons); only its upper triangle is read and it is never modified.
//   Step j (0-based) moves the index with the largest remaining Schur-complement diagonal d to
//   position j (ties: the lowest current position, as CPQR), sets r_jj = sqrt(d_j) and
//   R[j, j+1:] = (G[π_j, π_{j+1:}] − R[:j, j]ᵀ·R[:j, j+1:]) / r_jj, then d_i −= R[j, i]².
//   With k = Rank steps: R is k × h in pivot order, upper trapezoidal with positive diagonal;
//   Πᵀ·G·Π = [R11 R12]ᵀ[R11 R12] + [0 0; 0 S] with S the Schur complement, whose diagonal is
//   TrailingDiagonal. For G = ZᵀZ this R is the R of Z's column-pivoted QR (up to row signs): the
//   remaining diagonal d_i is the squared norm of column i after projecting out the chosen columns,
//   so the pivots are CPQR's in exact arithmetic.
//   Stopping (before step k): k = MaxRank; d_max ≤ RelativeTolerance²·d_0 (i.e. r_kk ≤ tol·r_00);
//   sqrt(trace S) ≤ ResidualTolerance·sqrt(trace G); and always d_max ≤ h·u·max_i G_ii (LAPACK dpstrf's
//   default, which also stops on a zero or negative remainder).
//
// Reference
//   Higham, "Accuracy and Stability of Numerical Algorithms" (2nd ed.), §10.3 (Cholesky with complete
//   pivoting); Lucas, "LAPACK-style codes for level 2 and 3 pivoted Cholesky factorizations" (LAPACK
//   dpstf2/dpstrf); Harbrecht, Peters & Schneider (2012) for its use as a low-rank approximation.
//   This implementation is blocked like dpstrf: a working matrix W holds the Schur complement of the
//   positions not yet factored as of the start of the current panel; within a panel of Block steps each
//   row is read from W and subtracts only the panel's earlier rows (a GEMV of at most Block rows), and
//   after the panel W is gathered into the new pivot order and updated by one GEMM. The work is in
//   level-3 kernels; memory is two h² scratch matrices at most (the old W and the new).
//
// Numerical caveats
//   Working on G squares the condition number: entries of the remaining diagonal carry absolute errors
//   of about ε·‖G‖ = ε·‖Z‖², so r_kk and ‖R22‖ are accurate only down to about sqrt(ε)·‖Z‖, and the
//   pivot order may differ from CPQR's once the remaining column norms fall to that level. The
//   diagonal is downdated (d_i −= r_ji²), as dpstrf does.

using System.Diagnostics;
using System.Numerics;
using Whittle.LinearAlgebra;

namespace Whittle.Decompositions;

/// <summary>Stopping rules of <see cref="PivotedCholesky.Compute{T}(MatrixView{T}, PivotedCholeskyOptions?)"/>.</summary>
/// <param name="MaxRank">At most this many steps (null: h); non-negative.</param>
/// <param name="RelativeTolerance">Stop before the step with <c>r_kk ≤ RelativeTolerance·r_00</c>; finite, non-negative.</param>
/// <param name="ResidualTolerance">Stop before step k when <c>sqrt(trace S_k) ≤ ResidualTolerance·sqrt(trace G)</c>; finite, non-negative.</param>
public sealed record PivotedCholeskyOptions(int? MaxRank = null, double? RelativeTolerance = null, double? ResidualTolerance = null);

/// <summary>The result of a pivoted Cholesky factorization <c>Πᵀ·G·Π ≈ RᵀR</c> truncated after <see cref="Rank"/> steps.</summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed class PivotedCholeskyResult<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int[] _pivots;
    private readonly T[] _trailing;

    internal PivotedCholeskyResult(Matrix<T> r, int[] pivots, T[] trailing, double trace)
    {
        R = r;
        _pivots = pivots;
        _trailing = trailing;
        Trace = trace;
    }

    /// <summary>The number of steps k.</summary>
    public int Rank => R.Rows;

    /// <summary>k × h upper trapezoidal factor in pivot order, positive diagonal (treat it as read-only).</summary>
    public Matrix<T> R { get; }

    /// <summary>The permutation Π (length h): index <c>Pivots[j]</c> of G is position j; the first k are the chosen indices.</summary>
    public ReadOnlySpan<int> Pivots => _pivots;

    /// <summary>The diagonal of the Schur complement after k steps, for positions k..h−1 (pivot order); may hold tiny negative values from rounding.</summary>
    public ReadOnlySpan<T> TrailingDiagonal => _trailing;

    /// <summary>trace(G) (= ‖Z‖_F² for G = ZᵀZ), in double.</summary>
    public double Trace { get; }
}

/// <summary>Pivoted (diagonal-pivoting) Cholesky of a symmetric positive semidefinite matrix; see <see cref="PivotedCholeskyResult{T}"/>.</summary>
public static class PivotedCholesky
{
    /// <summary>Factors <c>Πᵀ·G·Π ≈ RᵀR</c>, greedily choosing the largest remaining diagonal. G is not modified.</summary>
    /// <param name="g">Symmetric positive semidefinite h × h matrix; only the upper triangle is read; finite.</param>
    /// <param name="options">Stopping rules; null: factor until the remainder is negligible (dpstrf's default).</param>
    /// <exception cref="ArgumentException">G is not square or has non-finite entries.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is negative or not finite.</exception>
    public static PivotedCholeskyResult<T> Compute<T>(MatrixView<T> g, PivotedCholeskyOptions? options = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (g.Rows != g.Cols)
            ThrowHelper.ShapeMismatch(nameof(g), "PivotedCholesky: G must be square", "h×h", $"{g.Rows}×{g.Cols}");
        if (options is { MaxRank: < 0 })
            ThrowHelper.ArgumentOutOfRange(nameof(options), options.MaxRank, "MaxRank ≥ 0 (or null)");
        if (options?.RelativeTolerance is double rt && !(rt >= 0 && double.IsFinite(rt)))
            ThrowHelper.ArgumentOutOfRange(nameof(options), rt, "a finite RelativeTolerance ≥ 0 (or null)");
        if (options?.ResidualTolerance is double st && !(st >= 0 && double.IsFinite(st)))
            ThrowHelper.ArgumentOutOfRange(nameof(options), st, "a finite ResidualTolerance ≥ 0 (or null)");
        int h = g.Rows;
        for (int i = 0; i < h; i++)
            for (int j = i; j < h; j++)
                if (!T.IsFinite(g[i, j]))
                    ThrowHelper.Argument(nameof(g), $"The matrix must be finite, but entry ({i}, {j}) is {g[i, j]}.");

        int kMax = Math.Min(h, options?.MaxRank ?? int.MaxValue);
        var perm = new int[h];
        var d = new T[h];
        double trace = 0, maxDiag = 0;
        for (int i = 0; i < h; i++)
        {
            perm[i] = i;
            d[i] = g[i, i];
            double di = double.CreateTruncating(d[i]);
            trace += Math.Max(0, di);
            maxDiag = Math.Max(maxDiag, di);
        }
        double unit = double.CreateTruncating(T.BitIncrement(T.One) - T.One) / 2;
        T floor = T.CreateTruncating(h * unit * maxDiag);
        double relTol = options?.RelativeTolerance ?? 0;
        double resTol = options?.ResidualTolerance ?? -1;
        var r = new Matrix<T>(kMax, h);
        var col = new T[Block];
        // W: the Schur complement as of the panel's start; loc[pos] is the row/column of W of position pos (pos ≥ panel).
        var w = new Matrix<T>(h, h);
        for (int i = 0; i < h; i++)
            for (int j = i; j < h; j++) w[i, j] = w[j, i] = g[i, j];
        var loc = Enumerable.Range(0, h).ToArray();
        T d0 = T.Zero;
        int k = 0, panel = 0; // steps done; first step of the current panel
        for (; k < kMax; k++)
        {
            if (k - panel == Block)
            {
                w = Trailing(r, w, loc, panel, k);
                panel = k;
            }
            if (resTol >= 0)
            {
                double rest = 0;
                for (int i = k; i < h; i++) rest += Math.Max(0, double.CreateTruncating(d[i]));
                if (Math.Sqrt(rest) <= resTol * Math.Sqrt(trace)) break;
            }
            int p = k;
            T best = d[k];
            for (int i = k + 1; i < h; i++)
                if (d[i] > best) { best = d[i]; p = i; }
            if (k == 0) d0 = best;
            if (!(best > floor) || best <= T.Zero) break;
            if (k > 0 && double.CreateTruncating(best) <= relTol * relTol * double.CreateTruncating(d0)) break;
            if (k == 0 && relTol >= 1) break; // r_00 ≤ tol·r_00
            if (p != k)
            {
                (perm[p], perm[k]) = (perm[k], perm[p]);
                (d[p], d[k]) = (d[k], d[p]);
                (loc[p], loc[k]) = (loc[k], loc[p]);
                for (int i = 0; i < k; i++) (r[i, p], r[i, k]) = (r[i, k], r[i, p]);
            }
            T rkk = T.Sqrt(d[k]);
            r[k, k] = rkk;
            int rest1 = h - k - 1;
            if (rest1 == 0) { d[k] = T.Zero; continue; }
            var row = r.Row(k).Slice(k + 1);
            var wk = w.Row(loc[k]);
            for (int i = 0; i < rest1; i++) row[i] = wk[loc[k + 1 + i]];
            int inPanel = k - panel;
            if (inPanel > 0)
            {
                for (int i = 0; i < inPanel; i++) col[i] = r[panel + i, k];
                Blas.Gemv(-T.One, r.Slice(panel, k + 1, inPanel, rest1).Transpose(), col.AsSpan(0, inPanel), T.One, row);
            }
            T inv = T.One / rkk;
            for (int i = 0; i < rest1; i++)
            {
                row[i] *= inv;
                d[k + 1 + i] -= row[i] * row[i];
            }
            d[k] = T.Zero;
        }
        var rk = k == kMax ? r : r.Slice(0, 0, k, h).ToMatrix();
        Debug.Assert(perm.Order().SequenceEqual(Enumerable.Range(0, h)), "pivots form a permutation");
        return new PivotedCholeskyResult<T>(rk, perm, d.AsSpan(k).ToArray(), trace);
    }

    /// <summary>Steps per panel: the SYRK after each panel does the bulk of the work.</summary>
    private const int Block = 64;

    /// <summary>
    /// The Schur complement after the panel of steps k0..k1−1, for positions k1..h−1 in the current pivot order: W gathered
    /// through <paramref name="loc"/>, minus R[k0:k1, k1:]ᵀ·R[k0:k1, k1:]. Afterwards position pos is row pos − k1.
    /// </summary>
    private static Matrix<T> Trailing<T>(Matrix<T> r, Matrix<T> w, int[] loc, int k0, int k1) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int h = loc.Length, m = h - k1;
        var next = new Matrix<T>(m, m);
        for (int i = 0; i < m; i++)
        {
            var from = w.Row(loc[k1 + i]);
            var to = next.Row(i);
            for (int j = 0; j < m; j++) to[j] = from[loc[k1 + j]];
        }
        if (m > 0)
        {
            var panel = r.Slice(k0, k1, k1 - k0, m);
            Blas.Gemm(-T.One, panel.Transpose(), panel, T.One, next.View);
        }
        for (int pos = k1; pos < h; pos++) loc[pos] = pos - k1;
        return next;
    }
}
