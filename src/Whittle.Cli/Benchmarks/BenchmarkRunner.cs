using System.Diagnostics;

namespace Whittle.Cli.Benchmarks;

/// <summary>One measured operation at one size: the median of several timed runs after a warm-up.</summary>
internal sealed record Measurement(string Case, int N, double MedianSeconds, double MinSeconds, double? Gflops);

/// <summary>
/// An operation to time at several sizes. <see cref="Prepare"/> builds the inputs for size n (untimed)
/// and returns the action to time; <see cref="Flops"/> gives its floating-point operation count, when
/// one is conventional.
/// </summary>
internal sealed record BenchmarkCase(string Key, string Title, IReadOnlyList<int> Sizes, Func<int, Action> Prepare, Func<int, double>? Flops = null);

/// <summary>Times benchmark cases: warm-up, then the median of <c>repeats</c> runs.</summary>
internal static class BenchmarkRunner
{
    public static Measurement Measure(BenchmarkCase benchmark, int n, int repeats)
    {
        var run = benchmark.Prepare(n);
        run(); // warm-up: JIT, page faults, thread pool
        var seconds = new double[Math.Max(1, repeats)];
        for (int r = 0; r < seconds.Length; r++) seconds[r] = Time(run);
        double median = Median(seconds);
        return new Measurement(benchmark.Key, n, median, seconds.Min(), benchmark.Flops is null ? null : benchmark.Flops(n) / median / 1e9);
    }

    /// <summary>
    /// Times two actions in turn (a, b, a, b, … after one warm-up of each), so that a change in the machine's load
    /// during the measurement affects both alike; returns the median and minimum seconds of each.
    /// </summary>
    public static ((double Median, double Min) A, (double Median, double Min) B) MeasurePair(Action a, Action b, int repeats, Action? afterEach = null)
    {
        a();
        b();
        var ta = new double[Math.Max(1, repeats)];
        var tb = new double[ta.Length];
        for (int r = 0; r < ta.Length; r++)
        {
            ta[r] = Time(a);
            tb[r] = Time(b);
            afterEach?.Invoke();
        }
        return ((Median(ta), ta.Min()), (Median(tb), tb.Min()));
    }

    private static double Time(Action run)
    {
        var sw = Stopwatch.StartNew();
        run();
        return sw.Elapsed.TotalSeconds;
    }

    private static double Median(double[] seconds)
    {
        var sorted = seconds.Order().ToArray();
        return sorted.Length % 2 == 1
            ? sorted[sorted.Length / 2]
            : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
    }
}
