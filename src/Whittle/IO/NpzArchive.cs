using System.IO.Compression;

namespace Whittle.IO;

/// <summary>
/// An open NumPy <c>.npz</c> archive (a zip of <c>name.npy</c> entries, stored or deflated, as
/// written by <c>numpy.savez</c> and <c>numpy.savez_compressed</c>). Arrays are read on demand.
/// Entries whose names do not end in <c>.npy</c> are ignored.
/// </summary>
public sealed class NpzArchive : IDisposable
{
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];

    private NpzArchive(string path, ZipArchive zip)
    {
        Path = path;
        _zip = zip;
        foreach (var entry in zip.Entries)
        {
            if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal)) continue;
            string name = entry.FullName[..^4];
            if (_entries.TryAdd(name, entry)) _names.Add(name);
        }
    }

    /// <summary>Opens the archive at <paramref name="path"/> for reading.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a zip archive; the message names the file.</exception>
    public static NpzArchive Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileChecks.RequireRegularFile(path, ".npz file");
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return new NpzArchive(path, new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false));
        }
        catch (InvalidDataException e)
        {
            stream.Dispose();
            NpyErrors.InvalidData(path, $"not a valid .npz (zip) archive: {e.Message}", e);
            return null!;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The archive's path, as given to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>The array names (entry names without <c>.npy</c>), in archive order.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>True when the archive holds an array called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>Reads the array called <paramref name="name"/> (entry <c>name.npy</c>).</summary>
    /// <exception cref="InvalidDataException">No such array, or its data is bad; the message names
    /// the archive and the array.</exception>
    public NpyArray Read(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_entries.TryGetValue(name, out var entry))
        {
            string have = _names.Count == 0 ? "it holds no arrays" : $"it holds {string.Join(", ", _names.Select(n => $"'{n}'"))}";
            NpyErrors.InvalidData(Path, $"no array '{name}' (zip entry '{name}.npy'); {have}.");
        }
        string source = $"{Path} (array '{name}')";
        using var stream = new Crc32Reader(entry.Open());
        var array = NpyFormat.Read(stream, source, entry.Length);
        if (stream.Crc != entry.Crc32)
            NpyErrors.InvalidData(source, $"the zip entry's CRC-32 is {entry.Crc32:x8}, but its data gives {stream.Crc:x8}: a corrupt archive.");
        return array;
    }

    /// <summary>Reads every array, keyed by name, in archive order.</summary>
    public IReadOnlyDictionary<string, NpyArray> ReadAll()
    {
        var all = new Dictionary<string, NpyArray>(_names.Count, StringComparer.Ordinal);
        foreach (string name in _names) all.Add(name, Read(name));
        return all;
    }

    /// <summary>Closes the archive file.</summary>
    public void Dispose() => _zip.Dispose();
}

/// <summary>Reads and writes NumPy <c>.npz</c> archives: named <see cref="NpyArray"/>s in one zip file.</summary>
public static class Npz
{
    /// <summary>Reads every array in the archive at <paramref name="path"/>, keyed by name.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a zip archive, or an entry is not a valid .npy array.</exception>
    public static IReadOnlyDictionary<string, NpyArray> Read(string path)
    {
        using var archive = NpzArchive.Open(path);
        return archive.ReadAll();
    }

    /// <summary>Reads the array called <paramref name="name"/> from the archive at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">No such array, or it is not a valid .npy array.</exception>
    public static NpyArray Read(string path, string name)
    {
        using var archive = NpzArchive.Open(path);
        return archive.Read(name);
    }

    /// <summary>The names of the arrays in the archive at <paramref name="path"/>, in archive order.</summary>
    public static IReadOnlyList<string> ListNames(string path)
    {
        using var archive = NpzArchive.Open(path);
        return archive.Names.ToArray();
    }

    /// <summary>
    /// Writes <paramref name="arrays"/> as an .npz archive at <paramref name="path"/>, atomically:
    /// into a temporary file in the same folder, then renamed over the target. If anything fails
    /// (including the enumeration of <paramref name="arrays"/>), the temporary file is deleted and any
    /// existing target is left as it was.
    /// </summary>
    /// <param name="path">Target file.</param>
    /// <param name="arrays">Named arrays; names must be non-empty and distinct. Each becomes entry <c>name.npy</c>.</param>
    /// <param name="compress">Deflate the entries (like <c>numpy.savez_compressed</c>) instead of storing
    /// them (like <c>numpy.savez</c>).</param>
    public static void Write(string path, IEnumerable<KeyValuePair<string, NpyArray>> arrays, bool compress = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(arrays);
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, array) in arrays)
            {
                if (string.IsNullOrEmpty(name)) ThrowHelper.Argument(nameof(arrays), "Every .npz array needs a non-empty name.");
                if (array is null) ThrowHelper.Argument(nameof(arrays), $"Array '{name}' is null.");
                if (!seen.Add(name)) ThrowHelper.Argument(nameof(arrays), $"Array name '{name}' appears twice; .npz names must be distinct.");
                var entry = zip.CreateEntry(name + ".npy", compress ? CompressionLevel.Optimal : CompressionLevel.NoCompression);
                using var entryStream = entry.Open();
                NpyFormat.Write(entryStream, array);
            }
        });
    }
}

/// <summary>A read-only stream that computes the CRC-32 of what is read through it (zip entries are checked against theirs).</summary>
internal sealed class Crc32Reader(Stream inner) : Stream
{
    private readonly System.IO.Hashing.Crc32 _crc = new();

    /// <summary>The CRC-32 of the bytes read so far.</summary>
    public uint Crc => _crc.GetCurrentHashAsUInt32();

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        _crc.Append(buffer[..n]);
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
