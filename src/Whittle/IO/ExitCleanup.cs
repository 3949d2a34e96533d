using System.Collections.Concurrent;

namespace Whittle.IO;

/// <summary>
/// Clean-ups (temporary files, staging folders) that must run however the process ends: when their owner is disposed
/// they are unregistered; at process exit, or when a command line calls <see cref="RunAll"/> from its Ctrl-C and SIGTERM
/// handlers (.NET does not raise <see cref="AppDomain.ProcessExit"/> when a signal terminates the process), every one
/// still registered runs.
/// </summary>
/// <remarks>Process-wide by nature: a signal ends the whole process, so the registry is the one static state here.</remarks>
public static class ExitCleanup
{
    private static readonly ConcurrentDictionary<long, Action> Pending = new();
    private static long _next;

    static ExitCleanup() => AppDomain.CurrentDomain.ProcessExit += (_, _) => RunAll();

    /// <summary>Registers <paramref name="cleanup"/>; disposing the result unregisters it without running it.</summary>
    public static IDisposable Register(Action cleanup)
    {
        ArgumentNullException.ThrowIfNull(cleanup);
        long id = Interlocked.Increment(ref _next);
        Pending[id] = cleanup;
        return new Registration(id);
    }

    /// <summary>Runs (once) and unregisters every pending clean-up; errors are swallowed (the process is ending).</summary>
    public static void RunAll()
    {
        foreach (var id in Pending.Keys)
            if (Pending.TryRemove(id, out var cleanup))
                try
                {
                    cleanup();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
                {
                    // Best effort: the next write to the same target removes what is left (TemporaryPath.RemoveStale).
                }
    }

    private sealed class Registration(long id) : IDisposable
    {
        public void Dispose() => Pending.TryRemove(id, out _);
    }
}
