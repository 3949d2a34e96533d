using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.LinearAlgebra;

public class PivotedQrTests
{
    public static TheoryData<int, int> Shapes()
    {
        var data = new TheoryData<int, int>();
        foreach (var (m, n) in new[]
                 {
                     (0, 0), (0, 4), (4, 0), (1, 1), (2, 2), (3, 3), (31, 31), (33, 33), (65, 65), (130, 130),
                     (1, 40), (40, 1), (200, 33), (33, 200), (150, 65), (65, 150), (100, 64),
                 })
            data.Add(m, n);
        return data;
    }

    // ---------------------------------------------------------------- reference

    /// <summary>
    /// Textbook Businger–Golub (GVL Alg. 5.4.1) in double, unblocked, with every remaining column norm
    /// recomputed from scratch at every step (no downdating), and the same stopping rule.
    /// </summary>
    private static (int[] Pivots, Matrix<double> R, int Rank) Reference(MatrixView<double> a, int? maxRank = null, double tol = 0)
    {
        int m = a.Rows, n = a.Cols;
        var w = a.ToMatrix();
        var piv = Enumerable.Range(0, n).ToArray();
        int kMax = Math.Min(Math.Min(m, n), maxRank ?? int.MaxValue);
        double r00 = 0;
        int k = 0;
        for (; k < kMax; k++)
        {
            int p = k;
            double best = -1;
            for (int j = k; j < n; j++)
            {
                double s = 0;
                for (int i = k; i < m; i++) s += w[i, j] * w[i, j];
                double nj = Math.Sqrt(s);
                if (nj > best) { best = nj; p = j; }
            }
            for (int i = 0; i < m; i++) (w[i, k], w[i, p]) = (w[i, p], w[i, k]);
            (piv[k], piv[p]) = (piv[p], piv[k]);

            double alpha = w[k, k], xs = 0;
            for (int i = k + 1; i < m; i++) xs += w[i, k] * w[i, k];
            double norm = Math.Sqrt(alpha * alpha + xs);
            double beta = xs == 0 ? alpha : -Math.CopySign(norm, alpha);
            if (k == 0) r00 = Math.Abs(beta);
            if (beta == 0 || Math.Abs(beta) <= tol * r00) break;
            if (xs == 0) continue;
            var v = new double[m];
            v[k] = 1;
            for (int i = k + 1; i < m; i++) v[i] = w[i, k] / (alpha - beta);
            double tau = (beta - alpha) / beta;
            w[k, k] = beta;
            for (int i = k + 1; i < m; i++) w[i, k] = 0;
            for (int j = k + 1; j < n; j++)
            {
                double s = 0;
                for (int i = k; i < m; i++) s += v[i] * w[i, j];
                for (int i = k; i < m; i++) w[i, j] -= tau * s * v[i];
            }
        }
        var r = Matrix<double>.Create(k, n, (i, j) => j >= i ? w[i, j] : 0);
        return (piv, r, k);
    }

