using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests;

/// <summary>Matrices with known properties, built without the factorizations under test.</summary>
internal static class TestMatrices
{
    /// <summary>A random n × n orthogonal matrix: a product of n seeded Householder reflectors applied to I.</summary>
    public static Matrix<T> Orthogonal<T>(int n, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var q = Matrix<T>.Identity(n);
        var g = RandomMatrix.Gaussian<T>(n, n, seed);
        for (int k = 0; k < n - 1; k++)
        {
            var v = g.Slice(k, k, n - k, 1);
            T tau = Householder.Generate(v);
            Householder.ApplyLeft(v, tau, q.Slice(k, 0, n - k, n));
        }
        return q;
    }

    /// <summary>An m × n matrix <c>U·diag(s)·Vᵀ</c> with random orthogonal U, V, and the given singular values.</summary>
    public static Matrix<T> WithSingularValues<T>(int m, int n, IReadOnlyList<double> s, int seed)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Build in double so the prescribed spectrum is exact to double rounding before the final cast.
        var u = Orthogonal<double>(m, seed);
        var v = Orthogonal<double>(n, seed + 1);
        var us = new Matrix<double>(m, n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < Math.Min(s.Count, Math.Min(m, n)); j++)
                us[i, j] = u[i, j] * s[j];
        var a = Blas.Multiply<double>(us, v.Transpose());
        return Matrix<T>.Create(m, n, (i, j) => T.CreateTruncating(a[i, j]));
    }

    /// <summary>A random m × n matrix of exact rank r (product of Gaussian m × r and r × n factors, in double).</summary>
    public static Matrix<T> OfRank<T>(int m, int n, int r, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = Blas.Multiply<double>(RandomMatrix.Gaussian<double>(m, r, seed), RandomMatrix.Gaussian<double>(r, n, seed + 1));
        return Matrix<T>.Create(m, n, (i, j) => T.CreateTruncating(a[i, j]));
    }

    /// <summary>Reference product by a plain triple loop in double.</summary>
    public static Matrix<double> ReferenceProduct<T>(MatrixView<T> a, MatrixView<T> b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var c = new Matrix<double>(a.Rows, b.Cols);
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < b.Cols; j++)
            {
                double s = 0;
                for (int p = 0; p < a.Cols; p++) s += double.CreateTruncating(a[i, p]) * double.CreateTruncating(b[p, j]);
                c[i, j] = s;
            }
        return c;
    }

    /// <summary>A⁺ = V·Σ⁻¹·Uᵀ written out term by term from the SVD (σ below 1e-12·σ₁ dropped), in double:
    /// an independent check on the library's pseudo-inverse and CUR cores.</summary>
    public static Matrix<double> ReferencePseudoInverse(MatrixView<double> a)
    {
        var svd = Whittle.LinearAlgebra.Factorizations.Svd.Compute(a);
        var p = new Matrix<double>(a.Cols, a.Rows);
        for (int k = 0; k < svd.S.Length; k++)
        {
            if (svd.S[k] <= 1e-12 * svd.S[0]) continue;
            for (int i = 0; i < a.Cols; i++)
                for (int j = 0; j < a.Rows; j++)
                    p[i, j] += svd.Vt[k, i] * svd.U[j, k] / svd.S[k];
        }
        return p;
    }

    /// <summary>‖QᵀQ − I‖_max for the columns of Q.</summary>
    public static double OrthogonalityError<T>(MatrixView<T> q) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = ReferenceProduct(q.Transpose(), q);
        double e = 0;
        for (int i = 0; i < g.Rows; i++)
            for (int j = 0; j < g.Cols; j++)
                e = Math.Max(e, Math.Abs(g[i, j] - (i == j ? 1 : 0)));
        return e;
    }

    /// <summary>Unit roundoff of T.</summary>
    public static double Epsilon<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? 5.96e-8 : 1.11e-16;
}
