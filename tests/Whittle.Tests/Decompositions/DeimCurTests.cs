using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.Decompositions;

public class DeimCurTests
{
    [Theory]
    [InlineData(40, 30, 6, DeimVariant.Reference)]
    [InlineData(25, 60, 4, DeimVariant.Textbook)]
    [InlineData(50, 50, 8, DeimVariant.QDeim)]
    public void ExactlyLowRankMatrixIsReproduced(int m, int n, int r, DeimVariant variant)
    {
        var w = TestMatrices.OfRank<double>(m, n, r, seed: 3);
        var cur = DeimCur.Compute<double>(w, new DeimCurOptions(r, variant));

        Assert.Equal(r, cur.Rows.Length);
        Assert.Equal(r, cur.Cols.Length);
        Assert.Equal(r, cur.Rows.Distinct().Count());
        Assert.Equal(r, cur.Cols.Distinct().Count());
        Assert.True(cur.RelativeError(w) < 1e-10, $"relative error {cur.RelativeError(w)}");
    }

    [Fact]
    public void IndicesAreDistinctAtFullRankAndInFloat()
    {
        var w = Matrix<float>.Create(12, 9, (i, j) => MathF.Sin(1.3f * i + 0.7f * j * j));
        var cur = DeimCur.Compute<float>(w, new DeimCurOptions(9, DeimVariant.Reference, Seed: 5));
        Assert.Equal(Enumerable.Range(0, 9), cur.Cols.Order());
        Assert.Equal(9, cur.Rows.Distinct().Count());
        Assert.All(cur.Rows, i => Assert.InRange(i, 0, 11));
    }

    [Theory]
    [InlineData(DeimVariant.Reference)]
    [InlineData(DeimVariant.Textbook)]
    [InlineData(DeimVariant.QDeim)]
    public void AgreesWithAnIndependentComputation(DeimVariant variant)
    {
        // r + oversampling ≥ min(m, n): the truncated SVD is the dense one, so the same singular vectors are expected.
        int m = 30, n = 20, r = 12;
        var w = RandomMatrix.Gaussian<double>(m, n, 11);
        var a = Enumerable.Range(0, n).Select(j => 0.1 + j % 7).ToArray();

        // Independent: S = |W|·a, dense SVD, DEIM on the top-r vectors, U = C⁺·W·R⁺ written out.
        var s = Matrix<double>.Create(m, n, (i, j) => Math.Abs(w[i, j]) * a[j]);
        var svd = Svd.Compute<double>(s);
        int[] rows = Deim.SelectRows(svd.U.Slice(0, 0, m, r), variant);
        int[] cols = Deim.SelectRows(svd.Vt.Slice(0, 0, r, n).Transpose(), variant);
        var c = Matrix<double>.Create(m, r, (i, t) => w[i, cols[t]]);
        var rr = Matrix<double>.Create(r, n, (t, j) => w[rows[t], j]);
        var core = TestMatrices.ReferenceProduct<double>(TestMatrices.ReferenceProduct<double>(TestMatrices.ReferencePseudoInverse(c), w), TestMatrices.ReferencePseudoInverse(rr));

        var cur = DeimCur.Compute<double>(w, new DeimCurOptions(r, variant), activationRms: a);

        Assert.Equal(rows, cur.Rows);
        Assert.Equal(cols, cur.Cols);
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++)
                Assert.True(Math.Abs(core[i, j] - cur.U[i, j]) <= 1e-10 * (1 + Math.Abs(core[i, j])), $"U[{i},{j}]: {cur.U[i, j]} vs {core[i, j]}");
    }

    [Fact]
    public void WandaWeightingAvoidsAFeatureWithTinyActivations()
    {
        // Column 3 of W dominates by magnitude, but its input feature barely ever fires.
        int m = 20, n = 10, r = 3;
        var w = RandomMatrix.Gaussian<double>(m, n, 7);
        for (int i = 0; i < m; i++) w[i, 3] *= 100;
        var a = Enumerable.Repeat(1.0, n).ToArray();
        a[3] = 1e-4;

        var plain = DeimCur.Compute<double>(w, new DeimCurOptions(r));
        var weighted = DeimCur.Compute<double>(w, new DeimCurOptions(r), activationRms: a);
        Assert.Contains(3, plain.Cols);
        Assert.DoesNotContain(3, weighted.Cols);

        // The Gram matrix of inputs with that RMS (G_jj = T·a_j²) gives the same selection: only a's direction matters.
        var gram = Matrix<double>.Create(n, n, (i, j) => i == j ? 128 * a[j] * a[j] : 0);
        var fromGram = DeimCur.Compute<double>(w, new DeimCurOptions(r), gram);
        Assert.Equal(weighted.Cols, fromGram.Cols);
        Assert.Equal(weighted.Rows, fromGram.Rows);
    }

    [Fact]
    public void CoresThatNeedCalibrationDataUseIt()
    {
        int m = 24, n = 16, r = 5;
        var w = RandomMatrix.Gaussian<double>(m, n, 2);
        var x = CurTests.AnisotropicInputs(64, n, 4);
        var gram = Blas.Gram<double>(x);
        var act = DeimCur.Compute<double>(w, new DeimCurOptions(r, Core: CurCore.Activation), gram);
        var expected = Cur.Compute<double>(w, act.Rows, act.Cols, CurCore.Activation, gram);
        Assert.Equal(expected.U.AsSpan().ToArray(), act.U.AsSpan().ToArray());

        var diag = DeimCur.Compute<double>(w, new DeimCurOptions(r, Core: CurCore.Diagonal), gram);
        Assert.Equal(act.Rows, diag.Rows);
        Assert.Throws<ArgumentException>(() => DeimCur.Compute<double>(w, new DeimCurOptions(r, Core: CurCore.Activation)));
        Assert.Throws<ArgumentException>(() => DeimCur.Compute<double>(w, new DeimCurOptions(r, Core: CurCore.Diagonal)));
    }

    [Fact]
    public void InvalidArgumentsAreRejected()
    {
        var w = RandomMatrix.Gaussian<double>(6, 4, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => DeimCur.Compute<double>(w, new DeimCurOptions(0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeimCur.Compute<double>(w, new DeimCurOptions(5)));
        Assert.ThrowsAny<ArgumentException>(() => DeimCur.Compute<double>(w, new DeimCurOptions(2), new Matrix<double>(3, 3)));
        w[1, 1] = double.NaN;
        Assert.ThrowsAny<ArgumentException>(() => DeimCur.Compute<double>(w, new DeimCurOptions(2)));
    }
}
