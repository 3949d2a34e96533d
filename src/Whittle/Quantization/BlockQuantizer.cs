// Weight-only block quantization (round to nearest), as ONNX Runtime's MatMulNBits stores it: the K weights one output
// reads are cut into blocks of B; each block has a scale s and a zero point z, and a weight w becomes the code
//   q = clamp(round(w / s) + z, 0, 2^bits − 1),   read back as (q − z)·s.
// The range of a block always holds 0 (rmin = min(0, min w), rmax = max(0, max w)) so a zero weight stays exactly 0, as
// ONNX Runtime's own quantizer does. Codes are packed low bits first along K: two 4-bit codes per byte, one 8-bit code.

namespace Whittle.Quantization;

/// <summary>A block format: bits per code and weights per block. Immutable.</summary>
/// <param name="Bits">4 or 8.</param>
/// <param name="BlockSize">Weights per block along K: a power of two, at least 16.</param>
public sealed record QuantizationFormat(int Bits, int BlockSize)
{
    /// <summary>The largest code, 2^bits − 1.</summary>
    public int MaxCode => (1 << Bits) - 1;

    /// <summary>Bytes of one block's codes.</summary>
    public int BlobSize => BlockSize * Bits / 8;

    /// <summary>Blocks along <paramref name="k"/> weights (the last one padded with zeros).</summary>
    public int Blocks(int k) => (k + BlockSize - 1) / BlockSize;

    /// <summary>Bytes of the packed zero points of one output: ⌈blocks · bits / 8⌉.</summary>
    public int ZeroPointBytes(int k) => (Blocks(k) * Bits + 7) / 8;

    /// <summary>Bytes a K × N weight takes: codes, float32 scales and packed zero points.</summary>
    public long StoredBytes(int k, int n) => (long)n * (Blocks(k) * (BlobSize + sizeof(float)) + ZeroPointBytes(k));

    /// <summary>The format, checked.</summary>
    /// <exception cref="ArgumentException">Bits not 4 or 8, or a block size that is not a power of two of at least 16.</exception>
    public static QuantizationFormat Create(int bits, int blockSize)
    {
        if (bits is not (4 or 8)) throw new ArgumentException($"{bits}-bit weights: expected 4 or 8 bits.", nameof(bits));
        if (blockSize < 16 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentException($"block size {blockSize}: expected a power of two of at least 16 (32, 64, 128).", nameof(blockSize));
        return new QuantizationFormat(bits, blockSize);
    }
}

/// <summary>Round-to-nearest block quantization of one output's weights, and its inverse (see the file header).</summary>
public static class BlockQuantizer
{
    /// <summary>
    /// Quantizes the K weights one output reads. <paramref name="codes"/> gets one unpacked code per weight (padding to whole
    /// blocks is the code of 0), <paramref name="scales"/> and <paramref name="zeroPoints"/> one entry per block.
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> weights, QuantizationFormat format, Span<byte> codes, Span<float> scales, Span<byte> zeroPoints)
    {
        ArgumentNullException.ThrowIfNull(format);
        int blocks = format.Blocks(weights.Length);
        if (codes.Length < blocks * format.BlockSize || scales.Length < blocks || zeroPoints.Length < blocks)
            throw new ArgumentException("The code, scale or zero-point span is too short for the weights.");
        float max = format.MaxCode;
        for (int b = 0; b < blocks; b++)
        {
            int start = b * format.BlockSize, count = Math.Min(format.BlockSize, weights.Length - start);
            var block = weights.Slice(start, count);
            float lo = Math.Min(0f, System.Numerics.Tensors.TensorPrimitives.Min(block));
            float hi = Math.Max(0f, System.Numerics.Tensors.TensorPrimitives.Max(block));
            float scale = (hi - lo) / max;
            if (!(scale > 0) || !float.IsFinite(scale)) scale = 1f; // an all-zero block; any scale reads it back exactly
            float inverse = 1f / scale;
            byte zero = (byte)Math.Clamp(MathF.Round(-lo * inverse), 0, max);
            scales[b] = scale;
            zeroPoints[b] = zero;
            var blockCodes = codes.Slice(start, format.BlockSize);
            for (int i = 0; i < count; i++)
                blockCodes[i] = (byte)Math.Clamp(MathF.Round(block[i] * inverse) + zero, 0, max);
            blockCodes[count..].Fill(zero);
        }
    }

    /// <summary>The weights the codes stand for, <c>(q − z)·s</c>; <paramref name="weights"/> sets K.</summary>
    public static void Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<float> scales, ReadOnlySpan<byte> zeroPoints, QuantizationFormat format, Span<float> weights)
    {
        ArgumentNullException.ThrowIfNull(format);
        for (int i = 0; i < weights.Length; i++)
        {
            int b = i / format.BlockSize;
            weights[i] = (codes[i] - zeroPoints[b]) * scales[b];
        }
    }

    /// <summary>Round trip: the weights after quantization with <paramref name="format"/>, into <paramref name="result"/>.</summary>
    public static void RoundTrip(ReadOnlySpan<float> weights, QuantizationFormat format, Span<float> result)
    {
        ArgumentNullException.ThrowIfNull(format);
        int blocks = format.Blocks(weights.Length);
        var codes = new byte[blocks * format.BlockSize];
        var scales = new float[blocks];
        var zeros = new byte[blocks];
        Quantize(weights, format, codes, scales, zeros);
        Dequantize(codes, scales, zeros, format, result);
    }

    /// <summary>Packs unpacked <paramref name="bits"/>-bit codes, low bits first: <c>packed.Length = ⌈codes · bits / 8⌉</c>.</summary>
    public static void Pack(ReadOnlySpan<byte> codes, int bits, Span<byte> packed)
    {
        if (bits == 8)
        {
            codes.CopyTo(packed);
            return;
        }
        if (bits != 4) throw new ArgumentException($"{bits}-bit codes: expected 4 or 8.", nameof(bits));
        packed.Clear();
        for (int i = 0; i < codes.Length; i++)
            packed[i >> 1] |= (byte)((codes[i] & 0xF) << ((i & 1) * 4));
    }
}
