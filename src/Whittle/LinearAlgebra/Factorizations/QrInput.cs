// Shared layout helpers for HouseholderQr and PivotedQr (not an algorithm).

using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>Layout helpers shared by the QR factorizations.</summary>
internal static class QrInput
{
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

}
