// Column interpolative decomposition (ID): Z ≈ Z[:, I]·T, |I| = k, T[:, I] = I_k.
//
// Contract
//   Shapes: Z is n × h (rows = samples, columns = neurons / channels); I holds k column indices of Z
//   in pivot order; T (the paper's interpolation matrix) is k × h with T[:, I] = I_k exactly.
//   Z·Π = Q·[R11 R12; 0 R22] (column-pivoted QR, R11 k × k upper triangular), I = Π[:k],
//   T = [I_k, R11⁻¹R12]·Πᵀ, and ‖Z − Z[:, I]·T‖_F = ‖R22‖_F in exact arithmetic.
//   The rank comes from exactly one of
//     Rank k                                  (IdOptions.Rank; k ≤ h),
//     RelativeDiagonal tolerance ε: the smallest k with |r_{k+1,k+1}| ≤ ε·|r_11|,
//     RelativeResidual tolerance ε: the smallest k with ‖R22‖_F ≤ ε·‖Z‖_F.
//   The rank actually used never exceeds the number of CPQR steps with a nonzero pivot column, so a
//   request above the exact rank of Z (e.g. more columns than there are non-dead neurons, or more
//   than n samples) yields fewer indices: Indices.Length is the k used, and the ID is then exact.
//   (FromGram likewise stops once the remaining Schur-complement diagonal is negligible, at the
//   h·u·max G_ii level of LAPACK dpstrf, so it may return fewer indices than the QR variants, which take
//   rounding-level steps and then fall back to the pseudo-inverse.)
//   The inputs are never modified.
//
//   Variants for tall Z (same pivots as the direct CPQR in exact arithmetic):
//     FromRFactors  TSQR: stack per-batch R factors R_b (Z_b = Q_b·R_b), re-factor the stack to one
//                   h × h R, and run CPQR on it (Z = Q·R, so CPQR(Z) and CPQR(R) choose the same
//                   columns and have the same R up to row signs); ‖Z‖_F = ‖R‖_F.
//     FromGram      pivoted Cholesky of G = ZᵀZ (see PivotedCholesky): Πᵀ·G·Π = RᵀR with the same R
//                   as CPQR up to row signs.
//     FromSketch    CPQR of S·Z for a random s × n row sketch S (see RowSketch): the ID of S·Z, an
//                   approximation of Z's ID that is exact when rank(S·Z) = rank(Z) = k.
//
// Reference
//   Chee, Flynn (Renz), Damle, De Sa, "Model Preserving Compression for Neural Networks", NeurIPS 2022
//   (arXiv 2108.00065), §3; Cheng, Gimbutas, Martinsson & Rokhlin, "On the compression of low rank
//   matrices" (SISC 2005); Gu & Eisenstat (1996) for the rank-revealing bound
//   ‖Z − Z[:, I]·T‖₂ ≤ sqrt(1 + f²k(h − k))·σ_{k+1}(Z) (f = 2 for strong RRQR; CPQR satisfies it in
//   practice but not in the worst case); Demmel, Grigori, Hoemmen & Langou (2012) for TSQR; STAT
//   (Flynn et al., arXiv 2406.00061) for row sketching of tall activation matrices.
//
// Numerical caveats
//   R11 is numerically singular when min_i |r_ii| ≤ c·|r_11| (c = max(rows, h)·ε for QR, the square root
//   of that for the Gram variant): that happens when more columns are requested than Z's numerical rank
//   (dead or duplicated neurons, rounding-level remainders). Then R11⁻¹R12 would be dominated by
//   rounding and ‖T‖ would explode, so X = R11⁺R12 is used instead (pseudo-inverse with relative
//   cutoff c) and UsedPseudoInverse is set. ResidualNorm is computed directly, as the Frobenius norm of
//   A[:, rest] − A[:, I]·X for the factored matrix A (Z, the re-factored R, or S·Z), so it matches
//   Error(Z) to rounding for Compute and FromRFactors; for FromGram it is sqrt(trace of the Schur
//   complement), accurate only to about sqrt(ε)·‖Z‖_F; for FromSketch it refers to S·Z (an estimate),
//   call Error(z) for the true value. The Gram variant squares the condition number: diagonal ratios
//   below about sqrt(ε) are not resolved (≈ 3e-4 in float, 1e-8 in double).

