using Whittle.Compression;

namespace Whittle.Tests.Compression;

public class HardwareAlignmentTests
{
    [Theory]
    [InlineData(1, 64, 16, 16)]
    [InlineData(16, 64, 16, 16)]
    [InlineData(17, 64, 16, 32)]
    [InlineData(50, 64, 16, 64)]
    [InlineData(60, 63, 16, 60)]   // a range under 4·16 is not aligned
    [InlineData(61, 70, 16, 64)]
    [InlineData(65, 70, 16, 70)]   // never above the range
    [InlineData(37, 1000, 1, 37)]  // 1 turns it off
    public void RoundsUpToAMultipleWithinTheRangeWhereTheRangeHoldsFourMultiples(int size, int range, int align, int expected)
    {
        Assert.Equal(expected, HardwareAlignment.RoundUp(size, range, align));
        Assert.True(HardwareAlignment.RoundUp(size, range, align) >= size);
    }
}
