using System.Numerics;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.Decompositions;

public class CurTests
{
    // ---------------------------------------------------------------- helpers written for the tests

    /// <summary>The first <paramref name="count"/> column pivots of a column-pivoted QR of A (a simple index rule standing in for DEIM).</summary>
    private static int[] CpqrPivots<T>(MatrixView<T> a, int count) where T : unmanaged, IFloatingPointIeee754<T> =>
        PivotedQr.Compute(a, new PivotedQrOptions(MaxRank: count)).Pivots[..count].ToArray();

    private static Matrix<double> Columns(MatrixView<double> w, int[] cols) => Matrix<double>.Create(w.Rows, cols.Length, (i, t) => w[i, cols[t]]);

    private static Matrix<double> RowsOf(MatrixView<double> w, int[] rows) => Matrix<double>.Create(rows.Length, w.Cols, (t, j) => w[rows[t], j]);

    /// <summary>X (T × n) with Gaussian entries and column scales spanning 10^lo .. 10^hi (strongly anisotropic inputs).</summary>
    internal static Matrix<double> AnisotropicInputs(int tokens, int n, int seed, double lo = -3, double hi = 2)
    {
        var x = RandomMatrix.Gaussian<double>(tokens, n, seed);
        for (int j = 0; j < n; j++)
        {
            double scale = Math.Pow(10, lo + (hi - lo) * j / Math.Max(1, n - 1));
            for (int t = 0; t < tokens; t++) x[t, j] *= scale;
        }
        return x;
    }

