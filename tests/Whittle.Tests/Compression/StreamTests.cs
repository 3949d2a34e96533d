using System.Diagnostics;
using Google.Protobuf;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Tests.Methods;
using TempFolder = Whittle.Tests.Onnx.TempFolder;
using Whittle.Runtime;

namespace Whittle.Tests.Compression;

/// <summary>Runs alone: the stage clock's memory figures are the whole process's, and no other test may allocate meanwhile.</summary>
[CollectionDefinition(nameof(StreamCollection), DisableParallelization = true)]
public sealed class StreamCollection;

/// <summary>
/// The calibration streams of the harness: where each segment's activations come from in each mode, the boundary cache
/// spilled to disk (same models, nothing left behind), cancellation mid-calibration, and the stage clock.
/// </summary>
[Collection(nameof(StreamCollection))]
public class StreamTests
{
    private const int Blocks = 3, Batches = 3, Batch = 2, Length = 7, Width = 16;

    private static OnnxModel Transformer() => TransformerGraphs.Build(Family.Llama, Blocks, d: Width, heads: 2, seed: 13);

    private static BatchSet Data() => TransformerGraphs.Batches(Batches, Batch, Length, mask: false, seed: 17);

    private static readonly CompressionBudget[] TwoBudgets = [CompressionBudget.KeepParameters(0.6), CompressionBudget.KeepParameters(0.8)];

    // Uniform ranks: they follow from the shapes alone, the same in both calibration modes.
    private static IReadOnlyList<CompressionResult> Whitened(CompressionJob job, CancellationToken cancellationToken = default) =>
        new WhitenedSvd(new LowRankBaselineOptions { Allocation = RankAllocation.Uniform }).Compress(job, TwoBudgets, cancellationToken);

    private static float[] Values(OnnxModel model, string initializer) => model.Graph.GetInitializer(initializer).ToArray<float>();

