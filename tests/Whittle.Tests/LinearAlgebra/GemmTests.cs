using Whittle.LinearAlgebra;

namespace Whittle.Tests.LinearAlgebra;

public class GemmTests
{
    public static TheoryData<int, int, int, bool, bool> Shapes()
    {
        var data = new TheoryData<int, int, int, bool, bool>();
        foreach (var (m, n, k) in new[] { (1, 1, 1), (1, 300, 70), (300, 1, 70), (37, 53, 91), (100, 33, 1000), (257, 129, 385), (13, 2000, 40), (0, 5, 5), (5, 0, 5), (5, 5, 0) })
            foreach (var ta in new[] { false, true })
                foreach (var tb in new[] { false, true })
                    data.Add(m, n, k, ta, tb);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryPathMatchesTheReferenceLoop(int m, int n, int k, bool transposeA, bool transposeB)
    {
        var a0 = RandomMatrix.Gaussian<double>(transposeA ? k : m, transposeA ? m : k, seed: 1);
        var b0 = RandomMatrix.Gaussian<double>(transposeB ? n : k, transposeB ? k : n, seed: 2);
        var a = transposeA ? a0.Transpose() : a0.View;
        var b = transposeB ? b0.Transpose() : b0.View;
        var expected = TestMatrices.ReferenceProduct(a, b);
        foreach (var path in SimdPaths.Supported)
        {
            var c = Matrix<double>.Create(m, n, (i, j) => i - j);
            Blas.Gemm(2.0, a, b, 0.5, c, path);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    Assert.True(Math.Abs(2 * expected[i, j] + 0.5 * (i - j) - c[i, j]) <= 1e-12 * (k + 1), $"{path} ({i},{j})");
        }
    }

    [Fact]
    public void SinglePrecisionErrorGrowsNoFasterThanTheDepth()
    {
        var a = RandomMatrix.Gaussian<float>(200, 3000, seed: 3);
        var b = RandomMatrix.Gaussian<float>(3000, 150, seed: 4);
        var expected = TestMatrices.ReferenceProduct(a.View, b.View);
        foreach (var path in SimdPaths.Supported)
        {
            var c = new Matrix<float>(200, 150);
            Blas.Gemm(1f, a, b, 0f, c, path);
            double err = 0;
            for (int i = 0; i < 200; i++)
                for (int j = 0; j < 150; j++)
                    err = Math.Max(err, Math.Abs(c[i, j] - expected[i, j]));
            // Entries are ~√3000 ≈ 55; blocked summation error is O(√k·ε·|a||b|).
            Assert.InRange(err, 0, 3000 * 6e-8 * 4);
        }
    }

    [Fact]
    public void BetaZeroOverwritesNaN()
    {
        var a = RandomMatrix.Gaussian<float>(70, 80, 5);
        var b = RandomMatrix.Gaussian<float>(80, 90, 6);
        var c = Matrix<float>.Create(70, 90, (_, _) => float.NaN);
        Blas.Gemm(1f, a, b, 0f, c);
        Assert.DoesNotContain(c.AsSpan().ToArray(), float.IsNaN);
    }

    [Fact]
    public void TransposedOutputIsWrittenThroughTheView()
    {
        var a = RandomMatrix.Gaussian<double>(40, 60, 7);
        var b = RandomMatrix.Gaussian<double>(60, 50, 8);
        var ct = new Matrix<double>(50, 40);
        Blas.Gemm(1.0, a, b, 0.0, ct.Transpose());
        var expected = TestMatrices.ReferenceProduct(a.View, b.View);
        for (int i = 0; i < 40; i++)
            for (int j = 0; j < 50; j++)
                Assert.Equal(expected[i, j], ct[j, i], 1e-10);
    }

    [Fact]
    public void MismatchedShapesNameTheArgument()
    {
        var a = new Matrix<float>(3, 4);
        var b = new Matrix<float>(5, 2);
        var ex = Assert.Throws<ArgumentException>(() => Blas.Multiply<float>(a, b));
        Assert.Equal("b", ex.ParamName);
        Assert.Contains("4×2", ex.Message);
    }
}
