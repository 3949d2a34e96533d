using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Whittle.LinearAlgebra.Kernels;

/// <summary>
/// Level-1 kernels on contiguous spans: the widest vectors the CPU has for the bulk, a scalar tail.
/// Dot products keep four independent accumulators, so their rounding differs from a plain loop.
/// </summary>
internal static class VectorKernels
{
    /// <summary>Σ x[i]·y[i].</summary>
    public static T Dot<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Debug.Assert(x.Length == y.Length);
        int n = x.Length, i = 0;
        ref T xr = ref MemoryMarshal.GetReference(x);
        ref T yr = ref MemoryMarshal.GetReference(y);
        T sum = T.Zero;
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            int w = Vector512<T>.Count;
            Vector512<T> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i <= n - 4 * w; i += 4 * w)
            {
                s0 = SimdFma.Fma(Vector512.LoadUnsafe(ref xr, (nuint)i), Vector512.LoadUnsafe(ref yr, (nuint)i), s0);
                s1 = SimdFma.Fma(Vector512.LoadUnsafe(ref xr, (nuint)(i + w)), Vector512.LoadUnsafe(ref yr, (nuint)(i + w)), s1);
                s2 = SimdFma.Fma(Vector512.LoadUnsafe(ref xr, (nuint)(i + 2 * w)), Vector512.LoadUnsafe(ref yr, (nuint)(i + 2 * w)), s2);
                s3 = SimdFma.Fma(Vector512.LoadUnsafe(ref xr, (nuint)(i + 3 * w)), Vector512.LoadUnsafe(ref yr, (nuint)(i + 3 * w)), s3);
            }
            for (; i <= n - w; i += w)
                s0 = SimdFma.Fma(Vector512.LoadUnsafe(ref xr, (nuint)i), Vector512.LoadUnsafe(ref yr, (nuint)i), s0);
            sum = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            int w = Vector256<T>.Count;
            Vector256<T> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i <= n - 4 * w; i += 4 * w)
            {
                s0 = SimdFma.Fma(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i), s0);
                s1 = SimdFma.Fma(Vector256.LoadUnsafe(ref xr, (nuint)(i + w)), Vector256.LoadUnsafe(ref yr, (nuint)(i + w)), s1);
                s2 = SimdFma.Fma(Vector256.LoadUnsafe(ref xr, (nuint)(i + 2 * w)), Vector256.LoadUnsafe(ref yr, (nuint)(i + 2 * w)), s2);
                s3 = SimdFma.Fma(Vector256.LoadUnsafe(ref xr, (nuint)(i + 3 * w)), Vector256.LoadUnsafe(ref yr, (nuint)(i + 3 * w)), s3);
            }
            for (; i <= n - w; i += w)
                s0 = SimdFma.Fma(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i), s0);
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++) sum += Unsafe.Add(ref xr, i) * Unsafe.Add(ref yr, i);
        return sum;
    }

    /// <summary>y[i] += a·x[i].</summary>
    public static void Axpy<T>(T a, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Debug.Assert(x.Length == y.Length);
        int n = x.Length, i = 0;
        ref T xr = ref MemoryMarshal.GetReference(x);
        ref T yr = ref MemoryMarshal.GetReference(y);
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            var av = Vector512.Create(a);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
                SimdFma.Fma(av, Vector512.LoadUnsafe(ref xr, (nuint)i), Vector512.LoadUnsafe(ref yr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            var av = Vector256.Create(a);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
                SimdFma.Fma(av, Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref yr, i) += a * Unsafe.Add(ref xr, i);
    }

    /// <summary>x[i] *= a.</summary>
    public static void Scale<T>(T a, Span<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Length, i = 0;
        ref T xr = ref MemoryMarshal.GetReference(x);
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            var av = Vector512.Create(a);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
                (av * Vector512.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref xr, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref xr, i) *= a;
    }

    /// <summary>max |x[i]| (0 for an empty span); NaN when an entry is NaN.</summary>
    public static T MaxAbs<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Length, i = 0;
        ref T xr = ref MemoryMarshal.GetReference(x);
        T max = T.Zero;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            int w = Vector256<T>.Count;
            Vector256<T> m = Vector256<T>.Zero, nan = Vector256<T>.Zero;
            for (; i <= n - w; i += w)
            {
                var v = Vector256.Abs(Vector256.LoadUnsafe(ref xr, (nuint)i));
                nan |= ~Vector256.Equals(v, v);
                m = Vector256.MaxNative(m, v); // exact for the non-NaN, non-negative lanes; NaN is tracked apart
            }
            if (nan != Vector256<T>.Zero) return T.NaN;
            for (int k = 0; k < w; k++) max = T.Max(max, m[k]);
        }
        for (; i < n; i++) max = T.Max(max, T.Abs(Unsafe.Add(ref xr, i)));
        return max;
    }

    /// <summary>Euclidean norm, scaled so that it neither overflows nor underflows (like LAPACK's nrm2).</summary>
    public static T Norm2<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T maxAbs = MaxAbs(x);
        if (maxAbs == T.Zero || !T.IsFinite(maxAbs)) return maxAbs;
        // Fast path: squares of values in this range can neither overflow nor lose all precision.
        T small = T.CreateTruncating(1e-18), large = T.CreateTruncating(1e18);
        if (typeof(T) == typeof(float)) { small = T.CreateTruncating(1e-15f); large = T.CreateTruncating(1e15f); }
        if (maxAbs > small && maxAbs < large)
            return T.Sqrt(Dot(x, x));
        T inv = T.One / maxAbs, sum = T.Zero;
        foreach (var v in x) { T s = v * inv; sum += s * s; }
        return maxAbs * T.Sqrt(sum);
    }
}
