using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Cli.Benchmarks;

/// <summary>
/// The cases of <c>whittle bench linalg</c>, single precision, on the matrices of
/// <see cref="BenchmarkMatrices"/> (which <c>scripts/bench_openblas.py</c> reproduces): the operations
/// that decide how long decomposing a real model's weights takes.
/// </summary>
internal static class LinearAlgebraBenchmark
{
    /// <summary>Rank of the truncated-SVD case (capped at n for small matrices).</summary>
    public const int TruncatedRank = 64;

    public static IReadOnlyList<BenchmarkCase> Cases(IReadOnlyList<int> gemmSizes, IReadOnlyList<int> factorSizes, uint seed) =>
    [
        new("gemm", "Matrix product C = A·B", gemmSizes, n =>
        {
            var a = BenchmarkMatrices.Uniform(n, n, seed);
            var b = BenchmarkMatrices.Uniform(n, n, seed + 1);
            var c = new Matrix<float>(n, n);
            return () => Blas.Gemm(1f, a, b, 0f, c);
        }, n => 2.0 * n * n * n),
        new("svd", "Thin SVD with U and V", factorSizes, n =>
        {
            var a = BenchmarkMatrices.Uniform(n, n, seed);
            return () => Svd.Compute<float>(a);
        }),
        new("svd_rank64", $"Randomized SVD, rank {TruncatedRank}", factorSizes, n =>
        {
            var a = BenchmarkMatrices.Uniform(n, n, seed);
            return () => TruncatedSvd.Compute<float>(a, Math.Min(TruncatedRank, n));
        }),
        new("cpqr", "Column-pivoted QR (R, pivots)", factorSizes, n =>
        {
            var a = BenchmarkMatrices.Uniform(n, n, seed);
            return () => PivotedQr.Compute<float>(a);
        }),
        new("cpqr_q", "Column-pivoted QR with Q", factorSizes, n =>
        {
            var a = BenchmarkMatrices.Uniform(n, n, seed);
            return () => PivotedQr.Compute<float>(a).Q();
        }),
        new("cholesky", "Cholesky A = L·Lᵀ", factorSizes, n =>
        {
            var a = BenchmarkMatrices.SymmetricPositiveDefinite(n, seed);
            return () => Cholesky.Compute<float>(a);
        }, n => n * (double)n * n / 3),
    ];

    /// <summary>Whittle's singular values of the size-n SVD case.</summary>
    public static float[] SingularValues(int n, uint seed) => Svd.SingularValues<float>(BenchmarkMatrices.Uniform(n, n, seed));

    /// <summary>Largest differences between two lists of singular values: normwise (÷ σ₁ of the
    /// reference) and elementwise (÷ σᵢ).</summary>
    public static (double Normwise, double Elementwise) Deviation(IReadOnlyList<double> values, IReadOnlyList<double> reference)
    {
        if (values.Count != reference.Count)
            throw new InvalidDataException($"Reference has {reference.Count} singular values, expected {values.Count}.");
        double normwise = 0, elementwise = 0;
        for (int i = 0; i < values.Count; i++)
        {
            double d = Math.Abs(values[i] - reference[i]);
            normwise = Math.Max(normwise, d / reference[0]);
            elementwise = Math.Max(elementwise, d / reference[i]);
        }
        return (normwise, elementwise);
    }
}
