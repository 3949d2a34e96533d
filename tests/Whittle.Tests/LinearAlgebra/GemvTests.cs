using Whittle.LinearAlgebra;

namespace Whittle.Tests.LinearAlgebra;

public class GemvTests
{
    [Theory]
    [InlineData(0, 5)]
    [InlineData(5, 0)]
    [InlineData(1, 1)]
    [InlineData(1, 300)]
    [InlineData(300, 1)]
    [InlineData(33, 65)]
    [InlineData(700, 500)] // large enough to run on several threads
    public void MatchesTheReferenceLoopInBothOrientations(int m, int n)
    {
        var a = RandomMatrix.Gaussian<double>(m, n, seed: m + n);
        var x = RandomMatrix.Gaussian<double>(1, n, seed: 1).AsSpan().ToArray();
        var xt = RandomMatrix.Gaussian<double>(1, m, seed: 2).AsSpan().ToArray();

        var y = Enumerable.Range(0, m).Select(i => (double)i).ToArray();
        Blas.Gemv(1.5, a, x, -2.0, y);
        for (int i = 0; i < m; i++)
        {
            double s = 0;
            for (int j = 0; j < n; j++) s += a[i, j] * x[j];
            Assert.Equal(1.5 * s - 2.0 * i, y[i], 1e-11);
        }

        var yt = new double[n];
        Blas.Gemv(1.0, a.Transpose(), xt, 0.0, yt);
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int i = 0; i < m; i++) s += a[i, j] * xt[i];
            Assert.Equal(s, yt[j], 1e-11);
        }
    }

    [Fact]
    public void GerAddsTheOuterProductThroughAnyView()
    {
        var a = RandomMatrix.Gaussian<float>(40, 30, seed: 3);
        var original = a.Clone();
        float[] x = [.. Enumerable.Range(0, 40).Select(i => i * 0.1f)];
        float[] y = [.. Enumerable.Range(0, 30).Select(j => 1f - j * 0.05f)];
        Blas.Ger(2f, x, y, a);
        for (int i = 0; i < 40; i++)
            for (int j = 0; j < 30; j++)
                Assert.Equal(original[i, j] + 2f * x[i] * y[j], a[i, j], 1e-5f);

        // Through a transposed view: Aᵀ += y·xᵀ is the same update.
        var b = original.Clone();
        Blas.Ger(2f, y, x, b.Transpose());
        Assert.Equal(a.AsSpan().ToArray(), b.AsSpan().ToArray());
    }

    [Fact]
    public void WrongVectorLengthNamesTheArgument()
    {
        var a = new Matrix<float>(3, 4);
        var ex = Assert.Throws<ArgumentException>(() => Blas.Gemv(1f, a, new float[3], 0f, new float[3]));
        Assert.Equal("x", ex.ParamName);
    }
}
