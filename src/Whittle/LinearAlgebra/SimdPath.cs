using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Whittle.LinearAlgebra;

/// <summary>The instruction-set paths Whittle's kernels are written for.</summary>
public enum SimdPath
{
    /// <summary>The widest path this CPU supports.</summary>
    Auto,
    /// <summary>512-bit vectors (AVX-512F).</summary>
    Avx512,
    /// <summary>256-bit vectors with fused multiply-add (AVX2 + FMA).</summary>
    Avx2,
    /// <summary>128-bit vectors: SSE, Arm NEON, or the runtime's software fallback.</summary>
    Portable,
}

/// <summary>Which <see cref="SimdPath"/>s the current CPU runs.</summary>
public static class SimdPaths
{
    /// <summary>True when <paramref name="path"/> can run on this CPU.</summary>
    public static bool IsSupported(SimdPath path) => path switch
    {
        SimdPath.Auto or SimdPath.Portable => true,
        SimdPath.Avx512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        SimdPath.Avx2 => Vector256.IsHardwareAccelerated && Fma.IsSupported && Avx2.IsSupported,
        _ => false,
    };

    /// <summary>The path <see cref="SimdPath.Auto"/> resolves to on this CPU.</summary>
    public static SimdPath Best =>
        IsSupported(SimdPath.Avx512) ? SimdPath.Avx512 : IsSupported(SimdPath.Avx2) ? SimdPath.Avx2 : SimdPath.Portable;

    /// <summary>Every path this CPU supports, widest first (Auto excluded).</summary>
    public static IReadOnlyList<SimdPath> Supported =>
        [.. new[] { SimdPath.Avx512, SimdPath.Avx2, SimdPath.Portable }.Where(IsSupported)];

    internal static SimdPath Resolve(SimdPath path)
    {
        if (path == SimdPath.Auto) return Best;
        if (!IsSupported(path))
            ThrowHelper.Argument(nameof(path), $"SIMD path {path} is not supported by this CPU; supported: {string.Join(", ", Supported)}.");
        return path;
    }
}
