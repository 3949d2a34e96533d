// Low-rank factorization W ≈ L·R of a weight matrix: plain truncated SVD, activation-aware SVD (ASVD) and
// whitened SVD (SVD-LLM).
//
// Contract: every method returns L (m × c) and R (c × n) with W ≈ L·R, the singular values σ of the matrix that
// was actually decomposed (all of them, descending) and which path was taken. Inputs are never modified.
//
// Shapes: W m × n (out × in); X T × n calibration inputs (rows are tokens), G = XᵀX n × n; a (length n) the
// per-input-feature RMS a_j = sqrt(mean_t x_tj²); c the kept rank.
//
// Methods:
//   Svd             W = U·Σ·Vᵀ, L = U_c·Σ_c^{1/2}, R = Σ_c^{1/2}·V_cᵀ (the factor form of Zhang et al., "Lossless
//                   Model Compression via Joint Low-Rank Factorization Optimization", arXiv 2412.06867). Error
//                   ‖W − L·R‖_F = sqrt(Σ_{j>c} σ_j²) (Eckart–Young).
//   ActivationAware ASVD (Yuan et al., "ASVD: Activation-aware Singular Value Decomposition for Compressing Large
//                   Language Models", arXiv 2312.05821): D = diag(a^α), SVD of W·D, R = Σ_c^{1/2}·V_cᵀ·D⁻¹.
//   Whitened        SVD-LLM (Wang et al., "SVD-LLM: Truncation-aware Singular Value Decomposition for Large Language
//                   Model Compression", arXiv 2403.07378): G = S·Sᵀ (S lower, Cholesky), SVD of W·S,
//                   Ŵ = U_c·Σ_c·V_cᵀ·S⁻¹, so that ‖(W − Ŵ)·Xᵀ‖_F = ‖(W − Ŵ)·S‖_F = sqrt(Σ_{j>c} σ_j(W·S)²):
//                   the truncation error IS the output error on the calibration data.
//
// Numerical caveats:
//   * All three use a dense decomposition, not the randomized TruncatedSvd: the result must carry every singular
//     value (for error prediction and TruncationLoss) and the truncated SVD's accuracy depends on the spectrum's decay.
//     Matrices of 256 and more rows and columns go through the eigendecomposition of their smaller Gram matrix
//     (GramSvd: 2–4× faster than the bidiagonal SVD, which small or ill-conditioned ones still take).
//   * ASVD clamps the RMS from below at 1e-6·max_j a_j before raising it to α, so a dead feature (a_j = 0) does not
//     divide by zero; if every a_j is 0 the scales are all 1 (plain SVD). With α = 0 every scale is exactly 1.
//   * Whitened: S⁻¹ is applied by a triangular solve, never formed. G from real activations is often numerically
//     singular (fewer tokens than features, dead or duplicated features). The Cholesky path is taken only when
//     every pivot satisfies L_ii² > n·ε·max_j G_jj; otherwise (or when Cholesky fails) the eigendecomposition
//     G = Q·Λ·Qᵀ is used with S = Q_k·Λ_k^{1/2} over the k eigenvalues above n·ε·λ_max and S⁺ = Λ_k^{-1/2}·Q_kᵀ.
//     On that path Ŵ acts as zero on the (numerical) null space of G: directions never seen in calibration
//     are dropped, which is the minimum-norm optimum of the calibration output error.

using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>Which decomposition produced a <see cref="LowRankFactors{T}"/>.</summary>
public enum LowRankMethod
{
    /// <summary>Plain truncated SVD of W.</summary>
    Svd,

    /// <summary>Activation-aware SVD: SVD of W·diag(a^α), unscaled.</summary>
    ActivationAware,

    /// <summary>Whitened SVD with the Cholesky factor of G: SVD of W·L_G, unwhitened by a triangular solve.</summary>
    WhitenedCholesky,

    /// <summary>Whitened SVD through the eigendecomposition of a (numerically) singular G and its pseudo-inverse square root.</summary>
    WhitenedEigen,
}

