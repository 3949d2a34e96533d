using Whittle.Compression;
using Whittle.Runtime;

namespace Whittle.Tests.Compression;

public class HarnessTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void FractionsOutsideZeroToOneAreRejected(double f)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CompressionBudget.KeepMacs(f));
        Assert.Throws<ArgumentOutOfRangeException>(() => CompressionBudget.KeepParameters(f));
    }

    [Fact]
    public void BudgetsHaveFileNameLabels()
    {
        Assert.Equal("macs-0.5", CompressionBudget.KeepMacs(0.5).Label);
        Assert.Equal("params-0.8", CompressionBudget.KeepParameters(0.8).Label);
        Assert.Equal("tol-0.001", CompressionBudget.Tolerance(1e-3).Label);
        Assert.Equal("default", CompressionBudget.MethodDefault.Label);
        Assert.Throws<ArgumentOutOfRangeException>(() => CompressionBudget.Tolerance(0));
        Assert.Equal(CompressionBudget.KeepMacs(0.5), CompressionBudget.KeepMacs(0.5));
    }

    [Fact]
    public void StageClockAccumulatesRepeatedStagesInFirstRunOrder()
    {
        var clock = new StageClock();
        clock.Time(Stages.Calibration, () => Thread.Sleep(20));
        int v = clock.Time(Stages.Decomposition, () => 7);
        clock.Time(Stages.Calibration, () => Thread.Sleep(20));
        Assert.Equal(7, v);
        var t = clock.Timings;
        Assert.Equal([Stages.Calibration, Stages.Decomposition], t.Select(s => s.Stage));
        Assert.True(t[0].Seconds >= 0.035, $"calibration took {t[0].Seconds} s, expected the two sleeps summed");
        Assert.Throws<InvalidOperationException>(() => clock.Time<int>(Stages.Rewrite, () => throw new InvalidOperationException()));
        Assert.Contains(clock.Timings, s => s.Stage == Stages.Rewrite);
    }
}
