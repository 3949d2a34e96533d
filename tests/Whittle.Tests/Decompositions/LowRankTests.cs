using System.Numerics;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.Decompositions;

public class LowRankTests
{
    private static double DiscardedNorm(IReadOnlyList<double> sigma, int c) =>
        Math.Sqrt(sigma.Skip(c).Sum(s => s * s));

    /// <summary>‖(W − Ŵ)·Xᵀ‖_F, the output error on the calibration inputs.</summary>
    private static double OutputError(MatrixView<double> w, MatrixView<double> approx, MatrixView<double> x)
    {
        var diff = Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j] - approx[i, j]);
        return MatrixNorms.Frobenius<double>(Blas.Multiply(diff.View, x.Transpose()));
    }

    // ---------------------------------------------------------------- plain SVD

    [Theory]
    [InlineData(40, 25)]
    [InlineData(25, 40)]
    public void PlainSvdErrorIsTheDiscardedSingularValues(int m, int n)
    {
        int p = Math.Min(m, n);
        var sigma = Enumerable.Range(0, p).Select(i => Math.Pow(0.8, i) * 10).ToArray();
        var w = TestMatrices.WithSingularValues<double>(m, n, sigma, seed: m * n);
        foreach (int c in new[] { 0, 1, 5, 12, p - 1, p })
        {
            var f = LowRank.Svd<double>(w, c);
            Assert.Equal(LowRankMethod.Svd, f.Method);
            Assert.Equal(c, f.Rank);
            Assert.Equal((m, c), (f.L.Rows, f.L.Cols));
            Assert.Equal((c, n), (f.R.Rows, f.R.Cols));
            Assert.Equal((long)c * (m + n), f.ParameterCount);
            double err = MatrixNorms.FrobeniusDistance<double>(w, f.Reconstruct());
            Assert.Equal(DiscardedNorm(sigma, c), err, 1e-12 * sigma[0] * p);
            Assert.Equal(p, f.SingularValues.Length);
            for (int j = 0; j < p; j++) Assert.Equal(sigma[j], f.SingularValues[j], 1e-12 * sigma[0] * p);
        }
    }

    [Fact]
    public void PlainSvdFactorsAreBalanced()
    {
        // L = U_c·Σ_c^{1/2}, R = Σ_c^{1/2}·V_cᵀ: LᵀL = R·Rᵀ = Σ_c.
        var w = RandomMatrix.Gaussian<double>(30, 20, seed: 7);
        var f = LowRank.Svd<double>(w, 6);
        var ltl = Blas.Multiply<double>(f.L.Transpose(), f.L);
        var rrt = Blas.Multiply<double>(f.R, f.R.Transpose());
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
            {
                double expected = i == j ? f.SingularValues[i] : 0;
                Assert.Equal(expected, ltl[i, j], 1e-12 * f.SingularValues[0]);
                Assert.Equal(expected, rrt[i, j], 1e-12 * f.SingularValues[0]);
            }
    }

    [Fact]
    public void PlainSvdWorksInFloat()
    {
        var sigma = Enumerable.Range(0, 20).Select(i => Math.Pow(0.7, i)).ToArray();
        var w = TestMatrices.WithSingularValues<float>(32, 20, sigma, seed: 9);
        var f = LowRank.Svd<float>(w, 4);
        double err = MatrixNorms.FrobeniusDistance<float>(w, f.Reconstruct());
        Assert.Equal(DiscardedNorm(sigma, 4), err, 1e-5);
    }

    [Fact]
    public void RejectsRanksOutOfRange()
    {
        var w = RandomMatrix.Gaussian<double>(5, 4, seed: 1);
        Assert.Equal("rank", Assert.ThrowsAny<ArgumentException>(() => LowRank.Svd<double>(w, 5)).ParamName);
        Assert.Equal("rank", Assert.ThrowsAny<ArgumentException>(() => LowRank.Svd<double>(w, -1)).ParamName);
        Assert.Equal("rank", Assert.ThrowsAny<ArgumentException>(() => LowRank.Whitened<double>(w, Matrix<double>.Identity(4), 5)).ParamName);
    }

    // ---------------------------------------------------------------- ASVD

    [Fact]
    public void ActivationAwareWithAlphaZeroIsThePlainSvd()
    {
        var w = RandomMatrix.Gaussian<double>(30, 22, seed: 11);
        var rms = Enumerable.Range(0, 22).Select(j => j % 5 == 0 ? 0.0 : Math.Pow(10, j / 7.0)).ToArray();
        var plain = LowRank.Svd<double>(w, 7).Reconstruct();
        var asvd = LowRank.ActivationAware<double>(w, rms, 7, alpha: 0);
        Assert.Equal(LowRankMethod.ActivationAware, asvd.Method);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(plain, asvd.Reconstruct()) / MatrixNorms.Frobenius<double>(plain), 0, 1e-12);
    }

    [Fact]
    public void ActivationAwareMinimizesTheScaledError()
    {
        // With D = diag(a^α): ‖(W − Ŵ)·D‖_F = sqrt(Σ_{j>c} σ_j(W·D)²), and the singular values are those of W·D.
        int m = 24, n = 18, c = 5;
        var w = RandomMatrix.Gaussian<double>(m, n, seed: 13);
        var rms = Enumerable.Range(0, n).Select(j => 0.01 + j * j).ToArray();
        var f = LowRank.ActivationAware<double>(w, rms, c, alpha: 0.5);
        var wd = Matrix<double>.Create(m, n, (i, j) => w[i, j] * Math.Sqrt(rms[j]));
        var sigma = Svd.SingularValues<double>(wd);
        for (int j = 0; j < sigma.Length; j++) Assert.Equal(sigma[j], f.SingularValues[j], 1e-12 * sigma[0]);
        var approx = f.Reconstruct();
        var scaledDiff = Matrix<double>.Create(m, n, (i, j) => (w[i, j] - approx[i, j]) * Math.Sqrt(rms[j]));
        Assert.Equal(DiscardedNorm(sigma, c), MatrixNorms.Frobenius<double>(scaledDiff), 1e-10 * sigma[0]);
    }

    [Fact]
    public void ActivationAwareHandlesDeadFeatures()
    {
        var w = RandomMatrix.Gaussian<double>(12, 10, seed: 17);
        var rms = new double[10];
        rms[3] = 2; rms[7] = 0.5;
        var f = LowRank.ActivationAware<double>(w, rms, 4);
        Assert.All(f.R.AsSpan().ToArray(), v => Assert.True(double.IsFinite(v)));
        Assert.All(f.L.AsSpan().ToArray(), v => Assert.True(double.IsFinite(v)));
        // All-zero RMS: every scale is 1, the plain SVD.
        var zero = LowRank.ActivationAware<double>(w, new double[10], 4).Reconstruct();
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(zero, LowRank.Svd<double>(w, 4).Reconstruct()), 0, 1e-12 * MatrixNorms.Frobenius<double>(w));
        Assert.Equal("activationRms", Assert.ThrowsAny<ArgumentException>(() => LowRank.ActivationAware<double>(w, new double[9], 4)).ParamName);
    }

    // ---------------------------------------------------------------- whitened SVD (SVD-LLM)

    [Fact]
    public void WhitenedSvdBeatsPlainSvdOnAnisotropicInputsAndItsErrorIsTheDiscardedSingularValues()
    {
        int m = 40, n = 30, tokens = 200;
        var w = RandomMatrix.Gaussian<double>(m, n, seed: 21);
        var x = CurTests.AnisotropicInputs(tokens, n, seed: 22);      // column scales 1e-3 .. 1e2
        var g = Blas.Gram<double>(x);
        var wxt = Blas.Multiply(w.View, x.Transpose());
        var sigmaWxt = Svd.SingularValues<double>(wxt);               // σ(W·S) = σ(W·Xᵀ) since (W·S)(W·S)ᵀ = W·G·Wᵀ
        foreach (int c in new[] { 1, 4, 10, 20 })
        {
            var f = LowRank.Whitened<double>(w, g, c);
            Assert.Equal(LowRankMethod.WhitenedCholesky, f.Method);
            Assert.Equal(Math.Min(m, n), f.SingularValues.Length);
            for (int j = 0; j < f.SingularValues.Length; j++)
                Assert.Equal(sigmaWxt[j], f.SingularValues[j], 1e-10 * sigmaWxt[0]);

            double whitened = OutputError(w, f.Reconstruct(), x);
            double plain = OutputError(w, LowRank.Svd<double>(w, c).Reconstruct(), x);
            double discarded = DiscardedNorm(f.SingularValues.ToArray(), c);
            Assert.True(whitened < 0.9 * plain, $"c = {c}: whitened {whitened} should be well below plain {plain}");
            Assert.InRange(Math.Abs(whitened - discarded) / discarded, 0, 1e-8);
        }
    }

    [Fact]
    public void WhitenedSvdFallsBackToTheEigendecompositionOnASingularGram()
    {
        // Fewer tokens than features: G = XᵀX has rank 12 < n = 30.
        int m = 25, n = 30, tokens = 12;
        var w = RandomMatrix.Gaussian<double>(m, n, seed: 31);
        var x = CurTests.AnisotropicInputs(tokens, n, seed: 32, lo: -1, hi: 1);
        var g = Blas.Gram<double>(x);
        var sigmaWxt = Svd.SingularValues<double>(Blas.Multiply(w.View, x.Transpose()));
        foreach (int c in new[] { 3, 8, 12, 20 })
        {
            var f = LowRank.Whitened<double>(w, g, c);
            Assert.Equal(LowRankMethod.WhitenedEigen, f.Method);
            Assert.Equal((m, c), (f.L.Rows, f.L.Cols));
            Assert.Equal((c, n), (f.R.Rows, f.R.Cols));
            Assert.Equal(Math.Min(m, n), f.SingularValues.Length);
            for (int j = 0; j < sigmaWxt.Length; j++) Assert.Equal(sigmaWxt[j], f.SingularValues[j], 1e-10 * sigmaWxt[0]);
            for (int j = sigmaWxt.Length; j < f.SingularValues.Length; j++) Assert.Equal(0, f.SingularValues[j]);

            var approx = f.Reconstruct();
            Assert.All(approx.AsSpan().ToArray(), v => Assert.True(double.IsFinite(v)));
            Assert.True(MatrixNorms.Frobenius<double>(approx) <= MatrixNorms.Frobenius<double>(w), "minimum-norm Ŵ should not blow up");
            double whitened = OutputError(w, approx, x);
            double discarded = DiscardedNorm(sigmaWxt, c);
            double scale = sigmaWxt[0];
            Assert.InRange(Math.Abs(whitened - discarded), 0, 1e-8 * Math.Max(discarded, scale));
            Assert.True(whitened <= OutputError(w, LowRank.Svd<double>(w, c).Reconstruct(), x));
        }
    }

    [Fact]
    public void WhitenedSvdWorksInFloat()
    {
        int m = 24, n = 20;
        var xd = CurTests.AnisotropicInputs(100, n, seed: 41, lo: -1, hi: 1);
        var wd = RandomMatrix.Gaussian<double>(m, n, seed: 42);
        var x = Matrix<float>.Create(100, n, (i, j) => (float)xd[i, j]);
        var w = Matrix<float>.Create(m, n, (i, j) => (float)wd[i, j]);
        var f = LowRank.Whitened<float>(w, Blas.Gram<float>(x), 6);
        var approx = f.Reconstruct();
        var approxD = Matrix<double>.Create(m, n, (i, j) => approx[i, j]);
        double whitened = OutputError(wd, approxD, xd);
        double discarded = DiscardedNorm(f.SingularValues.Select(s => (double)s).ToArray(), 6);
        Assert.InRange(Math.Abs(whitened - discarded) / discarded, 0, 1e-3);
    }

    [Fact]
    public void WhitenedSvdDoesNotModifyItsInputs()
    {
        var w = RandomMatrix.Gaussian<double>(10, 8, seed: 51);
        var g = Blas.Gram<double>(RandomMatrix.Gaussian<double>(5, 8, seed: 52));
        var (wc, gc) = (w.Clone(), g.Clone());
        LowRank.Whitened<double>(w, g, 3);
        Assert.Equal(wc.AsSpan().ToArray(), w.AsSpan().ToArray());
        Assert.Equal(gc.AsSpan().ToArray(), g.AsSpan().ToArray());
    }

    // ---------------------------------------------------------------- saving rank

    [Fact]
    public void MaxSavingRankIsTheLargestRankThatSaves()
    {
        static bool Saves(long m, long n, long c) => c * (m + n) < m * n;
        foreach (var (m, n) in new[] { (4096, 11008), (11008, 4096), (64, 64), (1, 1), (2, 2), (3, 6), (768, 3072), (0, 4) })
        {
            int c = LowRank.MaxSavingRank(m, n);
            Assert.True(c == 0 || Saves(m, n, c));
            Assert.False(Saves(m, n, c + 1));
        }
        Assert.Equal(31, LowRank.MaxSavingRank(64, 64));  // 32·128 = 4096 is not below 4096
        Assert.Equal(1, LowRank.MaxSavingRank(3, 6));     // 2·9 = 18 = 3·6
        for (int m = 0; m <= 40; m++)
            for (int n = 0; n <= 40; n++)
            {
                int expected = 0;
                while (Saves(m, n, expected + 1)) expected++;
                Assert.Equal(expected, LowRank.MaxSavingRank(m, n));
            }
    }
}
