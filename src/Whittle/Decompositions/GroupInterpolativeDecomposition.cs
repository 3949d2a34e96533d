// Group (block) column interpolative decomposition: keep whole groups of columns, Z ≈ Z[:, C(I)]·M.
//
// Contract
//   Shapes: Z is n × h with h = G·B columns in G contiguous groups of B (group g owns columns g·B … g·B + B − 1:
//   one attention head's output block, or one group of query heads sharing a key/value head). Z is known
//   through a factor A (m × h) with AᵀA = ZᵀZ (Z, its TSQR factor R, or a row sketch S·Z), as
//   InterpolativeDecompositionPath. The greedy block pivoting keeps at each step the group whose residual
//   block has the largest Frobenius norm, then projects that block out of every column:
//     E_0 = A;  step s: g_s = argmax_g ‖E_s[:, g]‖_F;  E_{s+1} = (I − Q_s·Q_sᵀ)·E_s, Q_s an orthonormal basis of E_s[:, g_s].
//   This is column-pivoted QR with blocks as pivots (B = 1 gives CPQR's pivots), so one factorization serves
//   every number of kept groups k:
//     At(k)            I = the first k groups, C(I) their columns (group order, ascending within a group),
//                      M (k·B × h) with M[:, C(I)] = I and M[:, rest] = argmin ‖A[:, rest] − A[:, C(I)]·X‖_F
//                      (minimum-norm least squares): the least-squares correction of the dropped groups
//     DiagonalRatio(k) ‖E_k[:, g_k]‖_F / ‖A[:, g_0]‖_F (0 once the remainder is negligible)
//     ResidualNorm(k)  ‖E_k‖_F = ‖Z − Z[:, C(I)]·M‖_F
//   A is never modified.
//
// Reference
//   STAT (Flynn, Wang, Alvarez, De Sa, Damle, arXiv 2406.00061) prunes attention heads by an ID over heads
//   with a least-squares correction folded into the output projection; block pivoting as in block
//   rank-revealing QR (Golub & Van Loan, 4th ed., §5.4).
//
// Numerical caveats
//   A block whose residual is rank deficient (dead head dimensions) gets a basis of its numerical range only
//   (singular values above max(m, h)·ε·σ₁(A)). The residual bookkeeping is explicit (E is updated, not
//   downdated), so ResidualNorm is accurate to rounding.

using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>A group interpolative decomposition <c>Z ≈ Z[:, Columns]·Interpolation</c> keeping whole column groups.</summary>
/// <param name="Groups">The k kept groups, in pivot order.</param>
/// <param name="Columns">Their columns: group by group in pivot order, ascending within a group (k·B entries).</param>
/// <param name="Interpolation">M, k·B × h, with <c>M[:, Columns[j]] = e_j</c> exactly.</param>
/// <param name="DiagonalRatio">The norm of the best remaining group after k steps relative to the first group's.</param>
/// <param name="ResidualNorm"><c>‖Z − Z[:, Columns]·M‖_F</c>.</param>
/// <param name="RelativeResidual"><see cref="ResidualNorm"/> / ‖Z‖_F (0 when Z = 0).</param>
public sealed record GroupInterpolativeDecomposition(
    int[] Groups, int[] Columns, Matrix<double> Interpolation, double DiagonalRatio, double ResidualNorm, double RelativeResidual)
{
    /// <summary>k, the number of kept groups.</summary>
    public int Rank => Groups.Length;
}

/// <summary>All group interpolative decompositions of one matrix, from one block-pivoted factorization of a factor of Z.</summary>
public sealed class GroupInterpolativeDecompositionPath
{
    private readonly Matrix<double> _a;
    private readonly int[] _order;
    private readonly double[] _ratio;
    private readonly double[] _residual;
    private readonly int _maxRank;

    private GroupInterpolativeDecompositionPath(Matrix<double> a, int groupSize, int[] order, double[] ratio, double[] residual, int maxRank)
    {
        _a = a;
        GroupSize = groupSize;
        _order = order;
        _ratio = ratio;
        _residual = residual;
        _maxRank = maxRank;
    }

