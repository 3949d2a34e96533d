// Wall time and peak working set of the stages of one compression run.
//
// Time: a stage run inside another (a calibration pass inside a measurement) counts for the inner stage only, so the
// stages' times add up to the run's wall time.
//
// Peak memory: a sampler reads the process's resident set every SampleInterval and raises the peak of every stage
// running at that moment (on a thread of its own, so a busy thread pool cannot delay it); when the process's high-water mark (VmHWM, which /usr/bin/time -v reports) rises during a
// stage, that exact figure is the stage's peak. The high-water mark is read, never reset, so external measurements
// stay valid.

using System.Diagnostics;

namespace Whittle.Runtime;

/// <summary>Times the stages of one compression run and records each one's peak working set; a stage run several times accumulates.</summary>
public sealed class StageClock : IDisposable
{
    /// <summary>How often the resident set is sampled.</summary>
    public static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(20);

    private readonly Lock _gate = new();
    private readonly List<(string Stage, TimeSpan Elapsed, long Peak)> _stages = [];
    private readonly List<Frame> _running = [];
    private readonly Thread _sampler;
    private readonly ManualResetEventSlim _stop = new();

    private sealed class Frame(string stage, long startHighWater)
    {
        public string Stage { get; } = stage;
        public long StartHighWater { get; } = startHighWater;
        public long Peak { get; set; }
        public TimeSpan Nested { get; set; } // time spent in stages run inside this one
    }

    /// <summary>A clock with no stage run yet; its sampler runs until <see cref="Dispose"/>.</summary>
    public StageClock()
    {
        _sampler = new Thread(() =>
        {
            while (!_stop.Wait(SampleInterval)) Sample();
        }) { IsBackground = true, Name = "Whittle stage clock", Priority = ThreadPriority.AboveNormal };
        _sampler.Start();
    }

    /// <summary>Runs <paramref name="work"/> as part of <paramref name="stage"/> (on the calling thread; stages nest).</summary>
    public T Time<T>(string stage, Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var frame = new Frame(stage, ProcessMemory.HighWater());
        lock (_gate)
        {
            _running.Add(frame);
            Add(stage, TimeSpan.Zero, 0); // its place in the list: the order stages first ran
        }
        long start = Stopwatch.GetTimestamp();
        try { return work(); }
        finally
        {
            var elapsed = Stopwatch.GetElapsedTime(start);
            long now = ProcessMemory.Resident(), high = ProcessMemory.HighWater();
            lock (_gate)
            {
                int at = _running.IndexOf(frame);
                _running.RemoveAt(at);
                if (at > 0) _running[at - 1].Nested += elapsed;
                long peak = Math.Max(frame.Peak, now);
                if (high > frame.StartHighWater) peak = Math.Max(peak, high);
                Add(stage, elapsed - frame.Nested, peak);
            }
        }
    }

    /// <summary>Runs <paramref name="work"/> as part of <paramref name="stage"/>.</summary>
    public void Time(string stage, Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        Time(stage, () => { work(); return 0; });
    }

    /// <summary>The time and peak working set of each stage so far, in the order the stages first ran.</summary>
    public IReadOnlyList<StageTiming> Timings
    {
        get
        {
            lock (_gate) return [.. _stages.Select(s => new StageTiming(s.Stage, s.Elapsed.TotalSeconds) { PeakWorkingSetBytes = s.Peak })];
        }
    }

    /// <summary>Stops the sampler.</summary>
    public void Dispose()
    {
        if (_stop.IsSet) return;
        _stop.Set();
        _sampler.Join();
        _stop.Dispose();
    }

    private void Sample()
    {
        long rss = ProcessMemory.Resident();
        lock (_gate)
            foreach (var f in _running) f.Peak = Math.Max(f.Peak, rss);
    }

    private void Add(string stage, TimeSpan elapsed, long peak)
    {
        int i = _stages.FindIndex(s => s.Stage == stage);
        if (i < 0) _stages.Add((stage, elapsed, peak));
        else _stages[i] = (stage, _stages[i].Elapsed + elapsed, Math.Max(_stages[i].Peak, peak));
    }
}

/// <summary>The process's resident set and its high-water mark, from /proc where there is one.</summary>
public static class ProcessMemory
{
    private static readonly long PageSize = Environment.SystemPageSize;

    /// <summary>Bytes resident now.</summary>
    public static long Resident()
    {
        try
        {
            // statm: size resident shared … in pages.
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) * PageSize;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return Environment.WorkingSet;
        }
    }

    /// <summary>The most bytes resident at once since the process started (VmHWM).</summary>
    public static long HighWater()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException) { }
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64;
    }
}

/// <summary>Wall time and peak working set of one stage.</summary>
/// <param name="Stage">The stage (e.g. <c>calibration</c>).</param>
/// <param name="Seconds">Seconds.</param>
public sealed record StageTiming(string Stage, double Seconds)
{
    /// <summary>The most bytes the process held resident during the stage (0 when not measured).</summary>
    public long PeakWorkingSetBytes { get; init; }
}
