using Whittle.LinearAlgebra;

namespace Whittle.Cli.Benchmarks;

/// <summary>
/// Benchmark inputs that <c>scripts/bench_openblas.py</c> reproduces bit for bit, so Whittle and the
/// reference factor the very same matrices: entry k = i·cols + j is the 32-bit "lowbias32" hash of
/// <c>k·0x9E3779B1 ⊕ seed·0x85EBCA77</c>, mapped to <c>(h ≫ 8)·2⁻²⁴ − ½</c> (exact in float32).
/// </summary>
internal static class BenchmarkMatrices
{
    public static Matrix<float> Uniform(int rows, int cols, uint seed)
    {
        var m = new Matrix<float>(rows, cols);
        var span = m.AsSpan();
        for (int k = 0; k < span.Length; k++)
        {
            uint h = unchecked((uint)k * 0x9E3779B1u ^ seed * 0x85EBCA77u);
            h ^= h >> 16;
            h = unchecked(h * 0x7FEB352Du);
            h ^= h >> 15;
            h = unchecked(h * 0x846CA68Bu);
            h ^= h >> 16;
            span[k] = (h >> 8) * (1f / (1 << 24)) - 0.5f;
        }
        return m;
    }

    /// <summary>A well-conditioned symmetric positive definite matrix: XᵀX/n + I for X = <see cref="Uniform"/>.</summary>
    public static Matrix<float> SymmetricPositiveDefinite(int n, uint seed)
    {
        var x = Uniform(n, n, seed);
        var a = Matrix<float>.Identity(n);
        Blas.Gemm(1f / n, x.Transpose(), x, 1f, a);
        return a;
    }
}
