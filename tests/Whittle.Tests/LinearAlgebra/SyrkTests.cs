using System.Numerics;
using Whittle.LinearAlgebra;

namespace Whittle.Tests.LinearAlgebra;

public class SyrkTests
{
    public static TheoryData<int, int, bool> Shapes()
    {
        var data = new TheoryData<int, int, bool>();
        foreach (var (k, n) in new[] { (0, 5), (5, 0), (0, 0), (1, 1), (3, 1), (37, 53), (300, 257), (600, 300), (50, 1030) })
            foreach (bool transposedInput in new[] { false, true })
                data.Add(k, n, transposedInput);
        return data;
    }

    private static void Check<T>(int k, int n, bool transposedInput) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var storage = RandomMatrix.Gaussian<T>(transposedInput ? n : k, transposedInput ? k : n, seed: k + n);
        var a = transposedInput ? storage.Transpose() : storage.View;
        // A symmetric C so that β·C has a well-defined symmetric meaning; the strict upper triangle holds NaN
        // to check that it is never read.
        var c0 = Blas.Gram<double>(RandomMatrix.Gaussian<double>(7, n, seed: 1));
        var c = Matrix<T>.Create(n, n, (i, j) => j > i ? T.NaN : T.CreateTruncating(c0[i, j]));
        Blas.Syrk(T.CreateTruncating(0.5), a, T.CreateTruncating(-2.0), c);

        var gemm = new Matrix<T>(n, n);
        Blas.Gemm(T.One, a.Transpose(), a, T.Zero, gemm);
        var exact = TestMatrices.ReferenceProduct(a.Transpose(), a);
        double tol = 10 * TestMatrices.Epsilon<T>() * (k + 8);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                Assert.Equal(c[i, j], c[j, i]); // exactly symmetric
                double expected = 0.5 * exact[i, j] - 2 * double.CreateTruncating(T.CreateTruncating(c0[Math.Max(i, j), Math.Min(i, j)]));
                double scale = 0.5 * Math.Sqrt(exact[i, i] * exact[j, j]) + 2 * Math.Abs(c0[i, j]) + 1;
                Assert.True(Math.Abs(double.CreateTruncating(c[i, j]) - expected) <= tol * scale, $"({i},{j}): {c[i, j]} vs {expected}");
                Assert.True(Math.Abs(double.CreateTruncating(c[i, j]) - (0.5 * double.CreateTruncating(gemm[i, j]) - 2 * double.CreateTruncating(T.CreateTruncating(c0[Math.Max(i, j), Math.Min(i, j)])))) <= tol * scale);
            }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesGemmAndIsExactlySymmetricDouble(int k, int n, bool transposedInput) => Check<double>(k, n, transposedInput);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesGemmAndIsExactlySymmetricFloat(int k, int n, bool transposedInput) => Check<float>(k, n, transposedInput);

    [Fact]
    public void GramIsXTransposeX()
    {
        var x = RandomMatrix.Gaussian<float>(2000, 200, seed: 9);
        var g = Blas.Gram<float>(x);
        var expected = TestMatrices.ReferenceProduct(x.Transpose(), x.View);
        Assert.Equal(200, g.Rows);
        for (int i = 0; i < 200; i++)
            for (int j = 0; j < 200; j++)
            {
                Assert.Equal(g[i, j], g[j, i]);
                Assert.True(Math.Abs(g[i, j] - expected[i, j]) <= 50 * 6e-8 * Math.Sqrt(expected[i, i] * expected[j, j]), $"({i},{j})");
            }
    }

    [Fact]
    public void BetaZeroIgnoresNaNAndEmptyCases()
    {
        var a = RandomMatrix.Gaussian<double>(10, 4, 2);
        var c = Matrix<double>.Create(4, 4, (_, _) => double.NaN);
        Blas.Syrk(1.0, a, 0.0, c);
        Assert.DoesNotContain(c.AsSpan().ToArray(), double.IsNaN);
        // k = 0: C ← β·C only.
        var c2 = Matrix<double>.Create(3, 3, (i, j) => i + j);
        Blas.Syrk(1.0, new Matrix<double>(0, 3), 2.0, c2);
        Assert.Equal(Matrix<double>.Create(3, 3, (i, j) => 2.0 * (i + j)).AsSpan().ToArray(), c2.AsSpan().ToArray());
        Assert.Equal(0, Blas.Gram<double>(new Matrix<double>(5, 0)).Rows);
        var one = Blas.Gram<double>(new Matrix<double>(1, 1, [3]));
        Assert.Equal(9.0, one[0, 0]);
    }

    [Fact]
    public void WrongShapeNamesC()
    {
        var ex = Assert.Throws<ArgumentException>(() => Blas.Syrk(1.0, new Matrix<double>(5, 4), 0.0, new Matrix<double>(5, 5)));
        Assert.Equal("c", ex.ParamName);
        Assert.Contains("4×4", ex.Message);
    }
}
