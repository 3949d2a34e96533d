using System.Diagnostics;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>
/// ONNX Runtime latency of several models on the same inputs, in the same run: warm-up runs, then timed rounds in
/// which every model runs once (the order alternating round by round, so neither always runs first), and the median.
/// Outputs are not copied out of ORT, so the time is the session's run.
/// </summary>
internal static class LatencyMeter
{
    public static LatencyFigure[] Measure(IReadOnlyList<ModelRunner> runners, IReadOnlyDictionary<string, HostTensor> inputs, int batchSize,
        int warmup, int repeats, Action step, CancellationToken cancellationToken)
    {
        for (int w = 0; w < warmup; w++)
            foreach (var r in runners) r.RunDiscarding(inputs);
        var times = runners.Select(_ => new double[repeats]).ToArray();
        for (int k = 0; k < repeats; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (int j = 0; j < runners.Count; j++)
            {
                int i = k % 2 == 0 ? j : runners.Count - 1 - j;
                long start = Stopwatch.GetTimestamp();
                runners[i].RunDiscarding(inputs);
                times[i][k] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            step();
        }
        return [.. times.Select(t => Figure(t, batchSize))];
    }

    private static LatencyFigure Figure(double[] times, int batchSize)
    {
        Array.Sort(times);
        int n = times.Length;
        double median = n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
        return new LatencyFigure(batchSize, median, times[0], times[^1], n);
    }
}
