using System.Numerics;

namespace Whittle.LinearAlgebra;

/// <summary>Argument checks shared by the factorizations, with messages that say where the bad value is.</summary>
internal static class MatrixChecks
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming <paramref name="paramName"/> at the first NaN or
    /// infinite entry (of the lower triangle only, when <paramref name="lowerTriangleOnly"/>).</summary>
    public static void RequireFinite<T>(MatrixView<T> a, string paramName, bool lowerTriangleOnly = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < a.Rows; i++)
        {
            int end = lowerTriangleOnly ? Math.Min(i + 1, a.Cols) : a.Cols;
            for (int j = 0; j < end; j++)
                if (!T.IsFinite(a[i, j]))
                    ThrowHelper.Argument(paramName,
                        $"Expected finite values{(lowerTriangleOnly ? " in the lower triangle" : "")} of the {a.Rows}×{a.Cols} matrix, " +
                        $"got {a[i, j]} at ({i}, {j}); remove or replace NaN and infinite entries first.");
        }
    }
}

/// <summary>Machine precision of the element types.</summary>
internal static class Precision
{
    /// <summary>Machine epsilon ε: the distance from 1 to the next larger T (2⁻²³ for float, 2⁻⁵² for double).</summary>
    public static double Epsilon<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
        double.CreateTruncating(T.BitIncrement(T.One) - T.One);

    /// <summary>Unit roundoff u = ε/2 (2⁻²⁴ for float, 2⁻⁵³ for double), LAPACK's dlamch('E').</summary>
    public static double UnitRoundoff<T>() where T : unmanaged, IFloatingPointIeee754<T> => Epsilon<T>() / 2;
}
