using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.LinearAlgebra;

public class CholeskyTests
{
    /// <summary>A = XᵀX/k + I (k = n + 10), well-conditioned SPD, built in double.</summary>
    internal static Matrix<double> Spd(int n, int seed)
    {
        var x = RandomMatrix.Gaussian<double>(n + 10, n, seed);
        var a = TestMatrices.ReferenceProduct(x.Transpose(), x.View);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                a[i, j] = a[i, j] / (n + 10) + (i == j ? 1 : 0);
        return a;
    }

    private static Matrix<T> Cast<T>(Matrix<double> a) where T : unmanaged, IFloatingPointIeee754<T> =>
        Matrix<T>.Create(a.Rows, a.Cols, (i, j) => T.CreateTruncating(a[i, j]));

    private static void CheckFactor<T>(int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var ad = Spd(n, seed: n);
        var a = Cast<T>(ad);
        // Only the lower triangle may be read.
        var input = Matrix<T>.Create(n, n, (i, j) => j > i ? T.NaN : a[i, j]);
        var f = Cholesky.Compute<T>(input);
        Assert.Equal(0.0, f.Jitter);
        var l = f.L;
        for (int i = 0; i < n; i++)
        {
            Assert.True(l[i, i] > T.Zero, $"L[{i},{i}] = {l[i, i]}");
            for (int j = i + 1; j < n; j++) Assert.Equal(T.Zero, l[i, j]);
        }
        var llt = TestMatrices.ReferenceProduct(l.View, l.Transpose());
        var ac = Matrix<double>.Create(n, n, (i, j) => double.CreateTruncating(a[i, j]));
        double eps = TestMatrices.Epsilon<T>();
        double rel = MatrixNorms.FrobeniusDistance(llt.View, ac.View) / MatrixNorms.Frobenius(ac.View);
        Assert.True(rel <= 10 * eps * Math.Sqrt(n + 1), $"n={n}: ‖LLᵀ − A‖/‖A‖ = {rel:G3}");

        var b = RandomMatrix.Gaussian<T>(n, 3, seed: 5);
        var x = f.Solve(b);
        var ax = TestMatrices.ReferenceProduct(a.View, x.View);
        var bd = Matrix<double>.Create(n, 3, (i, j) => double.CreateTruncating(b[i, j]));
        double xNorm = MatrixNorms.Frobenius(x.View);
        double res = MatrixNorms.FrobeniusDistance(ax.View, bd.View) / (MatrixNorms.Frobenius(ac.View) * xNorm + MatrixNorms.Frobenius(bd.View));
        Assert.True(res <= 10 * eps * Math.Sqrt(n + 1), $"n={n}: solve residual {res:G3}");

        var xv = f.Solve(b.Column(0));
        for (int i = 0; i < n; i++)
            Assert.True(Math.Abs(double.CreateTruncating(xv[i] - x[i, 0])) <= 1e-3 * Math.Max(1, double.CreateTruncating(T.Abs(x[i, 0]))));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(100)]
    [InlineData(129)]
    [InlineData(257)]
    [InlineData(300)]
    public void FactorsAndSolvesDouble(int n) => CheckFactor<double>(n);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(33)]
    [InlineData(129)]
    [InlineData(300)]
    public void FactorsAndSolvesFloat(int n) => CheckFactor<float>(n);

    [Fact]
    public void BlockedMatchesUnblocked()
    {
        var a = Spd(300, 3);
        var blocked = Cholesky.Compute<double>(a, null, blockSize: 48);
        var unblocked = Cholesky.Compute<double>(a, null, blockSize: 300);
        var standard = Cholesky.Compute<double>(a);
        Assert.True(MatrixNorms.FrobeniusDistance(blocked.L.View, unblocked.L.View) <= 1e-12 * MatrixNorms.Frobenius(unblocked.L.View));
        Assert.True(MatrixNorms.FrobeniusDistance(standard.L.View, unblocked.L.View) <= 1e-12 * MatrixNorms.Frobenius(unblocked.L.View));
    }

    [Theory]
    [InlineData(5, 0)]
    [InlineData(200, 150)]
    [InlineData(300, 7)]
    [InlineData(300, 299)]
    public void IndefiniteMatrixReportsTheExactFailingPivot(int n, int pivot)
    {
        // A = L·D·Lᵀ with unit lower L and D_p < 0: elimination meets exactly D_p at step p.
        var g = RandomMatrix.Gaussian<double>(n, n, seed: 2);
        var l = Matrix<double>.Create(n, n, (i, j) => i == j ? 1 : j < i ? 0.5 * g[i, j] / Math.Sqrt(n) : 0);
        var ld = Matrix<double>.Create(n, n, (i, j) => l[i, j] * (j == pivot ? -2.5 : 1 + j % 3));
        var a = TestMatrices.ReferenceProduct(ld.View, l.Transpose());
        foreach (bool asFloat in new[] { false, true })
        {
            var ex = asFloat
                ? Assert.Throws<NotPositiveDefiniteException>(() => Cholesky.Compute<float>(Cast<float>(a)))
                : Assert.Throws<NotPositiveDefiniteException>(() => Cholesky.Compute<double>(a));
            Assert.Equal(pivot, ex.PivotIndex);
            Assert.Equal(-2.5, ex.PivotValue, asFloat ? 1e-3 : 1e-9);
            Assert.Contains($"pivot {pivot}", ex.Message);
            Assert.Contains("AllowJitter", ex.Message);
            Assert.IsAssignableFrom<ArithmeticException>(ex);
        }
    }

    [Fact]
    public void JitterFactorsARankDeficientGramMatrixAndReportsTheShift()
    {
        var x = RandomMatrix.Gaussian<double>(10, 50, seed: 4);
        var g = Blas.Gram<double>(x);
        Assert.Throws<NotPositiveDefiniteException>(() => Cholesky.Compute<double>(g));
        foreach (bool asFloat in new[] { false, true })
        {
            double jitter;
            double rel;
            if (asFloat)
            {
                var gf = Cast<float>(g);
                var f = Cholesky.Compute<float>(gf, new CholeskyOptions(AllowJitter: true));
                jitter = f.Jitter;
                var shifted = Matrix<double>.Create(50, 50, (i, j) => gf[i, j] + (i == j ? (double)(float)jitter : 0));
                rel = MatrixNorms.FrobeniusDistance(TestMatrices.ReferenceProduct(f.L.View, f.L.Transpose()).View, shifted.View) / MatrixNorms.Frobenius(shifted.View);
                Assert.True(rel < 1e-5, $"float: {rel}");
            }
            else
            {
                var f = Cholesky.Compute<double>(g, new CholeskyOptions(AllowJitter: true));
                jitter = f.Jitter;
                var shifted = Matrix<double>.Create(50, 50, (i, j) => g[i, j] + (i == j ? jitter : 0));
                rel = MatrixNorms.FrobeniusDistance(TestMatrices.ReferenceProduct(f.L.View, f.L.Transpose()).View, shifted.View) / MatrixNorms.Frobenius(shifted.View);
                Assert.True(rel < 1e-13, $"double: {rel}");
            }
            double meanDiagonal = Enumerable.Range(0, 50).Average(i => g[i, i]);
            // The shift is InitialJitter·mean(diag)·10^attempt for some attempt.
            double attempts = Math.Log10(jitter / (1e-10 * meanDiagonal));
            Assert.True(jitter > 0);
            Assert.Equal(Math.Round(attempts), attempts, 6);
            Assert.InRange(attempts, 0, 9);
        }
    }

    [Fact]
    public void JitterGivesUpOnAnIndefiniteMatrixAndSaysSo()
    {
        var a = new Matrix<double>(2, 2, [1, 0, 0, -1]);
        var ex = Assert.Throws<NotPositiveDefiniteException>(() => Cholesky.Compute<double>(a, new CholeskyOptions(true, 1e-10, 3)));
        Assert.Equal(1, ex.PivotIndex);
        Assert.Equal(4, ex.Attempts);
        Assert.Equal(1e-8, ex.Jitter, 1e-20);
        Assert.Contains("4 attempts", ex.Message);
    }

    [Fact]
    public void EmptyAndOneByOne()
    {
        var empty = Cholesky.Compute<double>(new Matrix<double>(0, 0));
        Assert.Equal(0, empty.L.Rows);
        Assert.Equal(0, empty.Solve(new Matrix<double>(0, 2)).Rows);
        var one = Cholesky.Compute<float>(new Matrix<float>(1, 1, [4f]));
        Assert.Equal(2f, one.L[0, 0]);
        Assert.Equal(2f, one.Solve(new Matrix<float>(1, 1, [8f]))[0, 0]);
        Assert.Equal(Math.Log(4), one.LogDeterminant(), 1e-6);
        var ex = Assert.Throws<NotPositiveDefiniteException>(() => Cholesky.Compute<float>(new Matrix<float>(1, 1, [-1f])));
        Assert.Equal(0, ex.PivotIndex);
        Assert.Equal(-1, ex.PivotValue);
    }

    [Fact]
    public void BadInputsThrowClearArgumentExceptions()
    {
        var nonSquare = Assert.Throws<ArgumentException>(() => Cholesky.Compute<double>(new Matrix<double>(3, 4)));
        Assert.Equal("a", nonSquare.ParamName);
        Assert.Contains("square", nonSquare.Message);
        var a = Spd(5, 1);
        a[3, 1] = double.NaN;
        var nan = Assert.Throws<ArgumentException>(() => Cholesky.Compute<double>(a));
        Assert.Contains("(3, 1)", nan.Message);
        Assert.Equal("a", nan.ParamName);
        // NaN above the diagonal is never read.
        var b = Spd(5, 1);
        b[1, 3] = double.NaN;
        Cholesky.Compute<double>(b);
        Assert.Throws<ArgumentOutOfRangeException>(() => Cholesky.Compute<double>(b, new CholeskyOptions(true, 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Cholesky.Compute<double>(b, new CholeskyOptions(true, 1e-10, 0)));
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => Cholesky.Compute<double>(b).Solve(new Matrix<double>(4, 1))).ParamName);
    }
}
