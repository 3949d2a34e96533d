// The values of every calibration batch at one point of a model's segments (the boundary and the side values later
// segments read), kept in memory up to a shared limit and spilled to a temporary file beyond it.
//
// Contract
//   Write once, read many: Add stores a tensor for (batch, name); Get returns it (a fresh copy when spilled). A
//   SpillBudget shared by the caches of one run counts the bytes they hold in memory; a tensor that would take the
//   total past the limit goes to this cache's spill file instead. The spill file is created on first use in the spill
//   folder and unlinked at once (Unix) or marked delete-on-close (Windows): it disappears when the cache is disposed,
//   and on any exit of the process, Ctrl-C and crashes included; nothing is left behind.

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>The bytes the boundary caches of one run may hold in memory together.</summary>
/// <param name="limit">Bytes; beyond them tensors are spilled to disk.</param>
/// <param name="directory">Where spill files go (the system's temporary folder when null).</param>
internal sealed class SpillBudget(long limit, string? directory)
{
    private long _held;

    public long Limit { get; } = limit;

    public string Directory { get; } = directory ?? Path.GetTempPath();

    /// <summary>Bytes written to spill files so far (all caches).</summary>
    public long Spilled { get; private set; }

    public bool TryTake(long bytes)
    {
        if (_held + bytes > Limit) return false;
        _held += bytes;
        return true;
    }

    public void Release(long bytes) => _held -= bytes;

    public void CountSpill(long bytes) => Spilled += bytes;
}

/// <summary>Per batch, named tensors at one point of the segments (see the file header).</summary>
internal sealed class BoundaryCache : IDisposable
{
    private readonly SpillBudget _budget;
    private readonly Dictionary<(int Batch, string Name), Entry> _entries = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private SafeFileHandle? _file;
    private long _fileLength;
    private long _held;

    private sealed record Entry(HostTensor? Tensor, long Offset, OnnxDataType Type, int[] Shape);

    public BoundaryCache(SpillBudget budget) => _budget = budget;

    /// <summary>Stores <paramref name="tensor"/> (not copied while in memory: the caller must not change it).</summary>
    public void Add(int batch, string name, HostTensor tensor)
    {
        _names.Add(name);
        long bytes = Buffer.ByteLength(tensor.Data);
        if (_budget.TryTake(bytes))
        {
            _held += bytes;
            _entries[(batch, name)] = new Entry(tensor, -1, tensor.ElementType, tensor.Shape);
            return;
        }
        long offset = _fileLength;
        RandomAccess.Write(File(), Bytes(tensor.Data), offset);
        _fileLength += bytes;
        _budget.CountSpill(bytes);
        _entries[(batch, name)] = new Entry(null, offset, tensor.ElementType, tensor.Shape);
    }

    /// <summary>The tensor stored for (batch, name).</summary>
    /// <exception cref="KeyNotFoundException">None was stored.</exception>
    public HostTensor Get(int batch, string name)
    {
        if (!_entries.TryGetValue((batch, name), out var e))
            throw new KeyNotFoundException($"The boundary cache holds no '{name}' for batch {batch}.");
        if (e.Tensor is { } t) return t;
        long count = 1;
        foreach (int d in e.Shape) count *= d;
        var data = Array.CreateInstance(HostTensor.ClrType(e.Type)!, count);
        RandomAccess.Read(_file!, Bytes(data), e.Offset);
        return HostTensor.Wrap(e.Type, data, e.Shape);
    }

    /// <summary>Whether (batch, name) is stored.</summary>
    public bool Contains(int batch, string name) => _entries.ContainsKey((batch, name));

    /// <summary>The names stored for some batch.</summary>
    public IReadOnlyCollection<string> Names => _names;

    /// <summary>Bytes on disk.</summary>
    public long SpilledBytes => _fileLength;

    /// <summary>Releases the memory and deletes the spill file.</summary>
    public void Dispose()
    {
        _budget.Release(_held);
        _held = 0;
        _entries.Clear();
        _names.Clear();
        _file?.Dispose();
        _file = null;
    }

    private SafeFileHandle File()
    {
        if (_file is not null) return _file;
        System.IO.Directory.CreateDirectory(_budget.Directory);
        string path = Path.Combine(_budget.Directory, $"whittle-boundary-{Environment.ProcessId}-{Guid.NewGuid():N}.spill");
        var options = OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None;
        _file = System.IO.File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, options);
        if (!OperatingSystem.IsWindows()) System.IO.File.Delete(path); // the open handle keeps the data; the name is gone
        return _file;
    }

    private static Span<byte> Bytes(Array data) =>
        MemoryMarshal.CreateSpan(ref MemoryMarshal.GetArrayDataReference(data), Buffer.ByteLength(data));
}