/// <summary>
/// A rank-c factorization <c>W ≈ L·R</c> of an m × n matrix, L = U_c·Σ_c^{1/2} (m × c), R = Σ_c^{1/2}·V_cᵀ·(unscaling) (c × n).
/// </summary>
/// <param name="L">m × c left factor.</param>
/// <param name="R">c × n right factor.</param>
/// <param name="SingularValues">All min(m, n) singular values of the decomposed matrix (W, W·D or W·S), descending.</param>
/// <param name="Method">The decomposition (and for the whitened SVD, the path) that produced the factors.</param>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed record LowRankFactors<T>(Matrix<T> L, Matrix<T> R, T[] SingularValues, LowRankMethod Method = LowRankMethod.Svd)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>The kept rank c.</summary>
    public int Rank => L.Cols;

    /// <summary>The m × n product <c>L·R</c>.</summary>
    public Matrix<T> Reconstruct() => Blas.Multiply<T>(L, R);

    /// <summary>Parameters stored by the two factors: <c>c·(m + n)</c>.</summary>
    public long ParameterCount => (long)L.Rows * L.Cols + (long)R.Rows * R.Cols;
}

/// <summary>
/// Low-rank factorizations of weight matrices: plain SVD, activation-aware SVD (ASVD) and whitened SVD (SVD-LLM),
/// all returning <see cref="LowRankFactors{T}"/> in the form <c>W ≈ L·R</c>.
/// </summary>
public static class LowRank
{
    // ASVD: RMS values are clamped from below at this fraction of the largest.
    private const double RmsFloor = 1e-6;

