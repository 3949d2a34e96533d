using System.Numerics;
using Whittle.LinearAlgebra.Kernels;

namespace Whittle.Tests.LinearAlgebra;

/// <summary>Level-1 kernels against a scalar double-precision reference, at every length that exercises the
/// vector bodies and scalar tails (0..256) plus a few large ones.</summary>
public abstract class VectorKernelTests<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly int[] Lengths = [.. Enumerable.Range(0, 257), 1000, 4099, 65537];

    private static double Eps => TestMatrices.Epsilon<T>();

    private static T[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new T[n];
        for (int i = 0; i < n; i++) x[i] = T.CreateTruncating(rng.NextDouble() * 2 - 1);
        return x;
    }

    private static double D(T v) => double.CreateTruncating(v);

    /// <summary>Large values for the scaling tests: 1e30 for float, 1e300 for double.</summary>
    protected abstract double Huge { get; }

    /// <summary>Tiny values for the scaling tests: 1e-30 for float, 1e-300 for double.</summary>
    protected abstract double Tiny { get; }

    [Fact]
    public void DotMatchesTheReferenceAtEveryLength()
    {
        foreach (int n in Lengths)
        {
            var x = Random(n, n);
            var y = Random(n, n + 1);
            double expected = 0, magnitude = 0;
            for (int i = 0; i < n; i++)
            {
                expected += D(x[i]) * D(y[i]);
                magnitude += Math.Abs(D(x[i]) * D(y[i]));
            }
            double got = D(VectorKernels.Dot<T>(x, y));
            Assert.True(Math.Abs(got - expected) <= 2 * Eps * (Math.Sqrt(n) + 4) * magnitude + double.Epsilon, $"n={n}: {got} vs {expected}");
        }
    }

    [Fact]
    public void AxpyMatchesTheReferenceAtEveryLength()
    {
        T a = T.CreateTruncating(-0.7);
        foreach (int n in Lengths)
        {
            var x = Random(n, 2 * n);
            var y = Random(n, 2 * n + 1);
            var y0 = (T[])y.Clone();
            VectorKernels.Axpy<T>(a, x, y);
            for (int i = 0; i < n; i++)
            {
                double expected = D(y0[i]) + D(a) * D(x[i]);
                // Fused (one rounding) in the vector body, two roundings in the tail; the double reference rounds too.
                Assert.True(Math.Abs(D(y[i]) - expected) <= 4 * Eps * (Math.Abs(D(y0[i])) + Math.Abs(D(a) * D(x[i]))), $"n={n}, i={i}");
            }
        }
    }

    [Fact]
    public void ScaleIsExactlyTheRoundedProductAtEveryLength()
    {
        T a = T.CreateTruncating(1.3);
        foreach (int n in Lengths)
        {
            var x = Random(n, 3 * n);
            var x0 = (T[])x.Clone();
            VectorKernels.Scale(a, x);
            for (int i = 0; i < n; i++) Assert.Equal(a * x0[i], x[i]);
        }
    }

    [Fact]
    public void Norm2MatchesTheReferenceAtEveryLength()
    {
        foreach (int n in Lengths)
        {
            var x = Random(n, 4 * n);
            double s = 0;
            foreach (var v in x) s += D(v) * D(v);
            double expected = Math.Sqrt(s);
            Assert.True(Math.Abs(D(VectorKernels.Norm2<T>(x)) - expected) <= 2 * Eps * (Math.Sqrt(n) + 4) * expected, $"n={n}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Norm2NeitherOverflowsNorUnderflows(bool huge)
    {
        double scale = huge ? Huge : Tiny;
        foreach (int n in new[] { 1, 2, 7, 16, 33, 255, 4099 })
        {
            var x = Random(n, 5 * n);
            double s = 0;
            for (int i = 0; i < n; i++)
            {
                x[i] = T.CreateTruncating(D(x[i]) * scale);
                double v = D(x[i]) / scale;
                s += v * v;
            }
            double expected = Math.Sqrt(s) * scale;
            double got = D(VectorKernels.Norm2<T>(x));
            Assert.True(double.IsFinite(got) && got > 0, $"n={n}: {got}");
            Assert.True(Math.Abs(got - expected) <= 4 * Eps * (Math.Sqrt(n) + 4) * expected, $"n={n}: {got} vs {expected}");
        }
    }

    [Fact]
    public void NaNPropagates()
    {
        foreach (int n in new[] { 1, 5, 16, 17, 64, 100, 257 })
            foreach (int at in new[] { 0, n / 2, n - 1 })
            {
                var x = Random(n, n);
                var y = Random(n, n + 7);
                x[at] = T.NaN;
                Assert.True(T.IsNaN(VectorKernels.Dot<T>(x, y)), $"Dot n={n} at={at}");
                Assert.True(T.IsNaN(VectorKernels.Norm2<T>(x)), $"Norm2 n={n} at={at}");
                VectorKernels.Axpy<T>(T.One, x, y);
                Assert.True(T.IsNaN(y[at]), $"Axpy n={n} at={at}");
                for (int i = 0; i < n; i++) if (i != at) Assert.False(T.IsNaN(y[i]));
                VectorKernels.Scale(T.CreateTruncating(2.0), x);
                Assert.True(T.IsNaN(x[at]), $"Scale n={n} at={at}");
            }
    }

    [Fact]
    public void MaxAbsMatchesAScalarLoopAtEveryLength()
    {
        foreach (int n in Lengths)
        {
            var x = Random(n, 3 * n + 1);
            T expected = T.Zero;
            foreach (var v in x) expected = T.Max(expected, T.Abs(v));
            Assert.Equal(expected, VectorKernels.MaxAbs<T>(x));
            if (n == 0) continue;
            x[n - 1] = T.CreateTruncating(-5.0); // the largest entry in the scalar tail, negative
            Assert.Equal(T.CreateTruncating(5.0), VectorKernels.MaxAbs<T>(x));
            x[0] = T.NegativeInfinity;
            Assert.Equal(T.PositiveInfinity, VectorKernels.MaxAbs<T>(x));
            x[n / 2] = T.NaN;
            Assert.True(T.IsNaN(VectorKernels.MaxAbs<T>(x)), $"n={n}");
        }
    }

    [Fact]
    public void Norm2OfZerosAndInfinity()
    {
        Assert.Equal(T.Zero, VectorKernels.Norm2<T>(new T[100]));
        Assert.Equal(T.Zero, VectorKernels.Norm2<T>(ReadOnlySpan<T>.Empty));
        var x = new T[40];
        x[3] = T.NegativeInfinity;
        Assert.Equal(T.PositiveInfinity, VectorKernels.Norm2<T>(x));
    }
}

public sealed class VectorKernelTestsFloat : VectorKernelTests<float>
{
    protected override double Huge => 1e30;
    protected override double Tiny => 1e-30;
}

public sealed class VectorKernelTestsDouble : VectorKernelTests<double>
{
    protected override double Huge => 1e300;
    protected override double Tiny => 1e-300;
}
