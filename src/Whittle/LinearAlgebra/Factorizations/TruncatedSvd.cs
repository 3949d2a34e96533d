using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>Options of <see cref="TruncatedSvd"/>: the defaults of Halko, Martinsson and Tropp (2011).</summary>
/// <param name="Oversampling">Extra sample vectors p beyond the rank; the sketch has k + p columns.</param>
/// <param name="PowerIterations">Subspace iterations q; each sharpens the spectrum's decay to σ^(2q+1).</param>
/// <param name="Seed">Seed of the Gaussian test matrix Ω: the same seed gives the same factors.</param>
public sealed record TruncatedSvdOptions(int Oversampling = 10, int PowerIterations = 2, int Seed = 0);

/// <summary>
/// Rank-k truncated SVD <c>A ≈ U_k·Σ_k·V_kᵀ</c> by a randomized range finder with power iterations
/// (Halko, Martinsson, Tropp, "Finding structure with randomness", SIAM Review 2011, Alg. 4.4 + 5.1).
/// </summary>
/// <remarks>
/// Shapes: A m × n; U m × k, S k, Vt k × n. Cost O(mn(k + p)(2q + 2)): far below a full SVD when
/// k ≪ min(m, n). Q is re-orthonormalized (Householder QR) after every multiplication, so the power
/// iterations do not lose the small singular values to rounding. When k + p reaches min(m, n) the
/// sketch would be the whole space, and a dense SVD is computed and truncated instead (exact).
/// Accuracy depends on the decay of σ: the error is near σ_{k+1} for matrices whose spectrum decays,
/// and the leading singular values are always accurate to within a few ε relative to σ₁.
/// </remarks>
public static class TruncatedSvd
{
    /// <summary>The leading <paramref name="rank"/> singular triplets of <paramref name="a"/>.</summary>
    public static SvdResult<T> Compute<T>(MatrixView<T> a, int rank, TruncatedSvdOptions? options = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        options ??= new TruncatedSvdOptions();
        int m = a.Rows, n = a.Cols, r = Math.Min(m, n);
        if (rank < 0 || rank > r)
            ThrowHelper.ArgumentOutOfRange(nameof(rank), rank, $"a rank in 0..min(rows, cols) = 0..{r}");
        if (options.Oversampling < 0)
            ThrowHelper.ArgumentOutOfRange(nameof(options), options.Oversampling, "a non-negative oversampling");
        if (options.PowerIterations < 0)
            ThrowHelper.ArgumentOutOfRange(nameof(options), options.PowerIterations, "a non-negative number of power iterations");

        int l = rank + options.Oversampling;
        if (l >= r)
            return Truncate(Svd.Compute<T>(a), rank);

        // Range finder: Q = orth(A·Ω), then q rounds of Q ← orth(A·orth(Aᵀ·Q)).
        var omega = RandomMatrix.Gaussian<T>(n, l, options.Seed);
        var q = Orthonormalize(Blas.Multiply<T>(a, omega));
        for (int i = 0; i < options.PowerIterations; i++)
        {
            var z = Orthonormalize(Blas.Multiply<T>(a.Transpose(), q));
            q = Orthonormalize(Blas.Multiply<T>(a, z));
        }

        // B = Qᵀ·A (l × n) is small: its SVD gives A ≈ (Q·U_B)·Σ·Vᵀ.
        var b = Blas.Multiply<T>(q.Transpose(), a);
        var small = Svd.Compute<T>(b);
        var u = Blas.Multiply<T>(q, small.U.Slice(0, 0, l, rank));
        return new SvdResult<T>(u, small.S[..rank], small.Vt.Slice(0, 0, rank, n).ToMatrix());
    }

    private static Matrix<T> Orthonormalize<T>(Matrix<T> y) where T : unmanaged, IFloatingPointIeee754<T> =>
        HouseholderQr.Compute<T>(y).Q();

    private static SvdResult<T> Truncate<T>(SvdResult<T> full, int rank) where T : unmanaged, IFloatingPointIeee754<T> =>
        new(full.U.Slice(0, 0, full.U.Rows, rank).ToMatrix(), full.S[..rank], full.Vt.Slice(0, 0, rank, full.Vt.Cols).ToMatrix());
}