    /// <summary>Truncated SVD of <paramref name="w"/>: <c>L = U_c·Σ_c^{1/2}</c>, <c>R = Σ_c^{1/2}·V_cᵀ</c>
    /// (dense SVD; the error ‖W − L·R‖_F is sqrt(Σ_{j&gt;c} σ_j²)).</summary>
    /// <param name="w">m × n matrix, finite.</param>
    /// <param name="rank">The kept rank c, in 0..min(m, n).</param>
    public static LowRankFactors<T> Svd<T>(MatrixView<T> w, int rank) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckRank(rank, w);
        var svd = GramSvd.Leading(w, rank);
        var (l, r) = Split(svd, rank);
        return new LowRankFactors<T>(l, r, svd.S, LowRankMethod.Svd);
    }

    /// <summary>
    /// Activation-aware SVD: with <c>d_j = max(a_j, 1e-6·max a)^α</c>, the SVD of <c>W·diag(d)</c> is truncated to rank c and
    /// R's columns are divided by d again, so <c>L·R ≈ W</c> with the error weighted towards high-activation inputs.
    /// </summary>
    /// <param name="w">m × n matrix, finite.</param>
    /// <param name="activationRms">Length-n per-input-feature RMS a (non-negative, finite).</param>
    /// <param name="rank">The kept rank c, in 0..min(m, n).</param>
    /// <param name="alpha">Exponent α of the scaling (ASVD uses 0.5; 0 gives the plain SVD); finite, ≥ 0.</param>
    /// <returns>The factors; <see cref="LowRankFactors{T}.SingularValues"/> are those of W·diag(d).</returns>
    public static LowRankFactors<T> ActivationAware<T>(MatrixView<T> w, ReadOnlySpan<T> activationRms, int rank, double alpha = 0.5)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckRank(rank, w);
        var (wd, d) = ScaleColumns(w, activationRms, alpha);
        int n = w.Cols;
        var svd = GramSvd.Leading<T>(wd.View, rank);
        var (l, r) = Split(svd, rank);
        for (int i = 0; i < rank; i++)
        {
            var row = r.Row(i);
            for (int j = 0; j < n; j++) row[j] /= d[j];
        }
        return new LowRankFactors<T>(l, r, svd.S, LowRankMethod.ActivationAware);
    }

    /// <summary>
    /// The singular values every <see cref="ActivationAware{T}"/> factorization of <paramref name="w"/> reports (those of
    /// <c>W·diag(d)</c>), without the vectors: what a rank allocation needs before any rank is chosen.
    /// </summary>
    /// <param name="w">m × n matrix, finite.</param>
    /// <param name="activationRms">Length-n per-input-feature RMS a (non-negative, finite).</param>
    /// <param name="alpha">Exponent α of the scaling; finite, ≥ 0.</param>
    public static T[] ActivationAwareSpectrum<T>(MatrixView<T> w, ReadOnlySpan<T> activationRms, double alpha = 0.5)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        GramSvd.SingularValues<T>(ScaleColumns(w, activationRms, alpha).Scaled);

    // W·diag(d) with d_j = max(a_j, RmsFloor·max a)^α, and d.
    private static (Matrix<T> Scaled, T[] D) ScaleColumns<T>(MatrixView<T> w, ReadOnlySpan<T> activationRms, double alpha)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = w.Rows, n = w.Cols;
        if (activationRms.Length != n)
            ThrowHelper.ShapeMismatch(nameof(activationRms), "LowRank.ActivationAware: one RMS per column of W", $"{n}", $"{activationRms.Length}");
        if (!double.IsFinite(alpha) || alpha < 0)
            ThrowHelper.ArgumentOutOfRange(nameof(alpha), alpha, "a finite exponent α ≥ 0 (ASVD uses 0.5)");
        double max = 0;
        for (int j = 0; j < n; j++)
        {
            double a = double.CreateTruncating(activationRms[j]);
            if (!double.IsFinite(a) || a < 0)
                ThrowHelper.ArgumentOutOfRange(nameof(activationRms), a, $"a finite, non-negative RMS at feature {j}");
            max = Math.Max(max, a);
        }
        var d = new T[n];
        for (int j = 0; j < n; j++)
        {
            double a = max == 0 ? 1 : Math.Max(double.CreateTruncating(activationRms[j]), RmsFloor * max);
            d[j] = T.CreateTruncating(Math.Pow(a, alpha));
        }

        var wd = new Matrix<T>(m, n);
        for (int i = 0; i < m; i++)
        {
            var row = wd.Row(i);
            for (int j = 0; j < n; j++) row[j] = w[i, j] * d[j];
        }
        return (wd, d);
    }

    /// <summary>
    /// Whitened SVD (SVD-LLM): <c>G = S·Sᵀ</c> by Cholesky (S lower), SVD of <c>W·S</c>, <c>L = U_c·Σ_c^{1/2}</c>,
    /// <c>R = Σ_c^{1/2}·V_cᵀ·S⁻¹</c> (a triangular solve). The output error on the calibration data,
    /// ‖(W − L·R)·Xᵀ‖_F, then equals sqrt(Σ_{j&gt;c} σ_j(W·S)²), the smallest possible at rank c.
    /// A numerically singular G falls back to its eigendecomposition and pseudo-inverse square root
    /// (<see cref="LowRankMethod.WhitenedEigen"/>).
    /// </summary>
    /// <param name="w">m × n matrix, finite.</param>
    /// <param name="gram">n × n Gram matrix G = XᵀX of the calibration inputs (symmetric positive semidefinite; the lower triangle is read).</param>
    /// <param name="rank">The kept rank c, in 0..min(m, n).</param>
    /// <returns>The factors; <see cref="LowRankFactors{T}.SingularValues"/> are the min(m, n) singular values of W·S
    /// (zero-padded on the eigen path when G has numerical rank below min(m, n)).</returns>
    public static LowRankFactors<T> Whitened<T>(MatrixView<T> w, MatrixView<T> gram, int rank) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckRank(rank, w);
        CheckGram(w, gram);
        var s = TryCholesky(gram);
        return s is null ? WhitenedEigen(w, gram, rank) : WhitenedCholesky(w, s, rank);
    }

    /// <summary>
    /// The singular values every <see cref="Whitened{T}"/> factorization of <paramref name="w"/> reports (those of
    /// <c>W·S</c>, zero-padded to min(m, n) on the eigen path), without the vectors: what a rank allocation needs
    /// before any rank is chosen.
    /// </summary>
    /// <param name="w">m × n matrix, finite.</param>
    /// <param name="gram">n × n Gram matrix G = XᵀX of the calibration inputs (the lower triangle is read).</param>
    public static T[] WhitenedSpectrum<T>(MatrixView<T> w, MatrixView<T> gram) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckGram(w, gram);
        var s = TryCholesky(gram);
        if (s is not null) return GramSvd.SingularValues<T>(Blas.Multiply(w, s.View));
        var (half, _) = EigenRoots(gram);
        var sigma = new T[Math.Min(w.Rows, w.Cols)];
        var values = GramSvd.SingularValues<T>(Blas.Multiply(w, half.View));
        values.AsSpan(0, Math.Min(values.Length, sigma.Length)).CopyTo(sigma);
        return sigma;
    }

    private static void CheckGram<T>(MatrixView<T> w, MatrixView<T> gram) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = w.Cols;
        if (gram.Rows != n || gram.Cols != n)
            ThrowHelper.ShapeMismatch(nameof(gram), "LowRank.Whitened: G = XᵀX must be n × n (n = columns of W)", $"{n}×{n}", $"{gram.Rows}×{gram.Cols}");
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
                if (!T.IsFinite(gram[i, j]))
                    ThrowHelper.Argument(nameof(gram), $"LowRank.Whitened: the Gram matrix holds a non-finite value at ({i}, {j}).");
    }

    /// <summary>The largest rank c whose factors save parameters: <c>c·(m + n) &lt; m·n</c> (0 when none does, or m·n = 0).</summary>
    /// <param name="m">Rows (outputs), ≥ 0.</param>
    /// <param name="n">Columns (inputs), ≥ 0.</param>
    public static int MaxSavingRank(int m, int n)
    {
        if (m < 0) ThrowHelper.ArgumentOutOfRange(nameof(m), m, "a non-negative number of rows");
        if (n < 0) ThrowHelper.ArgumentOutOfRange(nameof(n), n, "a non-negative number of columns");
        long mn = (long)m * n;
        return mn == 0 ? 0 : (int)((mn - 1) / ((long)m + n));
    }

    // ------------------------------------------------------------------ whitened paths

    // The lower Cholesky factor of G, or null when G is not (numerically) positive definite: Cholesky fails, or a
    // pivot L_ii² falls to n·ε·max G_jj, where the factor carries no information and S⁻¹ would amplify rounding.
    private static Matrix<T>? TryCholesky<T>(MatrixView<T> gram) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = gram.Rows;
        if (n == 0) return new Matrix<T>(0, 0);
        double maxDiag = 0;
        for (int i = 0; i < n; i++) maxDiag = Math.Max(maxDiag, double.CreateTruncating(gram[i, i]));
        if (!(maxDiag > 0)) return null;
        CholeskyFactor<T> factor;
        try
        {
            factor = Cholesky.Compute(gram);
        }
        catch (NotPositiveDefiniteException)
        {
            return null;
        }
        double threshold = n * Epsilon<T>() * maxDiag;
        for (int i = 0; i < n; i++)
        {
            double p = double.CreateTruncating(factor.L[i, i]);
            if (!(p * p > threshold)) return null;
        }
        return factor.L;
    }

    private static LowRankFactors<T> WhitenedCholesky<T>(MatrixView<T> w, Matrix<T> s, int rank) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var ws = Blas.Multiply(w, s.View);                                         // W·S, m × n
        var svd = GramSvd.Leading<T>(ws.View, rank);
        var (l, r) = Split(svd, rank);
        if (rank > 0)
            TriangularSolve.SolveLower<T>(s, r, Side.Right);                       // R ← Σ_c^{1/2}·V_cᵀ·S⁻¹
        return new LowRankFactors<T>(l, r, svd.S, LowRankMethod.WhitenedCholesky);
    }

    private static LowRankFactors<T> WhitenedEigen<T>(MatrixView<T> w, MatrixView<T> gram, int rank) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = w.Rows, n = w.Cols;
        var (sHalf, sInvT) = EigenRoots(gram);
        var ws = Blas.Multiply(w, sHalf.View);                                     // W·S, m × k
        var svd = GramSvd.Leading<T>(ws.View, Math.Min(rank, Math.Min(ws.Rows, ws.Cols))); // min(m, k) values
        int available = svd.S.Length;
        var sigma = new T[Math.Min(m, n)];
        svd.S.AsSpan(0, Math.Min(available, sigma.Length)).CopyTo(sigma);

        var l = new Matrix<T>(m, rank);
        var r = new Matrix<T>(rank, n);
        int c = Math.Min(rank, available);                                         // directions beyond rank(W·S) stay zero
        if (c > 0)
        {
            var (lc, rc) = Split(svd, c);                                          // rc = Σ_c^{1/2}·V_cᵀ, c × k
            lc.View.CopyTo(l.View.SliceCols(0, c));
            Blas.Gemm(T.One, rc.View, sInvT.Transpose(), T.Zero, r.View.SliceRows(0, c)); // R = Σ_c^{1/2}·V_cᵀ·S⁺
        }
        return new LowRankFactors<T>(l, r, sigma, LowRankMethod.WhitenedEigen);
    }

    // G's square root over its numerical range, S = Q_k·Λ_k^{1/2} (n × k, eigenvalues above n·ε·λ_max, descending),
    // and (S⁺)ᵀ = Q_k·Λ_k^{-1/2}.
    private static (Matrix<T> Half, Matrix<T> InverseHalfT) EigenRoots<T>(MatrixView<T> gram) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = gram.Rows;
        var eig = SymmetricEigen.Compute(gram);                                    // ascending
        double lambdaMax = n == 0 ? 0 : Math.Max(0, double.CreateTruncating(eig.Values[n - 1]));
        double cutoff = n * Epsilon<T>() * lambdaMax;
        // Keep the eigenpairs above the cutoff, in descending order: S = Q_k·Λ_k^{1/2} (n × k).
        var kept = new List<int>();
        for (int j = n - 1; j >= 0; j--)
            if (double.CreateTruncating(eig.Values[j]) > cutoff) kept.Add(j);
        int k = kept.Count;
        var sHalf = new Matrix<T>(n, k);
        var sInvT = new Matrix<T>(n, k);                                           // (S⁺)ᵀ = Q_k·Λ_k^{-1/2}
        for (int t = 0; t < k; t++)
        {
            double lam = double.CreateTruncating(eig.Values[kept[t]]);
            T root = T.CreateTruncating(Math.Sqrt(lam)), invRoot = T.CreateTruncating(1 / Math.Sqrt(lam));
            for (int i = 0; i < n; i++)
            {
                T q = eig.Vectors[i, kept[t]];
                sHalf[i, t] = q * root;
                sInvT[i, t] = q * invRoot;
            }
        }
        return (sHalf, sInvT);
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>The rank-<paramref name="rank"/> factors of an SVD, split evenly: L = U_c·Σ_c^{1/2} (m × c), R = Σ_c^{1/2}·V_cᵀ (c × n).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rank"/> is negative or above the number of singular values.</exception>
    public static (Matrix<T> L, Matrix<T> R) Split<T>(SvdResult<T> svd, int rank) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(svd);
        if (rank < 0 || rank > svd.S.Length) ThrowHelper.ArgumentOutOfRange(nameof(rank), rank, $"a rank in [0, {svd.S.Length}]");
        int m = svd.U.Rows, n = svd.Vt.Cols;
        var l = svd.U.Slice(0, 0, m, rank).ToMatrix();
        var r = svd.Vt.Slice(0, 0, rank, n).ToMatrix();
        for (int j = 0; j < rank; j++)
        {
            T root = T.Sqrt(svd.S[j]);
            for (int i = 0; i < m; i++) l[i, j] *= root;
            foreach (ref T v in r.Row(j)) v *= root;
        }
        return (l, r);
    }

    private static void CheckRank<T>(int rank, MatrixView<T> w) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int max = Math.Min(w.Rows, w.Cols);
        if (rank < 0 || rank > max)
            ThrowHelper.ArgumentOutOfRange(nameof(rank), rank, $"a rank in 0..min(rows, cols) = 0..{max}");
    }

    private static double Epsilon<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
        double.CreateTruncating(T.BitIncrement(T.One) - T.One);
}
