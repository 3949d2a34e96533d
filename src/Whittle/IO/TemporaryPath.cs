using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Whittle.IO;

/// <summary>
/// A hidden temporary file or folder beside a target, <c>.{name}.{pid}.{guid}.{suffix}</c>, that is never left behind:
/// deleted when disposed (unless <see cref="Keep"/> was called after it was renamed into place), deleted by
/// <see cref="ExitCleanup"/> when the process ends without unwinding (Ctrl-C, SIGTERM), and, when even that did not run (SIGKILL, power loss),
/// deleted by the next write to the same target because the process id in its name is gone.
/// </summary>
public sealed partial class TemporaryPath : IDisposable
{
    private readonly IDisposable _exit;
    private bool _done;

    private TemporaryPath(string path)
    {
        Path = path;
        _exit = ExitCleanup.Register(() => Delete(path));
    }

    /// <summary>The temporary path (not created: the caller creates the file or folder).</summary>
    public string Path { get; }

    /// <summary>A temporary path beside <paramref name="target"/> ending in <c>.{suffix}</c>, after removing stale ones of dead processes.</summary>
    /// <param name="target">The file or folder the temporary one will become.</param>
    /// <param name="suffix"><c>tmp</c> for a file, <c>partial</c> for a folder.</param>
    public static TemporaryPath Beside(string target, string suffix)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentException.ThrowIfNullOrEmpty(suffix);
        string full = System.IO.Path.GetFullPath(target);
        RemoveStale(full, suffix);
        string folder = System.IO.Path.GetDirectoryName(full)!;
        return new TemporaryPath(System.IO.Path.Combine(folder, $".{System.IO.Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.{suffix}"));
    }

    /// <summary>
    /// Deletes <c>.{name}.{pid}.{guid}.{suffix}</c> entries beside <paramref name="target"/> whose process is no longer
    /// running: what a killed earlier run left.
    /// </summary>
    public static void RemoveStale(string target, string suffix)
    {
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(target))!;
        if (!Directory.Exists(folder)) return;
        string prefix = $".{System.IO.Path.GetFileName(target)}.";
        foreach (var entry in Directory.EnumerateFileSystemEntries(folder, prefix + "*." + suffix))
        {
            var m = Stale().Match(System.IO.Path.GetFileName(entry)[prefix.Length..]);
            if (!m.Success || m.Groups[2].Value != suffix || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            if (IsRunning(pid)) continue;
            Delete(entry);
        }
    }

    /// <summary>The path was renamed into place (or is otherwise no longer temporary): nothing to delete.</summary>
    public void Keep()
    {
        _done = true;
        _exit.Dispose();
    }

    /// <summary>Deletes the file or folder unless <see cref="Keep"/> was called.</summary>
    public void Dispose()
    {
        if (_done) return;
        Keep();
        Delete(Path);
    }

    private static void Delete(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            else if (File.Exists(path)) File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Keep whatever error got us here; a stray hidden file is the lesser problem, and the next run removes it.
        }
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"^(\d+)\.[0-9a-f]{32}\.([a-z]+)$")]
    private static partial Regex Stale();
}
