using System.Runtime.InteropServices;

namespace Whittle.IO;

/// <summary>What a path names, without opening it (opening a named pipe blocks until someone writes to it).</summary>
public enum FileKind
{
    /// <summary>Nothing is there.</summary>
    Missing,

    /// <summary>A regular file.</summary>
    Regular,

    /// <summary>A folder.</summary>
    Directory,

    /// <summary>A symbolic link (only when links are not followed).</summary>
    Link,

    /// <summary>A named pipe (FIFO).</summary>
    Pipe,

    /// <summary>A character or block device.</summary>
    Device,

    /// <summary>A socket.</summary>
    Socket,
}

/// <summary>
/// Checks on the paths a user names, made before a file is opened or replaced: inputs must be regular files (a pipe
/// or device would block or never end), outputs must not replace a link, pipe, device or folder, and external data
/// must stay inside its model's folder once links are resolved.
/// </summary>
public static class FileChecks
{
    /// <summary>What <paramref name="path"/> is; <paramref name="followLinks"/> false reports a link as <see cref="FileKind.Link"/>.</summary>
    public static FileKind Kind(string path, bool followLinks = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return File.Exists(path) ? FileKind.Regular : Directory.Exists(path) ? FileKind.Directory : FileKind.Missing;
        Span<byte> status = stackalloc byte[256];
        int rc;
        unsafe
        {
            fixed (byte* s = status) rc = followLinks ? Native.Stat(path, s) : Native.LStat(path, s);
        }
        if (rc != 0) return FileKind.Missing;
        // FileStatus (System.Native's pal_io.h) starts with int32 Flags, int32 Mode; Mode carries S_IFMT.
        int mode = BitConverter.ToInt32(status[4..8]);
        return (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.Link,
            0x1000 => FileKind.Pipe,
            0x2000 or 0x6000 => FileKind.Device,
            0xC000 => FileKind.Socket,
            _ => FileKind.Regular,
        };
    }

    /// <summary>
    /// Throws unless <paramref name="path"/> is a regular file (links followed): missing files get
    /// <see cref="FileNotFoundException"/>, anything else (a folder, pipe, device, socket) an <see cref="IOException"/>
    /// saying what it is.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is for, for the message (<c>model</c>, <c>data file</c>).</param>
    public static void RequireRegularFile(string path, string what = "file")
    {
        var kind = Kind(path);
        if (kind == FileKind.Regular) return;
        if (kind == FileKind.Missing) throw new FileNotFoundException($"{path}: {what} not found.", path);
        throw new IOException($"{path}: the {what} is {Describe(kind)}, not a regular file; give a file.");
    }

    /// <summary>
    /// Throws when writing <paramref name="path"/> by rename would replace something that is not a regular file: a
    /// symbolic link (the link would become a file, its target untouched), a pipe, a device, a socket or a folder.
    /// </summary>
    public static void RequireReplaceableOutput(string path)
    {
        var kind = Kind(path, followLinks: false);
        if (kind is FileKind.Missing or FileKind.Regular) return;
        string detail = kind == FileKind.Link && new FileInfo(path).LinkTarget is { } target ? $" (to {target})" : "";
        throw new IOException($"{path}: the output path is {Describe(kind)}{detail}; Whittle writes a new file and renames it into place, "
            + "which would replace it. Give the path of a regular file.");
    }

    /// <summary>The path with every link resolved (realpath); the full path where that is not available.</summary>
    public static string RealPath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return full;
        nint resolved = Native.RealPath(full, 0);
        if (resolved == 0) return full;
        try
        {
            return Marshal.PtrToStringUTF8(resolved) ?? full;
        }
        finally
        {
            Native.Free(resolved);
        }
    }

    /// <summary>Whether <paramref name="path"/>, links resolved, lies inside <paramref name="folder"/>, links resolved.</summary>
    public static bool IsInside(string path, string folder)
    {
        string real = RealPath(path), root = RealPath(folder);
        string prefix = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        return real.StartsWith(prefix, StringComparison.Ordinal);
    }

    private static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a folder",
        FileKind.Link => "a symbolic link",
        FileKind.Pipe => "a named pipe",
        FileKind.Device => "a device",
        FileKind.Socket => "a socket",
        _ => "missing",
    };

    private static unsafe partial class Native
    {
        // System.Native ships with every .NET runtime on Unix; its stat wrappers fill a layout-stable FileStatus.
        [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat", CharSet = CharSet.Ansi, BestFitMapping = false)]
        public static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* status);

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_LStat", CharSet = CharSet.Ansi, BestFitMapping = false)]
        public static extern int LStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* status);

        [DllImport("libc", EntryPoint = "realpath")]
        public static extern nint RealPath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, nint resolved);

        [DllImport("libc", EntryPoint = "free")]
        public static extern void Free(nint pointer);
    }
}
