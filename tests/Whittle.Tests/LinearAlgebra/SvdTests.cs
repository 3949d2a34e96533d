using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.LinearAlgebra;

public class SvdTests
{
    private static void CheckFactorization<T>(Matrix<T> a, SvdResult<T> r, double tolFactor = 10)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = a.Rows, n = a.Cols, k = Math.Min(m, n);
        double eps = TestMatrices.Epsilon<T>();
        Assert.Equal(m, r.U.Rows);
        Assert.Equal(k, r.U.Cols);
        Assert.Equal(k, r.S.Length);
        Assert.Equal(k, r.Vt.Rows);
        Assert.Equal(n, r.Vt.Cols);
        for (int i = 0; i < k; i++)
        {
            Assert.True(r.S[i] >= T.Zero, $"σ[{i}] = {r.S[i]} < 0");
            if (i > 0) Assert.True(r.S[i] <= r.S[i - 1], $"σ not descending at {i}");
        }
        double scale = Math.Max(1, Math.Max(m, n));
        Assert.InRange(TestMatrices.OrthogonalityError<T>(r.U), 0, tolFactor * scale * eps);
        Assert.InRange(TestMatrices.OrthogonalityError<T>(r.Vt.Transpose()), 0, tolFactor * scale * eps);
        var us = r.U.Clone();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < k; j++) us[i, j] *= r.S[j];
        var recon = TestMatrices.ReferenceProduct<T>(us, r.Vt);
        var ad = Matrix<double>.Create(m, n, (i, j) => double.CreateTruncating(a[i, j]));
        double norm = MatrixNorms.Frobenius<double>(ad);
        double err = MatrixNorms.FrobeniusDistance<double>(recon, ad);
        Assert.InRange(err, 0, tolFactor * scale * eps * Math.Max(norm, double.Epsilon));
    }

    public static TheoryData<int, int> Shapes() => new()
    {
        { 1, 1 }, { 2, 2 }, { 3, 3 }, { 1, 7 }, { 7, 1 }, { 2, 5 }, { 31, 31 }, { 33, 33 }, { 65, 65 }, { 130, 130 },
        { 40, 33 }, { 33, 40 }, { 100, 31 }, { 31, 100 }, { 300, 65 }, { 65, 130 }, { 130, 65 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void DoubleGaussianFactorizes(int m, int n)
    {
        var a = RandomMatrix.Gaussian<double>(m, n, seed: m * 1000 + n);
        var copy = a.Clone();
        var r = Svd.Compute<double>(a);
        CheckFactorization(a, r);
        Assert.Equal(copy.AsSpan().ToArray(), a.AsSpan().ToArray());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FloatGaussianFactorizes(int m, int n)
    {
        var a = RandomMatrix.Gaussian<float>(m, n, seed: m * 1000 + n + 7);
        CheckFactorization(a, Svd.Compute<float>(a));
    }

    [Fact]
    public void TransposedViewInput()
    {
        var a = RandomMatrix.Gaussian<double>(50, 80, seed: 3);
        var r = Svd.Compute(a.Transpose());
        CheckFactorization(a.Transpose().ToMatrix(), r);
    }

    [Theory]
    [InlineData(120, 120)]
    [InlineData(200, 90)]
    [InlineData(90, 200)]
    public void KnownSpectrumDouble(int m, int n)
    {
        int k = Math.Min(m, n);
        var s = Enumerable.Range(0, k).Select(i => Math.Pow(10, -6.0 * i / (k - 1))).ToArray(); // graded 1 … 1e-6
        var a = TestMatrices.WithSingularValues<double>(m, n, s, seed: 11);
        var r = Svd.Compute<double>(a);
        CheckFactorization(a, r);
        for (int i = 0; i < k; i++)
            Assert.True(Math.Abs(r.S[i] - s[i]) <= 1e-13 * s[0] + 1e-9 * s[i], $"σ[{i}] = {r.S[i]}, expected {s[i]}");
        var sv = Svd.SingularValues<double>(a);
        for (int i = 0; i < k; i++) Assert.Equal(r.S[i], sv[i], 1e-13);
    }

    [Fact]
    public void KnownSpectrumFloat()
    {
        int n = 100;
        var s = Enumerable.Range(0, n).Select(i => 1.0 + 9.0 * i / (n - 1)).Reverse().ToArray();
        var a = TestMatrices.WithSingularValues<float>(n, n, s, seed: 12);
        var r = Svd.Compute<float>(a);
        CheckFactorization(a, r);
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(r.S[i] - s[i]) <= 2e-5 * s[0], $"σ[{i}] = {r.S[i]}, expected {s[i]}");
    }

    [Fact]
    public void RepeatedAndClusteredValues()
    {
        int n = 90;
        var s = Enumerable.Range(0, n).Select(i => i < 30 ? 3.0 : i < 60 ? 1.0 + 1e-10 * i : 0.5).ToArray();
        var a = TestMatrices.WithSingularValues<double>(n + 10, n, s, seed: 13);
        var r = Svd.Compute<double>(a);
        CheckFactorization(a, r);
        var sorted = s.OrderByDescending(x => x).ToArray();
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(r.S[i] - sorted[i]) <= 1e-13 * 3, $"σ[{i}]");
    }

    [Theory]
    [InlineData(60, 60, 7)]
    [InlineData(150, 40, 5)]
    [InlineData(40, 150, 1)]
    public void RankDeficient(int m, int n, int rank)
    {
        var a = TestMatrices.OfRank<double>(m, n, rank, seed: 21);
        var r = Svd.Compute<double>(a);
        CheckFactorization(a, r);
        for (int i = rank; i < Math.Min(m, n); i++) Assert.True(r.S[i] <= 1e-12 * r.S[0], $"σ[{i}] = {r.S[i]}");
        Assert.True(r.S[rank - 1] > 1e-3 * r.S[0]);
    }

    [Theory]
    [InlineData(0, 5)]
    [InlineData(5, 0)]
    [InlineData(0, 0)]
    public void EmptyMatrices(int m, int n)
    {
        var r = Svd.Compute<double>(new Matrix<double>(m, n));
        Assert.Empty(r.S);
        Assert.Equal((m, 0), (r.U.Rows, r.U.Cols));
        Assert.Equal((0, n), (r.Vt.Rows, r.Vt.Cols));
    }

    [Fact]
    public void ZeroMatrix()
    {
        var a = new Matrix<float>(20, 12);
        var r = Svd.Compute<float>(a);
        Assert.All(r.S, x => Assert.Equal(0f, x));
        CheckFactorization(a, r);
        var w = Svd.Compute<float>(new Matrix<float>(12, 20));
        CheckFactorization<float>(new Matrix<float>(12, 20), w);
    }

    [Fact]
    public void TinyAndHugeScalesDoNotOverflow()
    {
        foreach (double scale in new[] { 1e-300, 1e300 })
        {
            var a = RandomMatrix.Gaussian<double>(30, 20, seed: 5);
            var r0 = Svd.SingularValues<double>(a);
            foreach (ref var x in a.AsSpan()) x *= scale;
            var r = Svd.SingularValues<double>(a);
            for (int i = 0; i < r.Length; i++) Assert.Equal(1.0, r[i] / (r0[i] * scale), 1e-12);
        }
    }

    [Fact]
    public void NonFiniteInputIsRejected()
    {
        var a = RandomMatrix.Gaussian<double>(4, 4, seed: 1);
        a[2, 1] = double.NaN;
        var ex = Assert.Throws<ArgumentException>(() => Svd.Compute<double>(a));
        Assert.Equal("a", ex.ParamName);
        a[2, 1] = double.PositiveInfinity;
        Assert.Throws<ArgumentException>(() => Svd.SingularValues<double>(a));
    }

    [Fact]
    public void ValuesOnlyMatchesFullDecomposition()
    {
        var a = RandomMatrix.Gaussian<float>(70, 45, seed: 8);
        var r = Svd.Compute<float>(a, computeVectors: false);
        Assert.Equal(0, r.U.Cols);
        Assert.Equal(0, r.Vt.Rows);
        var full = Svd.Compute<float>(a);
        for (int i = 0; i < 45; i++) Assert.True(Math.Abs(r.S[i] - full.S[i]) <= 1e-5f * full.S[0]);
    }

    [Fact]
    public void BidiagonalQrHandlesGradedAndZeroDiagonals()
    {
        // Upper bidiagonal with a zero on the diagonal and strong grading, checked through the full SVD.
        int n = 40;
        var b = new Matrix<double>(n, n);
        for (int i = 0; i < n; i++)
        {
            b[i, i] = i == 17 ? 0 : Math.Pow(10, -i / 5.0);
            if (i + 1 < n) b[i, i + 1] = Math.Pow(10, -i / 5.0) * 0.5;
        }
        var r = Svd.Compute<double>(b);
        CheckFactorization(b, r);
        Assert.True(r.S[n - 1] <= 1e-14);
    }

    [Theory]
    [InlineData(37, 203)]
    [InlineData(300, 1)]
    [InlineData(64, 1000)]
    public void PlaneRotationBatchesMatchOneAtATime(int rows, int cols)
    {
        var rng = new Random(rows + cols);
        var a = RandomMatrix.Gaussian<double>(rows, cols, seed: 4);
        var expected = a.Clone();
        var queue = new PlaneRotations<double>();
        for (int sweep = 0; sweep < 60; sweep++)
        {
            int first = rng.Next(rows - 1), count = 1 + rng.Next(rows - 1 - first);
            bool forward = rng.Next(2) == 0;
            var c = new double[count];
            var s = new double[count];
            for (int j = 0; j < count; j++)
            {
                double t = rng.NextDouble() * 2 * Math.PI;
                (c[j], s[j]) = (Math.Cos(t), Math.Sin(t));
            }
            queue.AddSweep(first, forward, c, s);
            for (int q = 0; q < count; q++)
            {
                int j = forward ? q : count - 1 - q, r = first + j;
                for (int k = 0; k < cols; k++)
                {
                    double x = expected[r, k], y = expected[r + 1, k];
                    expected[r, k] = c[j] * x + s[j] * y;
                    expected[r + 1, k] = c[j] * y - s[j] * x;
                }
            }
        }
        Assert.True(queue.Pending > 0);
        queue.Flush(a);
        Assert.Equal(0, queue.Pending);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(a, expected), 0, 1e-12 * MatrixNorms.Frobenius<double>(expected));
    }
}
