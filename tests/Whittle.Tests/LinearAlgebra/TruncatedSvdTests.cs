using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.LinearAlgebra;

public class TruncatedSvdTests
{
    private static double[] Geometric(int count, double ratio) => [.. Enumerable.Range(0, count).Select(i => Math.Pow(ratio, i))];

    [Fact]
    public void RecoversTheLeadingSpectrumOfADecayingMatrix()
    {
        var sigma = Geometric(120, 0.8);
        var a = TestMatrices.WithSingularValues<double>(300, 120, sigma, seed: 11);
        var svd = TruncatedSvd.Compute<double>(a, 10);

        Assert.Equal(10, svd.S.Length);
        for (int i = 0; i < 10; i++)
            Assert.Equal(sigma[i], svd.S[i], 1e-9);
        Assert.InRange(TestMatrices.OrthogonalityError(svd.U.View), 0, 1e-12);
        Assert.InRange(TestMatrices.OrthogonalityError(svd.Vt.Transpose()), 0, 1e-12);

        // Eckart–Young: the best rank-10 error is sqrt(Σ_{j≥10} σ_j²); the randomized one is within a hair of it.
        double best = Math.Sqrt(sigma.Skip(10).Sum(s => s * s));
        double err = MatrixNorms.FrobeniusDistance<double>(a, Reconstruct(svd));
        Assert.InRange(err, best * (1 - 1e-9), best * 1.001);
    }

    [Fact]
    public void SameSeedSameFactorsAndFloatAgreesWithDouble()
    {
        var a = TestMatrices.WithSingularValues<float>(200, 150, Geometric(150, 0.9), seed: 3);
        var one = TruncatedSvd.Compute<float>(a, 8, new TruncatedSvdOptions(Seed: 5));
        var two = TruncatedSvd.Compute<float>(a, 8, new TruncatedSvdOptions(Seed: 5));
        Assert.Equal(one.S, two.S);
        Assert.Equal(one.U.AsSpan().ToArray(), two.U.AsSpan().ToArray());
        for (int i = 0; i < 8; i++)
            Assert.Equal(Math.Pow(0.9, i), one.S[i], 1e-5);
    }

    [Fact]
    public void ExactlyLowRankMatrixIsReproduced()
    {
        var a = TestMatrices.OfRank<double>(90, 70, 6, seed: 21);
        var svd = TruncatedSvd.Compute<double>(a, 6, new TruncatedSvdOptions(PowerIterations: 0));
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(a, Reconstruct(svd)) / MatrixNorms.Frobenius<double>(a), 0, 1e-12);
    }

    [Fact]
    public void LargeRankFallsBackToTheDenseSvd()
    {
        var sigma = Geometric(40, 0.7);
        var a = TestMatrices.WithSingularValues<double>(50, 40, sigma, seed: 2);
        var svd = TruncatedSvd.Compute<double>(a, 35);
        for (int i = 0; i < 35; i++) Assert.Equal(sigma[i], svd.S[i], 1e-12);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(41)]
    public void RankOutOfRangeIsRejected(int rank)
    {
        var a = new Matrix<double>(50, 40);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => TruncatedSvd.Compute<double>(a, rank));
        Assert.Equal("rank", ex.ParamName);
    }

    private static Matrix<double> Reconstruct(SvdResult<double> svd)
    {
        var us = svd.U.Clone();
        for (int i = 0; i < us.Rows; i++)
            for (int j = 0; j < us.Cols; j++) us[i, j] *= svd.S[j];
        return Blas.Multiply<double>(us, svd.Vt);
    }
}
