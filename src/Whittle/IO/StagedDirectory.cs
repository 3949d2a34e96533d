namespace Whittle.IO;

/// <summary>
/// A folder that appears whole or not at all: files are written into a hidden staging folder beside the target, which
/// <see cref="Commit"/> renames to the target; disposing without a commit deletes the staging folder. An existing
/// target is replaced only when asked to (and only at the commit, so a failed run leaves it as it was).
/// </summary>
public sealed class StagedDirectory : IDisposable
{
    private bool _committed;

    /// <summary>Creates the staging folder for <paramref name="target"/>.</summary>
    /// <param name="target">The folder to create.</param>
    /// <param name="replace">Whether an existing, non-empty <paramref name="target"/> may be replaced.</param>
    /// <exception cref="IOException">The target exists, is not empty, and <paramref name="replace"/> is false; or it is a file.</exception>
    public StagedDirectory(string target, bool replace)
    {
        Target = Path.GetFullPath(target);
        if (File.Exists(Target)) throw new IOException($"{Target} is a file, not a folder.");
        if (!replace && Directory.Exists(Target) && Directory.EnumerateFileSystemEntries(Target).Any())
            throw new IOException($"{Target} already exists and is not empty (and replacing it was not asked for).");
        string parent = Path.GetDirectoryName(Target) ?? throw new IOException($"{Target} has no parent folder.");
        Directory.CreateDirectory(parent);
        TemporaryPath.RemoveStale(Target, "partial");
        Folder = Path.Combine(parent, $".{Path.GetFileName(Target)}.{Environment.ProcessId}.{Guid.NewGuid():N}.partial");
        Directory.CreateDirectory(Folder);
    }

    /// <summary>The folder to write into until <see cref="Commit"/>.</summary>
    public string Folder { get; }

    /// <summary>The folder the files end up in.</summary>
    public string Target { get; }

    /// <summary>Moves the staged files to <see cref="Target"/>, replacing what was there (the constructor checked that may be done).</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        if (Directory.Exists(Target)) Directory.Delete(Target, recursive: true);
        Directory.Move(Folder, Target);
        _committed = true;
    }

    /// <summary>Deletes the staging folder unless committed.</summary>
    public void Dispose()
    {
        if (_committed) return;
        _committed = true;
        try
        {
            if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Keep the original exception; a stray hidden folder is the lesser problem.
        }
    }
}
