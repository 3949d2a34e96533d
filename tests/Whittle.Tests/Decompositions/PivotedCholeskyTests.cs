using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.Decompositions;

public class PivotedCholeskyTests
{
    [Fact]
    public void ReproducesThePermutedGramMatrixAndCpqrFactor()
    {
        var z = InterpolativeDecompositionTests.SeparatedColumns<double>(120, 25, 1.3, seed: 3);
        var g = Blas.Gram<double>(z);
        var chol = PivotedCholesky.Compute<double>(g);
        Assert.Equal(25, chol.Rank);
        var pi = chol.Pivots.ToArray();
        var rtr = Blas.Multiply<double>(chol.R.Transpose(), chol.R);
        for (int i = 0; i < 25; i++)
            for (int j = 0; j < 25; j++)
                Assert.Equal(g[pi[i], pi[j]], rtr[i, j], 1e-10 * g[pi[0], pi[0]]);
        for (int i = 0; i < 25; i++)
        {
            Assert.True(chol.R[i, i] > 0);
            for (int j = 0; j < i; j++) Assert.Equal(0.0, chol.R[i, j]);
        }

        // Same pivots as CPQR of Z, and the same R up to row signs.
        var qr = PivotedQr.Compute<double>(z);
        Assert.Equal(qr.Pivots.ToArray(), pi);
        for (int i = 0; i < 25; i++)
            for (int j = i; j < 25; j++)
                Assert.Equal(Math.Abs(qr.R[i, j]), Math.Abs(chol.R[i, j]), 1e-8 * Math.Abs(qr.R[0, 0]));
        Assert.Equal(MatrixNorms.Frobenius<double>(z) * MatrixNorms.Frobenius<double>(z), chol.Trace, 1e-9 * chol.Trace);
    }

    /// <summary>Widths over the panel size: the trailing updates between panels give the factor and pivots of the one-step-at-a-time definition.</summary>
    [Theory]
    [InlineData(300, 300)]
    [InlineData(260, 150)]
    public void PanelsOverManyStepsReproduceTheGramMatrixAndCpqrPivots(int h, int rank)
    {
        var z = rank == h ? InterpolativeDecompositionTests.SeparatedColumns<double>(2 * h, h, 1.02, seed: 11) : TestMatrices.OfRank<double>(2 * h, h, rank, seed: 11);
        var g = Blas.Gram<double>(z);
        var chol = PivotedCholesky.Compute<double>(g);
        Assert.Equal(rank, chol.Rank);
        var pi = chol.Pivots.ToArray();
        var rtr = Blas.Multiply<double>(chol.R.Transpose(), chol.R);
        double scale = g[pi[0], pi[0]];
        for (int i = 0; i < rank; i++)
            for (int j = 0; j < h; j++)
                Assert.Equal(g[pi[i], pi[j]], rtr[i, j], 1e-9 * scale);
        for (int i = 0; i < rank; i++)
            for (int j = 0; j < i; j++) Assert.Equal(0.0, chol.R[i, j]);
        var qr = PivotedQr.Compute<double>(z);
        Assert.Equal(qr.Pivots[..Math.Min(rank, 100)].ToArray(), pi[..Math.Min(rank, 100)]);
    }

    [Fact]
    public void StopsAtTheRankOfASemidefiniteMatrix()
    {
        var z = TestMatrices.OfRank<double>(50, 20, 7, seed: 5);
        var chol = PivotedCholesky.Compute<double>(Blas.Gram<double>(z));
        Assert.Equal(7, chol.Rank);
        Assert.Equal(13, chol.TrailingDiagonal.Length);
        var truncated = PivotedCholesky.Compute<double>(Blas.Gram<double>(z), new PivotedCholeskyOptions(MaxRank: 3));
        Assert.Equal(3, truncated.Rank);
        Assert.Equal(chol.Pivots[..3].ToArray(), truncated.Pivots[..3].ToArray());
        Assert.Throws<ArgumentException>(() => PivotedCholesky.Compute<double>(new Matrix<double>(3, 4)));
        Assert.Throws<ArgumentOutOfRangeException>(() => PivotedCholesky.Compute<double>(new Matrix<double>(3, 3), new PivotedCholeskyOptions(MaxRank: -1)));
    }
}
