using System.Numerics;

namespace Whittle.LinearAlgebra;

/// <summary>Seeded random matrices: the same seed gives the same matrix on every machine.</summary>
public static class RandomMatrix
{
    /// <summary>Entries drawn independently from N(0, 1) (Box–Muller over <see cref="Random"/> seeded with <paramref name="seed"/>).</summary>
    public static Matrix<T> Gaussian<T>(int rows, int cols, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var m = new Matrix<T>(rows, cols);
        var rng = new Random(seed);
        var span = m.AsSpan();
        for (int i = 0; i < span.Length; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            span[i] = T.CreateTruncating(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < span.Length) span[i + 1] = T.CreateTruncating(r * Math.Sin(2 * Math.PI * u2));
        }
        return m;
    }

    /// <summary>Entries drawn independently and uniformly from [<paramref name="low"/>, <paramref name="high"/>).</summary>
    public static Matrix<T> Uniform<T>(int rows, int cols, int seed, double low = 0, double high = 1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var m = new Matrix<T>(rows, cols);
        var rng = new Random(seed);
        var span = m.AsSpan();
        for (int i = 0; i < span.Length; i++) span[i] = T.CreateTruncating(low + (high - low) * rng.NextDouble());
        return m;
    }
}
