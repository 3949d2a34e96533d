using System.Numerics;

namespace Whittle.LinearAlgebra.Kernels;

/// <summary>
/// A GEMM micro-kernel: <c>C[0..MR, 0..NR] += Σ_p Ã[p, 0..MR]ᵀ · B̃[p, 0..NR]</c> for one register tile.
/// </summary>
/// <remarks>
/// Shapes: Ã is a packed MR-row panel stored p-major (<c>a[p·MR + i]</c>), B̃ a packed NR-column panel
/// (<c>b[p·NR + j]</c>), C row-major with leading dimension <c>ldc</c>. The driver pads panels with
/// zeros, so the kernel always computes a full tile.
/// </remarks>
internal interface IGemmMicroKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Rows of the register tile (broadcast from Ã).</summary>
    static abstract int MR { get; }

    /// <summary>Columns of the register tile (vector loads from B̃).</summary>
    static abstract int NR { get; }

    /// <summary>True when the CPU can run this kernel.</summary>
    static abstract bool IsSupported { get; }

    static abstract unsafe void Run(int kc, T* a, T* b, T* c, nint ldc);
}
