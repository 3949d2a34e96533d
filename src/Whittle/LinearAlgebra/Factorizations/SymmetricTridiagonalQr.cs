using System.Diagnostics;
using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// Eigenvalues (and optionally eigenvectors) of a symmetric tridiagonal matrix T (diagonal d,
/// off-diagonal e) by the implicit symmetric QR algorithm with Wilkinson shifts: <c>T = Z·Λ·Zᵀ</c>.
/// </summary>
/// <remarks>
/// <para>Golub and Van Loan Algorithms 8.3.2 / 8.3.3 (LAPACK dsteqr without its QL branch): the
/// off-diagonal e_i is negligible when <c>|e_i| ≤ ε·(|d_i| + |d_{i+1}|)</c>; the bottom unreduced block
/// gets one implicit QR step at a time (bulge chased downwards) until its last off-diagonal deflates.
/// Wilkinson's shift gives (in practice cubic, at worst) global convergence; about 2 steps per value.</para>
/// <para>Vectors: the caller passes <c>Qᵀ</c> (n × p, row-major; the identity gives Zᵀ); each rotation
/// mixes two of its rows through <see cref="PlaneRotations{T}"/>, so on return it holds <c>(Q·Z)ᵀ</c>
/// — row i is the eigenvector of the returned value d_i. Values come back ascending, rows permuted alike.</para>
/// <para>Numerics: each eigenvalue has absolute error O(ε·‖T‖); eigenvectors are orthonormal to O(nε).</para>
/// </remarks>
internal static class SymmetricTridiagonalQr
{
    private const int MaxIterationsPerValue = 30;

    /// <summary>On return d holds the eigenvalues ascending and e is destroyed.</summary>
    public static void Compute<T>(Span<T> d, Span<T> e, MatrixView<T>? qt) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = d.Length;
        Debug.Assert(e.Length == Math.Max(0, n - 1));
        Debug.Assert(qt is null || (qt.Value.Rows == n && qt.Value.IsRowMajor));
        if (n == 0) return;
        var rot = qt is null ? null : new PlaneRotations<T>();
        if (typeof(T) == typeof(float))
        {
            // Single precision: iterate in double, rounding rotations to float only to apply them.
            var dd = new double[n];
            var ed = new double[Math.Max(0, n - 1)];
            for (int i = 0; i < n; i++) dd[i] = double.CreateTruncating(d[i]);
            for (int i = 0; i < ed.Length; i++) ed[i] = double.CreateTruncating(e[i]);
            Iterate<double, T>(dd, ed, rot, qt);
            for (int i = 0; i < n; i++) d[i] = T.CreateTruncating(dd[i]);
        }
        else
        {
            Iterate<T, T>(d, e, rot, qt);
        }
        if (rot is not null) rot.Flush(qt!.Value);

        // Ascending selection sort, rows of Qᵀ alike.
        for (int i = 0; i < n - 1; i++)
        {
            int best = i;
            for (int j = i + 1; j < n; j++) if (d[j] < d[best]) best = j;
            if (best == i) continue;
            (d[i], d[best]) = (d[best], d[i]);
            if (qt is { } q)
            {
                var ri = q.Row(i);
                var rb = q.Row(best);
                for (int k = 0; k < ri.Length; k++) (ri[k], rb[k]) = (rb[k], ri[k]);
            }
        }
    }

    private static void Iterate<TC, T>(Span<TC> d, Span<TC> e, PlaneRotations<T>? rot, MatrixView<T>? qt)
        where TC : unmanaged, IFloatingPointIeee754<TC> where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = d.Length;
        int flushAt = Math.Max(4096, 32 * n);
        TC eps = TC.CreateTruncating(typeof(T) == typeof(float) ? 5.9604645e-8 : 1.1102230246251565e-16);
        TC two = TC.One + TC.One;
        var c = new TC[n];
        var s = new TC[n];
        var tc = new T[n];
        var ts = new T[n];
        long iter = 0, maxIter = (long)MaxIterationsPerValue * n;
        int m = n - 1;
        while (m > 0)
        {
            if (rot is not null && rot.Pending >= flushAt) rot.Flush(qt!.Value);
            if (Negligible<TC>(e[m - 1], d[m - 1], d[m], eps)) { e[m - 1] = TC.Zero; m--; continue; }
            int l = m - 1;
            while (l > 0 && !Negligible<TC>(e[l - 1], d[l - 1], d[l], eps)) l--;
            if (l > 0) e[l - 1] = TC.Zero;
            if (++iter > maxIter)
                throw new ArithmeticException($"Symmetric tridiagonal QR did not converge after {iter} steps (n = {n}).");

            // Wilkinson shift: the eigenvalue of the trailing 2 × 2 closer to d[m].
            TC delta = (d[m - 1] - d[m]) / two, b = e[m - 1];
            TC denom = delta + TC.CopySign(TC.Hypot(delta, b), delta == TC.Zero ? TC.One : delta);
            TC mu = d[m] - b / denom * b;

            TC x = d[l] - mu, z = e[l];
            for (int k = l; k < m; k++)
            {
                BidiagonalSvd.Lartg(x, z, out TC ck, out TC sk, out TC r);
                if (k > l) e[k - 1] = r;
                TC a0 = d[k], b0 = e[k], c0 = d[k + 1];
                TC cs = ck * sk, cc = ck * ck, ss = sk * sk;
                d[k] = cc * a0 + two * cs * b0 + ss * c0;
                d[k + 1] = ss * a0 - two * cs * b0 + cc * c0;
                e[k] = cs * (c0 - a0) + (cc - ss) * b0;
                if (k + 1 < m)
                {
                    z = sk * e[k + 1];
                    e[k + 1] = ck * e[k + 1];
                    x = e[k];
                }
                c[k - l] = ck;
                s[k - l] = sk;
            }
            if (rot is not null)
            {
                for (int i = 0; i < m - l; i++) { tc[i] = T.CreateTruncating(c[i]); ts[i] = T.CreateTruncating(s[i]); }
                rot.AddSweep(l, true, tc.AsSpan(0, m - l), ts.AsSpan(0, m - l));
            }
        }
    }

    private static bool Negligible<T>(T e, T d0, T d1, T eps) where T : unmanaged, IFloatingPointIeee754<T>
        => T.Abs(e) <= eps * (T.Abs(d0) + T.Abs(d1)) || T.Abs(e) < T.CreateTruncating(typeof(T) == typeof(float) ? 1.17549435e-38 : 2.2250738585072014e-308);
}
