using Whittle.Decompositions;
using Whittle.LinearAlgebra;

namespace Whittle.Tests.Decompositions;

/// <summary>The one-factorization ID paths: every rank from one CPQR, and the group (head) variant.</summary>
public class IdPathTests
{
    /// <summary>The group path's scale σ₁ (by power iteration, not a full SVD) is the largest singular value, full rank or not.</summary>
    [Theory]
    [InlineData(80, 60, 60)]
    [InlineData(90, 70, 9)]
    public void LargestSingularValueMatchesTheSvd(int m, int h, int rank)
    {
        var a = TestMatrices.OfRank<double>(m, h, rank, seed: 21);
        double expected = Whittle.LinearAlgebra.Factorizations.Svd.SingularValues(a.View)[0];
        Assert.Equal(expected, GroupInterpolativeDecompositionPath.LargestSingularValue(a.View), 1e-6 * expected);
        Assert.Equal(0.0, GroupInterpolativeDecompositionPath.LargestSingularValue(new Matrix<double>(5, 4).View));
    }

    [Fact]
    public void EveryRankEqualsTheDirectIdOfThatRank()
    {
        var z = InterpolativeDecompositionTests.SeparatedColumns<double>(80, 24, 1.15, seed: 5);
        var path = InterpolativeDecompositionPath.Factor(z.View);
        Assert.Equal(24, path.MaxRank);
        Assert.Equal(MatrixNorms.Frobenius(z.View), path.Norm, 1e-10);
        for (int k = 0; k <= 24; k++)
        {
            var direct = InterpolativeDecompositions.Compute(z.View, new IdOptions(Rank: k));
            var at = path.At(k);
            Assert.Equal(direct.Indices, at.Indices);
            Assert.True(MatrixNorms.FrobeniusDistance(direct.Interpolation.View, at.Interpolation.View) <= 1e-10 * (1 + MatrixNorms.Frobenius(direct.Interpolation.View)));
            Assert.Equal(direct.Error(z.View), path.ResidualNorm(k), 1e-9);
            Assert.Equal(at.Error(z.View), at.ResidualNorm, 1e-9);
            Assert.Equal(direct.DiagonalRatio, path.DiagonalRatio(k), 1e-12);
        }
        foreach (double tol in new[] { 0.5, 0.1, 0.02, 1e-3 })
            Assert.Equal(InterpolativeDecompositions.Compute(z.View, new IdOptions(Tolerance: tol)).Rank, path.RankFor(tol));
    }

    [Fact]
    public void TsqrFactorGivesTheSamePathAsTheMatrix()
    {
        var z = InterpolativeDecompositionTests.SeparatedColumns<double>(300, 20, 1.2, seed: 9);
        var tsqr = new TsqrAccumulator<double>(20);
        for (int b = 0; b < 300; b += 70) tsqr.AddBatch(z.View.SliceRows(b, Math.Min(70, 300 - b)));
        var fromZ = InterpolativeDecompositionPath.Factor(z.View);
        var fromR = InterpolativeDecompositionPath.Factor(tsqr.R.View);
        Assert.Equal(fromZ.Pivots.ToArray(), fromR.Pivots.ToArray());
        for (int k = 0; k <= 20; k += 4)
        {
            Assert.Equal(fromZ.ResidualNorm(k), fromR.ResidualNorm(k), 1e-9);
            // The T from R is an ID of Z itself: its error measured on Z is the residual the path reports.
            Assert.Equal(fromR.ResidualNorm(k), fromR.At(k).Error(z.View), 1e-9);
        }
    }

    [Fact]
    public void TheGramMatrixGivesTheSamePathByPivotedCholesky()
    {
        var z = InterpolativeDecompositionTests.SeparatedColumns<double>(200, 24, 1.15, seed: 3);
        var gram = Blas.Multiply(z.Transpose(), z.View);
        var fromZ = InterpolativeDecompositionPath.Factor(z.View);
        var fromG = InterpolativeDecompositionPath.FromGram(gram.View);
        Assert.Equal(fromZ.Pivots.ToArray(), fromG.Pivots.ToArray());
        Assert.Equal(fromZ.MaxRank, fromG.MaxRank);
        Assert.Equal(fromZ.Norm, fromG.Norm, 1e-8 * fromZ.Norm);
        for (int k = 0; k <= 24; k += 3)
        {
            // The Gram squares the condition number: agreement to ~sqrt(ε) relative, not ε.
            Assert.Equal(fromZ.DiagonalRatio(k), fromG.DiagonalRatio(k), 1e-6);
            Assert.Equal(fromZ.ResidualNorm(k), fromG.ResidualNorm(k), 1e-6 * fromZ.Norm);
            var at = fromG.At(k);
            Assert.Equal(fromZ.At(k).Indices, at.Indices);
            Assert.Equal(fromG.ResidualNorm(k), at.Error(z.View), 1e-6 * fromZ.Norm);
        }
    }

