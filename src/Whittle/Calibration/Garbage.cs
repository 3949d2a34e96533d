namespace Whittle.Calibration;

/// <summary>
/// Keeps the working set near what the memory contracts promise. Decompositions and segment runs allocate large
/// temporary arrays (a whitened SVD of one 2048 × 768 weight: ~150 MB in float64), and the collector, with memory to
/// spare, lets such garbage pile up to gigabytes before a full collection. After each unit of work the harness
/// collects once more than <see cref="Threshold"/> bytes were allocated since the last time. One per run.
/// </summary>
internal sealed class Garbage
{
    /// <summary>Bytes allocated between two collections at most.</summary>
    public const long Threshold = 256L << 20;

    private long _collectedAt;

    /// <summary>Collects (blocking, every generation) when more than <see cref="Threshold"/> bytes were allocated since the last collection here.</summary>
    public void Collect()
    {
        long allocated = GC.GetTotalAllocatedBytes();
        if (allocated - Interlocked.Read(ref _collectedAt) < Threshold) return;
        Interlocked.Exchange(ref _collectedAt, allocated);
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
    }
}
