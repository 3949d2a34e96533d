using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Whittle.Cli.Benchmarks;

/// <summary>One measured operation at one size: the median of several timed runs after a warm-up.</summary>
internal sealed record Measurement(string Case, int N, double MedianSeconds, double MinSeconds, double? Gflops);

/// <summary>Seconds of one action timed several times: median and minimum wall time, median process CPU time.</summary>
internal sealed record Timing(double Median, double Min, double CpuMedian);

/// <summary>
/// An operation to time at several sizes. <see cref="Prepare"/> builds the inputs for size n (untimed)
/// and returns the action to time; <see cref="Flops"/> gives its floating-point operation count, when
/// one is conventional.
/// </summary>
internal sealed record BenchmarkCase(string Key, string Title, IReadOnlyList<int> Sizes, Func<int, Action> Prepare, Func<int, double>? Flops = null);

/// <summary>Times benchmark cases: warm-up, then the median of <c>repeats</c> runs.</summary>
internal static partial class BenchmarkRunner
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

    /// <summary>Untimed runs of each action before <see cref="MeasurePair"/> times them: enough calls for the JIT's tier-up.</summary>
    private const int WarmUps = 3;

    /// <summary>
    /// Times two actions in turn (a, b, a, b, … after <see cref="WarmUps"/> untimed runs of each), so that a change in the machine's load
    /// during the measurement affects both alike. Besides wall time, records the process's CPU time (all threads,
    /// ONNX Runtime's included): work done, which other processes on a shared machine distort far less.
    /// </summary>
    public static (Timing A, Timing B) MeasurePair(Action a, Action b, int repeats, Action? afterEach = null)
    {
        for (int w = 0; w < WarmUps; w++)
        {
            a();
            b();
        }
        int n = Math.Max(1, repeats);
        double[] wa = new double[n], wb = new double[n], ca = new double[n], cb = new double[n];
        for (int r = 0; r < n; r++)
        {
            (wa[r], ca[r]) = TimeWithCpu(a);
            (wb[r], cb[r]) = TimeWithCpu(b);
            afterEach?.Invoke();
        }
        return (new Timing(Median(wa), wa.Min(), Median(ca)), new Timing(Median(wb), wb.Min(), Median(cb)));
    }

    private static (double Wall, double Cpu) TimeWithCpu(Action run)
    {
        double cpu = ProcessCpuSeconds();
        var sw = Stopwatch.StartNew();
        run();
        double wall = sw.Elapsed.TotalSeconds;
        return (wall, ProcessCpuSeconds() - cpu);
    }

    /// <summary>CPU seconds of all the process's threads: clock_gettime(CLOCK_PROCESS_CPUTIME_ID) on Linux (nanoseconds;
    /// <see cref="Process.TotalProcessorTime"/> there counts 10 ms ticks), else <see cref="Process.TotalProcessorTime"/>.</summary>
    private static double ProcessCpuSeconds()
    {
        if (OperatingSystem.IsLinux() && ClockGetTime(ClockProcessCpuTime, out var t) == 0) return t.Seconds + t.Nanoseconds * 1e-9;
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }

    private const int ClockProcessCpuTime = 2;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

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
