using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// The leading singular triplets of a large matrix through the eigendecomposition of its smaller Gram matrix
/// (<c>AᵀA</c> or <c>A·Aᵀ</c>): what the SVD baselines need of a model's weights, 2–4× faster than <see cref="Svd"/> on
/// matrices of a thousand rows and more (one GEMM and a symmetric eigenproblem of min(m, n), against a bidiagonalization
/// of the whole matrix).
/// </summary>
/// <remarks>
/// <para>σ_j = sqrt(λ_j) has absolute error about ε·σ_max²/σ_j instead of <see cref="Svd"/>'s ε·σ_max, and the vectors of the
/// other side, <c>A·v_j/σ_j</c>, are orthonormal to about ε·(σ_max/σ_j)². So the route is taken only in double precision, for
/// matrices with min(m, n) ≥ <see cref="MinSize"/> (where the time matters), and — for vectors — when every kept σ is at
/// least <see cref="Floor"/>·σ_max (orthonormal to ~1e-8); otherwise these methods are <see cref="Svd"/>'s.</para>
/// </remarks>
public static class GramSvd
{
    /// <summary>The smallest min(m, n) that takes the Gram route.</summary>
    public const int MinSize = 256;

    /// <summary>The smallest kept σ, relative to σ_max, for which the Gram route computes vectors.</summary>
    public const double Floor = 1e-4;

    /// <summary>
    /// All min(m, n) singular values of <paramref name="a"/> (descending) and the first <paramref name="rank"/> singular vectors
    /// on each side: U is m × rank and Vt rank × n on the Gram route, the full thin factors otherwise.
    /// </summary>
    /// <param name="a">m × n, finite; not modified.</param>
    /// <param name="rank">The vectors needed, 0 … min(m, n).</param>
    public static SvdResult<T> Leading<T>(MatrixView<T> a, int rank) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int p = Math.Min(a.Rows, a.Cols);
        if (rank < 0 || rank > p) ThrowHelper.ArgumentOutOfRange(nameof(rank), rank, $"a rank in [0, {p}]");
        if (!Applies(a)) return Svd.Compute(a);
        var (sigma, eigen) = Eigen(a, computeVectors: true);
        if (rank > 0 && sigma[rank - 1] < T.CreateChecked(Floor) * sigma[0]) return Svd.Compute(a);

        // The Gram's eigenvectors of the `rank` largest eigenvalues (ascending order from SymmetricEigen), largest first.
        var q = new Matrix<T>(p, rank);
        for (int j = 0; j < rank; j++)
            for (int i = 0; i < p; i++) q[i, j] = eigen.Vectors[i, p - 1 - j];
        bool tall = a.Rows >= a.Cols;
        var other = tall ? Blas.Multiply(a, q.View) : Blas.Multiply(a.Transpose(), q.View); // U·Σ (tall) or V·Σ (wide)
        for (int j = 0; j < rank; j++)
        {
            T inverse = T.One / sigma[j];
            for (int i = 0; i < other.Rows; i++) other[i, j] *= inverse;
        }
        return tall ? new SvdResult<T>(other, sigma, q.Transpose().ToMatrix()) : new SvdResult<T>(q, sigma, other.Transpose().ToMatrix());
    }

    /// <summary>The min(m, n) singular values of <paramref name="a"/>, descending (absolute error about ε·σ_max²/σ on the Gram route).</summary>
    /// <param name="a">m × n, finite; not modified.</param>
    public static T[] SingularValues<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T> =>
        Applies(a) ? Eigen(a, computeVectors: false).Sigma : Svd.SingularValues(a);

    private static bool Applies<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(double) && Math.Min(a.Rows, a.Cols) >= MinSize;

    private static (T[] Sigma, EigenResult<T> Eigen) Eigen<T>(MatrixView<T> a, bool computeVectors) where T : unmanaged, IFloatingPointIeee754<T>
    {
        MatrixChecks.RequireFinite(a, nameof(a));
        var gram = Blas.Gram(a.Rows >= a.Cols ? a : a.Transpose());                // AᵀA or A·Aᵀ, the smaller
        var eigen = SymmetricEigen.Compute<T>(gram.View, computeVectors);
        int p = eigen.Values.Length;
        var sigma = new T[p];
        for (int j = 0; j < p; j++) sigma[j] = T.Sqrt(T.Max(eigen.Values[p - 1 - j], T.Zero));
        return (sigma, eigen);
    }
}