    private static Matrix<double> Permuted<T>(MatrixView<T> a, ReadOnlySpan<int> pivots) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var p = pivots.ToArray();
        return Matrix<double>.Create(a.Rows, a.Cols, (i, j) => double.CreateTruncating(a[i, p[j]]));
    }

    /// <summary>‖R₁ − R₂‖_F with the columns of each matched by the original column they came from
    /// (after a truncated factorization, the unchosen columns may be in a different order).</summary>
    private static double DistanceByColumn(MatrixView<double> r1, ReadOnlySpan<int> piv1, MatrixView<double> r2, ReadOnlySpan<int> piv2)
    {
        Assert.Equal(r1.Rows, r2.Rows);
        var where2 = new int[piv2.Length];
        for (int j = 0; j < piv2.Length; j++) where2[piv2[j]] = j;
        double s = 0;
        for (int j = 0; j < piv1.Length; j++)
            for (int i = 0; i < r1.Rows; i++)
            {
                double d = r1[i, j] - r2[i, where2[piv1[j]]];
                s += d * d;
            }
        return Math.Sqrt(s);
    }

    private static void AssertPermutation(ReadOnlySpan<int> pivots, int n)
    {
        Assert.Equal(n, pivots.Length);
        var sorted = pivots.ToArray();
        Array.Sort(sorted);
        Assert.Equal(Enumerable.Range(0, n), sorted);
    }

    // ---------------------------------------------------------------- blocked = unblocked

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BlockedMatchesTheUnblockedReference(int m, int n)
    {
        var a = RandomMatrix.Gaussian<double>(m, n, seed: 7 * m + n);
        var expected = Reference(a);
        var got = PivotedQr.Compute<double>(a);
        Assert.Equal(expected.Rank, got.Rank);
        Assert.Equal(expected.Pivots, got.Pivots.ToArray());
        double tol = 1e-12 * Math.Max(1, MatrixNorms.Frobenius<double>(a));
        Assert.InRange(MatrixNorms.FrobeniusDistance<double>(got.R, expected.R), 0, tol);
    }

    public static TheoryData<string> SpecialMatrices() => new() { "zero", "duplicate", "dead", "dead-and-duplicate", "rank5" };

    private static Matrix<double> Special(string kind)
    {
        const int m = 70, n = 45;
        var a = RandomMatrix.Gaussian<double>(m, n, seed: 99);
        switch (kind)
        {
            case "zero":
                return new Matrix<double>(m, n);
            case "duplicate":
                for (int i = 0; i < m; i++) a[i, 40] = a[i, 3];
                return a;
            case "dead":
                foreach (int j in new[] { 0, 17, 33, 34, 44 })
                    for (int i = 0; i < m; i++) a[i, j] = 0;
                return a;
            case "dead-and-duplicate":
                for (int i = 0; i < m; i++) { a[i, 5] = 0; a[i, 6] = 2 * a[i, 1]; a[i, 38] = a[i, 1]; }
                return a;
            default:
                return TestMatrices.OfRank<double>(m, n, 5, seed: 4);
        }
    }

    [Theory]
    [MemberData(nameof(SpecialMatrices))]
    public void BlockedMatchesTheReferenceOnDegenerateMatrices(string kind)
    {
        var a = Special(kind);
        double tol = 1e-10;
        var expected = Reference(a, tol: tol);
        var got = PivotedQr.Compute<double>(a, new PivotedQrOptions(RelativeTolerance: tol));
        Assert.Equal(expected.Rank, got.Rank);
        Assert.Equal(expected.Pivots.Take(got.Rank), got.Pivots[..got.Rank].ToArray());
        AssertPermutation(got.Pivots, a.Cols);
        Assert.InRange(DistanceByColumn(got.R, got.Pivots, expected.R, expected.Pivots), 0, 1e-11 * Math.Max(1, MatrixNorms.Frobenius<double>(a)));
        int expectedRank = kind switch { "zero" => 0, "duplicate" => 44, "dead" => 40, "dead-and-duplicate" => 42, _ => 5 };
        Assert.Equal(expectedRank, got.Rank);
    }

    [Fact]
    public void ZeroMatrixHasRankZeroEvenWithoutTolerance()
    {
        var got = PivotedQr.Compute<float>(new Matrix<float>(6, 4));
        Assert.Equal(0, got.Rank);
        Assert.Equal(0, got.R.Rows);
        Assert.Equal(4, got.R.Cols);
        Assert.Equal(6, got.Q().Rows);
        Assert.Equal(0, got.Q().Cols);
        Assert.Equal(new[] { 0, 1, 2, 3 }, got.Pivots.ToArray());
    }

    [Fact]
    public void DeadColumnsAreNeverChosen()
    {
        var a = Special("dead");
        var got = PivotedQr.Compute<double>(a);
        Assert.Equal(40, got.Rank); // stops at the first exactly-zero pivot column
        var dead = new[] { 0, 17, 33, 34, 44 };
        Assert.DoesNotContain(got.Pivots[..got.Rank].ToArray(), dead.Contains);
    }

    // ---------------------------------------------------------------- factorization properties

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FactorsReproduceThePermutedMatrixDouble(int m, int n) => CheckFactorization<double>(m, n);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FactorsReproduceThePermutedMatrixSingle(int m, int n) => CheckFactorization<float>(m, n);

    private static void CheckFactorization<T>(int m, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = RandomMatrix.Gaussian<T>(m, n, seed: 3 * m + 11 * n);
        var copy = a.Clone();
        var f = PivotedQr.Compute<T>(a);
        double eps = TestMatrices.Epsilon<T>();
        int p = Math.Min(m, n);

        Assert.Equal(copy.AsSpan().ToArray(), a.AsSpan().ToArray());
        Assert.Equal(p, f.Rank);
        AssertPermutation(f.Pivots, n);
        Assert.Equal(p, f.R.Rows);
        for (int i = 0; i < p; i++)
            for (int j = 0; j < i; j++) Assert.Equal(T.Zero, f.R[i, j]);
        for (int i = 0; i + 1 < p; i++)
            Assert.True(double.CreateTruncating(f.DiagonalMagnitudes[i + 1]) <= double.CreateTruncating(f.DiagonalMagnitudes[i]) * (1 + 100 * eps), $"|r_kk| increases at {i}");
        for (int i = 0; i < p; i++) Assert.Equal(T.Abs(f.R[i, i]), f.DiagonalMagnitudes[i]);

        var q = f.Q();
        Assert.Equal(m, q.Rows);
        Assert.Equal(p, q.Cols);
        Assert.InRange(TestMatrices.OrthogonalityError<T>(q), 0, 10 * Math.Max(1, m) * eps);
        var residual = MatrixNorms.FrobeniusDistance<double>(TestMatrices.ReferenceProduct<T>(q, f.R), Permuted<T>(a, f.Pivots));
        Assert.InRange(residual, 0, 10 * Math.Max(m, n) * eps * Math.Max(1e-300, MatrixNorms.Frobenius<T>(a)));
    }

    // ---------------------------------------------------------------- rank revealing

    [Theory]
    [InlineData(120, 80, 13)]
    [InlineData(80, 120, 40)]
    [InlineData(100, 100, 33)]
    public void ExactRankIsRevealed(int m, int n, int r)
    {
        RankRevealed<double>(m, n, r, 1e-10);
        RankRevealed<float>(m, n, r, 1e-4);
    }

    private static void RankRevealed<T>(int m, int n, int r, double tol) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = TestMatrices.OfRank<T>(m, n, r, seed: r);
        double eps = TestMatrices.Epsilon<T>();
        var full = PivotedQr.Compute<T>(a);
        double r00 = double.CreateTruncating(full.DiagonalMagnitudes[0]);
        Assert.True(double.CreateTruncating(full.DiagonalMagnitudes[r - 1]) / r00 > 1e3 * tol, "the rank-r part is well conditioned");
        if (full.Rank > r)
            Assert.InRange(double.CreateTruncating(full.DiagonalMagnitudes[r]) / r00, 0, 10 * Math.Max(m, n) * eps);

        var cut = PivotedQr.Compute<T>(a, new PivotedQrOptions(RelativeTolerance: tol));
        Assert.Equal(r, cut.Rank);
        Assert.Equal(full.Pivots[..r].ToArray(), cut.Pivots[..r].ToArray());
        // The truncated factorization reproduces all of A·Π: the remainder is negligible.
        var residual = MatrixNorms.FrobeniusDistance<double>(TestMatrices.ReferenceProduct<T>(cut.Q(), cut.R), Permuted<T>(a, cut.Pivots));
        Assert.InRange(residual, 0, 100 * Math.Max(m, n) * eps * MatrixNorms.Frobenius<T>(a));
    }

    [Fact]
    public void MaxRankTruncatesTheFullFactorization()
    {
        var a = RandomMatrix.Gaussian<double>(90, 70, seed: 21);
        var full = PivotedQr.Compute<double>(a);
        foreach (int k in new[] { 0, 1, 5, 32, 33, 64, 70, 1000 })
        {
            var f = PivotedQr.Compute<double>(a, new PivotedQrOptions(MaxRank: k));
            int kk = Math.Min(k, 70);
            Assert.Equal(kk, f.Rank);
            Assert.Equal(full.Pivots[..kk].ToArray(), f.Pivots[..kk].ToArray());
            AssertPermutation(f.Pivots, 70);
            Assert.Equal(kk, f.R.Rows);
            Assert.InRange(DistanceByColumn(f.R, f.Pivots, full.R.Slice(0, 0, kk, 70), full.Pivots), 0, 1e-11);
            var q = f.Q();
            Assert.Equal(kk, q.Cols);
            Assert.InRange(TestMatrices.OrthogonalityError<double>(q), 0, 1e-13);
        }
    }

    /// <summary>
    /// Columns of distinct, well separated norms (column j has norm 2^−rank(j) for a random ranking,
    /// and a random unit direction in ℝ¹⁵⁰). LAPACK's geqp3 (like any Businger–Golub code) picks them in
    /// decreasing order of norm: step k compares the norms of the components orthogonal to the k chosen
    /// columns; for random directions in a space of dimension m ≫ n that projection keeps all but about
    /// k/m of a column's squared norm (here ≥ 85%), far from the factor 2 separating consecutive norms,
    /// so the order can never flip.
    /// </summary>
    [Fact]
    public void WellSeparatedNormsArePickedInDecreasingOrder()
    {
        SeparatedNorms<double>();
        SeparatedNorms<float>();
    }

    private static void SeparatedNorms<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        const int m = 150, n = 20;
        var rng = new Random(5);
        var rank = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray(); // column j gets the rank[j]-th largest norm
        var g = RandomMatrix.Gaussian<double>(m, n, seed: 6);
        var a = new Matrix<T>(m, n);
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int i = 0; i < m; i++) s += g[i, j] * g[i, j];
            double scale = Math.ScaleB(1.0, -rank[j]) / Math.Sqrt(s);
            for (int i = 0; i < m; i++) a[i, j] = T.CreateTruncating(g[i, j] * scale);
        }
        var expected = Enumerable.Range(0, n).OrderBy(j => rank[j]).ToArray();
        Assert.Equal(expected, PivotedQr.Compute<T>(a).Pivots.ToArray());
    }

    [Fact]
    public void TiesGoToTheLowestColumnIndex()
    {
        // Orthogonal columns of equal norm stay tied at every step.
        var a = Matrix<double>.Identity(9);
        Assert.Equal(Enumerable.Range(0, 9), PivotedQr.Compute<double>(a).Pivots.ToArray());
        var b = Matrix<float>.Create(5, 3, (i, j) => i == j + 2 ? 3f : 0f);
        var f = PivotedQr.Compute<float>(b);
        Assert.Equal(new[] { 0, 1, 2 }, f.Pivots.ToArray());
        Assert.Equal(new[] { 3f, 3f, 3f }, f.DiagonalMagnitudes);
    }

    [Fact]
    public void BlockedAgreesWithItselfAtEveryPanelWidth()
    {
        var a = RandomMatrix.Gaussian<double>(97, 77, seed: 31);
        var baseline = PivotedQr.Compute<double>(a, null, blockSize: 1);
        foreach (int nb in new[] { 2, 5, 16, 32, 64, 100 })
        {
            var f = PivotedQr.Compute<double>(a, null, nb);
            Assert.Equal(baseline.Pivots.ToArray(), f.Pivots.ToArray());
            Assert.InRange(MatrixNorms.FrobeniusDistance<double>(f.R, baseline.R), 0, 1e-11);
        }
    }

    // ---------------------------------------------------------------- arguments

    [Fact]
    public void InvalidArgumentsAreRejected()
    {
        var a = RandomMatrix.Gaussian<double>(4, 4, seed: 1);
        a[1, 2] = double.NaN;
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => PivotedQr.Compute<double>(a)).ParamName);
        a[1, 2] = double.NegativeInfinity;
        Assert.Equal("a", Assert.Throws<ArgumentException>(() => PivotedQr.Compute<double>(a)).ParamName);
        var b = RandomMatrix.Gaussian<double>(4, 4, seed: 1);
        Assert.Equal("options", Assert.Throws<ArgumentOutOfRangeException>(() => PivotedQr.Compute<double>(b, new PivotedQrOptions(MaxRank: -1))).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentOutOfRangeException>(() => PivotedQr.Compute<double>(b, new PivotedQrOptions(RelativeTolerance: -1e-3))).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentOutOfRangeException>(() => PivotedQr.Compute<double>(b, new PivotedQrOptions(RelativeTolerance: double.NaN))).ParamName);
    }
}