    [Fact]
    public void RankDeficientMatrixCapsTheRankWhereTheIdIsExact()
    {
        var z = TestMatrices.OfRank<double>(60, 15, 6, seed: 2);
        var path = InterpolativeDecompositionPath.Factor(z.View);
        var id = path.At(15);
        Assert.True(id.Rank <= 15);
        Assert.True(id.Error(z.View) <= 1e-10 * path.Norm);
        Assert.True(path.ResidualNorm(6) <= 1e-10 * path.Norm, $"rank-6 residual {path.ResidualNorm(6)}");
        Assert.True(path.DiagonalRatio(6) <= 1e-10);
        Assert.Equal(6, path.RankFor(1e-8));
    }

    [Fact]
    public void GroupsOfOneColumnPivotLikeCpqr()
    {
        var z = InterpolativeDecompositionTests.SeparatedColumns<double>(50, 12, 1.3, seed: 4);
        var path = InterpolativeDecompositionPath.Factor(z.View);
        var groups = GroupInterpolativeDecompositionPath.Factor(z.View, 1);
        Assert.Equal(path.Pivots.ToArray(), groups.GroupPivots.ToArray());
        for (int k = 0; k <= 12; k++)
        {
            Assert.Equal(path.ResidualNorm(k), groups.ResidualNorm(k), 1e-9);
            Assert.Equal(path.DiagonalRatio(k), groups.DiagonalRatio(k), 1e-9);
        }
    }

    [Fact]
    public void GroupIdIsTheLeastSquaresCorrectionAndExactWhenAGroupIsRedundant()
    {
        // Four groups of 3 columns; group 2 = group 0 · X0 + group 3 · X3 exactly.
        const int n = 90, b = 3;
        var g = RandomMatrix.Gaussian<double>(n, 4 * b, seed: 11);
        var x0 = RandomMatrix.Gaussian<double>(b, b, seed: 12);
        var x3 = RandomMatrix.Gaussian<double>(b, b, seed: 13);
        var mix = Blas.Multiply(g.View.SliceCols(0, b), x0.View);
        Blas.Gemm(1.0, g.View.SliceCols(3 * b, b), x3.View, 1.0, mix.View);
        mix.View.CopyTo(g.View.SliceCols(2 * b, b));

        var path = GroupInterpolativeDecompositionPath.Factor(g.View, b);
        Assert.Equal(3, path.MaxRank);
        var three = path.At(3);
        Assert.Equal(3, three.Groups.Distinct().Count()); // any three groups span all four
        Assert.True(three.ResidualNorm <= 1e-9 * path.Norm, $"residual {three.ResidualNorm}");
        Assert.Equal(0, path.DiagonalRatio(3));

        var two = path.At(2);
        for (int j = 0; j < two.Columns.Length; j++)
            for (int i = 0; i < two.Columns.Length; i++) Assert.Equal(i == j ? 1.0 : 0.0, two.Interpolation[i, two.Columns[j]]);
        var approx = Blas.Multiply(InterpolativeDecompositions.GatherColumns(g.View, two.Columns).View, two.Interpolation.View);
        double direct = MatrixNorms.FrobeniusDistance(g.View, approx.View);
        Assert.Equal(direct, two.ResidualNorm, 1e-9);
        Assert.Equal(direct, path.ResidualNorm(2), 1e-9);
        // Least squares: any other correction of the dropped columns is worse.
        var other = two.Interpolation.Clone();
        var rest = Enumerable.Range(0, 4 * b).Except(two.Columns).First();
        other[0, rest] += 0.05;
        var worse = Blas.Multiply(InterpolativeDecompositions.GatherColumns(g.View, two.Columns).View, other.View);
        Assert.True(MatrixNorms.FrobeniusDistance(g.View, worse.View) > direct);
        Assert.Equal(new[] { path.GroupPivots[0] }, path.At(1).Groups);
    }

    [Fact]
    public void RejectsColumnsThatDoNotFormGroups() =>
        Assert.Throws<ArgumentException>(() => GroupInterpolativeDecompositionPath.Factor(new Matrix<double>(4, 7).View, 2));
}
