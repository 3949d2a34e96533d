using System.Numerics;

namespace Whittle.LinearAlgebra;

/// <summary>Norms and distances of matrices, accumulated in double precision.</summary>
public static class MatrixNorms
{
    /// <summary>‖A‖_F.</summary>
    public static double Frobenius<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double s = 0;
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++)
            {
                double v = double.CreateTruncating(a[i, j]);
                s += v * v;
            }
        return Math.Sqrt(s);
    }

    /// <summary>‖A − B‖_F for two matrices of the same shape.</summary>
    public static double FrobeniusDistance<T>(MatrixView<T> a, MatrixView<T> b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (a.Rows != b.Rows || a.Cols != b.Cols)
            ThrowHelper.ShapeMismatch(nameof(b), "FrobeniusDistance", $"{a.Rows}×{a.Cols}", $"{b.Rows}×{b.Cols}");
        double s = 0;
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++)
            {
                double d = double.CreateTruncating(a[i, j]) - double.CreateTruncating(b[i, j]);
                s += d * d;
            }
        return Math.Sqrt(s);
    }

    /// <summary>max |A_ij|.</summary>
    public static double MaxAbs<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double m = 0;
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++)
                m = Math.Max(m, Math.Abs(double.CreateTruncating(a[i, j])));
        return m;
    }
}
