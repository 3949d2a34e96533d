using Whittle.Evaluation;

namespace Whittle.Tests.Evaluation;

/// <summary>Every metric on hand-made logits whose values are written in closed form here.</summary>
public class LogitMetricsTests
{
    private static readonly float Ln3 = MathF.Log(3);

    [Fact]
    public void LogSumExpIsStableAndExact()
    {
        // log(e^0 + e^ln3) = ln 4.
        Assert.Equal(Math.Log(4), LogitMetrics.LogSumExp([0, Ln3]), 1e-7);
        // No overflow: log(2 e^1000) = 1000 + ln 2.
        Assert.Equal(1000 + Math.Log(2), LogitMetrics.LogSumExp([1000, 1000]), 1e-12);
        Assert.Equal(0, LogitMetrics.LogSumExp([float.NegativeInfinity, 0]));
        Assert.Equal(double.NegativeInfinity, LogitMetrics.LogSumExp([float.NegativeInfinity, float.NegativeInfinity]));
        Assert.Equal(double.NegativeInfinity, LogitMetrics.LogSumExp([]));
        Assert.True(double.IsNaN(LogitMetrics.LogSumExp([0, float.NaN])));
    }

    [Fact]
    public void CrossEntropyOfATwoClassRow()
    {
        // softmax([0, ln 3]) = (1/4, 3/4).
        Assert.Equal(Math.Log(4.0 / 3), LogitMetrics.CrossEntropy([0, Ln3], 1), 1e-7);
        Assert.Equal(Math.Log(4), LogitMetrics.CrossEntropy([0, Ln3], 0), 1e-7);
        // Large logits: −log softmax = 2000 − 0 would overflow a naive exp.
        Assert.Equal(2000, LogitMetrics.CrossEntropy([1000, -1000], 1), 1e-9);
        Assert.Throws<ArgumentOutOfRangeException>(() => LogitMetrics.CrossEntropy([0, 1], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => LogitMetrics.CrossEntropy([0, 1], -1));
    }

    [Fact]
    public void ArgMaxTakesTheFirstMaximumAndSkipsNaN()
    {
        Assert.Equal(1, LogitMetrics.ArgMax([0, 3, 3, 1]));
        Assert.Equal(2, LogitMetrics.ArgMax([float.NaN, -5, 2, float.NaN]));
        Assert.Equal(0, LogitMetrics.ArgMax([float.NaN, float.NaN]));
        Assert.Equal(0, LogitMetrics.ArgMax([float.NegativeInfinity]));
        Assert.Throws<ArgumentException>(() => LogitMetrics.ArgMax([]));
    }

    [Fact]
    public void KlDivergenceInClosedForm()
    {
        // p = (1/4, 3/4), q = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2).
        double expected = 0.25 * Math.Log(0.5) + 0.75 * Math.Log(1.5);
        Assert.Equal(expected, LogitMetrics.KlDivergence([0, Ln3], [0, 0]), 1e-7);
        // Softmax ignores shifts of the logits.
        Assert.Equal(expected, LogitMetrics.KlDivergence([10, 10 + Ln3], [-7, -7]), 1e-6);
        // KL is not symmetric: KL(q ‖ p) = 1/2 ln 2 + 1/2 ln(2/3).
        Assert.Equal(0.5 * Math.Log(2) + 0.5 * Math.Log(2.0 / 3), LogitMetrics.KlDivergence([0, 0], [0, Ln3]), 1e-7);
        // Identical rows: exactly zero.
        Assert.Equal(0, LogitMetrics.KlDivergence([1.5f, -2, 0.25f], [1.5f, -2, 0.25f]));
        // A class the reference gives probability 0 adds nothing: p = (0, 1), q = (1/2, 1/2) → ln 2.
        Assert.Equal(Math.Log(2), LogitMetrics.KlDivergence([float.NegativeInfinity, 0], [0, 0]), 1e-12);
        // The model rules out a class the reference does not: +∞.
        Assert.Equal(double.PositiveInfinity, LogitMetrics.KlDivergence([0, 0], [float.NegativeInfinity, 0]));
        // Extreme logits stay finite: p ≈ (1, e^-1000), q ≈ (e^-1000, 1) → KL ≈ 1000.
        Assert.Equal(1000, LogitMetrics.KlDivergence([1000, 0], [0, 1000]), 1e-9);
        Assert.Throws<ArgumentException>(() => LogitMetrics.KlDivergence([0, 1], [0, 1, 2]));
    }

    [Fact]
    public void CosineSimilarityAndItsZeroConventions()
    {
        Assert.Equal(0, LogitMetrics.CosineSimilarity([1, 0], [0, 1]));
        Assert.Equal(1, LogitMetrics.CosineSimilarity([1, 2], [2, 4]), 1e-15);
        Assert.Equal(-1, LogitMetrics.CosineSimilarity([1, 0], [-1, 0]));
        Assert.Equal(24.0 / 25, LogitMetrics.CosineSimilarity([3, 4], [4, 3]), 1e-15);
        Assert.Equal(1, LogitMetrics.CosineSimilarity([0, 0], [0, 0]));
        Assert.Equal(0, LogitMetrics.CosineSimilarity([0, 0], [1, 0]));
        Assert.Throws<ArgumentException>(() => LogitMetrics.CosineSimilarity([1], [1, 2]));
    }

    [Fact]
    public void RelativeErrorAndDifferences()
    {
        // ‖(1,1) − (1,0)‖ / ‖(1,0)‖ = 1; ‖(3,4.5) − (3,4)‖ / ‖(3,4)‖ = 0.5 / 5; ‖(3,4) − (0,0)‖² = 25.
        Assert.Equal(1, LogitMetrics.RelativeError([1, 1], [1, 0]));
        Assert.Equal(0.1, LogitMetrics.RelativeError([3, 4.5f], [3, 4]), 1e-15);
        Assert.Equal(0, LogitMetrics.RelativeError([2, -1], [2, -1]));
        Assert.Equal(0, LogitMetrics.RelativeError([0, 0], [0, 0]));
        Assert.Equal(double.PositiveInfinity, LogitMetrics.RelativeError([1, 0], [0, 0]));
        Assert.Equal(25, LogitMetrics.SquaredDistance([3, 4], [0, 0]));
        Assert.Equal(25, LogitMetrics.SquaredNorm([-3, 4]));
        Assert.Equal(2.5, LogitMetrics.MaxAbsDifference([1, -2, 0], [0.5f, 0.5f, 0]));
        Assert.True(double.IsNaN(LogitMetrics.MaxAbsDifference([float.NaN], [0])));
    }

    [Fact]
    public void AgreementAndFlipsCountByHand()
    {
        int[] reference = [0, 1, 2, 1];
        int[] model = [0, 2, 2, 0];
        long[] labels = [0, 1, 1, 0];
        // Same prediction at positions 0 and 2.
        Assert.Equal(2, LogitMetrics.Agreements(reference, model));
        // Reference correct at 0, 1; model correct at 0, 3: position 1 lost, position 3 gained.
        Assert.Equal(new FlipCounts(1, 1), LogitMetrics.Flips(reference, model, labels));
        Assert.Equal(new FlipCounts(0, 0), LogitMetrics.Flips(reference, reference, labels));
        Assert.Equal(new FlipCounts(3, 5), new FlipCounts(1, 2) + new FlipCounts(2, 3));
        Assert.Throws<ArgumentException>(() => LogitMetrics.Flips(reference, model, [0, 1]));
        Assert.Throws<ArgumentException>(() => LogitMetrics.Agreements(reference, [0]));
    }

    [Fact]
    public void PerplexityIsExpOfTheMeanNll()
    {
        // Two tokens of probability 1/4 each: mean NLL ln 4, perplexity 4.
        Assert.Equal(4, LogitMetrics.Perplexity(2 * Math.Log(4), 2), 1e-12);
        // A uniform model over V classes has perplexity V.
        float[] uniform = new float[256];
        Assert.Equal(256, LogitMetrics.Perplexity(3 * LogitMetrics.CrossEntropy(uniform, 17), 3), 1e-9);
        Assert.Throws<ArgumentOutOfRangeException>(() => LogitMetrics.Perplexity(1, 0));
    }
}
