using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Whittle.LinearAlgebra.Kernels;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// Records long sequences of plane (Givens) rotations and applies them to the ROWS of a row-major
/// matrix: rotation (c, s) on rows (j, j+1) is
/// <c>x ← c·x + s·y,  y ← c·y − s·x</c> with x = row j, y = row j+1 (LAPACK drot / dlasr 'L','V').
/// </summary>
/// <remarks>
/// <para>Contract: rotations are applied exactly in the order they were recorded. The QR iterations
/// (<see cref="BidiagonalSvd"/>, <see cref="SymmetricTridiagonalQr"/>) never read the matrix being
/// rotated, so rotations are queued and applied in batches of many sweeps at a time.</para>
/// <para>Performance design (this is where most of the SVD's time goes):
/// <list type="bullet">
/// <item>A sweep (rotations (k,k+1), (k+1,k+2), … or the same backwards) is chained: the row shared
/// by two consecutive rotations stays in registers, so each row is loaded and stored once per sweep.</item>
/// <item>The matrix is cut into column panels narrow enough that a panel (all rows) stays in L2;
/// every queued sweep is applied to one panel before moving to the next, and panels run in parallel
/// (<see cref="ParallelWork.For"/>) — columns are independent, so results do not depend on threads.</item>
/// <item>Vector512 / Vector256 with FMA (<see cref="SimdFma"/>), four vectors per chain step, scalar tail.</item>
/// </list></para>
/// <para>Reference: LAPACK dlasr; Van Zee, van de Geijn and Quintana-Ortí, "Restructuring the
/// tridiagonal and bidiagonal QR algorithms for performance" (ACM TOMS 2014) for the panel/batch idea.</para>
/// </remarks>
internal sealed class PlaneRotations<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly record struct Sweep(int First, int Count, bool Forward, int Offset);

    private readonly List<Sweep> _sweeps = new();
    private T[] _c = new T[256];
    private T[] _s = new T[256];
    private int _used;

    /// <summary>Number of rotations waiting to be applied.</summary>
    public int Pending => _used;

    /// <summary>
    /// Queues a sweep of <paramref name="c"/>.Length rotations; rotation j acts on rows
    /// (first + j, first + j + 1). Forward sweeps apply j = 0, 1, …; backward sweeps j = count−1, …, 0.
    /// </summary>
    public void AddSweep(int first, bool forward, ReadOnlySpan<T> c, ReadOnlySpan<T> s)
    {
        Debug.Assert(c.Length == s.Length && first >= 0);
        int count = c.Length;
        if (count == 0) return;
        Reserve(count);
        c.CopyTo(_c.AsSpan(_used));
        s.CopyTo(_s.AsSpan(_used));
        _sweeps.Add(new Sweep(first, count, forward, _used));
        _used += count;
    }

    /// <summary>Queues one rotation on rows (<paramref name="row"/>, <paramref name="row"/>+1).</summary>
    public void Add(int row, T c, T s)
    {
        Reserve(1);
        _c[_used] = c;
        _s[_used] = s;
        _sweeps.Add(new Sweep(row, 1, true, _used));
        _used++;
    }

    private void Reserve(int count)
    {
        if (_used + count <= _c.Length) return;
        int size = Math.Max(_c.Length * 2, _used + count);
        Array.Resize(ref _c, size);
        Array.Resize(ref _s, size);
    }

    /// <summary>Applies every queued rotation to the rows of <paramref name="target"/> (row-major) and empties the queue.</summary>
    public unsafe void Flush(MatrixView<T> target)
    {
        if (_used == 0) return;
        Debug.Assert(target.IsRowMajor || target.Cols <= 1);
        int cols = target.Cols;
        if (cols > 0)
        {
            int lo = int.MaxValue, hi = 0;
            foreach (var sw in _sweeps) { lo = Math.Min(lo, sw.First); hi = Math.Max(hi, sw.First + sw.Count + 1); }
            Debug.Assert(hi <= target.Rows);
            int rowsTouched = hi - lo;
            // Panel width: all touched rows of one panel fill about half of a 1 MiB L2.
            int vec = Vector512.IsHardwareAccelerated ? Vector512<T>.Count : Vector256<T>.Count;
            int width = 512 * 1024 / (Unsafe.SizeOf<T>() * Math.Max(1, rowsTouched));
            width = Math.Clamp(width / (4 * vec) * (4 * vec), 4 * vec, 1 << 20);
            int workers = (long)_used * cols < 1 << 15 ? 1 : ParallelWork.DefaultWorkers;
            // Keep at least two panels per worker so a slow core does not hold the others up.
            if (workers > 1)
            {
                int maxWidth = (cols + 2 * workers - 1) / (2 * workers);
                maxWidth = Math.Max(4 * vec, (maxWidth + vec - 1) / vec * vec);
                width = Math.Min(width, maxWidth);
            }
            int panels = (cols + width - 1) / width;
            var sweeps = CollectionsMarshal.AsSpan(_sweeps).ToArray();
            var cArr = _c;
            var sArr = _s;
            var view = target;
            // Each panel is packed into a contiguous per-worker buffer first: with a power-of-two row
            // stride the panel's rows would otherwise collide in a few cache sets and never stay in L2.
            var buffers = new T[Math.Max(1, workers)][];
            ParallelWork.For(panels, workers, (worker, p) =>
            {
                int c0 = p * width, w = Math.Min(width, cols - c0);
                var buffer = buffers[worker] ??= new T[rowsTouched * width];
                for (int i = 0; i < rowsTouched; i++)
                    view.Array.AsSpan(view.Offset + (lo + i) * view.RowStride + c0, w).CopyTo(buffer.AsSpan(i * w, w));
                ref T baseRef = ref buffer[0];
                foreach (var sw in sweeps)
                    ApplySweep(ref baseRef, w, w, sw.First - lo, sw.Count, sw.Forward,
                        cArr.AsSpan(sw.Offset, sw.Count), sArr.AsSpan(sw.Offset, sw.Count));
                for (int i = 0; i < rowsTouched; i++)
                    buffer.AsSpan(i * w, w).CopyTo(view.Array.AsSpan(view.Offset + (lo + i) * view.RowStride + c0, w));
            });
        }
        _sweeps.Clear();
        _used = 0;
    }

    /// <summary>Applies one sweep to a panel of <paramref name="width"/> columns starting at <paramref name="baseRef"/>.</summary>
    private static void ApplySweep(ref T baseRef, int ld, int width, int first, int count, bool forward,
        ReadOnlySpan<T> c, ReadOnlySpan<T> s)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            int v = Vector512<T>.Count;
            for (; j <= width - 4 * v; j += 4 * v) Chain512x4(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
            for (; j <= width - v; j += v) Chain512x1(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            int v = Vector256<T>.Count;
            for (; j <= width - 4 * v; j += 4 * v) Chain256x4(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
            for (; j <= width - v; j += v) Chain256x1(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
        }
        for (; j < width; j++) ChainScalar(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
    }

    // In every chain: x = the row carried in registers, y = the row loaded at this step.
    // Forward, rotation r on rows (first+r, first+r+1): x = row first+r (carried), y = row first+r+1;
    //   x' = c·x + s·y is final and stored; y' = c·y − s·x becomes the new carry.
    // Backward, rotation r from count−1 down: y = row first+r+1 (carried), x = row first+r (loaded);
    //   y' = c·y − s·x is final and stored; x' = c·x + s·y becomes the new carry.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ChainScalar(ref T p, int ld, int first, int count, bool forward, ReadOnlySpan<T> c, ReadOnlySpan<T> s)
    {
        if (forward)
        {
            ref T row = ref Unsafe.Add(ref p, (nint)first * ld);
            T x = row;
            for (int r = 0; r < count; r++)
            {
                ref T next = ref Unsafe.Add(ref row, ld);
                T y = next, cr = c[r], sr = s[r];
                row = cr * x + sr * y;
                x = cr * y - sr * x;
                row = ref next;
            }
            row = x;
        }
        else
        {
            ref T row = ref Unsafe.Add(ref p, (nint)(first + count) * ld);
            T y = row;
            for (int r = count - 1; r >= 0; r--)
            {
                ref T prev = ref Unsafe.Subtract(ref row, ld);
                T x = prev, cr = c[r], sr = s[r];
                row = cr * y - sr * x;
                y = cr * x + sr * y;
                row = ref prev;
            }
            row = y;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Chain512x1(ref T p, int ld, int first, int count, bool forward, ReadOnlySpan<T> c, ReadOnlySpan<T> s)
    {
        if (forward)
        {
            ref T row = ref Unsafe.Add(ref p, (nint)first * ld);
            var x = Vector512.LoadUnsafe(ref row);
            for (int r = 0; r < count; r++)
            {
                ref T next = ref Unsafe.Add(ref row, ld);
                var y = Vector512.LoadUnsafe(ref next);
                var cv = Vector512.Create(c[r]); var sv = Vector512.Create(s[r]); var nsv = Vector512.Create(-s[r]);
                SimdFma.Fma(cv, x, sv * y).StoreUnsafe(ref row);
                x = SimdFma.Fma(nsv, x, cv * y);
                row = ref next;
            }
            x.StoreUnsafe(ref row);
        }
        else
        {
            ref T row = ref Unsafe.Add(ref p, (nint)(first + count) * ld);
            var y = Vector512.LoadUnsafe(ref row);
            for (int r = count - 1; r >= 0; r--)
            {
                ref T prev = ref Unsafe.Subtract(ref row, ld);
                var x = Vector512.LoadUnsafe(ref prev);
                var cv = Vector512.Create(c[r]); var sv = Vector512.Create(s[r]); var nsv = Vector512.Create(-s[r]);
                SimdFma.Fma(nsv, x, cv * y).StoreUnsafe(ref row);
                y = SimdFma.Fma(cv, x, sv * y);
                row = ref prev;
            }
            y.StoreUnsafe(ref row);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Chain512x4(ref T p, int ld, int first, int count, bool forward, ReadOnlySpan<T> c, ReadOnlySpan<T> s)
    {
        int v = Vector512<T>.Count;
        if (forward)
        {
            ref T row = ref Unsafe.Add(ref p, (nint)first * ld);
            var x0 = Vector512.LoadUnsafe(ref row);
            var x1 = Vector512.LoadUnsafe(ref row, (nuint)v);
            var x2 = Vector512.LoadUnsafe(ref row, (nuint)(2 * v));
            var x3 = Vector512.LoadUnsafe(ref row, (nuint)(3 * v));
            for (int r = 0; r < count; r++)
            {
                ref T next = ref Unsafe.Add(ref row, ld);
                var cv = Vector512.Create(c[r]); var sv = Vector512.Create(s[r]); var nsv = Vector512.Create(-s[r]);
                var y0 = Vector512.LoadUnsafe(ref next);
                var y1 = Vector512.LoadUnsafe(ref next, (nuint)v);
                var y2 = Vector512.LoadUnsafe(ref next, (nuint)(2 * v));
                var y3 = Vector512.LoadUnsafe(ref next, (nuint)(3 * v));
                SimdFma.Fma(cv, x0, sv * y0).StoreUnsafe(ref row);
                SimdFma.Fma(cv, x1, sv * y1).StoreUnsafe(ref row, (nuint)v);
                SimdFma.Fma(cv, x2, sv * y2).StoreUnsafe(ref row, (nuint)(2 * v));
                SimdFma.Fma(cv, x3, sv * y3).StoreUnsafe(ref row, (nuint)(3 * v));
                x0 = SimdFma.Fma(nsv, x0, cv * y0);
                x1 = SimdFma.Fma(nsv, x1, cv * y1);
                x2 = SimdFma.Fma(nsv, x2, cv * y2);
                x3 = SimdFma.Fma(nsv, x3, cv * y3);
                row = ref next;
            }
            x0.StoreUnsafe(ref row);
            x1.StoreUnsafe(ref row, (nuint)v);
            x2.StoreUnsafe(ref row, (nuint)(2 * v));
            x3.StoreUnsafe(ref row, (nuint)(3 * v));
        }
        else
        {
            ref T row = ref Unsafe.Add(ref p, (nint)(first + count) * ld);
            var y0 = Vector512.LoadUnsafe(ref row);
            var y1 = Vector512.LoadUnsafe(ref row, (nuint)v);
            var y2 = Vector512.LoadUnsafe(ref row, (nuint)(2 * v));
            var y3 = Vector512.LoadUnsafe(ref row, (nuint)(3 * v));
            for (int r = count - 1; r >= 0; r--)
            {
                ref T prev = ref Unsafe.Subtract(ref row, ld);
                var cv = Vector512.Create(c[r]); var sv = Vector512.Create(s[r]); var nsv = Vector512.Create(-s[r]);
                var x0 = Vector512.LoadUnsafe(ref prev);
                var x1 = Vector512.LoadUnsafe(ref prev, (nuint)v);
                var x2 = Vector512.LoadUnsafe(ref prev, (nuint)(2 * v));
                var x3 = Vector512.LoadUnsafe(ref prev, (nuint)(3 * v));
                SimdFma.Fma(nsv, x0, cv * y0).StoreUnsafe(ref row);
                SimdFma.Fma(nsv, x1, cv * y1).StoreUnsafe(ref row, (nuint)v);
                SimdFma.Fma(nsv, x2, cv * y2).StoreUnsafe(ref row, (nuint)(2 * v));
                SimdFma.Fma(nsv, x3, cv * y3).StoreUnsafe(ref row, (nuint)(3 * v));
                y0 = SimdFma.Fma(cv, x0, sv * y0);
                y1 = SimdFma.Fma(cv, x1, sv * y1);
                y2 = SimdFma.Fma(cv, x2, sv * y2);
                y3 = SimdFma.Fma(cv, x3, sv * y3);
                row = ref prev;
            }
            y0.StoreUnsafe(ref row);
            y1.StoreUnsafe(ref row, (nuint)v);
            y2.StoreUnsafe(ref row, (nuint)(2 * v));
            y3.StoreUnsafe(ref row, (nuint)(3 * v));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Chain256x1(ref T p, int ld, int first, int count, bool forward, ReadOnlySpan<T> c, ReadOnlySpan<T> s)
    {
        if (forward)
        {
            ref T row = ref Unsafe.Add(ref p, (nint)first * ld);
            var x = Vector256.LoadUnsafe(ref row);
            for (int r = 0; r < count; r++)
            {
                ref T next = ref Unsafe.Add(ref row, ld);
                var y = Vector256.LoadUnsafe(ref next);
                var cv = Vector256.Create(c[r]); var sv = Vector256.Create(s[r]); var nsv = Vector256.Create(-s[r]);
                SimdFma.Fma(cv, x, sv * y).StoreUnsafe(ref row);
                x = SimdFma.Fma(nsv, x, cv * y);
                row = ref next;
            }
            x.StoreUnsafe(ref row);
        }
        else
        {
            ref T row = ref Unsafe.Add(ref p, (nint)(first + count) * ld);
            var y = Vector256.LoadUnsafe(ref row);
            for (int r = count - 1; r >= 0; r--)
            {
                ref T prev = ref Unsafe.Subtract(ref row, ld);
                var x = Vector256.LoadUnsafe(ref prev);
                var cv = Vector256.Create(c[r]); var sv = Vector256.Create(s[r]); var nsv = Vector256.Create(-s[r]);
                SimdFma.Fma(nsv, x, cv * y).StoreUnsafe(ref row);
                y = SimdFma.Fma(cv, x, sv * y);
                row = ref prev;
            }
            y.StoreUnsafe(ref row);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Chain256x4(ref T p, int ld, int first, int count, bool forward, ReadOnlySpan<T> c, ReadOnlySpan<T> s)
    {
        int v = Vector256<T>.Count;
        if (forward)
        {
            ref T row = ref Unsafe.Add(ref p, (nint)first * ld);
            var x0 = Vector256.LoadUnsafe(ref row);
            var x1 = Vector256.LoadUnsafe(ref row, (nuint)v);
            var x2 = Vector256.LoadUnsafe(ref row, (nuint)(2 * v));
            var x3 = Vector256.LoadUnsafe(ref row, (nuint)(3 * v));
            for (int r = 0; r < count; r++)
            {
                ref T next = ref Unsafe.Add(ref row, ld);
                var cv = Vector256.Create(c[r]); var sv = Vector256.Create(s[r]); var nsv = Vector256.Create(-s[r]);
                var y0 = Vector256.LoadUnsafe(ref next);
                var y1 = Vector256.LoadUnsafe(ref next, (nuint)v);
                var y2 = Vector256.LoadUnsafe(ref next, (nuint)(2 * v));
                var y3 = Vector256.LoadUnsafe(ref next, (nuint)(3 * v));
                SimdFma.Fma(cv, x0, sv * y0).StoreUnsafe(ref row);
                SimdFma.Fma(cv, x1, sv * y1).StoreUnsafe(ref row, (nuint)v);
                SimdFma.Fma(cv, x2, sv * y2).StoreUnsafe(ref row, (nuint)(2 * v));
                SimdFma.Fma(cv, x3, sv * y3).StoreUnsafe(ref row, (nuint)(3 * v));
                x0 = SimdFma.Fma(nsv, x0, cv * y0);
                x1 = SimdFma.Fma(nsv, x1, cv * y1);
                x2 = SimdFma.Fma(nsv, x2, cv * y2);
                x3 = SimdFma.Fma(nsv, x3, cv * y3);
                row = ref next;
            }
            x0.StoreUnsafe(ref row);
            x1.StoreUnsafe(ref row, (nuint)v);
            x2.StoreUnsafe(ref row, (nuint)(2 * v));
            x3.StoreUnsafe(ref row, (nuint)(3 * v));
        }
        else
        {
            ref T row = ref Unsafe.Add(ref p, (nint)(first + count) * ld);
            var y0 = Vector256.LoadUnsafe(ref row);
            var y1 = Vector256.LoadUnsafe(ref row, (nuint)v);
            var y2 = Vector256.LoadUnsafe(ref row, (nuint)(2 * v));
            var y3 = Vector256.LoadUnsafe(ref row, (nuint)(3 * v));
            for (int r = count - 1; r >= 0; r--)
            {
                ref T prev = ref Unsafe.Subtract(ref row, ld);
                var cv = Vector256.Create(c[r]); var sv = Vector256.Create(s[r]); var nsv = Vector256.Create(-s[r]);
                var x0 = Vector256.LoadUnsafe(ref prev);
                var x1 = Vector256.LoadUnsafe(ref prev, (nuint)v);
                var x2 = Vector256.LoadUnsafe(ref prev, (nuint)(2 * v));
                var x3 = Vector256.LoadUnsafe(ref prev, (nuint)(3 * v));
                SimdFma.Fma(nsv, x0, cv * y0).StoreUnsafe(ref row);
                SimdFma.Fma(nsv, x1, cv * y1).StoreUnsafe(ref row, (nuint)v);
                SimdFma.Fma(nsv, x2, cv * y2).StoreUnsafe(ref row, (nuint)(2 * v));
                SimdFma.Fma(nsv, x3, cv * y3).StoreUnsafe(ref row, (nuint)(3 * v));
                y0 = SimdFma.Fma(cv, x0, sv * y0);
                y1 = SimdFma.Fma(cv, x1, sv * y1);
                y2 = SimdFma.Fma(cv, x2, sv * y2);
                y3 = SimdFma.Fma(cv, x3, sv * y3);
                row = ref prev;
            }
            y0.StoreUnsafe(ref row);
            y1.StoreUnsafe(ref row, (nuint)v);
            y2.StoreUnsafe(ref row, (nuint)(2 * v));
            y3.StoreUnsafe(ref row, (nuint)(3 * v));
        }
    }
}
