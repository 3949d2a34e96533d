using Whittle.Decompositions;
using Whittle.LinearAlgebra;

namespace Whittle.Cli.Benchmarks;

/// <summary>
/// The cases of <c>whittle bench decompose</c>, single precision, on the matrices of <see cref="BenchmarkMatrices"/>
/// (which <c>scripts/bench_openblas.py --decompose</c> reproduces), all scaled by one size n (reference n = 1024):
/// <list type="bullet">
/// <item><c>id</c>: column ID at k = n/2 of the 16n × n activation matrix Z = max(X·W, 0), X = Uniform(16n, n/4, seed),
/// W = Uniform(n/4, n, seed + 1) (Z is built untimed; CPQR + triangular solve are timed).</item>
/// <item><c>cur</c>: <see cref="DeimCur"/> with default options (reference DEIM, pseudo-inverse core) at r = n/4 of the
/// n × 4n weight Uniform(n, 4n, seed): randomized SVD of W, two DEIM selections, two pseudo-inverses.</item>
/// <item><c>whitened_svd</c>: <see cref="LowRank.Whitened{T}"/> at rank n/4 of the n × n weight Uniform(n, n, seed) with the
/// Gram matrix G = XᵀX of X = Uniform(4n, n, seed + 2). G is computed untimed (it is an input shared by every method
/// applied to the layer); Cholesky, the dense SVD of W·S and the triangular solve are timed.</item>
/// </list>
/// </summary>
internal static class DecompositionBenchmark
{
    public static IReadOnlyList<BenchmarkCase> Cases(IReadOnlyList<int> sizes, uint seed) =>
    [
        new("id", "ID of Z = max(X·W, 0) (16n × n), k = n/2", sizes, n =>
        {
            var z = Activations(n, seed);
            var options = new IdOptions(Rank: n / 2);
            return () => InterpolativeDecompositions.Compute<float>(z, options);
        }),
        new("cur", "CUR by DEIM of an n × 4n weight, r = n/4", sizes, n =>
        {
            var w = BenchmarkMatrices.Uniform(n, 4 * n, seed);
            var options = new DeimCurOptions(Math.Max(1, n / 4));
            return () => DeimCur.Compute<float>(w, options);
        }),
        new("whitened_svd", "Whitened SVD of an n × n weight (G of 4n × n inputs), rank n/4", sizes, n =>
        {
            var w = BenchmarkMatrices.Uniform(n, n, seed);
            var g = Blas.Gram<float>(BenchmarkMatrices.Uniform(4 * n, n, seed + 2));
            return () => LowRank.Whitened<float>(w, g, n / 4);
        }),
    ];

    /// <summary>Z = max(X·W, 0) with X = Uniform(16n, n/4, seed), W = Uniform(n/4, n, seed + 1): 16n × n.</summary>
    public static Matrix<float> Activations(int n, uint seed)
    {
        var x = BenchmarkMatrices.Uniform(16 * n, Math.Max(1, n / 4), seed);
        var w = BenchmarkMatrices.Uniform(Math.Max(1, n / 4), n, seed + 1);
        var z = Blas.Multiply<float>(x, w);
        var span = z.AsSpan();
        for (int i = 0; i < span.Length; i++) span[i] = Math.Max(span[i], 0f);
        return z;
    }
}
