using Whittle.LinearAlgebra;

namespace Whittle.Cli.Benchmarks;

/// <summary>
/// The cases of <c>whittle bench linalg</c>, single precision, on seeded Gaussian matrices: the
/// operations that decide how long decomposing a real model's weights takes.
/// </summary>
internal static class LinearAlgebraBenchmark
{
    public static IReadOnlyList<BenchmarkCase> Cases(IReadOnlyList<int> gemmSizes, IReadOnlyList<int> factorSizes, int seed) =>
    [
        new("gemm", "Matrix product C = A·B", gemmSizes, n =>
        {
            var a = RandomMatrix.Gaussian<float>(n, n, seed);
            var b = RandomMatrix.Gaussian<float>(n, n, seed + 1);
            var c = new Matrix<float>(n, n);
            return () => Blas.Gemm(1f, a, b, 0f, c);
        }, n => 2.0 * n * n * n),
    ];
}