    /// <summary>Factors <paramref name="a"/> (m × G·B, with <c>AᵀA = ZᵀZ</c>) by greedy block pivoting over groups of <paramref name="groupSize"/> columns.</summary>
    /// <param name="a">Z, its R factor or a row sketch of it; every entry finite. Not modified (copied).</param>
    /// <param name="groupSize">B ≥ 1; the column count must be a multiple of it.</param>
    /// <exception cref="ArgumentException">The columns are not a multiple of the group size, or A is not finite.</exception>
    public static GroupInterpolativeDecompositionPath Factor(MatrixView<double> a, int groupSize)
    {
        if (groupSize < 1) ThrowHelper.ArgumentOutOfRange(nameof(groupSize), groupSize, "a group size ≥ 1");
        if (a.Cols % groupSize != 0)
            ThrowHelper.ShapeMismatch(nameof(a), "GroupInterpolativeDecompositionPath: the columns must form whole groups", $"a multiple of {groupSize} columns", $"{a.Cols}");
        MatrixChecks.RequireFinite(a, nameof(a));
        int m = a.Rows, h = a.Cols, groups = h / groupSize;
        var copy = a.ToMatrix();
        var e = copy.Clone();
        double norm = MatrixNorms.Frobenius(copy.View);
        double cutoff = Math.Max(m, h) * InterpolativeDecompositions.Epsilon<double>();
        var order = new List<int>(groups);
        var remaining = new SortedSet<int>(Enumerable.Range(0, groups));
        var ratio = new double[groups + 1];
        var residual = new double[groups + 1];
        residual[0] = norm;
        double first = 0;
        double sigma1 = norm > 0 ? LargestSingularValue(copy.View) : 0;
        int maxRank = 0;
        for (int s = 0; s < groups; s++)
        {
            int best = -1;
            double bestNorm = -1;
            foreach (int g in remaining)
            {
                double n = MatrixNorms.Frobenius(e.View.SliceCols(g * groupSize, groupSize));
                if (n > bestNorm) { bestNorm = n; best = g; }
            }
            if (s == 0) first = bestNorm;
            if (bestNorm <= cutoff * Math.Max(sigma1, double.Epsilon))
            {
                // The remaining groups lie in the span of the kept ones (to rounding): every further ID is exact.
                for (int t = s; t <= groups; t++) { ratio[t] = 0; residual[t] = s == 0 ? 0 : residual[s]; }
                break;
            }
            ratio[s] = first > 0 ? bestNorm / first : 0;
            order.Add(best);
            remaining.Remove(best);
            maxRank = s + 1;
            Project(e, e.View.SliceCols(best * groupSize, groupSize).ToMatrix(), cutoff * sigma1);
            residual[s + 1] = MatrixNorms.Frobenius(e.View);
        }
        order.AddRange(remaining);
        ratio[groups] = 0;
        return new GroupInterpolativeDecompositionPath(copy, groupSize, [.. order], ratio, residual, maxRank);
    }

    /// <summary>B, columns per group.</summary>
    public int GroupSize { get; }

    /// <summary>G, the number of groups.</summary>
    public int Groups => _order.Length;

    /// <summary>h = G·B.</summary>
    public int Columns => _a.Cols;

    /// <summary>The most groups worth keeping: beyond it the remaining groups lie in the span of the kept ones (to rounding).</summary>
    public int MaxRank => _maxRank;

    /// <summary>The groups in pivot order (the first k are kept by the rank-k decomposition).</summary>
    public ReadOnlySpan<int> GroupPivots => _order;

    /// <summary>‖Z‖_F.</summary>
    public double Norm => _residual[0];

    /// <summary>The norm of the best remaining group after k steps relative to the first group's (0 for k ≥ <see cref="MaxRank"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not in 0..G.</exception>
    public double DiagonalRatio(int k)
    {
        CheckRank(k);
        return k >= _maxRank ? 0 : _ratio[k];
    }

    /// <summary><c>‖Z − Z[:, C(I)]·M‖_F</c> after keeping k groups.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not in 0..G.</exception>
    public double ResidualNorm(int k)
    {
        CheckRank(k);
        return _residual[Math.Min(k, Groups)];
    }