using System.Diagnostics;
using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>How <see cref="IdOptions.Tolerance"/> chooses the rank of an interpolative decomposition.</summary>
public enum IdTolerance
{
    /// <summary>The smallest k with <c>|r_{k+1,k+1}| ≤ ε·|r_11|</c> (the paper's cheap proxy ε_k).</summary>
    RelativeDiagonal,

    /// <summary>The smallest k with <c>‖R22‖_F ≤ ε·‖Z‖_F</c>, i.e. relative Frobenius error at most ε.</summary>
    RelativeResidual,
}

/// <summary>Rank selection for an interpolative decomposition: give exactly one of <see cref="Rank"/> and <see cref="Tolerance"/>.</summary>
/// <param name="Rank">The number of columns k to keep (0 ≤ k ≤ h).</param>
/// <param name="Tolerance">Relative tolerance ε ≥ 0 (finite), interpreted according to <see cref="ToleranceKind"/>.</param>
/// <param name="ToleranceKind">Which quantity <see cref="Tolerance"/> bounds.</param>
public sealed record IdOptions(int? Rank = null, double? Tolerance = null, IdTolerance ToleranceKind = IdTolerance.RelativeDiagonal);

/// <summary>
/// A column interpolative decomposition <c>Z ≈ Z[:, Indices]·Interpolation</c> of an n × h matrix Z.
/// </summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
/// <param name="Indices">The k chosen columns of Z, in pivot order (most important first).</param>
/// <param name="Interpolation">T, k × h, with <c>T[:, Indices[j]] = e_j</c> exactly.</param>
/// <param name="DiagonalRatio"><c>|r_{k+1,k+1}| / |r_11|</c>: the largest remaining column norm after k steps relative to the first pivot (0 when k = h or Z = 0).</param>
/// <param name="ResidualNorm"><c>‖R22‖_F</c>, which equals <c>‖Z − Z[:, I]·T‖_F</c> in exact arithmetic (see the remarks on each variant).</param>
/// <param name="RelativeResidual"><see cref="ResidualNorm"/> / ‖Z‖_F (0 when Z = 0).</param>
/// <param name="UsedPseudoInverse">True when R11 was numerically singular and <c>R11⁺R12</c> replaced the triangular solve.</param>
public sealed record InterpolativeDecomposition<T>(
    int[] Indices, Matrix<T> Interpolation, double DiagonalRatio, double ResidualNorm, double RelativeResidual, bool UsedPseudoInverse)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>The rank k = number of chosen columns.</summary>
    public int Rank => Indices.Length;

    /// <summary>Computes <c>‖Z − Z[:, I]·T‖_F</c> directly (product in T, difference accumulated in double).</summary>
    /// <param name="z">The n × h matrix the decomposition approximates.</param>
    /// <exception cref="ArgumentException"><paramref name="z"/> does not have h columns.</exception>
    public double Error(MatrixView<T> z)
    {
        if (z.Cols != Interpolation.Cols)
            ThrowHelper.ShapeMismatch(nameof(z), "InterpolativeDecomposition.Error: Z must have one column per column of T",
                $"n×{Interpolation.Cols}", $"{z.Rows}×{z.Cols}");
        var approx = Blas.Multiply(InterpolativeDecompositions.GatherColumns(z, Indices).View, Interpolation.View);
        return MatrixNorms.FrobeniusDistance(z, approx.View);
    }
}

