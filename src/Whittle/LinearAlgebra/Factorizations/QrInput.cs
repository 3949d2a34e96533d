// Shared input checks and layout helpers for HouseholderQr and PivotedQr (not an algorithm).

using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>Input checks and layout helpers shared by the QR factorizations.</summary>
internal static class QrInput
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming <paramref name="paramName"/> when any entry is NaN or infinite.</summary>
    public static void RequireFinite<T>(MatrixView<T> a, string paramName) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++)
                if (!T.IsFinite(a[i, j]))
                    ThrowHelper.Argument(paramName, $"The matrix must be finite, but entry ({i}, {j}) is {a[i, j]}.");
    }

    /// <summary>Aᵀ as a new n × m row-major matrix (row j = column j of A).</summary>
    public static Matrix<T> TransposedCopy<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var t = new Matrix<T>(a.Cols, a.Rows);
        a.Transpose().CopyTo(t);
        return t;
    }

    /// <summary>The k × n upper trapezoid of the matrix whose transpose is <paramref name="factorsT"/> (n × m).</summary>
    public static Matrix<T> UpperTrapezoid<T>(Matrix<T> factorsT, int k) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = factorsT.Rows;
        var r = new Matrix<T>(k, n);
        factorsT.Transpose().Slice(0, 0, k, n).CopyTo(r); // tiled transposing copy
        for (int i = 0; i < k; i++) r.Row(i).Slice(0, Math.Min(i, n)).Clear();
        return r;
    }

    /// <summary>Unit roundoff u = ε/2 of T (2⁻²⁴ for float, 2⁻⁵³ for double).</summary>
    public static double UnitRoundoff<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? Math.ScaleB(1.0, -24) : Math.ScaleB(1.0, -53);
}
