using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.LinearAlgebra;

public class PseudoInverseTests
{
    [Fact]
    public void SatisfiesThePenroseConditionsOnARankDeficientMatrix()
    {
        var a = TestMatrices.OfRank<double>(30, 20, 7, seed: 4);
        var p = PseudoInverse.Compute<double>(a);
        Assert.Equal(20, p.Rows);
        Assert.Equal(30, p.Cols);
        var apa = Blas.Multiply<double>(Blas.Multiply<double>(a, p), a);
        var pap = Blas.Multiply<double>(Blas.Multiply<double>(p, a), p);
        double scale = MatrixNorms.Frobenius<double>(a);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(apa, a) / scale, 0, 1e-12);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(pap, p) / MatrixNorms.Frobenius<double>(p), 0, 1e-12);
        var ap = Blas.Multiply<double>(a, p);
        var pa = Blas.Multiply<double>(p, a);
        Assert.InRange(MatrixNorms.FrobeniusDistance(ap.View, ap.Transpose()), 0, 1e-12);
        Assert.InRange(MatrixNorms.FrobeniusDistance(pa.View, pa.Transpose()), 0, 1e-12);
    }

    [Fact]
    public void EqualsTheInverseOfANonsingularMatrix()
    {
        var a = TestMatrices.WithSingularValues<double>(25, 25, [.. Enumerable.Range(0, 25).Select(i => 1.0 + i)], seed: 8);
        var p = PseudoInverse.Compute<double>(a);
        var identity = Blas.Multiply<double>(a, p);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(identity, Matrix<double>.Identity(25)), 0, 1e-12);
    }

    [Fact]
    public void CutoffDropsSmallSingularValues()
    {
        var a = TestMatrices.WithSingularValues<double>(10, 10, [1, 0.5, 0.25, 1e-3, 1e-9, 1e-9, 1e-9, 1e-9, 1e-9, 1e-9], seed: 1);
        var s = Svd.SingularValues<double>(a);
        Assert.Equal(4, PseudoInverse.NumericalRank<double>(s, 1e-6));
        Assert.Equal(3, PseudoInverse.NumericalRank<double>(s, 1e-2));
        // With the cutoff above 1e-3, the pseudo-inverse's norm is bounded by 1/0.25.
        var p = PseudoInverse.Compute<double>(a, 1e-2);
        Assert.InRange(Svd.SingularValues<double>(p)[0], 3.99, 4.01);
    }

    [Fact]
    public void ZeroMatrixHasZeroPseudoInverse()
    {
        var p = PseudoInverse.Compute<float>(new Matrix<float>(4, 6));
        Assert.Equal(6, p.Rows);
        Assert.All(p.AsSpan().ToArray(), v => Assert.Equal(0f, v));
    }
}

public class LeastSquaresTests
{
    [Fact]
    public void OverdeterminedResidualIsOrthogonalToTheColumns()
    {
        var a = RandomMatrix.Gaussian<double>(80, 12, seed: 1);
        var b = RandomMatrix.Gaussian<double>(80, 3, seed: 2);
        var sol = LeastSquares.Solve<double>(a, b);
        Assert.Equal(12, sol.Rank);
        var r = Blas.Multiply<double>(a, sol.X);
        Blas.Gemm(-1.0, Matrix<double>.Identity(80), b, 1.0, r); // r = AX − B
        var normal = Blas.Multiply<double>(a.Transpose(), r);    // Aᵀr = 0 at the optimum
        Assert.InRange(MatrixNorms.MaxAbs<double>(normal), 0, 1e-11);
    }

    [Fact]
    public void UnderdeterminedSolutionHasMinimumNorm()
    {
        var a = RandomMatrix.Gaussian<double>(5, 20, seed: 3);
        var b = RandomMatrix.Gaussian<double>(5, 1, seed: 4);
        var x = LeastSquares.Solve<double>(a, b).X;
        // Exact fit, and X lies in the row space of A: X = Aᵀ·(A·Aᵀ)⁻¹·B.
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(Blas.Multiply<double>(a, x), b), 0, 1e-12);
        var aat = Blas.Multiply<double>(a, a.Transpose());
        var y = LeastSquares.Solve<double>(aat, b).X;
        var expected = Blas.Multiply<double>(a.Transpose(), y);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(x, expected), 0, 1e-10);
    }

    [Fact]
    public void RankDeficientSystemMatchesThePseudoInverse()
    {
        var a = TestMatrices.OfRank<double>(40, 15, 5, seed: 9);
        var b = RandomMatrix.Gaussian<double>(40, 2, seed: 10);
        var sol = LeastSquares.Solve<double>(a, b);
        Assert.Equal(5, sol.Rank);
        var expected = Blas.Multiply<double>(PseudoInverse.Compute<double>(a), b);
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(sol.X, expected), 0, 1e-10);
    }

    [Fact]
    public void RowMismatchNamesB()
    {
        var ex = Assert.Throws<ArgumentException>(() => LeastSquares.Solve<double>(new Matrix<double>(4, 3), new Matrix<double>(5, 1)));
        Assert.Equal("b", ex.ParamName);
    }
}
