using System.Numerics;
using Whittle.LinearAlgebra;

namespace Whittle.Tests.LinearAlgebra;

public class TriangularSolveTests
{
    private static readonly int[] Sizes = [1, 2, 63, 64, 65, 200, 300];
    private const int Rhs = 37;

    public static TheoryData<Side, Triangle, bool, bool> Combinations()
    {
        var data = new TheoryData<Side, Triangle, bool, bool>();
        foreach (var side in new[] { Side.Left, Side.Right })
            foreach (var tri in new[] { Triangle.Lower, Triangle.Upper })
                foreach (var transpose in new[] { false, true })
                    foreach (var unit in new[] { false, true })
                        data.Add(side, tri, transpose, unit);
        return data;
    }

    /// <summary>A well-conditioned triangular matrix in <paramref name="triangle"/>; the other triangle (and the
    /// diagonal, for a unit solve) holds NaN so that reading it would poison the result.</summary>
    internal static (Matrix<T> Stored, Matrix<double> Clean) Triangular<T>(int n, Triangle triangle, bool unit, int seed)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = RandomMatrix.Gaussian<double>(n, n, seed);
        var clean = new Matrix<double>(n, n);
        var stored = new Matrix<T>(n, n);
        double offScale = 0.3 / Math.Sqrt(n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                bool inside = triangle == Triangle.Lower ? j < i : j > i;
                if (i == j)
                {
                    double d = unit ? 1 : (1 + Math.Abs(g[i, j])) * (g[j, i] < 0 ? -1 : 1);
                    clean[i, j] = d;
                    stored[i, j] = unit ? T.NaN : T.CreateTruncating(d);
                }
                else if (inside)
                {
                    stored[i, j] = T.CreateTruncating(g[i, j] * offScale);
                    clean[i, j] = double.CreateTruncating(stored[i, j]);
                }
                else
                {
                    stored[i, j] = T.NaN;
                }
            }
        return (stored, clean);
    }

    /// <summary>‖op(T)·X − α·B‖_F / (‖T‖_F‖X‖_F + ‖αB‖_F), in double.</summary>
    private static double RelativeResidual<T>(Side side, Matrix<double> t, bool transpose, MatrixView<T> x, Matrix<T> b0, double alpha)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var opT = transpose ? t.Transpose() : t.View;
        var xd = Matrix<double>.Create(x.Rows, x.Cols, (i, j) => double.CreateTruncating(x[i, j]));
        var prod = side == Side.Left ? TestMatrices.ReferenceProduct(opT, xd.View) : TestMatrices.ReferenceProduct(xd.View, opT);
        var rhs = Matrix<double>.Create(b0.Rows, b0.Cols, (i, j) => alpha * double.CreateTruncating(b0[i, j]));
        double denom = MatrixNorms.Frobenius(t.View) * MatrixNorms.Frobenius(xd.View) + MatrixNorms.Frobenius(rhs.View);
        return MatrixNorms.FrobeniusDistance(prod.View, rhs.View) / denom;
    }

    private static void CheckAllSizes<T>(Side side, Triangle triangle, bool transpose, bool unit)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        foreach (int n in Sizes)
            foreach (bool bTransposed in new[] { false, true })
            {
                var (stored, clean) = Triangular<T>(n, triangle, unit, seed: n);
                int rows = side == Side.Left ? n : Rhs, cols = side == Side.Left ? Rhs : n;
                var b0 = RandomMatrix.Gaussian<T>(rows, cols, seed: 100 + n);
                // B stored row-major, or as the transpose of row-major storage.
                var storage = bTransposed ? b0.Transpose().ToMatrix() : b0.Clone();
                var b = bTransposed ? storage.Transpose() : storage.View;
                T alpha = T.CreateTruncating(-1.5);
                TriangularSolve.Solve(side, triangle, stored, b, alpha, transpose, unit);
                double res = RelativeResidual(side, clean, transpose, b, b0, -1.5);
                Assert.True(res <= 20 * TestMatrices.Epsilon<T>() * Math.Sqrt(n),
                    $"{typeof(T).Name} n={n} bTransposed={bTransposed}: relative residual {res:G3}");
            }
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public void ResidualIsSmallForEveryCombinationDouble(Side side, Triangle triangle, bool transpose, bool unit) =>
        CheckAllSizes<double>(side, triangle, transpose, unit);

    [Theory]
    [MemberData(nameof(Combinations))]
    public void ResidualIsSmallForEveryCombinationFloat(Side side, Triangle triangle, bool transpose, bool unit) =>
        CheckAllSizes<float>(side, triangle, transpose, unit);

    [Theory]
    [MemberData(nameof(Combinations))]
    public void BlockedMatchesUnblocked(Side side, Triangle triangle, bool transpose, bool unit)
    {
        foreach (int n in new[] { 65, 300 })
        {
            var (stored, _) = Triangular<double>(n, triangle, unit, seed: 7 + n);
            var b0 = RandomMatrix.Gaussian<double>(side == Side.Left ? n : 50, side == Side.Left ? 50 : n, seed: 8);
            var blocked = b0.Clone();
            var unblocked = b0.Clone();
            TriangularSolve.Solve(side, triangle, stored, blocked, 1.0, transpose, unit, blockSize: 16);
            TriangularSolve.Solve(side, triangle, stored, unblocked, 1.0, transpose, unit, blockSize: n);
            double scale = MatrixNorms.MaxAbs(unblocked.View);
            Assert.True(MatrixNorms.FrobeniusDistance(blocked.View, unblocked.View) <= 1e-12 * scale * n, $"n={n}");
        }
    }

    [Theory]
    [InlineData(Triangle.Lower, false)]
    [InlineData(Triangle.Lower, true)]
    [InlineData(Triangle.Upper, false)]
    [InlineData(Triangle.Upper, true)]
    public void VectorSolveMatchesTheMatrixSolve(Triangle triangle, bool transpose)
    {
        foreach (int n in new[] { 0, 1, 5, 130 })
            foreach (bool tTransposedStorage in new[] { false, true })
            {
                var (stored, _) = Triangular<double>(n, triangle, unit: false, seed: 3);
                // The same triangular matrix, viewed through transposed storage.
                var tStorage = tTransposedStorage ? stored.Transpose().ToMatrix() : stored;
                var t = tTransposedStorage ? tStorage.Transpose() : tStorage.View;
                var b = RandomMatrix.Gaussian<double>(n, 1, seed: 4);
                var x = b.AsSpan().ToArray();
                TriangularSolve.SolveVector(triangle, t, x, transpose);
                TriangularSolve.Solve(Side.Left, triangle, stored, b, 1.0, transpose);
                for (int i = 0; i < n; i++) Assert.Equal(b[i, 0], x[i], 1e-12);
            }
    }

    [Fact]
    public void SolveLowerAndSolveUpperAreTheNamedShortcuts()
    {
        var (l, _) = Triangular<double>(20, Triangle.Lower, false, 11);
        var (u, _) = Triangular<double>(20, Triangle.Upper, false, 12);
        var b = RandomMatrix.Gaussian<double>(5, 20, 13);
        var x1 = b.Clone();
        var x2 = b.Clone();
        TriangularSolve.SolveLower<double>(l, x1, Side.Right, transpose: true);
        TriangularSolve.Solve(Side.Right, Triangle.Lower, l, x2, 1.0, transpose: true);
        Assert.Equal(x2.AsSpan().ToArray(), x1.AsSpan().ToArray());
        TriangularSolve.SolveUpper<double>(u, x1.Transpose());
        Assert.Throws<ArgumentException>(() => TriangularSolve.SolveUpper<double>(u, x1));
    }

    [Fact]
    public void AlphaZeroClearsBEvenNaN()
    {
        var (l, _) = Triangular<float>(10, Triangle.Lower, false, 1);
        var b = Matrix<float>.Create(10, 3, (_, _) => float.NaN);
        TriangularSolve.Solve(Side.Left, Triangle.Lower, l, b, 0f);
        Assert.All(b.AsSpan().ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void EmptyAndOneByOne()
    {
        TriangularSolve.Solve(Side.Left, Triangle.Lower, new Matrix<double>(0, 0), new Matrix<double>(0, 4), 1.0);
        TriangularSolve.Solve(Side.Right, Triangle.Upper, new Matrix<double>(3, 3, [1, 0, 0, 0, 1, 0, 0, 0, 1]), new Matrix<double>(0, 3), 1.0);
        var b = new Matrix<double>(1, 2, [3, -6]);
        TriangularSolve.Solve(Side.Left, Triangle.Upper, new Matrix<double>(1, 1, [3]), b, 2.0);
        Assert.Equal([2.0, -4.0], b.AsSpan().ToArray());
    }

    [Fact]
    public void ZeroDiagonalNamesTheIndexAndLeavesBUnchanged()
    {
        var (l, _) = Triangular<double>(100, Triangle.Lower, false, 5);
        l[71, 71] = 0;
        var b = RandomMatrix.Gaussian<double>(100, 4, 6);
        var before = b.AsSpan().ToArray();
        var ex = Assert.Throws<ArgumentException>(() => TriangularSolve.SolveLower<double>(l, b));
        Assert.Contains("T[71,71]", ex.Message);
        Assert.Equal("t", ex.ParamName);
        Assert.Equal(before, b.AsSpan().ToArray());
        // A unit solve never reads the diagonal.
        TriangularSolve.SolveLower<double>(l, b, unitDiagonal: true);
        var v = new double[100];
        Assert.Throws<ArgumentException>(() => TriangularSolve.SolveVector(Triangle.Lower, l, v));
    }

    [Fact]
    public void MismatchedShapesNameTheArgument()
    {
        var t = Matrix<double>.Identity(4);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => TriangularSolve.SolveLower<double>(t, new Matrix<double>(3, 4))).ParamName);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => TriangularSolve.SolveLower<double>(t, new Matrix<double>(4, 3), Side.Right)).ParamName);
        Assert.Equal("t", Assert.Throws<ArgumentException>(() => TriangularSolve.SolveLower<double>(new Matrix<double>(4, 3), new Matrix<double>(4, 3))).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => TriangularSolve.SolveVector(Triangle.Upper, t, new double[3])).ParamName);
    }
}
