using System.Numerics;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.Decompositions;

public class DeimTests
{
    /// <summary>
    /// U (5 × 3, integers; DEIM does not need orthonormality to be defined):
    ///   row 0: [−6, −4,  0]
    ///   row 1: [−6,  1,  7]
    ///   row 2: [ 4,  7, −3]
    ///   row 3: [ 0,  0,  9]
    ///   row 4: [ 6,  7,  3]
    /// Step 0 (both): |u_0| = 6, 6, 4, 0, 6 → tie, lowest index: p_0 = 0.
    /// Step 1 (both): c = u_1[0]/u_0[0] = 2/3, ρ = u_1 − (2/3)u_0 = [0, 5, 13/3, 0, 3] → p_1 = 1.
    /// </summary>
    private static Matrix<T> Example<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        double[,] u = { { -6, -4, 0 }, { -6, 1, 7 }, { 4, 7, -3 }, { 0, 0, 9 }, { 6, 7, 3 } };
        return Matrix<T>.Create(5, 3, (i, j) => T.CreateTruncating(u[i, j]));
    }

    /// <summary>
    /// Textbook step 2: solve [[−6, −4], [−6, 1]]·c = [0, 7] → c = [−14/15, 7/5];
    /// ρ = u_2 − U[:, :2]·c = [0, 0, −136/15, 9, −6/5] → |ρ| largest at row 2 (9.067 &gt; 9).
    /// </summary>
    [Fact] public void TextbookReproducesTheHandExampleFloat() => Assert.Equal([0, 1, 2], Deim.SelectRows<float>(Example<float>(), DeimVariant.Textbook));
    [Fact] public void TextbookReproducesTheHandExampleDouble() => Assert.Equal([0, 1, 2], Deim.SelectRows<double>(Example<double>(), DeimVariant.Textbook));

    /// <summary>
    /// Reference step 0 deflation: a = [−6], v = W[:, :1]·a/‖a‖² = [1, 1, −2/3, 0, −1];
    ///   W[:, 1:] −= v·W[0, 1:] = v·[−4, 0] → column 1 = [0, 5, 13/3, 0, 3], column 2 unchanged.
    /// Step 1: p_1 = 1, a = W[1, :2] = [−6, 5], ‖a‖² = 61,
    ///   v = (−6·W[:, 0] + 5·W[:, 1])/61 = [36/61, 1, −7/183, 0, −21/61];
    ///   W[:, 2] −= 7·v → [−252/61, 0, −500/183, 9, 330/61].
    /// Step 2: rows 2, 3, 4 remain with |·| = 2.73, 9, 5.41 → p_2 = 3 (the textbook rule picks 2).
    /// </summary>
    [Fact] public void ReferenceReproducesTheHandExampleFloat() => Assert.Equal([0, 1, 3], Deim.SelectRows<float>(Example<float>(), DeimVariant.Reference));
    [Fact] public void ReferenceReproducesTheHandExampleDouble() => Assert.Equal([0, 1, 3], Deim.SelectRows<double>(Example<double>()));

    [Fact]
    public void ReferenceFirstIndexIsTheLargestOfTheFirstColumnAndStepOneMatchesTextbook()
    {
        var u = Basis<double>(60, 8, seed: 4);
        var r = Deim.SelectRows<double>(u, DeimVariant.Reference);
        var t = Deim.SelectRows<double>(u, DeimVariant.Textbook);
        Assert.Equal(t[0], r[0]);
        Assert.Equal(t[1], r[1]);
        int argmax = Enumerable.Range(0, 60).MaxBy(i => Math.Abs(u[i, 0]));
        Assert.Equal(argmax, r[0]);
    }

    [Fact]
    public void QDeimEqualsTheFirstPivotsOfCpqrOfTheTranspose()
    {
        var u = Basis<double>(120, 15, seed: 6);
        var q = Deim.SelectRows<double>(u, DeimVariant.QDeim);
        var qr = PivotedQr.Compute(u.Transpose());
        Assert.Equal(qr.Pivots[..15].ToArray(), q);
    }

    [Fact] public void IndicesAreDistinctAndWellConditionedFloat() => IndicesAreDistinctAndWellConditioned<float>();
    [Fact] public void IndicesAreDistinctAndWellConditionedDouble() => IndicesAreDistinctAndWellConditioned<double>();

    /// <summary>‖(PᵀU)⁻¹‖₂ ≤ 10·sqrt(n·r) on random orthonormal U, for every variant (the a-priori bounds are exponential in r; practice is far better).</summary>
    private static void IndicesAreDistinctAndWellConditioned<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        foreach (var (n, r, seed) in new[] { (200, 20, 1), (300, 60, 2), (50, 50, 3) })
        {
            var u = Basis<T>(n, r, seed);
            foreach (var variant in Enum.GetValues<DeimVariant>())
            {
                var p = Deim.SelectRows<T>(u, variant);
                Assert.Equal(r, p.Length);
                Assert.Equal(r, p.Distinct().Count());
                Assert.All(p, i => Assert.InRange(i, 0, n - 1));
                var sub = Matrix<T>.Create(r, r, (i, j) => u[p[i], j]);
                var s = Svd.SingularValues<T>(sub);
                double invNorm = 1 / double.CreateTruncating(s[r - 1]);
                Assert.InRange(invNorm, 1 - 1e-4, 10 * Math.Sqrt(n * r));
            }
        }
    }

    [Fact]
    public void InputIsNotModifiedAndBadShapesAreRejected()
    {
        var u = Basis<double>(40, 6, seed: 8);
        var copy = u.Clone();
        foreach (var variant in Enum.GetValues<DeimVariant>()) Deim.SelectRows<double>(u, variant);
        Assert.Equal(copy.AsSpan().ToArray(), u.AsSpan().ToArray());
        Assert.Throws<ArgumentException>(() => Deim.SelectRows<double>(RandomMatrix.Gaussian<double>(3, 5, 1)));
        var bad = u.Clone();
        bad[3, 2] = double.NaN;
        Assert.Throws<ArgumentException>(() => Deim.SelectRows<double>(bad));
        Assert.Empty(Deim.SelectRows<double>(new Matrix<double>(4, 0)));
    }

    /// <summary>The first r columns of a random n × n orthogonal matrix.</summary>
    private static Matrix<T> Basis<T>(int n, int r, int seed) where T : unmanaged, IFloatingPointIeee754<T> =>
        TestMatrices.Orthogonal<T>(n, seed).Slice(0, 0, n, r).ToMatrix();
}
