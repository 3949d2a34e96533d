namespace Whittle.LinearAlgebra.Kernels;

/// <summary>
/// Runs <c>count</c> independent work items on up to <c>workers</c> threads, handing items out
/// dynamically (a busy core slows nobody) and telling the body which worker it runs on, so that a
/// worker can own scratch memory. Which worker runs an item never changes the result.
/// </summary>
internal static class ParallelWork
{
    /// <summary>The number of threads kernels use: one per core the process may run on.</summary>
    public static int DefaultWorkers => Environment.ProcessorCount;

    public static void For(int count, int workers, Action<int, int> body)
    {
        workers = Math.Clamp(Math.Min(workers, count), 1, Math.Max(1, count));
        if (workers == 1)
        {
            for (int i = 0; i < count; i++) body(0, i);
            return;
        }
        int next = -1;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, worker =>
        {
            int item;
            while ((item = Interlocked.Increment(ref next)) < count)
                body(worker, item);
        });
    }

    /// <summary>Splits 0..<paramref name="length"/> into about <paramref name="parts"/> ranges whose
    /// starts are multiples of <paramref name="granule"/>.</summary>
    public static int ChunkSize(int length, int parts, int granule)
    {
        int chunk = (length + parts - 1) / Math.Max(1, parts);
        return Math.Max(granule, (chunk + granule - 1) / granule * granule);
    }
}
