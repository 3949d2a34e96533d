using System.Buffers;
using System.Runtime.InteropServices;

namespace Whittle.LinearAlgebra.Kernels;

/// <summary>
/// A 64-byte-aligned scratch buffer for kernels, rented from the shared array pool and pinned while
/// in use. Reusing pooled memory matters for thin products, where fresh pages (and their faults)
/// would cost as much as the arithmetic. Dispose returns it to the pool.
/// </summary>
internal sealed unsafe class PinnedScratch<T> : IDisposable where T : unmanaged
{
    private const int Alignment = 64;
    private readonly T[] _array;
    private GCHandle _handle;

    public PinnedScratch(int length)
    {
        _array = ArrayPool<T>.Shared.Rent(length + Alignment / sizeof(T));
        _handle = GCHandle.Alloc(_array, GCHandleType.Pinned);
        nint address = _handle.AddrOfPinnedObject();
        Pointer = (T*)((address + Alignment - 1) & ~(nint)(Alignment - 1));
    }

    /// <summary>Start of the aligned buffer (at least the requested length).</summary>
    public T* Pointer { get; }

    public void Dispose()
    {
        if (!_handle.IsAllocated) return;
        _handle.Free();
        ArrayPool<T>.Shared.Return(_array);
    }
}
