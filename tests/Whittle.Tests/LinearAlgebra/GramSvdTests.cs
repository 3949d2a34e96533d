using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.LinearAlgebra;

public class GramSvdTests
{
    /// <summary>σ from 1 down to <paramref name="smallest"/>, geometrically.</summary>
    private static double[] Geometric(int p, double smallest) => [.. Enumerable.Range(0, p).Select(j => Math.Pow(smallest, j / (double)(p - 1)))];

    [Theory]
    [InlineData(600, 300, 200)]
    [InlineData(300, 700, 250)]
    public void LeadingTriplets_MatchTheBidiagonalSvd(int m, int n, int rank)
    {
        int p = Math.Min(m, n);
        var a = TestMatrices.WithSingularValues<double>(m, n, Geometric(p, 1e-3), seed: m + n);
        var fast = GramSvd.Leading<double>(a, rank);
        var exact = Svd.Compute<double>(a);
        Assert.Equal((m, rank), (fast.U.Rows, fast.U.Cols));
        Assert.Equal((rank, n), (fast.Vt.Rows, fast.Vt.Cols));
        Assert.Equal(p, fast.S.Length);
        for (int j = 0; j < p; j++) Assert.Equal(exact.S[j], fast.S[j], 1e-9); // absolute error ~ε·σ_max²/σ_j ≤ 1e-13 here
        Assert.InRange(TestMatrices.OrthogonalityError<double>(fast.U), 0, 1e-9);
        Assert.InRange(TestMatrices.OrthogonalityError<double>(fast.Vt.Transpose().ToMatrix()), 0, 1e-9);
        // The rank-r truncations agree (the subspaces, whatever the vectors' signs).
        var l = fast.U.Clone();
        for (int j = 0; j < rank; j++) for (int i = 0; i < m; i++) l[i, j] *= fast.S[j];
        var truncated = Blas.Multiply<double>(l, fast.Vt);
        var le = exact.U.Slice(0, 0, m, rank).ToMatrix();
        for (int j = 0; j < rank; j++) for (int i = 0; i < m; i++) le[i, j] *= exact.S[j];
        var reference = Blas.Multiply<double>(le, exact.Vt.Slice(0, 0, rank, n));
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(truncated, reference), 0, 1e-9);
    }

    [Fact]
    public void KeptDirectionsBelowTheFloor_TakeTheBidiagonalSvd()
    {
        var a = TestMatrices.WithSingularValues<double>(400, 300, Geometric(300, 1e-9), seed: 5);
        var exact = Svd.Compute<double>(a);
        int rank = Array.FindIndex(exact.S, s => s < GramSvd.Floor * exact.S[0]) + 1; // the first kept σ under the floor
        var result = GramSvd.Leading<double>(a, rank);
        Assert.Equal(exact.S, result.S);
        Assert.Equal(300, result.U.Cols); // Svd's full thin factors
        // One direction fewer stays above the floor: the Gram route (its vectors only).
        Assert.Equal(rank - 1, GramSvd.Leading<double>(a, rank - 1).U.Cols);
    }

    [Fact]
    public void SmallOrSinglePrecisionMatrices_AreSvds()
    {
        var small = TestMatrices.WithSingularValues<double>(100, 80, Geometric(80, 1e-2), seed: 2);
        Assert.Equal(Svd.Compute<double>(small).S, GramSvd.Leading<double>(small, 10).S);
        Assert.Equal(Svd.SingularValues<double>(small), GramSvd.SingularValues<double>(small));
        var single = TestMatrices.WithSingularValues<float>(300, 300, Geometric(300, 1e-2), seed: 3);
        Assert.Equal(Svd.SingularValues<float>(single), GramSvd.SingularValues<float>(single));
    }

    [Fact]
    public void SingularValues_HaveTheGramRoutesAccuracy()
    {
        // σ down to 1e-6: absolute error about ε·σ_max²/σ, so 1e-9 holds for every value, and the large ones match to 1e-13.
        var a = TestMatrices.WithSingularValues<double>(500, 260, Geometric(260, 1e-6), seed: 9);
        var fast = GramSvd.SingularValues<double>(a);
        var exact = Svd.SingularValues<double>(a);
        for (int j = 0; j < exact.Length; j++) Assert.Equal(exact[j], fast[j], exact[j] > 1e-2 ? 1e-13 : 1e-9);
    }
}
