// Widths and ranks in multiples of what CPU kernels work in. ONNX Runtime's MLAS GEMM computes 16 output columns at a
// time (32 with AVX-512) and its convolutions are GEMMs over output channels, so a layer of width 40 costs about what
// 48 costs: MACs fall, time does not. Methods that choose sizes from an error rule round them up to a multiple of N, which
// keeps the rule (a larger size has no larger error). A layer whose whole range is under 4·N is left unaligned: there
// one step of N would be over a quarter of its range, more than the accuracy it costs is worth at those sizes.

namespace Whittle.Compression;

/// <summary>Rounds chosen sizes up to a multiple of an alignment (see the file header).</summary>
public static class HardwareAlignment
{
    /// <summary>The default alignment: MLAS's GEMM block of output columns on AVX2.</summary>
    public const int Default = 16;

    /// <summary>
    /// <paramref name="size"/> rounded up to a multiple of <paramref name="align"/>, capped at <paramref name="range"/> (the
    /// largest size the layer takes); <paramref name="size"/> itself when <paramref name="align"/> ≤ 1 or the range is under
    /// 4·<paramref name="align"/>.
    /// </summary>
    /// <param name="size">The size the error rule chose, 0 &lt; size ≤ range.</param>
    /// <param name="range">The layer's largest size (full width, or largest parameter-saving rank).</param>
    /// <param name="align">N; 1 turns alignment off.</param>
    public static int RoundUp(int size, int range, int align)
    {
        if (align <= 1 || !Applies(range, align)) return size;
        return (int)Math.Min(range, ((long)size + align - 1) / align * align);
    }

    /// <summary>Whether a layer whose largest size is <paramref name="range"/> is aligned to <paramref name="align"/>.</summary>
    public static bool Applies(int range, int align) => align > 1 && range >= 4L * align;
}
