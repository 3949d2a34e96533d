using System.Numerics;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.Decompositions;

public class InterpolativeDecompositionTests
{
    // ---------------------------------------------------------------- helpers

    /// <summary>Gaussian n × h with column j scaled by ratio^rank(j) for a shuffled rank: column norms well separated, in a non-trivial order.</summary>
    internal static Matrix<T> SeparatedColumns<T>(int n, int h, double ratio, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = RandomMatrix.Gaussian<double>(n, h, seed);
        var order = Enumerable.Range(0, h).ToArray();
        new Random(seed + 7).Shuffle(order);
        return Matrix<T>.Create(n, h, (i, j) => T.CreateTruncating(g[i, j] * Math.Pow(ratio, -order[j])));
    }

    private static double Tol<T>(double forFloat, double forDouble) where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? forFloat : forDouble;

    private static void AssertInterpolatesExactly<T>(InterpolativeDecomposition<T> id) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var t = id.Interpolation;
        Assert.Equal(id.Indices.Length, t.Rows);
        Assert.Equal(id.Indices.Length, id.Indices.Distinct().Count());
        for (int j = 0; j < id.Indices.Length; j++)
            for (int i = 0; i < t.Rows; i++)
                Assert.Equal(i == j ? T.One : T.Zero, t[i, id.Indices[j]]);
    }

    private static double SpectralNorm<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T> =>
        double.CreateTruncating(Svd.SingularValues(a)[0]);

    private static Matrix<T> Difference<T>(MatrixView<T> z, InterpolativeDecomposition<T> id) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var approx = Blas.Multiply(InterpolativeDecompositions.GatherColumns(z, id.Indices).View, id.Interpolation.View);
        return Matrix<T>.Create(z.Rows, z.Cols, (i, j) => z[i, j] - approx[i, j]);
    }

    // ---------------------------------------------------------------- exactness

    [Fact] public void ExactOnExactRankFloat() => ExactOnExactRank<float>();
    [Fact] public void ExactOnExactRankDouble() => ExactOnExactRank<double>();

    private static void ExactOnExactRank<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var z = TestMatrices.OfRank<T>(150, 60, 12, seed: 3);
        double norm = MatrixNorms.Frobenius<T>(z);
        var id = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Rank: 12));
        Assert.Equal(12, id.Rank);
        Assert.Equal(60, id.Interpolation.Cols);
        AssertInterpolatesExactly(id);
        Assert.False(id.UsedPseudoInverse);
        double error = id.Error(z);
        Assert.InRange(error / norm, 0, Tol<T>(2e-6, 1e-12));
        Assert.InRange(id.RelativeResidual, 0, Tol<T>(2e-6, 1e-12));
        Assert.InRange(id.DiagonalRatio, 0, Tol<T>(2e-6, 1e-12));
        Assert.InRange(Math.Abs(id.ResidualNorm - error), 0, Tol<T>(1e-6, 1e-13) * norm);
    }

    [Fact] public void ResidualNormEqualsDirectErrorFloat() => ResidualNormEqualsDirectError<float>();
    [Fact] public void ResidualNormEqualsDirectErrorDouble() => ResidualNormEqualsDirectError<double>();

    private static void ResidualNormEqualsDirectError<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var z = RandomMatrix.Gaussian<T>(90, 40, seed: 11);
        foreach (var options in new[] { new IdOptions(Rank: 15), new IdOptions(Tolerance: 0.5), new IdOptions(Tolerance: 0.4, ToleranceKind: IdTolerance.RelativeResidual) })
        {
            var id = InterpolativeDecompositions.Compute<T>(z, options);
            double error = id.Error(z);
            Assert.True(error > 0.1 * MatrixNorms.Frobenius<T>(z) * 0.1, "a genuinely truncated ID");
            Assert.InRange(Math.Abs(id.ResidualNorm - error) / error, 0, Tol<T>(1e-5, 1e-12));
            Assert.Equal(id.ResidualNorm / MatrixNorms.Frobenius<T>(z), id.RelativeResidual, 12);
        }
    }

    [Fact]
    public void DiagonalRatioIsTheNextPivotOfCpqr()
    {
        var z = RandomMatrix.Gaussian<double>(70, 30, seed: 5);
        var full = PivotedQr.Compute<double>(z);
        var id = InterpolativeDecompositions.Compute<double>(z, new IdOptions(Rank: 10));
        Assert.Equal(Math.Abs(full.R[10, 10]) / Math.Abs(full.R[0, 0]), id.DiagonalRatio, 1e-12);
        // ‖R22‖_F of the full factorization.
        double r22 = MatrixNorms.Frobenius(full.R.Slice(10, 10, 20, 20));
        Assert.Equal(r22, id.ResidualNorm, 1e-11);
    }

    [Fact] public void PivotsEqualPivotedQrAndAreDeterministicFloat() => PivotsEqualPivotedQr<float>();
    [Fact] public void PivotsEqualPivotedQrAndAreDeterministicDouble() => PivotsEqualPivotedQr<double>();

    private static void PivotsEqualPivotedQr<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var z = SeparatedColumns<T>(200, 50, 1.3, seed: 21);
        var qr = PivotedQr.Compute<T>(z, new PivotedQrOptions(MaxRank: 20));
        var id = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Rank: 20));
        Assert.Equal(qr.Pivots[..20].ToArray(), id.Indices);
        var again = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Rank: 20));
        Assert.Equal(id.Indices, again.Indices);
        Assert.Equal(id.Interpolation.AsSpan().ToArray(), again.Interpolation.AsSpan().ToArray());
        // Well separated: the pivots are the columns in order of decreasing scale.
        var order = Enumerable.Range(0, 50).ToArray();
        new Random(21 + 7).Shuffle(order);
        var byScale = Enumerable.Range(0, 50).OrderBy(j => order[j]).Take(20).ToArray();
        Assert.Equal(byScale, id.Indices);
    }

    // ---------------------------------------------------------------- rank-revealing bound

    [Fact] public void ErrorWithinRankRevealingBoundFloat() => ErrorWithinRankRevealingBound<float>();
    [Fact] public void ErrorWithinRankRevealingBoundDouble() => ErrorWithinRankRevealingBound<double>();

    /// <summary>
    /// Bound used: σ_{k+1} ≤ ‖Z − Z[:, I]·T‖₂ ≤ sqrt(1 + 4k(h − k))·σ_{k+1} (Gu–Eisenstat strong RRQR with f = 2; the
    /// lower bound holds for any rank-k approximation).
    /// </summary>
    private static void ErrorWithinRankRevealingBound<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        const int n = 100, h = 40;
        var s = Enumerable.Range(0, h).Select(i => Math.Pow(0.75, i)).ToArray();
        var z = TestMatrices.WithSingularValues<T>(n, h, s, seed: 31);
        foreach (int k in new[] { 1, 5, 10, 20, 30 })
        {
            var id = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Rank: k));
            double e2 = SpectralNorm<T>(Difference<T>(z, id));
            Assert.InRange(e2, s[k] * (1 - 1e-3), Math.Sqrt(1 + 4.0 * k * (h - k)) * s[k]);
        }
    }

    // ---------------------------------------------------------------- tolerances

    [Fact] public void ToleranceChoosesTheRankAtTheGapFloat() => ToleranceChoosesTheRankAtTheGap<float>();
    [Fact] public void ToleranceChoosesTheRankAtTheGapDouble() => ToleranceChoosesTheRankAtTheGap<double>();

    private static void ToleranceChoosesTheRankAtTheGap<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        // σ_1..σ_9 in [0.43, 1], then a gap of 1e-5.
        var s = Enumerable.Range(0, 30).Select(i => (i < 9 ? 1.0 : 1e-5) * Math.Pow(0.9, i)).ToArray();
        var z = TestMatrices.WithSingularValues<T>(80, 30, s, seed: 41);
        var byDiagonal = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Tolerance: 1e-3));
        Assert.Equal(9, byDiagonal.Rank);
        Assert.InRange(byDiagonal.DiagonalRatio, 0, 1e-3);
        var byResidual = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Tolerance: 1e-3, ToleranceKind: IdTolerance.RelativeResidual));
        Assert.Equal(9, byResidual.Rank);
        Assert.InRange(byResidual.RelativeResidual, 0, 1e-3);
        // Just above the gap: every tolerance between the levels picks the same rank; a loose one picks fewer.
        var loose = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Tolerance: 0.9, ToleranceKind: IdTolerance.RelativeResidual));
        Assert.InRange(loose.Rank, 0, 8);
        Assert.InRange(loose.RelativeResidual, 0, 0.9);
    }

    [Fact]
    public void ResidualToleranceIsTheSmallestSufficientRank()
    {
        var z = TestMatrices.WithSingularValues<double>(60, 25, [.. Enumerable.Range(0, 25).Select(i => Math.Pow(0.8, i))], seed: 2);
        foreach (double eps in new[] { 0.5, 0.1, 0.01, 1e-3 })
        {
            var id = InterpolativeDecompositions.Compute<double>(z, new IdOptions(Tolerance: eps, ToleranceKind: IdTolerance.RelativeResidual));
            Assert.InRange(id.RelativeResidual, 0, eps);
            var fewer = InterpolativeDecompositions.Compute<double>(z, new IdOptions(Rank: id.Rank - 1));
            Assert.True(fewer.RelativeResidual > eps, $"rank {id.Rank - 1} already meets ε = {eps}");
        }
    }

    [Fact]
    public void DiagonalToleranceMatchesTheDefinition()
    {
        var z = RandomMatrix.Gaussian<double>(50, 30, seed: 9);
        var full = PivotedQr.Compute<double>(z);
        double r00 = Math.Abs(full.R[0, 0]);
        foreach (double eps in new[] { 0.9, 0.5, 0.2, 0.05 })
        {
            var id = InterpolativeDecompositions.Compute<double>(z, new IdOptions(Tolerance: eps));
            int expected = Enumerable.Range(0, 31).First(k => k == 30 || Math.Abs(full.R[k, k]) <= eps * r00);
            Assert.Equal(expected, id.Rank);
        }
    }

    // ---------------------------------------------------------------- variants

    [Fact] public void GramAndTsqrGiveTheDirectIndicesFloat() => GramAndTsqrGiveTheDirectIndices<float>();
    [Fact] public void GramAndTsqrGiveTheDirectIndicesDouble() => GramAndTsqrGiveTheDirectIndices<double>();

    private static void GramAndTsqrGiveTheDirectIndices<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var z = SeparatedColumns<T>(300, 40, 1.3, seed: 51);
        var options = new IdOptions(Rank: 18);
        var direct = InterpolativeDecompositions.Compute<T>(z, options);

        var gram = InterpolativeDecompositions.FromGram<T>(Blas.Gram<T>(z), options);
        Assert.Equal(direct.Indices, gram.Indices);
        Assert.InRange(MatrixNorms.FrobeniusDistance<T>(direct.Interpolation, gram.Interpolation)
                       / MatrixNorms.Frobenius<T>(direct.Interpolation), 0, Tol<T>(1e-2, 1e-7));
        Assert.Equal(direct.ResidualNorm, gram.ResidualNorm, Tol<T>(1e-2, 1e-6) * direct.ResidualNorm);
        Assert.Equal(direct.DiagonalRatio, gram.DiagonalRatio, Tol<T>(1e-2, 1e-6));

        var batches = new List<MatrixView<T>>();
        for (int b = 0; b < 300; b += 60) batches.Add(HouseholderQr.Compute(z.Slice(b, 0, 60, 40)).R.View);
        var tsqr = InterpolativeDecompositions.FromRFactors(batches, options);
        Assert.Equal(direct.Indices, tsqr.Indices);
        Assert.InRange(MatrixNorms.FrobeniusDistance<T>(direct.Interpolation, tsqr.Interpolation)
                       / MatrixNorms.Frobenius<T>(direct.Interpolation), 0, Tol<T>(1e-4, 1e-11));
        Assert.Equal(direct.ResidualNorm, tsqr.ResidualNorm, Tol<T>(1e-4, 1e-10) * direct.ResidualNorm);
        Assert.Equal(direct.RelativeResidual, tsqr.RelativeResidual, Tol<T>(1e-5, 1e-12));

        // Tolerance modes agree too (the Gram residual needs a level above sqrt(ε)).
        foreach (var tol in new[] { new IdOptions(Tolerance: 0.05), new IdOptions(Tolerance: 0.05, ToleranceKind: IdTolerance.RelativeResidual) })
        {
            var d = InterpolativeDecompositions.Compute<T>(z, tol);
            Assert.Equal(d.Indices, InterpolativeDecompositions.FromGram<T>(Blas.Gram<T>(z), tol).Indices);
            Assert.Equal(d.Indices, InterpolativeDecompositions.FromRFactors(batches, tol).Indices);
        }
    }

    [Fact] public void TsqrAccumulatorOverManyBatchesEqualsOneShotFloat() => TsqrAccumulatorOverManyBatchesEqualsOneShot<float>();
    [Fact] public void TsqrAccumulatorOverManyBatchesEqualsOneShotDouble() => TsqrAccumulatorOverManyBatchesEqualsOneShot<double>();

    private static void TsqrAccumulatorOverManyBatchesEqualsOneShot<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var z = SeparatedColumns<T>(500, 30, 1.2, seed: 61);
        var acc = new TsqrAccumulator<T>(30);
        int start = 0, batch = 0;
        while (start < 500)
        {
            int rows = Math.Min(500 - start, batch % 3 == 0 ? 7 : 41); // batches both shorter and taller than h
            acc.AddBatch(z.Slice(start, 0, rows, 30));
            start += rows;
            batch++;
        }
        Assert.Equal(500, acc.RowsSeen);
        Assert.Equal(30, acc.R.Rows);
        // RᵀR = ZᵀZ
        var rtr = Blas.Multiply<T>(acc.R.Transpose(), acc.R);
        var ztz = Blas.Multiply<T>(z.Transpose(), z);
        Assert.InRange(MatrixNorms.FrobeniusDistance<T>(rtr, ztz) / MatrixNorms.Frobenius<T>(ztz), 0, Tol<T>(1e-5, 1e-13));

        var options = new IdOptions(Rank: 12);
        var direct = InterpolativeDecompositions.Compute<T>(z, options);
        var streamed = InterpolativeDecompositions.FromRFactors<T>([acc.R.View], options);
        Assert.Equal(direct.Indices, streamed.Indices);
        Assert.InRange(MatrixNorms.FrobeniusDistance<T>(direct.Interpolation, streamed.Interpolation)
                       / MatrixNorms.Frobenius<T>(direct.Interpolation), 0, Tol<T>(1e-4, 1e-11));
        Assert.Equal(direct.Error(z), streamed.Error(z), Tol<T>(1e-4, 1e-10) * direct.Error(z));
        // The raw batches are valid "R factors" too (same Gram matrix).
        var raw = InterpolativeDecompositions.FromRFactors<T>([z.Slice(0, 0, 250, 30), z.Slice(250, 0, 250, 30)], options);
        Assert.Equal(direct.Indices, raw.Indices);
    }

    [Fact] public void SketchFindsTheExactSupportFloat() => SketchFindsTheExactSupport<float>();
    [Fact] public void SketchFindsTheExactSupportDouble() => SketchFindsTheExactSupport<double>();

    private static void SketchFindsTheExactSupport<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Only columns {3, 8, 17, 29, 41} are nonzero: the ID must keep exactly those.
        int[] support = [3, 8, 17, 29, 41];
        var g = RandomMatrix.Gaussian<T>(2000, support.Length, seed: 71);
        var z = new Matrix<T>(2000, 48);
        for (int i = 0; i < 2000; i++)
            for (int j = 0; j < support.Length; j++) z[i, support[j]] = g[i, j];
        foreach (var (kind, rows) in new[] { (SketchKind.Gaussian, 10), (SketchKind.CountSketch, 40) })
        {
            var id = InterpolativeDecompositions.FromSketch<T>(z, rows, kind, seed: 5, new IdOptions(Tolerance: 1e-3));
            Assert.Equal(support, id.Indices.Order().ToArray());
            Assert.InRange(id.Error(z), 0, Tol<T>(1e-3, 1e-10));
        }

        // Exactly rank 8: the sketched ID is an exact ID of Z.
        var low = TestMatrices.OfRank<T>(3000, 50, 8, seed: 73);
        double norm = MatrixNorms.Frobenius<T>(low);
        foreach (var (kind, rows) in new[] { (SketchKind.Gaussian, 16), (SketchKind.CountSketch, 64) })
        {
            var a = InterpolativeDecompositions.FromSketch<T>(low, rows, kind, seed: 17, new IdOptions(Rank: 8));
            Assert.Equal(8, a.Rank);
            Assert.InRange(a.Error(low) / norm, 0, Tol<T>(1e-4, 1e-10));
            var b = InterpolativeDecompositions.FromSketch<T>(low, rows, kind, seed: 17, new IdOptions(Rank: 8));
            Assert.Equal(a.Indices, b.Indices);
            Assert.Equal(a.Interpolation.AsSpan().ToArray(), b.Interpolation.AsSpan().ToArray());
        }
    }

    [Fact]
    public void RowSketchIsSeededAndCountSketchHasOneSignedBucketPerRow()
    {
        var z = RandomMatrix.Gaussian<double>(500, 6, seed: 81);
        var a = RowSketch.Apply<double>(z, 20, SketchKind.Gaussian, 3);
        var b = RowSketch.Apply<double>(z, 20, SketchKind.Gaussian, 3);
        var c = RowSketch.Apply<double>(z, 20, SketchKind.Gaussian, 4);
        Assert.Equal(a.AsSpan().ToArray(), b.AsSpan().ToArray());
        Assert.NotEqual(a.AsSpan().ToArray(), c.AsSpan().ToArray());
        // CountSketch of the identity is S itself: one ±1 per column.
        var s = RowSketch.Apply<double>(Matrix<double>.Identity(300), 25, SketchKind.CountSketch, 9);
        for (int j = 0; j < 300; j++)
        {
            var nonzeros = Enumerable.Range(0, 25).Where(i => s[i, j] != 0).ToArray();
            Assert.Single(nonzeros);
            Assert.Equal(1.0, Math.Abs(s[nonzeros[0], j]));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => RowSketch.Apply<double>(z, 0, SketchKind.Gaussian, 1));
    }

    // ---------------------------------------------------------------- dead neurons, edges, validation

    [Fact] public void DeadColumnsAreNeverChosenFloat() => DeadColumnsAreNeverChosen<float>();
    [Fact] public void DeadColumnsAreNeverChosenDouble() => DeadColumnsAreNeverChosen<double>();

    private static void DeadColumnsAreNeverChosen<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        int[] dead = [2, 7, 13];
        var z = TestMatrices.OfRank<T>(80, 20, 6, seed: 91);
        for (int i = 0; i < 80; i++)
            foreach (int j in dead) z[i, j] = T.Zero;
        double norm = MatrixNorms.Frobenius<T>(z);

        // More columns than the rank: R11 gets rounding-level pivots, so the pseudo-inverse is used.
        var id = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Rank: 10));
        Assert.True(id.UsedPseudoInverse);
        Assert.Empty(id.Indices.Intersect(dead));
        AssertInterpolatesExactly(id);
        foreach (int j in dead)
            for (int i = 0; i < id.Rank; i++) Assert.Equal(T.Zero, id.Interpolation[i, j]);
        Assert.InRange(id.Error(z) / norm, 0, Tol<T>(1e-5, 1e-12));
        Assert.InRange(MatrixNorms.MaxAbs<T>(id.Interpolation), 0, 1e3); // no rounding-amplified coefficients

        // Every live column requested: dead ones still excluded (the factorization stops at exact zeros).
        var all = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Rank: 20));
        Assert.Empty(all.Indices.Intersect(dead));
        Assert.InRange(all.Rank, 6, 17);

        // By tolerance: exactly the rank, triangular solve.
        var tol = InterpolativeDecompositions.Compute<T>(z, new IdOptions(Tolerance: 1e-3));
        Assert.Equal(6, tol.Rank);
        Assert.False(tol.UsedPseudoInverse);
        Assert.Empty(tol.Indices.Intersect(dead));

        var gram = InterpolativeDecompositions.FromGram<T>(Blas.Gram<T>(z), new IdOptions(Rank: 10));
        Assert.Empty(gram.Indices.Intersect(dead));
    }

    [Fact]
    public void FullAndZeroRanks()
    {
        var z = RandomMatrix.Gaussian<double>(30, 12, seed: 1);
        var full = InterpolativeDecompositions.Compute<double>(z, new IdOptions(Rank: 12));
        Assert.Equal(12, full.Rank);
        Assert.Equal(0, full.DiagonalRatio);
        Assert.Equal(0, full.ResidualNorm);
        AssertInterpolatesExactly(full);
        var none = InterpolativeDecompositions.Compute<double>(z, new IdOptions(Rank: 0));
        Assert.Empty(none.Indices);
        Assert.Equal(0, none.Interpolation.Rows);
        Assert.Equal(1.0, none.RelativeResidual, 12);
        Assert.Equal(1.0, none.DiagonalRatio, 12);
        // Fewer samples than the requested rank: k = n, and the ID is exact.
        var wide = RandomMatrix.Gaussian<double>(5, 12, seed: 2);
        var w = InterpolativeDecompositions.Compute<double>(wide, new IdOptions(Rank: 8));
        Assert.Equal(5, w.Rank);
        Assert.InRange(w.Error(wide), 0, 1e-13);
        var zero = InterpolativeDecompositions.Compute<double>(new Matrix<double>(10, 5), new IdOptions(Rank: 3));
        Assert.Empty(zero.Indices);
        Assert.Equal(0, zero.RelativeResidual);
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        var z = RandomMatrix.Gaussian<double>(10, 5, seed: 1);
        Assert.Throws<ArgumentException>(() => InterpolativeDecompositions.Compute<double>(z, new IdOptions()));
        Assert.Throws<ArgumentException>(() => InterpolativeDecompositions.Compute<double>(z, new IdOptions(Rank: 2, Tolerance: 0.1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => InterpolativeDecompositions.Compute<double>(z, new IdOptions(Rank: 6)));
        Assert.Throws<ArgumentOutOfRangeException>(() => InterpolativeDecompositions.Compute<double>(z, new IdOptions(Rank: -1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => InterpolativeDecompositions.Compute<double>(z, new IdOptions(Tolerance: -1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => InterpolativeDecompositions.Compute<double>(z, new IdOptions(Tolerance: double.NaN)));
        Assert.Throws<ArgumentException>(() => InterpolativeDecompositions.FromRFactors<double>([], new IdOptions(Rank: 1)));
        Assert.Throws<ArgumentException>(() => InterpolativeDecompositions.FromRFactors<double>([z.View, RandomMatrix.Gaussian<double>(3, 4, 1).View], new IdOptions(Rank: 1)));
        Assert.Throws<ArgumentException>(() => InterpolativeDecompositions.FromGram<double>(z, new IdOptions(Rank: 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => InterpolativeDecompositions.FromSketch<double>(z, 3, SketchKind.Gaussian, 1, new IdOptions(Rank: 4)));
        Assert.Throws<ArgumentOutOfRangeException>(() => InterpolativeDecompositions.FromGram<double>(Blas.Gram<double>(z), new IdOptions(Rank: 6)));
        var id = InterpolativeDecompositions.Compute<double>(z, new IdOptions(Rank: 2));
        Assert.Throws<ArgumentException>(() => id.Error(RandomMatrix.Gaussian<double>(10, 4, 1)));
        Assert.Throws<ArgumentException>(() => new TsqrAccumulator<double>(5).AddBatch(RandomMatrix.Gaussian<double>(3, 4, 1)));
        var bad = RandomMatrix.Gaussian<double>(30, 4, 1);
        bad[17, 2] = double.PositiveInfinity;
        var acc = new TsqrAccumulator<double>(4);
        acc.AddBatch(RandomMatrix.Gaussian<double>(6, 4, 2));
        var ex = Assert.Throws<ArgumentException>(() => acc.AddBatch(bad));
        Assert.Contains("(17, 2)", ex.Message);
        Assert.Equal(6, acc.RowsSeen); // the failed batch changed nothing
    }

    [Fact]
    public void InputsAreNotModified()
    {
        var z = RandomMatrix.Gaussian<double>(40, 15, seed: 2);
        var copy = z.Clone();
        InterpolativeDecompositions.Compute<double>(z, new IdOptions(Tolerance: 0.1, ToleranceKind: IdTolerance.RelativeResidual));
        InterpolativeDecompositions.FromSketch<double>(z, 20, SketchKind.CountSketch, 1, new IdOptions(Rank: 5));
        var g = Blas.Gram<double>(z);
        var gCopy = g.Clone();
        InterpolativeDecompositions.FromGram<double>(g, new IdOptions(Rank: 5));
        Assert.Equal(copy.AsSpan().ToArray(), z.AsSpan().ToArray());
        Assert.Equal(gCopy.AsSpan().ToArray(), g.AsSpan().ToArray());
    }
}
