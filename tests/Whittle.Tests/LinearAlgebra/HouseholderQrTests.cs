using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.LinearAlgebra;

public class HouseholderQrTests
{
    public static TheoryData<int, int> Shapes()
    {
        var data = new TheoryData<int, int>();
        foreach (var (m, n) in new[]
                 {
                     (0, 0), (0, 3), (3, 0), (1, 1), (1, 7), (7, 1), (2, 2), (3, 3), (31, 31), (33, 33), (65, 65),
                     (130, 130), (200, 33), (33, 200), (97, 64), (64, 97), (150, 130),
                 })
            data.Add(m, n);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FactorsReproduceTheMatrixDouble(int m, int n) => CheckFactorization<double>(m, n);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FactorsReproduceTheMatrixSingle(int m, int n) => CheckFactorization<float>(m, n);

    private static void CheckFactorization<T>(int m, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = RandomMatrix.Gaussian<T>(m, n, seed: 10 * m + n);
        var copy = a.Clone();
        var qr = HouseholderQr.Compute<T>(a);
        int p = Math.Min(m, n);
        double eps = TestMatrices.Epsilon<T>();

        Assert.Equal(copy.AsSpan().ToArray(), a.AsSpan().ToArray()); // input untouched
        Assert.Equal(p, qr.R.Rows);
        Assert.Equal(n, qr.R.Cols);
        for (int i = 0; i < p; i++)
            for (int j = 0; j < Math.Min(i, n); j++)
                Assert.Equal(T.Zero, qr.R[i, j]);

        var q = qr.Q();
        Assert.Equal(m, q.Rows);
        Assert.Equal(p, q.Cols);
        Assert.InRange(TestMatrices.OrthogonalityError<T>(q), 0, 10 * Math.Max(1, m) * eps);
        var full = qr.Q(thin: false);
        Assert.InRange(TestMatrices.OrthogonalityError<T>(full), 0, 10 * Math.Max(1, m) * eps);

        var qrProduct = TestMatrices.ReferenceProduct<T>(q, qr.R);
        double norm = MatrixNorms.Frobenius<T>(a);
        double residual = MatrixNorms.FrobeniusDistance<double>(qrProduct, ToDouble<T>(a));
        Assert.InRange(residual, 0, 10 * Math.Max(m, n) * eps * Math.Max(norm, 1e-300));

        // ApplyQ/ApplyQTranspose agree with the formed Q.
        var b = RandomMatrix.Gaussian<T>(m, 3, seed: 5);
        var qtb = qr.ApplyQTranspose(b);
        var expected = TestMatrices.ReferenceProduct<T>(full.Transpose(), b);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(ToDouble<T>(qtb), expected), 0, 10 * Math.Max(1, m) * eps * (1 + MatrixNorms.Frobenius<T>(b)));
        var back = qr.ApplyQ(qtb);
        Assert.InRange(MatrixNorms.FrobeniusDistance<T>(back, b), 0, 10 * Math.Max(1, m) * eps * (1 + MatrixNorms.Frobenius<T>(b)));
        var small = RandomMatrix.Gaussian<T>(p, 2, seed: 6);
        var qs = qr.ApplyQ(small);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(ToDouble<T>(qs), TestMatrices.ReferenceProduct<T>(q, small)), 0, 10 * Math.Max(1, m) * eps * (1 + MatrixNorms.Frobenius<T>(small)));
    }

    [Fact]
    public void SolveMatchesTheNormalEquationsOnAWellConditionedProblem()
    {
        var a = TestMatrices.WithSingularValues<double>(120, 40, Enumerable.Range(0, 40).Select(i => 1.0 + i / 10.0).ToArray(), seed: 3);
        var xTrue = RandomMatrix.Gaussian<double>(40, 2, seed: 4);
        var b = Blas.Multiply<double>(a, xTrue);
        var noise = RandomMatrix.Gaussian<double>(120, 2, seed: 5);
        for (int i = 0; i < 120; i++)
            for (int j = 0; j < 2; j++) b[i, j] += 1e-3 * noise[i, j];

        var x = HouseholderQr.Compute<double>(a).Solve(b);

        // Least squares optimality: the residual is orthogonal to range(A).
        var r = Blas.Multiply<double>(a, x);
        for (int i = 0; i < 120; i++)
            for (int j = 0; j < 2; j++) r[i, j] = b[i, j] - r[i, j];
        var atr = TestMatrices.ReferenceProduct<double>(a.Transpose(), r);
        Assert.InRange(MatrixNorms.MaxAbs<double>(atr), 0, 1e-12);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(x, xTrue), 0, 1e-2);
    }

    [Fact]
    public void SolveExactSquareSystemSingle()
    {
        var a = TestMatrices.WithSingularValues<float>(50, 50, Enumerable.Range(0, 50).Select(i => 1.0 + i / 25.0).ToArray(), seed: 8);
        var xTrue = RandomMatrix.Gaussian<float>(50, 1, seed: 9);
        var b = Blas.Multiply<float>(a, xTrue);
        var x = HouseholderQr.Compute<float>(a).Solve(b);
        Assert.InRange(MatrixNorms.FrobeniusDistance<float>(x, xTrue), 0, 1e-4);
    }

    [Fact]
    public void SolveRefusesARankDeficientMatrix()
    {
        var a = TestMatrices.OfRank<double>(30, 10, 7, seed: 2);
        var qr = HouseholderQr.Compute<double>(a);
        var ex = Assert.Throws<InvalidOperationException>(() => qr.Solve(new Matrix<double>(30, 1)));
        Assert.Contains("singular", ex.Message);
        Assert.Throws<InvalidOperationException>(() => HouseholderQr.Compute<double>(new Matrix<double>(3, 5)).Solve(new Matrix<double>(3, 1)));
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => qr.Solve(new Matrix<double>(29, 1))).ParamName);
    }

    [Fact]
    public void NonFiniteInputIsRejected()
    {
        var a = RandomMatrix.Gaussian<float>(5, 4, seed: 1);
        a[3, 2] = float.NaN;
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => HouseholderQr.Compute<float>(a)).ParamName);
        a[3, 2] = float.PositiveInfinity;
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => HouseholderQr.Compute<float>(a)).ParamName);
    }

    [Fact]
    public void TransposedViewInputIsFactoredAsTheTranspose()
    {
        var a = RandomMatrix.Gaussian<double>(40, 70, seed: 12);
        var qr = HouseholderQr.Compute(a.Transpose()); // 70 × 40
        var product = TestMatrices.ReferenceProduct<double>(qr.Q(), qr.R);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(product, a.Transpose().ToMatrix()), 0, 1e-12);
    }

    internal static Matrix<double> ToDouble<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T> =>
        Matrix<double>.Create(a.Rows, a.Cols, (i, j) => double.CreateTruncating(a[i, j]));
}
