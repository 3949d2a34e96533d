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
            for (; j <= width - 4 * v; j += 4 * v) Chain4<Ops512, Vector512<T>>(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
            for (; j <= width - v; j += v) Chain1<Ops512, Vector512<T>>(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            int v = Vector256<T>.Count;
            for (; j <= width - 4 * v; j += 4 * v) Chain4<Ops256, Vector256<T>>(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
            for (; j <= width - v; j += v) Chain1<Ops256, Vector256<T>>(ref Unsafe.Add(ref baseRef, j), ld, first, count, forward, c, s);
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

    // One generic body for both widths: TOps is a struct, so the JIT compiles a separate, fully inlined
    // copy per vector type (Vector512 / Vector256), the same code as hand-written per-width loops.
    private interface IVectorOps<TVec> where TVec : struct
    {
        static abstract int Count { get; }
        static abstract TVec Load(ref T p, nuint offset);
        static abstract void Store(TVec v, ref T p, nuint offset);
        static abstract TVec Splat(T x);
        static abstract TVec Multiply(TVec a, TVec b);
        /// <summary><c>a·b + c</c>, fused.</summary>
        static abstract TVec Fma(TVec a, TVec b, TVec c);
    }

    private readonly struct Ops512 : IVectorOps<Vector512<T>>
    {
        public static int Count => Vector512<T>.Count;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Load(ref T p, nuint offset) => Vector512.LoadUnsafe(ref p, offset);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<T> v, ref T p, nuint offset) => v.StoreUnsafe(ref p, offset);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Splat(T x) => Vector512.Create(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Multiply(Vector512<T> a, Vector512<T> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Fma(Vector512<T> a, Vector512<T> b, Vector512<T> c) => SimdFma.Fma(a, b, c);
    }

    private readonly struct Ops256 : IVectorOps<Vector256<T>>
    {
        public static int Count => Vector256<T>.Count;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Load(ref T p, nuint offset) => Vector256.LoadUnsafe(ref p, offset);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<T> v, ref T p, nuint offset) => v.StoreUnsafe(ref p, offset);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Splat(T x) => Vector256.Create(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Multiply(Vector256<T> a, Vector256<T> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Fma(Vector256<T> a, Vector256<T> b, Vector256<T> c) => SimdFma.Fma(a, b, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Chain1<TOps, TVec>(ref T p, int ld, int first, int count, bool forward, ReadOnlySpan<T> c, ReadOnlySpan<T> s)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        if (forward)
        {
            ref T row = ref Unsafe.Add(ref p, (nint)first * ld);
            var x = TOps.Load(ref row, 0);
            for (int r = 0; r < count; r++)
            {
                ref T next = ref Unsafe.Add(ref row, ld);
                var y = TOps.Load(ref next, 0);
                var cv = TOps.Splat(c[r]); var sv = TOps.Splat(s[r]); var nsv = TOps.Splat(-s[r]);
                TOps.Store(TOps.Fma(cv, x, TOps.Multiply(sv, y)), ref row, 0);
                x = TOps.Fma(nsv, x, TOps.Multiply(cv, y));
                row = ref next;
            }
            TOps.Store(x, ref row, 0);
        }
        else
        {
            ref T row = ref Unsafe.Add(ref p, (nint)(first + count) * ld);
            var y = TOps.Load(ref row, 0);
            for (int r = count - 1; r >= 0; r--)
            {
                ref T prev = ref Unsafe.Subtract(ref row, ld);
                var x = TOps.Load(ref prev, 0);
                var cv = TOps.Splat(c[r]); var sv = TOps.Splat(s[r]); var nsv = TOps.Splat(-s[r]);
                TOps.Store(TOps.Fma(nsv, x, TOps.Multiply(cv, y)), ref row, 0);
                y = TOps.Fma(cv, x, TOps.Multiply(sv, y));
                row = ref prev;
            }
            TOps.Store(y, ref row, 0);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Chain4<TOps, TVec>(ref T p, int ld, int first, int count, bool forward, ReadOnlySpan<T> c, ReadOnlySpan<T> s)
        where TOps : struct, IVectorOps<TVec> where TVec : struct
    {
        nuint v1 = (nuint)TOps.Count, v2 = 2 * v1, v3 = 3 * v1;
        if (forward)
        {
            ref T row = ref Unsafe.Add(ref p, (nint)first * ld);
            var x0 = TOps.Load(ref row, 0);
            var x1 = TOps.Load(ref row, v1);
            var x2 = TOps.Load(ref row, v2);
            var x3 = TOps.Load(ref row, v3);
            for (int r = 0; r < count; r++)
            {
                ref T next = ref Unsafe.Add(ref row, ld);
                var cv = TOps.Splat(c[r]); var sv = TOps.Splat(s[r]); var nsv = TOps.Splat(-s[r]);
                var y0 = TOps.Load(ref next, 0);
                var y1 = TOps.Load(ref next, v1);
                var y2 = TOps.Load(ref next, v2);
                var y3 = TOps.Load(ref next, v3);
                TOps.Store(TOps.Fma(cv, x0, TOps.Multiply(sv, y0)), ref row, 0);
                TOps.Store(TOps.Fma(cv, x1, TOps.Multiply(sv, y1)), ref row, v1);
                TOps.Store(TOps.Fma(cv, x2, TOps.Multiply(sv, y2)), ref row, v2);
                TOps.Store(TOps.Fma(cv, x3, TOps.Multiply(sv, y3)), ref row, v3);
                x0 = TOps.Fma(nsv, x0, TOps.Multiply(cv, y0));
                x1 = TOps.Fma(nsv, x1, TOps.Multiply(cv, y1));
                x2 = TOps.Fma(nsv, x2, TOps.Multiply(cv, y2));
                x3 = TOps.Fma(nsv, x3, TOps.Multiply(cv, y3));
                row = ref next;
            }
            TOps.Store(x0, ref row, 0);
            TOps.Store(x1, ref row, v1);
            TOps.Store(x2, ref row, v2);
            TOps.Store(x3, ref row, v3);
        }
        else
        {
            ref T row = ref Unsafe.Add(ref p, (nint)(first + count) * ld);
            var y0 = TOps.Load(ref row, 0);
            var y1 = TOps.Load(ref row, v1);
            var y2 = TOps.Load(ref row, v2);
            var y3 = TOps.Load(ref row, v3);
            for (int r = count - 1; r >= 0; r--)
            {
                ref T prev = ref Unsafe.Subtract(ref row, ld);
                var cv = TOps.Splat(c[r]); var sv = TOps.Splat(s[r]); var nsv = TOps.Splat(-s[r]);
                var x0 = TOps.Load(ref prev, 0);
                var x1 = TOps.Load(ref prev, v1);
                var x2 = TOps.Load(ref prev, v2);
                var x3 = TOps.Load(ref prev, v3);
                TOps.Store(TOps.Fma(nsv, x0, TOps.Multiply(cv, y0)), ref row, 0);
                TOps.Store(TOps.Fma(nsv, x1, TOps.Multiply(cv, y1)), ref row, v1);
                TOps.Store(TOps.Fma(nsv, x2, TOps.Multiply(cv, y2)), ref row, v2);
                TOps.Store(TOps.Fma(nsv, x3, TOps.Multiply(cv, y3)), ref row, v3);
                y0 = TOps.Fma(cv, x0, TOps.Multiply(sv, y0));
                y1 = TOps.Fma(cv, x1, TOps.Multiply(sv, y1));
                y2 = TOps.Fma(cv, x2, TOps.Multiply(sv, y2));
                y3 = TOps.Fma(cv, x3, TOps.Multiply(sv, y3));
                row = ref prev;
            }
            TOps.Store(y0, ref row, 0);
            TOps.Store(y1, ref row, v1);
            TOps.Store(y2, ref row, v2);
            TOps.Store(y3, ref row, v3);
        }
    }
}
