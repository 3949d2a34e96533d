using Whittle.Calibration;
using Whittle.LinearAlgebra;
using Whittle.Runtime;

namespace Whittle.Tests.Calibration;

/// <summary>Statistics of token activations leave out padded positions (attention mask 0).</summary>
public class TokenMaskTests
{
    // Two sequences of three positions, four features; position 2 of the first and 1–2 of the second are padding.
    private static readonly float[] X = [.. Enumerable.Range(0, 2 * 3 * 4).Select(i => (float)Math.Sin(0.7 * i + 0.3) * (1 + i % 5))];
    private static readonly long[] Mask = [1, 1, 0, 1, 0, 0];

    private static StatisticBatch Batch(long[] mask, float[] values, params int[] shape) =>
        new(0, new Dictionary<string, HostTensor> { ["attention_mask"] = HostTensor.Int64(mask, 2, 3) }, null,
            new Dictionary<string, TapValues> { ["x"] = new TapValues(values, shape) });

    /// <summary>ZᵀZ over the given rows of X viewed as 6 × 4, written out.</summary>
    private static double[,] Gram(IEnumerable<int> rows)
    {
        var g = new double[4, 4];
        foreach (int r in rows)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) g[i, j] += (double)X[r * 4 + i] * X[r * 4 + j];
        return g;
    }

    private static void AssertGram(double[,] expected, Matrix<double> actual)
    {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) Assert.Equal(expected[i, j], actual[i, j], 1e-9 * (1 + Math.Abs(expected[i, j])));
    }

    [Fact]
    public void GramRFactorAndRms_CountOnlyRealTokens()
    {
        var batch = Batch(Mask, X, 2, 3, 4);
        var gram = new GramStatistic("x");
        var r = new RFactorStatistic("x");
        var rms = new RmsStatistic("x");
        foreach (IBatchStatistic s in new IBatchStatistic[] { gram, r, rms }) s.AddBatch(batch);

        var expected = Gram([0, 1, 3]);
        var g = gram.Finish();
        Assert.Equal(3, g.Rows);
        AssertGram(expected, g.Gram);
        var factor = r.Finish();
        Assert.Equal(3, factor.Rows);
        AssertGram(expected, Blas.Multiply(factor.R.View.Transpose(), factor.R.View));
        var f = rms.Finish();
        Assert.Equal(3, f.Rows);
        for (int j = 0; j < 4; j++) Assert.Equal(expected[j, j], f.SumOfSquares[j], 1e-9);
    }

    [Fact]
    public void NoPadding_OrValuesNotPerToken_UseEveryRow()
    {
        var all = new GramStatistic("x");
        all.AddBatch(Batch([1, 1, 1, 1, 1, 1], X, 2, 3, 4));
        AssertGram(Gram(Enumerable.Range(0, 6)), all.Finish().Gram);

        // [2, 12]: one row per sequence, not per token; the mask does not apply.
        var pooled = new GramStatistic("x");
        pooled.AddBatch(Batch(Mask, X, 2, 12));
        Assert.Equal(2, pooled.Finish().Rows);
    }
}