    /// <summary>‖(W − C·U·R)·Xᵀ‖_F for a given core U.</summary>
    private static double OutputError(MatrixView<double> w, CurDecomposition<double> cur, MatrixView<double> u, MatrixView<double> x)
    {
        var approx = Blas.Multiply<double>(cur.C, Blas.Multiply(u, cur.R.View));
        var diff = Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j] - approx[i, j]);
        return MatrixNorms.Frobenius<double>(Blas.Multiply(diff.View, x.Transpose()));
    }

    // ---------------------------------------------------------------- exactness

    [Theory]
    [InlineData(60, 40, 8)]
    [InlineData(25, 70, 5)]
    [InlineData(33, 33, 1)]
    public void RecoversAnExactlyLowRankMatrixInDouble(int m, int n, int r)
    {
        var w = TestMatrices.OfRank<double>(m, n, r, seed: m + n);
        int[] cols = CpqrPivots<double>(w, r), rows = CpqrPivots(w.Transpose(), r);
        var cur = Cur.Compute<double>(w, rows, cols);
        Assert.InRange(cur.RelativeError(w), 0, 1e-12);
        Assert.Equal((m, r), (cur.C.Rows, cur.C.Cols));
        Assert.Equal((r, r), (cur.U.Rows, cur.U.Cols));
        Assert.Equal((r, n), (cur.R.Rows, cur.R.Cols));
        Assert.Equal((long)m * r + r * r + r * n, cur.ParameterCount);
        Assert.Equal(rows, cur.Rows);
        Assert.Equal(cols, cur.Cols);
        // C and R are real columns and rows of W.
        for (int i = 0; i < m; i++)
            for (int t = 0; t < r; t++) Assert.Equal(w[i, cols[t]], cur.C[i, t]);
        for (int t = 0; t < r; t++)
            for (int j = 0; j < n; j++) Assert.Equal(w[rows[t], j], cur.R[t, j]);
    }

    [Fact]
    public void RecoversAnExactlyLowRankMatrixInFloat()
    {
        var w = TestMatrices.OfRank<float>(50, 40, 6, seed: 3);
        int[] cols = CpqrPivots<float>(w, 6), rows = CpqrPivots(w.Transpose(), 6);
        var cur = Cur.Compute<float>(w, rows, cols);
        Assert.InRange(cur.RelativeError(w), 0, 1e-5);
    }

    [Fact]
    public void AllCoresAreExactOnAnExactlyLowRankMatrix()
    {
        // With W = C·U·R exactly, every core that minimizes a weighted error recovers W.
        var w = TestMatrices.OfRank<double>(40, 30, 6, seed: 11);
        int[] cols = CpqrPivots<double>(w, 6), rows = CpqrPivots(w.Transpose(), 6);
        var x = AnisotropicInputs(80, 30, seed: 12);
        var g = Blas.Gram<double>(x);
        var rms = Enumerable.Range(0, 30).Select(j => 0.5 + j % 7).ToArray();
        Assert.InRange(Cur.Compute<double>(w, rows, cols, CurCore.Activation, g, ridge: 0).RelativeError(w), 0, 1e-9);
        Assert.InRange(Cur.Compute<double>(w, rows, cols, CurCore.Diagonal, activationRms: rms).RelativeError(w), 0, 1e-12);
    }

    [Fact]
    public void PseudoInverseCoreEqualsAStraightforwardComputation()
    {
        // A generic (full-rank) W and arbitrary index sets of different sizes: U = C⁺·W·R⁺ from SVDs written out here.
        var w = RandomMatrix.Gaussian<double>(30, 24, seed: 5);
        int[] rows = [3, 17, 0, 29, 11, 8, 21], cols = [23, 1, 5, 12, 7];
        var cur = Cur.Compute<double>(w, rows, cols);
        var expected = TestMatrices.ReferenceProduct<double>(TestMatrices.ReferenceProduct<double>(TestMatrices.ReferencePseudoInverse(Columns(w, cols)), w), TestMatrices.ReferencePseudoInverse(RowsOf(w, rows)));
        Assert.Equal((5, 7), (cur.U.Rows, cur.U.Cols));
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(cur.U, expected) / MatrixNorms.Frobenius<double>(expected), 0, 1e-10);
    }

    [Fact]
    public void DoesNotModifyItsInputs()
    {
        var w = RandomMatrix.Gaussian<double>(12, 10, seed: 1);
        var g = Blas.Gram<double>(RandomMatrix.Gaussian<double>(20, 10, seed: 2));
        var wCopy = w.Clone();
        var gCopy = g.Clone();
        int[] rows = [1, 4, 7], cols = [0, 9, 3];
        var cur = Cur.Compute<double>(w, rows, cols, CurCore.Activation, g);
        Assert.Equal(wCopy.AsSpan().ToArray(), w.AsSpan().ToArray());
        Assert.Equal(gCopy.AsSpan().ToArray(), g.AsSpan().ToArray());
        Assert.Equal([1, 4, 7], rows);
        rows[0] = 2;
        Assert.Equal(1, cur.Rows[0]); // the record holds its own copy
    }

    // ---------------------------------------------------------------- activation-aware core

    [Fact]
    public void ActivationCoreMinimizesTheOutputError()
    {
        var w = RandomMatrix.Gaussian<double>(30, 20, seed: 21);
        var x = AnisotropicInputs(100, 20, seed: 22);
        var g = Blas.Gram<double>(x);
        int[] rows = CpqrPivots(w.Transpose(), 6), cols = CpqrPivots<double>(w, 6);

        var pinv = Cur.Compute<double>(w, rows, cols);
        var exact = Cur.Compute<double>(w, rows, cols, CurCore.Activation, g, ridge: 0);
        var ridged = Cur.Compute<double>(w, rows, cols, CurCore.Activation, g);
        double ePinv = OutputError(w, pinv, pinv.U, x);
        double eExact = OutputError(w, exact, exact.U, x);
        double eRidged = OutputError(w, ridged, ridged.U, x);

        Assert.True(eExact < 0.9 * ePinv, $"activation core {eExact} should be well below the pseudo-inverse core's {ePinv}");
        Assert.True(eRidged <= ePinv, $"ridged activation core {eRidged} should not exceed {ePinv}");
        Assert.InRange(eRidged / eExact, 1, 1 + 1e-4);

        // Least-squares optimum: the normal equations Cᵀ·(W − C·U·R)·G·Rᵀ = 0 hold ...
        var residual = Matrix<double>.Create(30, 20, (i, j) => w[i, j] - exact.Reconstruct()[i, j]);
        var normal = Blas.Multiply<double>(Blas.Multiply<double>(exact.C.Transpose(), Blas.Multiply<double>(residual, g)), exact.R.Transpose());
        double scale = MatrixNorms.Frobenius<double>(exact.C) * MatrixNorms.Frobenius<double>(w) * MatrixNorms.Frobenius<double>(g) * MatrixNorms.Frobenius<double>(exact.R);
        Assert.InRange(MatrixNorms.Frobenius<double>(normal) / scale, 0, 1e-12);

        // ... and perturbing U in any direction only increases the output error.
        for (int s = 0; s < 8; s++)
        {
            var z = RandomMatrix.Gaussian<double>(6, 6, seed: 100 + s);
            foreach (double eps in new[] { 1e-3, 1e-1 })
            {
                var u = Matrix<double>.Create(6, 6, (i, j) => exact.U[i, j] + eps * MatrixNorms.Frobenius<double>(exact.U) * z[i, j]);
                Assert.True(OutputError(w, exact, u, x) > eExact);
            }
        }
    }

    [Fact]
    public void ActivationCoreEqualsThePseudoInverseCoreForWhiteInputs()
    {
        // G = I: the output error is the Frobenius error, so both cores coincide.
        var w = RandomMatrix.Gaussian<double>(15, 12, seed: 31);
        int[] rows = [0, 5, 9, 14], cols = [2, 3, 11];
        var a = Cur.Compute<double>(w, rows, cols).U;
        var b = Cur.Compute<double>(w, rows, cols, CurCore.Activation, Matrix<double>.Identity(12), ridge: 0).U;
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(a, b) / MatrixNorms.Frobenius<double>(a), 0, 1e-12);
    }

    [Fact]
    public void ActivationCoreHandlesASingularGramMatrix()
    {
        // Fewer tokens than features and ridge 0: R·G·Rᵀ is singular, the pseudo-inverse path is taken.
        var w = RandomMatrix.Gaussian<double>(20, 16, seed: 41);
        var x = RandomMatrix.Gaussian<double>(3, 16, seed: 42);
        var g = Blas.Gram<double>(x);
        int[] rows = [0, 1, 2, 3, 4, 5], cols = [0, 2, 4, 6, 8, 10];
        var cur = Cur.Compute<double>(w, rows, cols, CurCore.Activation, g, ridge: 0);
        Assert.All(cur.U.AsSpan().ToArray(), v => Assert.True(double.IsFinite(v)));
        var pinv = Cur.Compute<double>(w, rows, cols);
        Assert.True(OutputError(w, cur, cur.U, x) <= OutputError(w, pinv, pinv.U, x) * (1 + 1e-12));
        // The null directions of G are dropped, not amplified: the core stays of the pseudo-inverse core's size.
        Assert.True(MatrixNorms.Frobenius<double>(cur.U) < 10 * MatrixNorms.Frobenius<double>(pinv.U),
            $"‖U‖ = {MatrixNorms.Frobenius<double>(cur.U)} vs pseudo-inverse core {MatrixNorms.Frobenius<double>(pinv.U)}");
    }

    [Fact]
    public void ActivationCoreWorksInFloat()
    {
        var wd = TestMatrices.OfRank<double>(30, 20, 5, seed: 51);
        var w = Matrix<float>.Create(30, 20, (i, j) => (float)wd[i, j]);
        var x = RandomMatrix.Gaussian<float>(60, 20, seed: 52);
        var g = Blas.Gram<float>(x);
        int[] cols = CpqrPivots<float>(w, 5), rows = CpqrPivots(w.Transpose(), 5);
        Assert.InRange(Cur.Compute<float>(w, rows, cols, CurCore.Activation, g).RelativeError(w), 0, 1e-4);
    }

    // ---------------------------------------------------------------- diagonal core

    [Fact]
    public void DiagonalCoreOnAHandCheckedCase()
    {
        // W = [1 2; 3 4], I = {0}, J = {0}: C = [1; 3], R = [1 2], C⁺ = [1 3]/10.
        var w = new Matrix<double>(2, 2, [1, 2, 3, 4]);
        // a = (1, 2): W·D = [1 4; 3 8], R·D = [1 4], (R·D)⁺ = [1; 4]/17, C⁺·W·D = [1 2.8] → U = (1 + 11.2)/17.
        var cur = Cur.Compute<double>(w, [0], [0], CurCore.Diagonal, activationRms: new double[] { 1, 2 });
        Assert.Equal(12.2 / 17, cur.U[0, 0], 1e-14);
        // The pseudo-inverse core differs: C⁺·W = [1 1.4], R⁺ = [1; 2]/5 → U = 3.8/5.
        Assert.Equal(3.8 / 5, Cur.Compute<double>(w, [0], [0]).U[0, 0], 1e-14);
        // A dead feature (a = (1, 0)) is ignored, not divided by: W·D = [1 0; 3 0], (R·D)⁺ = [1; 0] → U = 1.
        Assert.Equal(1.0, Cur.Compute<double>(w, [0], [0], CurCore.Diagonal, activationRms: new double[] { 1, 0 }).U[0, 0], 1e-14);
    }

    [Fact]
    public void DiagonalCoreWithUniformRmsEqualsThePseudoInverseCore()
    {
        var w = RandomMatrix.Gaussian<double>(18, 14, seed: 61);
        int[] rows = [1, 4, 9, 16], cols = [0, 7, 13];
        var rms = Enumerable.Repeat(3.5, 14).ToArray();
        var a = Cur.Compute<double>(w, rows, cols).U;
        var b = Cur.Compute<double>(w, rows, cols, CurCore.Diagonal, activationRms: rms).U;
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(a, b) / MatrixNorms.Frobenius<double>(a), 0, 1e-12);
    }

    // ---------------------------------------------------------------- argument checks

    [Fact]
    public void MissingInputsOfTheChosenCoreNameTheParameter()
    {
        var w = RandomMatrix.Gaussian<double>(6, 5, seed: 1);
        var e1 = Assert.ThrowsAny<ArgumentException>(() => Cur.Compute<double>(w, [0, 1], [0, 1], CurCore.Activation));
        Assert.Equal("gram", e1.ParamName);
        var e2 = Assert.ThrowsAny<ArgumentException>(() => Cur.Compute<double>(w, [0, 1], [0, 1], CurCore.Diagonal));
        Assert.Equal("activationRms", e2.ParamName);
        var e3 = Assert.ThrowsAny<ArgumentException>(() => Cur.Compute<double>(w, [0, 1], [0, 1], CurCore.Activation, Matrix<double>.Identity(4)));
        Assert.Equal("gram", e3.ParamName);
        var e4 = Assert.ThrowsAny<ArgumentException>(() => Cur.Compute<double>(w, [0, 1], [0, 1], CurCore.Diagonal, activationRms: new double[] { 1, 1, -1, 1, 1 }));
        Assert.Equal("activationRms", e4.ParamName);
    }

    [Fact]
    public void RejectsBadIndices()
    {
        var w = RandomMatrix.Gaussian<double>(6, 5, seed: 1);
        Assert.Equal("rows", Assert.ThrowsAny<ArgumentException>(() => Cur.Compute<double>(w, [0, 6], [0])).ParamName);
        Assert.Equal("cols", Assert.ThrowsAny<ArgumentException>(() => Cur.Compute<double>(w, [0], [-1])).ParamName);
        Assert.Equal("rows", Assert.ThrowsAny<ArgumentException>(() => Cur.Compute<double>(w, [2, 2], [0])).ParamName);
        Assert.Equal("cols", Assert.ThrowsAny<ArgumentException>(() => Cur.Compute<double>(w, [0], [])).ParamName);
    }

    // ---------------------------------------------------------------- rank rule

    private static bool Saves(long m, long n, long r) => m * r + r * r + r * n < m * n;

    [Theory]
    [InlineData(4096, 11008)]
    [InlineData(11008, 4096)]
    [InlineData(4096, 4096)]
    [InlineData(64, 64)]
    [InlineData(1, 1)]
    [InlineData(1, 1000)]
    [InlineData(2, 3)]   // exact equality at r = 1: 2 + 1 + 3 = 6 = 2·3
    [InlineData(3, 10)]  // exact equality at r = 2: 6 + 4 + 20 = 30
    [InlineData(10, 3)]
    [InlineData(6, 20)]  // exact equality at r = 4: 24 + 16 + 80 = 120
    [InlineData(0, 5)]
    public void BreakEvenRankIsTheLargestSavingRank(int m, int n)
    {
        int r = Cur.BreakEvenRank(m, n);
        Assert.True(r == 0 || Saves(m, n, r), $"r = {r} must save parameters");
        Assert.False(Saves(m, n, r + 1), $"r + 1 = {r + 1} must not save parameters");
        Assert.InRange(r, 0, Math.Max(0, Math.Min(m, n) - 1));
    }

    [Fact]
    public void BreakEvenRankMatchesBruteForceOnSmallShapes()
    {
        for (int m = 0; m <= 70; m++)
            for (int n = 0; n <= 70; n++)
            {
                int expected = 0;
                while (Saves(m, n, expected + 1)) expected++;
                Assert.Equal(expected, Cur.BreakEvenRank(m, n));
            }
    }

    [Fact]
    public void BreakEvenRankAtExactEqualityIsOneBelowTheFormula()
    {
        Assert.Equal(0, Cur.BreakEvenRank(2, 3));   // formula: (7 − 5)/2 = 1
        Assert.Equal(1, Cur.BreakEvenRank(3, 10));  // formula: (17 − 13)/2 = 2
        Assert.Equal(3, Cur.BreakEvenRank(6, 20));  // formula: (34 − 26)/2 = 4
        Assert.Equal(1, Cur.BreakEvenRank(4, 5));   // no equality: 4 + 1 + 5 = 10 < 20, 8 + 4 + 10 = 22 ≥ 20
    }

    [Fact]
    public void RankIsCappedByMaxRank()
    {
        Assert.Equal(256, Cur.Rank(4096, 11008, 256));
        Assert.Equal(Cur.BreakEvenRank(64, 64), Cur.Rank(64, 64, 256));
        Assert.Equal(26, Cur.BreakEvenRank(64, 64)); // 64·26·2 + 676 = 4004 < 4096; 27: 3456 + 729 = 4185
        Assert.Equal(0, Cur.Rank(1, 1, 256));
        Assert.Equal(3, Cur.Rank(64, 64, 3));
    }

    // ---------------------------------------------------------------- WANDA scores

    [Fact]
    public void WandaScoresAreMagnitudeTimesRms()
    {
        var w = new Matrix<double>(2, 3, [1, -2, 3, -4, 0, 0.5]);
        var s = Cur.WandaScores<double>(w, new double[] { 2, 0.5, 0 });
        Assert.Equal(new double[] { 2, 1, 0, 8, 0, 0 }, s.AsSpan().ToArray());
        Assert.Equal(new double[] { 1, -2, 3, -4, 0, 0.5 }, w.AsSpan().ToArray());
        var f = Cur.WandaScores<float>(new Matrix<float>(1, 2, [-3f, 4f]), new float[] { 0.5f, 2f });
        Assert.Equal(new float[] { 1.5f, 8f }, f.AsSpan().ToArray());
        Assert.Equal("activationRms", Assert.ThrowsAny<ArgumentException>(() => Cur.WandaScores<double>(w, new double[] { 1, 2 })).ParamName);
    }
}
