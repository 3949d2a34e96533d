using System.Diagnostics;

namespace Whittle.Compression;

/// <summary>Times the stages of one compression run; a stage run several times accumulates.</summary>
public sealed class StageClock
{
    private readonly List<(string Stage, TimeSpan Elapsed)> _stages = [];

    /// <summary>Runs <paramref name="work"/> as part of <paramref name="stage"/>.</summary>
    public T Time<T>(string stage, Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        long start = Stopwatch.GetTimestamp();
        try { return work(); }
        finally { Add(stage, Stopwatch.GetElapsedTime(start)); }
    }

    /// <summary>Runs <paramref name="work"/> as part of <paramref name="stage"/>.</summary>
    public void Time(string stage, Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        Time(stage, () => { work(); return 0; });
    }

    /// <summary>The time spent in each stage so far, in the order the stages first ran.</summary>
    public IReadOnlyList<StageTiming> Timings => [.. _stages.Select(s => new StageTiming(s.Stage, s.Elapsed.TotalSeconds))];

    private void Add(string stage, TimeSpan elapsed)
    {
        int i = _stages.FindIndex(s => s.Stage == stage);
        if (i < 0) _stages.Add((stage, elapsed));
        else _stages[i] = (stage, _stages[i].Elapsed + elapsed);
    }
}
