namespace Whittle.Compression;

/// <summary>Bisection over candidates ordered so that every candidate after one that fits a budget fits it too.</summary>
internal static class Bisection
{
    /// <summary>
    /// The first index in [0, <paramref name="count"/>) whose candidate fits, and true; the last index and false when
    /// not even the last fits. Asks <paramref name="fits"/> about log₂(count) + 1 times (it may be a measurement).
    /// </summary>
    public static (int Index, bool Met) First(int count, Func<int, bool> fits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        int lo = 0, hi = count - 1;
        if (!fits(hi)) return (hi, false);
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (fits(mid)) hi = mid;
            else lo = mid + 1;
        }
        return (lo, true);
    }
}