    /// <summary>The smallest k whose <see cref="DiagonalRatio"/> is at most <paramref name="tolerance"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The tolerance is negative or not finite.</exception>
    public int RankFor(double tolerance)
    {
        if (!(tolerance >= 0) || !double.IsFinite(tolerance)) ThrowHelper.ArgumentOutOfRange(nameof(tolerance), tolerance, "a finite tolerance ≥ 0");
        for (int k = 0; k < _maxRank; k++)
            if (_ratio[k] <= tolerance) return k;
        return _maxRank;
    }

    /// <summary>The decomposition keeping the first <paramref name="k"/> groups, with the least-squares correction of the others.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not in 0..G.</exception>
    public GroupInterpolativeDecomposition At(int k)
    {
        CheckRank(k);
        int b = GroupSize, h = Columns;
        var groups = _order.AsSpan(0, k).ToArray();
        var columns = new int[k * b];
        for (int j = 0; j < k; j++)
            for (int c = 0; c < b; c++) columns[j * b + c] = groups[j] * b + c;
        var kept = new HashSet<int>(columns);
        var rest = Enumerable.Range(0, h).Where(c => !kept.Contains(c)).ToArray();
        var m = new Matrix<double>(k * b, h);
        for (int j = 0; j < columns.Length; j++) m[j, columns[j]] = 1;
        double residual = Norm;
        if (k > 0 && rest.Length > 0)
        {
            var ai = InterpolativeDecompositions.GatherColumns(_a.View, columns);
            var ar = InterpolativeDecompositions.GatherColumns(_a.View, rest);
            var x = LeastSquares.Solve(ai.View, ar.View).X;
            for (int j = 0; j < rest.Length; j++)
                for (int i = 0; i < columns.Length; i++) m[i, rest[j]] = x[i, j];
            Blas.Gemm(-1.0, ai.View, x.View, 1.0, ar.View);
            residual = MatrixNorms.Frobenius(ar.View);
        }
        else if (rest.Length == 0) residual = 0;
        return new GroupInterpolativeDecomposition(groups, columns, m, DiagonalRatio(k), residual, Norm > 0 ? residual / Norm : 0);
    }

    /// <summary>
    /// σ₁(A) by power iteration on AᵀA from a fixed start (deterministic; at most 200 steps): it only scales the cutoff
    /// below which a block counts as empty, and a full SVD of A (h up to the model width) would cost more than the path.
    /// </summary>
    internal static double LargestSingularValue(MatrixView<double> a)
    {
        int h = a.Cols;
        var x = new double[h];
        var y = new double[a.Rows];
        Array.Fill(x, 1 / Math.Sqrt(h));
        double lambda = 0;
        for (int it = 0; it < 200; it++)
        {
            Blas.Gemv(1.0, a, x, 0.0, y);
            Blas.Gemv(1.0, a.Transpose(), y, 0.0, x);
            double n = Math.Sqrt(x.Sum(v => v * v));
            if (n == 0) return 0;
            for (int i = 0; i < h; i++) x[i] /= n;
            bool converged = Math.Abs(n - lambda) <= 1e-10 * n;
            lambda = n;
            if (converged && it >= 2) break;
        }
        return Math.Sqrt(lambda);
    }

    /// <summary>E ← (I − Q·Qᵀ)·E for an orthonormal basis Q of the block's numerical range.</summary>
    private static void Project(Matrix<double> e, Matrix<double> block, double cutoff)
    {
        var svd = Svd.Compute(block.View);
        int r = 0;
        while (r < svd.S.Length && svd.S[r] > cutoff) r++;
        if (r == 0) return;
        var q = svd.U.Slice(0, 0, block.Rows, r);
        var qte = Blas.Multiply(q.Transpose(), e.View);   // r × h
        Blas.Gemm(-1.0, q, qte.View, 1.0, e.View);
    }

    private void CheckRank(int k)
    {
        if (k < 0 || k > Groups) ThrowHelper.ArgumentOutOfRange(nameof(k), k, $"a number of groups in 0..{Groups}");
    }
}
