using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.LinearAlgebra;

public class SymmetricEigenTests
{
    private static Matrix<T> Symmetric<T>(int n, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = RandomMatrix.Gaussian<double>(n, n, seed);
        return Matrix<T>.Create(n, n, (i, j) => T.CreateTruncating(g[Math.Max(i, j), Math.Min(i, j)]));
    }

    /// <summary>Q·diag(λ)·Qᵀ with a random orthogonal Q, built in double.</summary>
    private static Matrix<T> WithEigenvalues<T>(double[] lambda, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = lambda.Length;
        var q = TestMatrices.Orthogonal<double>(n, seed);
        var ql = Matrix<double>.Create(n, n, (i, j) => q[i, j] * lambda[j]);
        var a = Blas.Multiply<double>(ql, q.Transpose());
        return Matrix<T>.Create(n, n, (i, j) => T.CreateTruncating(0.5 * (a[i, j] + a[j, i])));
    }

    private static void Check<T>(Matrix<T> a, EigenResult<T> r, double tolFactor = 10) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = a.Rows;
        double eps = TestMatrices.Epsilon<T>();
        Assert.Equal(n, r.Values.Length);
        Assert.Equal((n, n), (r.Vectors.Rows, r.Vectors.Cols));
        for (int i = 1; i < n; i++) Assert.True(r.Values[i] >= r.Values[i - 1], $"not ascending at {i}");
        Assert.InRange(TestMatrices.OrthogonalityError<T>(r.Vectors), 0, tolFactor * Math.Max(1, n) * eps);
        // ‖A·V − V·Λ‖_F ≤ c·n·ε·‖A‖_F, using the lower triangle of A as the matrix.
        var full = Matrix<T>.Create(n, n, (i, j) => a[Math.Max(i, j), Math.Min(i, j)]);
        var av = TestMatrices.ReferenceProduct<T>(full, r.Vectors);
        var vl = Matrix<double>.Create(n, n, (i, j) => double.CreateTruncating(r.Vectors[i, j]) * double.CreateTruncating(r.Values[j]));
        double norm = MatrixNorms.Frobenius<T>(full);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(av, vl), 0, tolFactor * Math.Max(1, n) * eps * Math.Max(norm, double.Epsilon));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(65)]
    [InlineData(130)]
    public void RandomSymmetricDouble(int n)
    {
        var a = Symmetric<double>(n, seed: n);
        var copy = a.Clone();
        Check(a, SymmetricEigen.Compute<double>(a));
        Assert.Equal(copy.AsSpan().ToArray(), a.AsSpan().ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(64)]
    [InlineData(97)]
    public void RandomSymmetricFloat(int n)
    {
        var a = Symmetric<float>(n, seed: n + 100);
        Check(a, SymmetricEigen.Compute<float>(a));
    }

    [Fact]
    public void KnownSpectrum()
    {
        int n = 120;
        var lambda = Enumerable.Range(0, n).Select(i => -3.0 + 7.0 * Math.Sin(i * 0.37)).ToArray();
        var a = WithEigenvalues<double>(lambda, seed: 5);
        var r = SymmetricEigen.Compute<double>(a);
        Check(a, r);
        var sorted = lambda.OrderBy(x => x).ToArray();
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(r.Values[i] - sorted[i]) <= 1e-13 * 10, $"λ[{i}] = {r.Values[i]}, expected {sorted[i]}");
        var valuesOnly = SymmetricEigen.Compute<double>(a, computeVectors: false);
        Assert.Equal((n, 0), (valuesOnly.Vectors.Rows, valuesOnly.Vectors.Cols));
        for (int i = 0; i < n; i++) Assert.Equal(r.Values[i], valuesOnly.Values[i], 1e-12);
    }

    [Fact]
    public void RepeatedEigenvalues()
    {
        var lambda = Enumerable.Range(0, 70).Select(i => i < 30 ? 2.0 : i < 50 ? -1.0 : 1e-3 * i).ToArray();
        var a = WithEigenvalues<double>(lambda, seed: 6);
        var r = SymmetricEigen.Compute<double>(a);
        Check(a, r);
        var sorted = lambda.OrderBy(x => x).ToArray();
        for (int i = 0; i < lambda.Length; i++) Assert.True(Math.Abs(r.Values[i] - sorted[i]) <= 1e-13 * 10, $"λ[{i}]");
    }

    [Fact]
    public void FloatKnownSpectrum()
    {
        var lambda = Enumerable.Range(0, 80).Select(i => (double)(i - 40)).ToArray();
        var a = WithEigenvalues<float>(lambda, seed: 7);
        var r = SymmetricEigen.Compute<float>(a);
        Check(a, r);
        for (int i = 0; i < lambda.Length; i++) Assert.True(Math.Abs(r.Values[i] - lambda[i]) <= 40 * 80 * 6e-8 * 4, $"λ[{i}]");
    }

    [Fact]
    public void DiagonalInput()
    {
        var diag = new[] { 3.0, -1.0, 0.0, 2.5, -7.0, 2.5 };
        var a = Matrix<double>.Diagonal(diag, 6, 6);
        var r = SymmetricEigen.Compute<double>(a);
        Check(a, r);
        Assert.Equal(diag.OrderBy(x => x).ToArray(), r.Values);
    }

    [Fact]
    public void ReadsOnlyTheLowerTriangle()
    {
        var a = Symmetric<double>(40, seed: 9);
        var reference = SymmetricEigen.Compute<double>(a).Values;
        for (int i = 0; i < 40; i++)
            for (int j = i + 1; j < 40; j++) a[i, j] = double.NaN;
        var r = SymmetricEigen.Compute<double>(a);
        for (int i = 0; i < 40; i++) Assert.Equal(reference[i], r.Values[i], 1e-12);
    }

    [Fact]
    public void EmptyZeroAndBadInput()
    {
        var empty = SymmetricEigen.Compute<double>(new Matrix<double>(0, 0));
        Assert.Empty(empty.Values);
        var zero = SymmetricEigen.Compute<float>(new Matrix<float>(9, 9));
        Assert.All(zero.Values, v => Assert.Equal(0f, v));
        Check(new Matrix<float>(9, 9), zero);
        var ex = Assert.Throws<ArgumentException>(() => SymmetricEigen.Compute<double>(new Matrix<double>(3, 4)));
        Assert.Equal("a", ex.ParamName);
        var bad = Symmetric<double>(5, seed: 1);
        bad[3, 1] = double.NegativeInfinity;
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => SymmetricEigen.Compute<double>(bad)).ParamName);
    }
}