/// <summary>Column interpolative decompositions <c>Z ≈ Z[:, I]·T</c> by column-pivoted QR and its tall-matrix variants.</summary>
public static class InterpolativeDecompositions
{
    /// <summary>The ID of <paramref name="z"/> by column-pivoted QR of Z itself.</summary>
    /// <param name="z">The n × h matrix (rows = samples, columns = neurons); every entry finite. Not modified.</param>
    /// <param name="options">Rank or tolerance (exactly one).</param>
    /// <exception cref="ArgumentException">Invalid options, or Z contains NaN or infinity.</exception>
    public static InterpolativeDecomposition<T> Compute<T>(MatrixView<T> z, IdOptions options)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Validate(options, z.Cols, nameof(options));
        return FromFactoredMatrix(z, options);
    }

    /// <summary>
    /// TSQR: the ID of Z = [Z_0; Z_1; …] from the R factors of its row batches (Z_b = Q_b·R_b). The
    /// stacked R factors are re-factored to one R and its column-pivoted QR gives the same pivots as
    /// that of Z (exact arithmetic); ‖Z‖_F = ‖stacked R‖_F.
    /// </summary>
    /// <param name="rFactors">Per-batch factors, each r_b × h (typically h × h upper triangular; any r_b × h with the same
    /// Gram matrix as its batch works, including the batch itself). At least one.</param>
    /// <param name="options">Rank or tolerance (exactly one).</param>
    /// <exception cref="ArgumentException">No factors, mismatched column counts, non-finite entries, or invalid options.</exception>
    public static InterpolativeDecomposition<T> FromRFactors<T>(IReadOnlyList<MatrixView<T>> rFactors, IdOptions options)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(rFactors);
        if (rFactors.Count == 0) ThrowHelper.Argument(nameof(rFactors), "At least one R factor is needed.");
        int h = rFactors[0].Cols;
        int rows = 0;
        for (int b = 0; b < rFactors.Count; b++)
        {
            if (rFactors[b].Cols != h)
                ThrowHelper.ShapeMismatch(nameof(rFactors), $"FromRFactors: factor {b} must have as many columns as factor 0",
                    $"r×{h}", $"{rFactors[b].Rows}×{rFactors[b].Cols}");
            rows += rFactors[b].Rows;
        }
        Validate(options, h, nameof(options));
        var stacked = new Matrix<T>(rows, h);
        int at = 0;
        foreach (var r in rFactors)
        {
            r.CopyTo(stacked.Slice(at, 0, r.Rows, h));
            at += r.Rows;
        }
        // Re-factor a tall stack to one (≤ h) × h R, so the pivoted QR works on a small matrix.
        MatrixView<T> a = rows > h ? HouseholderQr.Compute<T>(stacked).R : stacked;
        return FromFactoredMatrix(a, options);
    }

    /// <summary>
    /// The ID of Z from its Gram matrix <c>G = ZᵀZ</c> (h × h) by pivoted Cholesky (same pivots as the
    /// column-pivoted QR of Z in exact arithmetic). Conditioning squares: diagonal ratios below about
    /// sqrt(ε) are not resolved, and the residual is known only to about sqrt(ε)·‖Z‖_F.
    /// </summary>
    /// <param name="gram">G = ZᵀZ, symmetric positive semidefinite; only its upper triangle is read.</param>
    /// <param name="options">Rank or tolerance (exactly one); ‖Z‖_F² = trace(G).</param>
    /// <exception cref="ArgumentException">G is not square, has non-finite entries, or the options are invalid.</exception>
    public static InterpolativeDecomposition<T> FromGram<T>(MatrixView<T> gram, IdOptions options)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (gram.Rows != gram.Cols)
            ThrowHelper.ShapeMismatch(nameof(gram), "FromGram: G = ZᵀZ must be square", "h×h", $"{gram.Rows}×{gram.Cols}");
        int h = gram.Cols;
        Validate(options, h, nameof(options));
        var choleskyOptions = options.Rank is int rank
            ? new PivotedCholeskyOptions(MaxRank: rank)
            : options.ToleranceKind == IdTolerance.RelativeDiagonal
                ? new PivotedCholeskyOptions(RelativeTolerance: options.Tolerance)
                : new PivotedCholeskyOptions(ResidualTolerance: options.Tolerance);
        var chol = PivotedCholesky.Compute(gram, choleskyOptions);
        int k = chol.Rank;
        double cutoff = Math.Sqrt(h * Epsilon<T>());
        var x = Coefficients(chol.R, k, cutoff, out bool pinv);
        double r00 = k > 0 ? double.CreateTruncating(chol.R[0, 0]) : Math.Sqrt(Math.Max(0, MaxDiagonal(gram)));
        double trailingMax = 0, trailingSum = 0;
        foreach (T d in chol.TrailingDiagonal)
        {
            double dd = Math.Max(0, double.CreateTruncating(d));
            trailingMax = Math.Max(trailingMax, dd);
            trailingSum += dd;
        }
        double residual = Math.Sqrt(trailingSum);
        double normZ = Math.Sqrt(Math.Max(0, chol.Trace));
        double ratio = r00 > 0 ? Math.Sqrt(trailingMax) / r00 : 0;
        return Assemble(chol.Pivots.ToArray(), k, x, ratio, residual, normZ, pinv);
    }

    /// <summary>
    /// The ID of the row sketch <c>S·Z</c> (s × h, see <see cref="RowSketch"/>), used as an ID of Z.
    /// Exact when rank(S·Z) = rank(Z) = k (e.g. Gaussian S with s ≥ k). DiagonalRatio, ResidualNorm and
    /// RelativeResidual refer to S·Z (estimates for Z); use <see cref="InterpolativeDecomposition{T}.Error"/> for Z's true error.
    /// </summary>
    /// <param name="z">The n × h matrix; not modified.</param>
    /// <param name="sketchRows">s ≥ 1, the number of sketch rows (a few more than the expected rank).</param>
    /// <param name="kind">Gaussian or CountSketch.</param>
    /// <param name="seed">Seed of the sketch: the same seed gives the same result.</param>
    /// <param name="options">Rank or tolerance (exactly one); a Rank must not exceed <paramref name="sketchRows"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sketchRows"/> &lt; 1 or &lt; Rank, or invalid options.</exception>
    public static InterpolativeDecomposition<T> FromSketch<T>(MatrixView<T> z, int sketchRows, SketchKind kind, int seed, IdOptions options)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Validate(options, z.Cols, nameof(options));
        if (options.Rank > sketchRows)
            ThrowHelper.ArgumentOutOfRange(nameof(sketchRows), sketchRows, $"at least Rank = {options.Rank} sketch rows");
        var sz = RowSketch.Apply(z, sketchRows, kind, seed);
        return FromFactoredMatrix(sz.View, options);
    }

    // ------------------------------------------------------------------ core

    /// <summary>ID of A by CPQR, residual measured on A itself.</summary>
    private static InterpolativeDecomposition<T> FromFactoredMatrix<T>(MatrixView<T> a, IdOptions options)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int h = a.Cols;
        double normA = MatrixNorms.Frobenius(a);
        PivotedQrResult<T> qr;
        int k;
        if (options.Rank is int rank)
        {
            qr = PivotedQr.Compute(a, new PivotedQrOptions(MaxRank: rank));
            k = qr.Rank;
        }
        else if (options.ToleranceKind == IdTolerance.RelativeDiagonal)
        {
            qr = PivotedQr.Compute(a, new PivotedQrOptions(RelativeTolerance: options.Tolerance));
            k = qr.Rank;
        }
        else
        {
            // Full factorization; ‖R22(k)‖_F² = Σ_{i ≥ k} ‖R[i, :]‖² (suffix sums: no cancellation).
            qr = PivotedQr.Compute(a);
            double target = options.Tolerance!.Value * normA;
            var rr = qr.R;
            double suffix = 0;
            k = qr.Rank;
            for (int i = qr.Rank - 1; i >= 0; i--)
            {
                double rowSq = 0;
                foreach (T v in rr.Row(i))
                {
                    double dv = double.CreateTruncating(v);
                    rowSq += dv * dv;
                }
                suffix += rowSq;
                if (Math.Sqrt(suffix) <= target) k = i;
                else break;
            }
        }
        Debug.Assert(k <= qr.Rank && k <= h);
        var pivots = qr.Pivots.ToArray();
        double cutoff = Math.Max(a.Rows, h) * Epsilon<T>();
        var x = Coefficients(qr.R, k, cutoff, out bool pinv);

        // Residual A[:, rest] − A[:, I]·X, measured directly.
        var chosen = GatherColumns(a, pivots.AsSpan(0, k));
        var e = GatherColumns(a, pivots.AsSpan(k));
        if (k > 0 && h > k) Blas.Gemm(-T.One, chosen.View, x.View, T.One, e.View);
        double sum = 0, maxCol = 0;
        var colSq = new double[e.Cols];
        for (int i = 0; i < e.Rows; i++)
        {
            var row = e.Row(i);
            for (int j = 0; j < row.Length; j++)
            {
                double v = double.CreateTruncating(row[j]);
                colSq[j] += v * v;
            }
        }
        foreach (double c in colSq)
        {
            sum += c;
            maxCol = Math.Max(maxCol, c);
        }
        double r00 = k > 0 ? Math.Abs(double.CreateTruncating(qr.R[0, 0])) : MaxColumnNorm(a);
        double ratio = r00 > 0 ? Math.Sqrt(maxCol) / r00 : 0;
        return Assemble(pivots, k, x, ratio, Math.Sqrt(sum), normA, pinv);
    }

    /// <summary>X = R11⁻¹R12 (k × (h − k)) from the first k rows of an upper trapezoidal R in pivot order;
    /// falls back to R11⁺R12 when min |r_ii| ≤ cutoff·|r_11|.</summary>
    internal static Matrix<T> Coefficients<T>(Matrix<T> r, int k, double cutoff, out bool usedPseudoInverse)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int h = r.Cols;
        usedPseudoInverse = false;
        var R11 = r.Slice(0, 0, k, k);
        var X = r.Slice(0, k, k, h - k).ToMatrix(); // R12, overwritten with X
        if (k == 0 || h == k) return X;
        double r00 = Math.Abs(double.CreateTruncating(r[0, 0]));
        double minDiag = double.PositiveInfinity;
        for (int i = 0; i < k; i++) minDiag = Math.Min(minDiag, Math.Abs(double.CreateTruncating(r[i, i])));
        if (minDiag > cutoff * r00)
        {
            TriangularSolve.SolveUpper(R11, X.View);
            return X;
        }
        // Numerically singular R11 (more columns than the numerical rank): minimum-norm X = R11⁺R12.
        usedPseudoInverse = true;
        var R11Plus = PseudoInverse.Compute(R11.ToMatrix().View, cutoff); // stored rows are zero below the diagonal
        return Blas.Multiply(R11Plus.View, X.View);
    }

    /// <summary>Builds T = [I_k, X]·Πᵀ and the result record.</summary>
    internal static InterpolativeDecomposition<T> Assemble<T>(int[] pivots, int k, Matrix<T> x, double ratio, double residual,
        double normZ, bool pinv) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int h = pivots.Length;
        var t = new Matrix<T>(k, h);
        for (int j = 0; j < k; j++) t[j, pivots[j]] = T.One;
        for (int j = k; j < h; j++)
        {
            int col = pivots[j];
            for (int i = 0; i < k; i++) t[i, col] = x[i, j - k];
        }
        var indices = pivots.AsSpan(0, k).ToArray();
        Debug.Assert(indices.Distinct().Count() == k, "indices are distinct");
        return new InterpolativeDecomposition<T>(indices, t, k == h ? 0 : ratio, residual, normZ > 0 ? residual / normZ : 0, pinv);
    }

    /// <summary>The columns <paramref name="cols"/> of <paramref name="a"/> as a new rows × |cols| matrix.</summary>
    internal static Matrix<T> GatherColumns<T>(MatrixView<T> a, ReadOnlySpan<int> cols) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new Matrix<T>(a.Rows, cols.Length);
        for (int i = 0; i < a.Rows; i++)
        {
            var dst = g.Row(i);
            for (int j = 0; j < cols.Length; j++) dst[j] = a[i, cols[j]];
        }
        return g;
    }

    private static double MaxColumnNorm<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var sq = new double[a.Cols];
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++)
            {
                double v = double.CreateTruncating(a[i, j]);
                sq[j] += v * v;
            }
        return sq.Length == 0 ? 0 : Math.Sqrt(sq.Max());
    }

    private static double MaxDiagonal<T>(MatrixView<T> g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double m = 0;
        for (int i = 0; i < g.Rows; i++) m = Math.Max(m, double.CreateTruncating(g[i, i]));
        return m;
    }

    /// <summary>Machine epsilon of T as a double (2⁻²³ or 2⁻⁵²).</summary>
    internal static double Epsilon<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
        double.CreateTruncating(T.BitIncrement(T.One) - T.One);

    /// <summary>Exactly one of Rank / Tolerance, each in range.</summary>
    internal static void Validate(IdOptions? options, int h, string paramName)
    {
        if (options is null)
        {
            ThrowHelper.Argument(paramName, "IdOptions are required: give a Rank or a Tolerance.");
            return;
        }
        if ((options.Rank is null) == (options.Tolerance is null))
            ThrowHelper.Argument(paramName,
                $"IdOptions needs exactly one of Rank and Tolerance, got Rank = {options.Rank?.ToString() ?? "null"}, Tolerance = {options.Tolerance?.ToString() ?? "null"}.");
        if (options.Rank is int k && (k < 0 || k > h))
            ThrowHelper.ArgumentOutOfRange(paramName, k, $"a Rank in 0..{h} (the number of columns)");
        if (options.Tolerance is double tol && !(tol >= 0 && double.IsFinite(tol)))
            ThrowHelper.ArgumentOutOfRange(paramName, tol, "a finite Tolerance ≥ 0");
        if (!Enum.IsDefined(options.ToleranceKind))
            ThrowHelper.ArgumentOutOfRange(paramName, options.ToleranceKind, "a defined IdTolerance");
    }
}
