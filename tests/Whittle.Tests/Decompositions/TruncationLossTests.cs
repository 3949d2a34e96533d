using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.Decompositions;

public class TruncationLossTests
{
    private static double Inner(MatrixView<double> a, MatrixView<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++) s += a[i, j] * b[i, j];
        return s;
    }

    /// <summary>Ŵ_c − W, with Ŵ_c = Σ_{j&lt;c} σ_j·u_j·v_jᵀ written out term by term.</summary>
    private static Matrix<double> TruncationStep(SvdResult<double> svd, MatrixView<double> w, int c) =>
        Matrix<double>.Create(w.Rows, w.Cols, (i, k) =>
        {
            double s = 0;
            for (int j = 0; j < c; j++) s += svd.S[j] * svd.U[i, j] * svd.Vt[j, k];
            return s - w[i, k];
        });

    [Theory]
    [InlineData(14, 9)]
    [InlineData(9, 14)]
    public void MatchesBruteForceForEveryRank(int m, int n)
    {
        var w = RandomMatrix.Gaussian<double>(m, n, seed: m);
        var g = RandomMatrix.Gaussian<double>(m, n, seed: 100 + n);
        var svd = Svd.Compute<double>(w);
        var delta = TruncationLoss.FirstOrderLossChange(svd, g);
        int r = Math.Min(m, n);
        Assert.Equal(r + 1, delta.Length);
        Assert.Equal(0, delta[r]);
        double scale = MatrixNorms.Frobenius<double>(w) * MatrixNorms.Frobenius<double>(g);
        for (int c = 0; c <= r; c++)
            Assert.Equal(Inner(g, TruncationStep(svd, w, c)), delta[c], 1e-12 * scale);
        Assert.Equal(-Inner(g, w), delta[0], 1e-12 * scale);

        // The overload taking W computes the same values.
        var direct = TruncationLoss.FirstOrderLossChange<double>(w, g);
        for (int c = 0; c <= r; c++) Assert.Equal(delta[c], direct[c], 1e-12 * scale);
    }

    [Fact]
    public void MatchesTheFiniteDifferenceOfAQuadraticLoss()
    {
        // f(W) = ½‖W·X − Y‖², ∇f = (W·X − Y)·Xᵀ. Along δ = Ŵ_c − W:
        // f(W + tδ) − f(W) = t·⟨∇f, δ⟩ + ½t²·‖δ·X‖², so the difference quotient tends to Δ[c] linearly in t,
        // and at t = 1 the exact change is Δ[c] + ½‖δ·X‖².
        int m = 12, n = 10, tokens = 40;
        var w = RandomMatrix.Gaussian<double>(m, n, seed: 1);
        var x = RandomMatrix.Gaussian<double>(n, tokens, seed: 2);
        var y = Blas.Multiply<double>(RandomMatrix.Gaussian<double>(m, n, seed: 3), x);
        double Loss(MatrixView<double> v)
        {
            var res = Blas.Multiply(v, x.View);
            double s = 0;
            for (int i = 0; i < m; i++)
                for (int t = 0; t < tokens; t++) { double d = res[i, t] - y[i, t]; s += d * d; }
            return 0.5 * s;
        }
        var residual = Blas.Multiply<double>(w, x);
        for (int i = 0; i < m; i++)
            for (int t = 0; t < tokens; t++) residual[i, t] -= y[i, t];
        var grad = Blas.Multiply<double>(residual, x.Transpose());

        var svd = Svd.Compute<double>(w);
        var delta = TruncationLoss.FirstOrderLossChange(svd, grad);
        double f0 = Loss(w);
        for (int c = 0; c < n; c++)
        {
            var step = TruncationStep(svd, w, c);
            double curvature = MatrixNorms.Frobenius<double>(Blas.Multiply(step.View, x.View));
            curvature *= curvature;
            double scale = Math.Abs(delta[c]) + curvature;

            // Forward differences: the error is exactly ½t·‖δX‖² (up to rounding) and shrinks with t.
            foreach (double t in new[] { 1e-2, 1e-3, 1e-4 })
            {
                var moved = Matrix<double>.Create(m, n, (i, j) => w[i, j] + t * step[i, j]);
                double quotient = (Loss(moved) - f0) / t;
                Assert.Equal(delta[c] + 0.5 * t * curvature, quotient, 1e-6 * scale);
            }
            // Central difference: exact for a quadratic.
            {
                double t = 1e-3;
                var plus = Matrix<double>.Create(m, n, (i, j) => w[i, j] + t * step[i, j]);
                var minus = Matrix<double>.Create(m, n, (i, j) => w[i, j] - t * step[i, j]);
                Assert.Equal(delta[c], (Loss(plus) - Loss(minus)) / (2 * t), 1e-7 * scale);
            }
            // Full step: f(Ŵ_c) − f(W) = Δ[c] + ½‖δX‖².
            var truncated = Matrix<double>.Create(m, n, (i, j) => w[i, j] + step[i, j]);
            Assert.Equal(delta[c] + 0.5 * curvature, Loss(truncated) - f0, 1e-10 * (scale + f0));
        }
    }

    [Fact]
    public void WorksInFloat()
    {
        var w = RandomMatrix.Gaussian<float>(10, 8, seed: 5);
        var g = RandomMatrix.Gaussian<float>(10, 8, seed: 6);
        var delta = TruncationLoss.FirstOrderLossChange<float>(w, g);
        var wd = Matrix<double>.Create(10, 8, (i, j) => w[i, j]);
        var gd = Matrix<double>.Create(10, 8, (i, j) => g[i, j]);
        var reference = TruncationLoss.FirstOrderLossChange<double>(wd, gd);
        double scale = MatrixNorms.Frobenius<double>(wd) * MatrixNorms.Frobenius<double>(gd);
        for (int c = 0; c <= 8; c++) Assert.Equal(reference[c], delta[c], 1e-5 * scale);
    }

    [Fact]
    public void RejectsAGradientOfTheWrongShape()
    {
        var w = RandomMatrix.Gaussian<double>(6, 5, seed: 1);
        Assert.Equal("gradient", Assert.ThrowsAny<ArgumentException>(() => TruncationLoss.FirstOrderLossChange<double>(w, new Matrix<double>(5, 6))).ParamName);
        Assert.Equal("gradient", Assert.ThrowsAny<ArgumentException>(() => TruncationLoss.FirstOrderLossChange(Svd.Compute<double>(w), new Matrix<double>(6, 4))).ParamName);
    }
}
