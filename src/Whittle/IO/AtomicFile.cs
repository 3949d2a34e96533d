namespace Whittle.IO;

/// <summary>Writes a file so that nobody ever sees half of it: into a temporary file beside the
/// target (<see cref="TemporaryPath"/>), flushed to disk, then renamed over the target. On failure, cancellation or exit
/// the temporary file is deleted and the target is untouched.</summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>, atomically.</summary>
    /// <param name="path">The target file; its folder must exist.</param>
    /// <param name="write">Writes the whole content to the stream it is given (a temporary file).</param>
    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        FileChecks.RequireReplaceableOutput(full);
        using var temp = TemporaryPath.Beside(full, "tmp");
        using (var stream = new FileStream(temp.Path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
        {
            write(stream);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp.Path, full, overwrite: true);
        temp.Keep();
    }

    /// <summary>Writes <paramref name="contents"/> as UTF-8 text to <paramref name="path"/>, atomically.</summary>
    public static void WriteAllText(string path, string contents) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            writer.Write(contents);
        });
}
