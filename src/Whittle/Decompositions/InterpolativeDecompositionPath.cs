// Every column interpolative decomposition of one matrix, one per rank, from a single column-pivoted QR.
//
// Contract
//   Shapes: Z is n × h (rows = samples, columns = neurons / channels). Z is known through a factor A
//   (m × h) with AᵀA = ZᵀZ: Z itself, its TSQR factor R (TsqrAccumulator), or a row sketch S·Z (then
//   AᵀA ≈ ZᵀZ and every figure below refers to S·Z). One full CPQR A·Π = Q·R (R r × h in pivot order,
//   r = the number of steps with a nonzero pivot) serves every rank, because CPQR is greedy: the first
//   k pivots are the columns the rank-k ID keeps, whatever k.
//     At(k)            I = Π[:k], T = [I_k, R11⁻¹R12]·Πᵀ (k × h, T[:, I] = I_k), as InterpolativeDecompositions
//                      (pseudo-inverse fallback when R11 is numerically singular); k is capped at r, where the ID is exact
//     DiagonalRatio(k) |r_kk| / |r_00|, the paper's ε_k (0 for k ≥ r)
//     ResidualNorm(k)  ‖R22(k)‖_F = ‖Z − Z[:, I]·T‖_F (suffix sums of R's squared row norms: no cancellation)
//     RankFor(ε)       min{k : DiagonalRatio(k) ≤ ε}, the per-layer width of a global tolerance ε
//   A is never modified.
//
// Reference
//   Chee, Flynn (Renz), Damle, De Sa, "Model Preserving Compression for Neural Networks", NeurIPS 2022
//   (arXiv 2108.00065), §3–4 (ε_k and the global-tolerance heuristic for per-layer sizes).
//
// Numerical caveats
//   As InterpolativeDecompositions: CPQR is rank revealing in practice, not in the worst case; ratios below
//   about max(m, h)·ε are rounding.

using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>All column interpolative decompositions <c>Z ≈ Z[:, I]·T</c> of one matrix, from one column-pivoted QR of a factor of Z.</summary>
public sealed class InterpolativeDecompositionPath
{
    private readonly Matrix<double> _r;
    private readonly int[] _pivots;
    private readonly double[] _diagonal;
    private readonly double[] _suffix;
    private readonly double _cutoff;

    private InterpolativeDecompositionPath(Matrix<double> r, int[] pivots, double[] diagonal, double[] suffix, double cutoff)
    {
        _r = r;
        _pivots = pivots;
        _diagonal = diagonal;
        _suffix = suffix;
        _cutoff = cutoff;
    }

    /// <summary>Factors <paramref name="a"/> (m × h, with <c>AᵀA = ZᵀZ</c>) by one full column-pivoted QR.</summary>
    /// <param name="a">Z, its R factor or a row sketch of it; every entry finite. Not modified.</param>
    /// <exception cref="ArgumentException"><paramref name="a"/> contains NaN or infinity.</exception>
    public static InterpolativeDecompositionPath Factor(MatrixView<double> a)
    {
        var qr = PivotedQr.Compute(a);
        int r = qr.Rank, h = a.Cols;
        var diagonal = new double[r];
        for (int i = 0; i < r; i++) diagonal[i] = qr.DiagonalMagnitudes[i];
        return Of(qr.R, qr.Pivots.ToArray(), diagonal, Math.Max(a.Rows, h) * InterpolativeDecompositions.Epsilon<double>());
    }

