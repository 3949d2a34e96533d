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
        for (int r = 0; r < seconds.Length; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            seconds[r] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(seconds);
        double median = seconds.Length % 2 == 1
            ? seconds[seconds.Length / 2]
            : 0.5 * (seconds[seconds.Length / 2 - 1] + seconds[seconds.Length / 2]);
        return new Measurement(benchmark.Key, n, median, seconds[0], benchmark.Flops is null ? null : benchmark.Flops(n) / median / 1e9);
    }
}
