using System.Diagnostics;
using Spectre.Console;
using Whittle.Cli;

namespace Whittle.Fuzz;

/// <summary>
/// Runs a case through <see cref="WhittleCli.Run"/> on its own thread, in this process: the CLI's exit code, an escaping
/// exception, the deadline, the working set, and the files left in the case folder and the temporary folder decide
/// the <see cref="Outcome"/>.
/// </summary>
public sealed class CaseRunner(TimeSpan deadline, long workingSetLimit)
{
    private static readonly IAnsiConsole Silent = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null), Interactive = InteractionSupport.No });

    /// <summary>Runs <paramref name="c"/>.</summary>
    public CaseResult Run(FuzzCase c)
    {
        var before = Snapshot(c.Folder);
        var tempBefore = TempEntries();
        var error = new StringWriter();
        int? exit = null;
        Exception? escaped = null;
        var worker = new Thread(() =>
        {
            try
            {
                exit = WhittleCli.Run(c.Args, Silent, error, TextWriter.Null);
            }
            catch (Exception ex)
            {
                escaped = ex;
            }
        }, 16 << 20) { IsBackground = true, Name = $"fuzz {c.Kind}" };
        var clock = Stopwatch.StartNew();
        worker.Start();
        long peak = 0;
        while (!worker.Join(25))
        {
            peak = Math.Max(peak, Environment.WorkingSet);
            if (clock.Elapsed > deadline) return new CaseResult(c, Outcome.Hang, $"still running after {deadline.TotalSeconds:F0} s", clock.Elapsed.TotalSeconds, false);
        }
        peak = Math.Max(peak, Environment.WorkingSet);
        double seconds = clock.Elapsed.TotalSeconds;
        string message = error.ToString().Trim();

        if (escaped is OutOfMemoryException || peak > workingSetLimit)
            return new CaseResult(c, Outcome.OverMemory, $"working set {peak / (double)(1 << 20):F0} MiB; {escaped?.GetType().Name} {escaped?.Message}", seconds, false);
        if (escaped is not null) return new CaseResult(c, Outcome.Crash, escaped.ToString(), seconds, false);

        if (Escapes(c) is { } escape) return new CaseResult(c, Outcome.Escape, escape, seconds, false);
        var left = Snapshot(c.Folder).Except(before).Where(f => exit != 0 || !c.Outputs.Any(o => f == o || f == o + ".data")).ToList();
        left.AddRange(TempEntries().Except(tempBefore).Where(IsOurs));
        if (left.Count > 0) return new CaseResult(c, Outcome.Leftover, $"exit {exit}; left {string.Join(", ", left)}; {message}", seconds, false);

        if (exit == 0) return new CaseResult(c, Outcome.Accepted, "", seconds, false);
        bool named = c.Blame.Count == 0 || c.Blame.Any(b => message.Contains(b, StringComparison.Ordinal));
        return new CaseResult(c, Outcome.CleanError, message, seconds, named);
    }

    /// <summary>Every path below <paramref name="folder"/> (links not followed), relative.</summary>
    private static HashSet<string> Snapshot(string folder)
    {
        var files = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            files.Add(entry.FullName);
        return files;
    }

    private static HashSet<string> TempEntries() => [.. Directory.EnumerateFileSystemEntries(Path.GetTempPath())];

    /// <summary>Temporary entries this process's Whittle made (they carry its process id); other processes' files are not the case's.</summary>
    private static bool IsOurs(string path) =>
        Path.GetFileName(path) is var name && name.Contains("whittle", StringComparison.OrdinalIgnoreCase)
        && name.Contains(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    /// <summary>What the case did outside its folder: a link it was given replaced, or an outside file's text in an output.</summary>
    private static string? Escapes(FuzzCase c)
    {
        foreach (var entry in new DirectoryInfo(c.Folder).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            if (entry.Name.StartsWith("link-", StringComparison.Ordinal) && entry.LinkTarget is null && Whittle.IO.FileChecks.Kind(entry.FullName) == Whittle.IO.FileKind.Regular)
                return $"the link or pipe {entry.FullName} was replaced by a regular file";
            if (entry.LinkTarget is null && entry.Length < 64 << 20 && c.Outputs.Any(o => entry.FullName.StartsWith(o, StringComparison.Ordinal))
                && File.ReadAllText(entry.FullName).Contains(Seeds.OutsideSecret, StringComparison.Ordinal))
                return $"{entry.FullName} holds bytes of a file outside the model's folder";
        }
        return null;
    }
}
