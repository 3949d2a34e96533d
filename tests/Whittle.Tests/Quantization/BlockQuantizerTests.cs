using Whittle.Quantization;

namespace Whittle.Tests.Quantization;

public class BlockQuantizerTests
{
    private static float[] Gaussian(int n, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())))];
    }

    [Theory]
    [InlineData(4, 32, 96)]
    [InlineData(4, 32, 70)] // a partial last block
    [InlineData(8, 64, 200)]
    [InlineData(4, 128, 128)]
    public void EveryWeightComesBackWithinHalfAStepOfItsBlock(int bits, int blockSize, int k)
    {
        var f = QuantizationFormat.Create(bits, blockSize);
        var w = Gaussian(k, seed: bits * 1000 + k);
        int blocks = f.Blocks(k);
        var codes = new byte[blocks * blockSize];
        var scales = new float[blocks];
        var zeros = new byte[blocks];
        BlockQuantizer.Quantize(w, f, codes, scales, zeros);
        var back = new float[k];
        BlockQuantizer.Dequantize(codes, scales, zeros, f, back);
        for (int i = 0; i < k; i++)
        {
            Assert.InRange((int)codes[i], 0, f.MaxCode);
            Assert.True(Math.Abs(back[i] - w[i]) <= scales[i / blockSize] * 0.5f + 1e-6f, $"weight {i}: {w[i]} came back as {back[i]}");
        }
        for (int b = 0; b < blocks; b++)
        {
            // The step spans the block's range (with 0 in it) in 2^bits − 1 steps.
            var block = w.AsSpan(b * blockSize, Math.Min(blockSize, k - b * blockSize));
            float lo = Math.Min(0, block.ToArray().Min()), hi = Math.Max(0, block.ToArray().Max());
            Assert.Equal((hi - lo) / f.MaxCode, scales[b], 5);
        }
        // Padding codes read back as exactly 0.
        for (int i = k; i < codes.Length; i++) Assert.Equal(zeros[i / blockSize], codes[i]);
    }

    [Fact]
    public void ZerosStayExactlyZeroAndAnAllZeroBlockRoundTrips()
    {
        var f = QuantizationFormat.Create(4, 16);
        var w = new float[32];
        for (int i = 0; i < 16; i++) w[i] = i % 3 == 0 ? 0 : 0.1f * i - 0.7f;
        var back = new float[32];
        BlockQuantizer.RoundTrip(w, f, back);
        for (int i = 0; i < 16; i++) if (w[i] == 0) Assert.Equal(0f, back[i]);
        for (int i = 16; i < 32; i++) Assert.Equal(0f, back[i]);
    }

    [Fact]
    public void EightBitsAreSixteenTimesFinerThanFour()
    {
        var w = Gaussian(4096, seed: 5);
        double Error(int bits)
        {
            var back = new float[w.Length];
            BlockQuantizer.RoundTrip(w, QuantizationFormat.Create(bits, 32), back);
            return Math.Sqrt(w.Select((x, i) => (double)(x - back[i]) * (x - back[i])).Sum() / w.Length);
        }
        double ratio = Error(4) / Error(8);
        Assert.InRange(ratio, 14, 19); // (2^8 − 1)/(2^4 − 1) = 17 for the same ranges
    }

    [Fact]
    public void FourBitCodesPackLowNibbleFirst()
    {
        var packed = new byte[2];
        BlockQuantizer.Pack([0x1, 0x2, 0xF, 0x0], 4, packed);
        Assert.Equal([0x21, 0x0F], packed);
        var same = new byte[3];
        BlockQuantizer.Pack([7, 8, 9], 8, same);
        Assert.Equal([7, 8, 9], same);
    }

    [Theory]
    [InlineData(3, 32)]
    [InlineData(4, 24)]
    [InlineData(4, 8)]
    public void FormatsOnnxRuntimeCannotRunAreRefused(int bits, int blockSize) =>
        Assert.Throws<ArgumentException>(() => QuantizationFormat.Create(bits, blockSize));

    [Fact]
    public void StoredBytesCountCodesScalesAndPackedZeroPoints()
    {
        var f = QuantizationFormat.Create(4, 32);
        // K = 100: 4 blocks of 16 bytes of codes, 4 float scales, 4 zero points packed in 2 bytes, per output.
        Assert.Equal(10L * (4 * (16 + 4) + 2), f.StoredBytes(100, 10));
    }
}