    /// <summary>
    /// The same path from the Gram matrix <c>G = ZᵀZ</c> by one pivoted Cholesky (<see cref="PivotedCholesky"/>): its R is the R
    /// of Z's column-pivoted QR in exact arithmetic (up to row signs), for ~h³/6 multiply–adds instead of a CPQR of a factor.
    /// Accurate to about sqrt(ε)·‖Z‖ (the Gram squares the condition number).
    /// </summary>
    /// <param name="gram">h × h symmetric positive semidefinite; only the upper triangle is read; finite. Not modified.</param>
    /// <exception cref="ArgumentException"><paramref name="gram"/> is not square or contains NaN or infinity.</exception>
    public static InterpolativeDecompositionPath FromGram(MatrixView<double> gram)
    {
        var chol = PivotedCholesky.Compute(gram);
        int r = chol.Rank, h = gram.Cols;
        var diagonal = new double[r];
        for (int i = 0; i < r; i++) diagonal[i] = Math.Abs(chol.R[i, i]);
        return Of(chol.R, chol.Pivots.ToArray(), diagonal, h * InterpolativeDecompositions.Epsilon<double>());
    }

    /// <summary>The path of an upper trapezoidal R (pivot order) with its pivots and |r_ii|.</summary>
    private static InterpolativeDecompositionPath Of(Matrix<double> r, int[] pivots, double[] diagonal, double cutoff)
    {
        // suffix[k] = Σ_{i ≥ k} ‖R[i, :]‖² = ‖R22(k)‖_F²; beyond the rank the remainder is zero.
        var suffix = new double[r.Rows + 1];
        for (int i = r.Rows - 1; i >= 0; i--)
        {
            double s = 0;
            foreach (double v in r.Row(i)) s += v * v;
            suffix[i] = suffix[i + 1] + s;
        }
        return new InterpolativeDecompositionPath(r, pivots, diagonal, suffix, cutoff);
    }

    /// <summary>h, the number of columns.</summary>
    public int Columns => _pivots.Length;

    /// <summary>r, the largest rank the factorization offers (the numerical rank of Z); larger requests are capped here, where the ID is exact.</summary>
    public int MaxRank => _r.Rows;

    /// <summary>The column permutation Π: the rank-k ID keeps <c>Pivots[..k]</c>.</summary>
    public ReadOnlySpan<int> Pivots => _pivots;

    /// <summary>‖Z‖_F.</summary>
    public double Norm => Math.Sqrt(_suffix[0]);

    /// <summary>ε_k = <c>|r_kk| / |r_00|</c>: the largest remaining column norm after k steps relative to the first pivot's (0 for k ≥ <see cref="MaxRank"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not in 0..h.</exception>
    public double DiagonalRatio(int k)
    {
        CheckRank(k);
        return k >= MaxRank ? 0 : _diagonal[k] / _diagonal[0];
    }

    /// <summary><c>‖Z − Z[:, I]·T‖_F</c> of the rank-k ID.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not in 0..h.</exception>
    public double ResidualNorm(int k)
    {
        CheckRank(k);
        return k >= MaxRank ? 0 : Math.Sqrt(_suffix[k]);
    }

    /// <summary>The smallest k with <c>ε_k ≤ tolerance</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The tolerance is negative or not finite.</exception>
    public int RankFor(double tolerance)
    {
        if (!(tolerance >= 0) || !double.IsFinite(tolerance)) ThrowHelper.ArgumentOutOfRange(nameof(tolerance), tolerance, "a finite tolerance ≥ 0");
        for (int k = 0; k < MaxRank; k++)
            if (_diagonal[k] <= tolerance * _diagonal[0]) return k;
        return MaxRank;
    }

    /// <summary>The rank-k ID (k capped at <see cref="MaxRank"/>): indices in pivot order, T, ε_k and the residual.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not in 0..h.</exception>
    public InterpolativeDecomposition<double> At(int k)
    {
        CheckRank(k);
        k = Math.Min(k, MaxRank);
        var x = InterpolativeDecompositions.Coefficients(_r, k, _cutoff, out bool pinv);
        return InterpolativeDecompositions.Assemble(_pivots, k, x, DiagonalRatio(k), ResidualNorm(k), Norm, pinv);
    }

    private void CheckRank(int k)
    {
        if (k < 0 || k > Columns) ThrowHelper.ArgumentOutOfRange(nameof(k), k, $"a rank in 0..{Columns}");
    }
}