    /// <summary>The factor initializers of a factorized site (<c>b1.q.factor1</c>, <c>b1.q.factor2</c>), as (rows, cols, values).</summary>
    private static List<(int Rows, int Cols, float[] Values)> Factors(OnnxModel model, string site) =>
        [.. model.Proto.Graph.Initializer.Where(t => t.Name.StartsWith(site + ".factor", StringComparison.Ordinal)).OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => ((int)t.Dims[0], (int)t.Dims[1], Values(model, t.Name)))];

    /// <summary>Whether the small budget's factors are the leading corner of the large budget's (rank-c prefixes of one decomposition).</summary>
    private static bool Prefix(OnnxModel small, OnnxModel large, string site)
    {
        var a = Factors(small, site);
        var b = Factors(large, site);
        Assert.Equal(2, a.Count);
        Assert.Equal(2, b.Count);
        for (int f = 0; f < 2; f++)
            for (int i = 0; i < a[f].Rows; i++)
                for (int j = 0; j < a[f].Cols; j++)
                    if (a[f].Values[i * a[f].Cols + j] != b[f].Values[i * b[f].Cols + j]) return false;
        return true;
    }

    [Fact]
    public void SequentialCalibrationDepartsFromParallelAfterTheFirstCompressedBlock()
    {
        var model = Transformer();
        var data = Data();
        var sequential = Whitened(new CompressionJob(model, data));
        var parallel = Whitened(new CompressionJob(model, data) { Mode = CalibrationMode.Parallel });
        string[] roles = ["q", "k", "v", "o", "gate", "up", "down"];

        for (int b = 0; b < TwoBudgets.Length; b++)
        {
            var s = sequential[b];
            var p = parallel[b];
            // Ranks follow from the shapes alone: the same in both modes.
            Assert.Equal(p.Report.Sites.Select(x => (x.Site, x.NewSize)), s.Report.Sites.Select(x => (x.Site, x.NewSize)));
            foreach (var role in roles)
            {
                // Block 0 reads the embedding, which nothing changes: the same statistics, hence the same factors and errors.
                string first = $"b0.{role}";
                Assert.Equal(Factors(p.Model, first).SelectMany(f => f.Values), Factors(s.Model, first).SelectMany(f => f.Values));
                Assert.Equal(Site(p, first).MeasuredError, Site(s, first).MeasuredError);
                // Blocks 1 and 2 read what the compressed blocks before them write in sequential mode, the original's in parallel.
                for (int l = 1; l < Blocks; l++)
                {
                    string later = $"b{l}.{role}";
                    Assert.NotEqual(Factors(p.Model, later).SelectMany(f => f.Values), Factors(s.Model, later).SelectMany(f => f.Values));
                    Assert.NotEqual(Site(p, later).MeasuredError, Site(s, later).MeasuredError);
                }
            }
        }

        // Parallel: both budgets come from one decomposition per site (the smaller rank's factors are a prefix of the larger's).
        // Sequential: shared while the targets still compute what the original does (block 0), apart from then on.
        Assert.True(sequential[0].Report.Sites.Single(x => x.Site == "b1.q").NewSize < sequential[1].Report.Sites.Single(x => x.Site == "b1.q").NewSize);
        foreach (var role in roles)
        {
            for (int l = 0; l < Blocks; l++) Assert.True(Prefix(parallel[0].Model, parallel[1].Model, $"b{l}.{role}"), $"parallel b{l}.{role}");
            Assert.True(Prefix(sequential[0].Model, sequential[1].Model, $"b0.{role}"), $"sequential b0.{role}");
            for (int l = 1; l < Blocks; l++) Assert.False(Prefix(sequential[0].Model, sequential[1].Model, $"b{l}.{role}"), $"sequential b{l}.{role}");
        }
    }

    private static SiteReport Site(CompressionResult r, string name) => r.Report.Sites.Single(s => s.Site == name);

    // ------------------------------------------------------------------ spilling

    /// <summary>Open file descriptors of this process on (deleted) files in <paramref name="directory"/>.</summary>
    private static int OpenDeletedFiles(string directory)
    {
        if (!OperatingSystem.IsLinux()) return -1;
        int count = 0;
        foreach (var fd in new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos())
        {
            string? target;
            try { target = fd.LinkTarget; }
            catch (IOException) { continue; } // closed meanwhile
            if (target is not null && target.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal) && target.EndsWith(" (deleted)", StringComparison.Ordinal))
                count++;
        }
        return count;
    }

    /// <summary>Looks at the spill folder while calibration runs (called synchronously, on the compressing thread).</summary>
    private sealed class SpillWatcher(string directory, Action<CompressionProgress>? also = null) : IProgress<CompressionProgress>
    {
        public int MostEntries { get; private set; }

        public int MostOpenDeletedFiles { get; private set; }

        public int CalibrationReports { get; private set; }

        public void Report(CompressionProgress value)
        {
            if (value.Stage == Stages.Calibration) CalibrationReports++;
            if (Directory.Exists(directory)) MostEntries = Math.Max(MostEntries, Directory.GetFileSystemEntries(directory).Length);
            MostOpenDeletedFiles = Math.Max(MostOpenDeletedFiles, OpenDeletedFiles(directory));
            also?.Invoke(value);
        }
    }

    [Theory]
    [InlineData(CalibrationMode.Sequential)]
    [InlineData(CalibrationMode.Parallel)]
    public void SpillingEveryBoundaryToDiskGivesTheSameModelsAndLeavesNothingBehind(CalibrationMode mode)
    {
        var model = Transformer();
        var data = Data();
        using var dir = new TempFolder();
        string spill = Path.Combine(dir.Path, "spill");
        var watcher = new SpillWatcher(spill);

        var inMemory = Whitened(new CompressionJob(model, data) { Mode = mode, SpillDirectory = spill });
        Assert.All(inMemory, r => Assert.Equal(0, r.Report.Calibration!.SpilledBytes));
        Assert.False(Directory.Exists(spill) && Directory.GetFileSystemEntries(spill).Length > 0);

        var spilled = Whitened(new CompressionJob(model, data) { Mode = mode, BoundaryCacheBytes = 0, SpillDirectory = spill, Progress = watcher });
        for (int b = 0; b < TwoBudgets.Length; b++)
        {
            Assert.True(inMemory[b].Model.Proto.ToByteArray().AsSpan().SequenceEqual(spilled[b].Model.Proto.ToByteArray()),
                $"{mode}, {TwoBudgets[b]}: spilling changed the model");
            Assert.Equal(inMemory[b].Report.Sites.Select(s => s.MeasuredError), spilled[b].Report.Sites.Select(s => s.MeasuredError));
            // Every boundary of every batch went to disk at least once: 4 boundaries × 3 batches × 2 × 7 tokens × 16 floats.
            long boundaries = (long)(Blocks + 1) * Batches * Batch * Length * Width * sizeof(float);
            Assert.True(spilled[b].Report.Calibration!.SpilledBytes >= boundaries, $"spilled {spilled[b].Report.Calibration!.SpilledBytes} bytes, below {boundaries}");
        }
        Assert.True(watcher.CalibrationReports > 0);
        // The spill files are unlinked as soon as they are created: while calibration runs the folder is empty, yet the
        // process holds them open.
        Assert.Equal(0, watcher.MostEntries);
        if (OperatingSystem.IsLinux()) Assert.True(watcher.MostOpenDeletedFiles > 0, "no open spill file was seen while calibrating");
        Assert.True(Directory.Exists(spill));
        Assert.Empty(Directory.GetFileSystemEntries(spill));
        if (OperatingSystem.IsLinux()) Assert.Equal(0, OpenDeletedFiles(spill)); // and closed at the end
    }

    // ------------------------------------------------------------------ cancellation

    [Fact]
    public void CancellingDuringCalibrationThrowsAndClosesTheSpillFiles()
    {
        var model = Transformer();
        var data = Data();
        using var dir = new TempFolder();
        using var cts = new CancellationTokenSource();
        int openAtCancel = -1, reportsAfterCancel = 0;
        string? cancelledAt = null;
        var watcher = new SpillWatcher(dir.Path, p =>
        {
            if (cts.IsCancellationRequested)
            {
                if (p.Stage == Stages.Calibration) reportsAfterCancel++;
                return;
            }
            // Mid-calibration of block 1: the targets have forked, their streams spill.
            if (p.Stage == Stages.Calibration && p.Detail == "block 1")
            {
                cancelledAt = $"{p.Detail}, {p.Done} of {p.Total}";
                openAtCancel = OpenDeletedFiles(dir.Path);
                cts.Cancel();
            }
        });
        var job = new CompressionJob(model, data) { BoundaryCacheBytes = 0, SpillDirectory = dir.Path, Progress = watcher };
        Assert.ThrowsAny<OperationCanceledException>(() => Whitened(job, cts.Token));

        Assert.NotNull(cancelledAt);
        Assert.Equal(0, reportsAfterCancel); // no batch ran after the cancellation
        if (OperatingSystem.IsLinux())
        {
            Assert.True(openAtCancel > 0, $"no spill file was open when cancelling at {cancelledAt}");
            Assert.Equal(0, OpenDeletedFiles(dir.Path));
        }
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));

        // A token cancelled before the start: nothing is compressed.
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Whitened(new CompressionJob(model, data), cancelled.Token));
    }

    // ------------------------------------------------------------------ the stage clock

    [Fact]
    public void NestedStagesCountForTheInnerStageOnlySoStageTimesAddUpToTheWallTime()
    {
        using var clock = new StageClock();
        var wall = Stopwatch.StartNew();
        clock.Time("outer", () =>
        {
            Thread.Sleep(60);
            clock.Time("inner", () =>
            {
                Thread.Sleep(80);
                clock.Time("innermost", () => Thread.Sleep(40));
            });
            Thread.Sleep(60);
        });
        double elapsed = wall.Elapsed.TotalSeconds;
        var t = clock.Timings.ToDictionary(x => x.Stage, x => x);
        Assert.Equal(3, clock.Timings.Count);
        Assert.InRange(t["outer"].Seconds, 0.115, 0.115 + 0.1);
        Assert.InRange(t["inner"].Seconds, 0.075, 0.075 + 0.1);
        Assert.InRange(t["innermost"].Seconds, 0.035, 0.035 + 0.1);
        double sum = clock.Timings.Sum(x => x.Seconds);
        Assert.True(sum <= elapsed + 1e-6, $"stages add up to {sum} s, more than the {elapsed} s the call took");
        Assert.True(sum >= elapsed - 0.05, $"stages add up to {sum} s of the {elapsed} s the call took");
        Assert.All(clock.Timings, x => Assert.True(x.PeakWorkingSetBytes > 0, $"{x.Stage}: peak {x.PeakWorkingSetBytes}"));
    }

    [Fact]
    public void TimingsListTheStagesInTheOrderTheyFirstRan()
    {
        // StageClock.Timings: "in the order the stages first ran"; CompressionReport.Timings: "in the order run".
        using var clock = new StageClock();
        clock.Time("outer", () => clock.Time("inner", () => Thread.Sleep(1)));
        clock.Time("after", () => Thread.Sleep(1));
        Assert.Equal(["outer", "inner", "after"], clock.Timings.Select(x => x.Stage));
    }

    [Fact]
    public void TheHarnessNeverCountsATimedStageTwice()
    {
        // The joint low-rank search measures losses (a measurement stage) by calibration passes (a calibration stage) inside it.
        var model = TransformerGraphs.Build(Family.Llama, 1, d: 8, heads: 2, seed: 3);
        var data = TransformerGraphs.Batches(1, 2, 6, mask: false, seed: 12);
        var wall = Stopwatch.StartNew();
        var r = Assert.Single(new JointLowRank(new JointLowRankOptions { RankGrid = 2 }).Compress(new CompressionJob(model, data), [CompressionBudget.MethodDefault]));
        double elapsed = wall.Elapsed.TotalSeconds;
        Assert.Contains(r.Report.Timings, t => t.Stage == Stages.Measurement);
        Assert.Contains(r.Report.Timings, t => t.Stage == Stages.Calibration);
        double sum = r.Report.Timings.Sum(t => t.Seconds);
        Assert.True(sum <= elapsed, $"stages add up to {sum} s, more than the {elapsed} s the run took");
        Assert.All(r.Report.Timings, t => Assert.True(t.PeakWorkingSetBytes > 0, $"{t.Stage}: peak {t.PeakWorkingSetBytes}"));
    }

    [Fact]
    public void AStageThatHoldsTwoHundredMegabytesHasAPeakThatMuchHigher()
    {
        // Unmanaged memory: a fresh mapping whose touched pages are resident for sure. (A managed array could reuse heap
        // pages an earlier test left resident, and then raise no peak at all.)
        const int bytes = 200 << 20;
        // Earlier tests' sessions and arrays are released now, not by a finalizer in the middle of a stage.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var clock = new StageClock();
        clock.Time("idle", () => Thread.Sleep(100));
        long residentInside = 0;
        clock.Time("allocate", () =>
        {
            nint block = System.Runtime.InteropServices.Marshal.AllocHGlobal(bytes);
            try
            {
                for (int i = 0; i < bytes; i += 4096) System.Runtime.InteropServices.Marshal.WriteByte(block, i, 1); // resident, not just reserved
                residentInside = ProcessMemory.Resident();
                Thread.Sleep(100); // the sampler runs every 20 ms
            }
            finally
            {
                System.Runtime.InteropServices.Marshal.FreeHGlobal(block);
            }
        });
        clock.Time("after", () => Thread.Sleep(100));
        var t = clock.Timings.ToDictionary(x => x.Stage, x => x.PeakWorkingSetBytes);
        Assert.All(t.Values, v => Assert.True(v > 0));
        // At least what was resident during the stage (a sample may miss a few pages another thread released meanwhile).
        Assert.True(t["allocate"] >= residentInside - (16L << 20), $"peak {t["allocate"] >> 20} MB below the {residentInside >> 20} MB resident during the stage");
        Assert.True(t["allocate"] - t["idle"] >= 100L << 20,
            $"peak while holding {bytes >> 20} MB: {t["allocate"] >> 20} MB; idle: {t["idle"] >> 20} MB");
        Assert.True(t["allocate"] - t["idle"] <= 400L << 20, $"the allocating stage's peak rose by {(t["allocate"] - t["idle"]) >> 20} MB for {bytes >> 20} MB");
        // Freed: the next stage's peak is back down (the high-water mark of the process is not this stage's).
        Assert.True(t["allocate"] - t["after"] >= 100L << 20, $"after freeing: {t["after"] >> 20} MB; while holding: {t["allocate"] >> 20} MB");
    }
}
