using System.Diagnostics;
using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// Singular values (and optionally vectors) of an n × n upper bidiagonal matrix B (diagonal d,
/// superdiagonal e) by implicit-shift QR: <c>B = U_B·Σ·V_Bᵀ</c>.
/// </summary>
/// <remarks>
/// <para>Mirrors LAPACK dbdsqr (Demmel and Kahan, "Accurate singular values of bidiagonal matrices",
/// SIAM J. Sci. Stat. Comput. 11, 1990; Golub and Van Loan §8.6.2): relative-accuracy convergence
/// tests and splitting, a zero-shift QR sweep whenever the shift would spoil the relative accuracy of
/// the small singular values, bulge chasing top-down or bottom-up depending on which end is larger
/// (graded matrices), a final sign fix so σ ≥ 0 and a descending sort.</para>
/// <para>Vectors: rather than U_B and V_B themselves, the caller passes <c>Uᵀ</c> (n × p) and <c>Vᵀ</c>
/// (n × q) row-major, typically <c>Qᵀ</c> and <c>Pᵀ</c> from <see cref="Bidiagonalization"/>; each
/// rotation mixes two rows, so on return they hold <c>(Q·U_B)ᵀ</c> and <c>(P·V_B)ᵀ</c>. Rotations are
/// queued and applied in batches by <see cref="PlaneRotations{T}"/>.</para>
/// <para>Numerics: every singular value is computed to high relative accuracy (a few ε relative to
/// itself, not only to σ_max), whatever the grading of B. Inputs must be finite.</para>
/// </remarks>
internal static class BidiagonalSvd
{
    private const int MaxIterationsPerValue = 6;

    /// <summary>On return d holds σ in descending order and e is destroyed.</summary>
    public static void Compute<T>(Span<T> d, Span<T> e, MatrixView<T>? ut, MatrixView<T>? vt)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = d.Length;
        Debug.Assert(e.Length == Math.Max(0, n - 1));
        Debug.Assert(ut is null || ut.Value.Rows == n);
        Debug.Assert(vt is null || vt.Value.Rows == n);
        if (n == 0) return;
        var uRot = ut is null ? null : new PlaneRotations<T>();
        var vRot = vt is null ? null : new PlaneRotations<T>();
        int flushAt = Math.Max(4096, 32 * n);

        if (n > 1)
        {
            if (typeof(T) == typeof(float))
            {
                // Single precision: iterate in double (the rotations are rounded to float only when
                // applied to the vectors); the convergence tolerances stay those of float.
                var dd = new double[n];
                var ed = new double[n - 1];
                for (int i = 0; i < n; i++) dd[i] = double.CreateTruncating(d[i]);
                for (int i = 0; i < n - 1; i++) ed[i] = double.CreateTruncating(e[i]);
                Iterate<double, T>(dd, ed, uRot, vRot, ut, vt, flushAt);
                for (int i = 0; i < n; i++) d[i] = T.CreateTruncating(dd[i]);
            }
            else
            {
                Iterate<T, T>(d, e, uRot, vRot, ut, vt, flushAt);
            }
        }
        if (ut is { } u) uRot!.Flush(u);
        if (vt is { } v) vRot!.Flush(v);

        // σ ≥ 0: flip the sign of the matching right vector.
        for (int i = 0; i < n; i++)
        {
            if (d[i] < T.Zero)
            {
                d[i] = -d[i];
                if (vt is { } v2) Kernels.VectorKernels.Scale(-T.One, v2.Row(i));
            }
        }
        // Descending selection sort (at most n−1 row swaps).
        for (int i = 0; i < n - 1; i++)
        {
            int best = i;
            for (int j = i + 1; j < n; j++) if (d[j] > d[best]) best = j;
            if (best == i) continue;
            (d[i], d[best]) = (d[best], d[i]);
            if (ut is { } u2) SwapRows(u2, i, best);
            if (vt is { } v3) SwapRows(v3, i, best);
        }
    }

    private static void SwapRows<T>(MatrixView<T> a, int i, int j) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var ri = a.Row(i);
        var rj = a.Row(j);
        for (int k = 0; k < ri.Length; k++) (ri[k], rj[k]) = (rj[k], ri[k]);
    }

    private static void Iterate<TC, T>(Span<TC> d, Span<TC> e, PlaneRotations<T>? uRot, PlaneRotations<T>? vRot,
        MatrixView<T>? ut, MatrixView<T>? vt, int flushAt)
        where TC : unmanaged, IFloatingPointIeee754<TC> where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = d.Length;
        TC eps = TC.CreateTruncating(typeof(T) == typeof(float) ? 5.9604645e-8 : 1.1102230246251565e-16);
        TC unfl = TC.CreateTruncating(typeof(T) == typeof(float) ? 1.17549435e-38 : 2.2250738585072014e-308);
        TC tolmul = TC.Max(TC.CreateTruncating(10), TC.Min(TC.CreateTruncating(100), TC.Pow(eps, TC.CreateTruncating(-0.125))));
        TC tol = tolmul * eps;
        TC hndrth = TC.CreateTruncating(0.01);
        TC nT = TC.CreateTruncating(n);

        // Threshold for negligible off-diagonals, relative to an estimate of σ_min.
        TC smax = TC.Zero;
        for (int i = 0; i < n; i++) smax = TC.Max(smax, TC.Abs(d[i]));
        for (int i = 0; i < n - 1; i++) smax = TC.Max(smax, TC.Abs(e[i]));
        TC sminoa = TC.Abs(d[0]);
        if (sminoa != TC.Zero)
        {
            TC mu = sminoa;
            for (int i = 1; i < n; i++)
            {
                mu = TC.Abs(d[i]) * (mu / (mu + TC.Abs(e[i - 1])));
                if (mu < sminoa) sminoa = mu;
                if (sminoa == TC.Zero) break;
            }
        }
        sminoa /= TC.Sqrt(nT);
        TC thresh = TC.Max(tol * sminoa, TC.CreateTruncating(MaxIterationsPerValue) * nT * nT * unfl);

        var cr = new TC[n];
        var sr = new TC[n];
        var cl = new TC[n];
        var tc = new T[n];
        var ts = new T[n];
        var sl = new TC[n];
        long maxIter = (long)MaxIterationsPerValue * n * n;
        long iter = 0;
        int oldll = -1, oldm = -1, idir = 0;
        int m = n - 1;
        while (m > 0)
        {
            if (iter > maxIter)
                throw new ArithmeticException($"Bidiagonal SVD did not converge after {iter} QR steps (n = {n}).");
            if (uRot is not null && uRot.Pending >= flushAt) uRot.Flush(ut!.Value);
            if (vRot is not null && vRot.Pending >= flushAt) vRot.Flush(vt!.Value);

            // Find the bottom unreduced block d[ll..m].
            smax = TC.Abs(d[m]);
            int ll = 0;
            bool split = false;
            for (int k = m - 1; k >= 0; k--)
            {
                TC abss = TC.Abs(d[k]), abse = TC.Abs(e[k]);
                if (abse <= thresh)
                {
                    e[k] = TC.Zero;
                    ll = k + 1;
                    split = true;
                    break;
                }
                smax = TC.Max(smax, TC.Max(abss, abse));
            }
            if (split && ll == m)
            {
                m--;
                continue;
            }

            if (ll == m - 1)
            {
                // 2 × 2 block: solve it directly.
                Svd2x2(d[m - 1], e[m - 1], d[m], out TC sigmn, out TC sigmx, out TC sinr, out TC cosr, out TC sinl, out TC cosl);
                d[m - 1] = sigmx;
                e[m - 1] = TC.Zero;
                d[m] = sigmn;
                vRot?.Add(m - 1, T.CreateTruncating(cosr), T.CreateTruncating(sinr));
                uRot?.Add(m - 1, T.CreateTruncating(cosl), T.CreateTruncating(sinl));
                m -= 2;
                continue;
            }

            // A new block: chase towards the smaller end.
            if (ll > oldm || m < oldll)
                idir = TC.Abs(d[ll]) >= TC.Abs(d[m]) ? 1 : 2;

            // Convergence tests, which also estimate σ_min of the block (sminl).
            TC sminl;
            if (idir == 1)
            {
                if (TC.Abs(e[m - 1]) <= tol * TC.Abs(d[m])) { e[m - 1] = TC.Zero; continue; }
                TC mu = TC.Abs(d[ll]);
                sminl = mu;
                bool deflated = false;
                for (int k = ll; k < m; k++)
                {
                    if (TC.Abs(e[k]) <= tol * mu) { e[k] = TC.Zero; deflated = true; break; }
                    mu = TC.Abs(d[k + 1]) * (mu / (mu + TC.Abs(e[k])));
                    if (mu < sminl) sminl = mu;
                }
                if (deflated) continue;
            }
            else
            {
                if (TC.Abs(e[ll]) <= tol * TC.Abs(d[ll])) { e[ll] = TC.Zero; continue; }
                TC mu = TC.Abs(d[m]);
                sminl = mu;
                bool deflated = false;
                for (int k = m - 1; k >= ll; k--)
                {
                    if (TC.Abs(e[k]) <= tol * mu) { e[k] = TC.Zero; deflated = true; break; }
                    mu = TC.Abs(d[k]) * (mu / (mu + TC.Abs(e[k])));
                    if (mu < sminl) sminl = mu;
                }
                if (deflated) continue;
            }
            oldll = ll;
            oldm = m;

            // Shift: zero when it would spoil relative accuracy, else the smaller σ of the trailing 2 × 2.
            TC shift;
            if (nT * tol * (sminl / smax) <= TC.Max(eps, hndrth * tol))
                shift = TC.Zero;
            else
            {
                TC sll;
                if (idir == 1) { sll = TC.Abs(d[ll]); shift = Sv2x2Min(d[m - 1], e[m - 1], d[m]); }
                else { sll = TC.Abs(d[m]); shift = Sv2x2Min(d[ll], e[ll], d[ll + 1]); }
                if (sll > TC.Zero && (shift / sll) * (shift / sll) < eps) shift = TC.Zero;
            }
            iter += m - ll;
            int len = m - ll;

            if (shift == TC.Zero)
            {
                if (idir == 1)
                {
                    TC cs = TC.One, oldcs = TC.One, sn, r, oldsn = TC.Zero;
                    for (int i = ll; i < m; i++)
                    {
                        Lartg(d[i] * cs, e[i], out cs, out sn, out r);
                        if (i > ll) e[i - 1] = oldsn * r;
                        Lartg(oldcs * r, d[i + 1] * sn, out oldcs, out oldsn, out d[i]);
                        int j = i - ll;
                        cr[j] = cs; sr[j] = sn; cl[j] = oldcs; sl[j] = oldsn;
                    }
                    TC h = d[m] * cs;
                    d[m] = h * oldcs;
                    e[m - 1] = h * oldsn;
                    Push(vRot, ll, true, cr, sr, len, tc, ts);
                    Push(uRot, ll, true, cl, sl, len, tc, ts);
                    if (TC.Abs(e[m - 1]) <= thresh) e[m - 1] = TC.Zero;
                }
                else
                {
                    TC cs = TC.One, oldcs = TC.One, sn, r, oldsn = TC.Zero;
                    for (int i = m; i > ll; i--)
                    {
                        Lartg(d[i] * cs, e[i - 1], out cs, out sn, out r);
                        if (i < m) e[i] = oldsn * r;
                        Lartg(oldcs * r, d[i - 1] * sn, out oldcs, out oldsn, out d[i]);
                        int j = i - ll - 1;
                        cl[j] = cs; sl[j] = -sn; cr[j] = oldcs; sr[j] = -oldsn;
                    }
                    TC h = d[ll] * cs;
                    d[ll] = h * oldcs;
                    e[ll] = h * oldsn;
                    Push(vRot, ll, false, cr, sr, len, tc, ts);
                    Push(uRot, ll, false, cl, sl, len, tc, ts);
                    if (TC.Abs(e[ll]) <= thresh) e[ll] = TC.Zero;
                }
            }
            else if (idir == 1)
            {
                // Chase the bulge from top to bottom.
                TC f = (TC.Abs(d[ll]) - shift) * (TC.CopySign(TC.One, d[ll]) + shift / d[ll]);
                TC g = e[ll];
                for (int i = ll; i < m; i++)
                {
                    Lartg(f, g, out TC cosr, out TC sinr, out TC r);
                    if (i > ll) e[i - 1] = r;
                    f = cosr * d[i] + sinr * e[i];
                    e[i] = cosr * e[i] - sinr * d[i];
                    g = sinr * d[i + 1];
                    d[i + 1] = cosr * d[i + 1];
                    Lartg(f, g, out TC cosl, out TC sinl, out r);
                    d[i] = r;
                    f = cosl * e[i] + sinl * d[i + 1];
                    d[i + 1] = cosl * d[i + 1] - sinl * e[i];
                    if (i < m - 1)
                    {
                        g = sinl * e[i + 1];
                        e[i + 1] = cosl * e[i + 1];
                    }
                    int j = i - ll;
                    cr[j] = cosr; sr[j] = sinr; cl[j] = cosl; sl[j] = sinl;
                }
                e[m - 1] = f;
                Push(vRot, ll, true, cr, sr, len, tc, ts);
                Push(uRot, ll, true, cl, sl, len, tc, ts);
                if (TC.Abs(e[m - 1]) <= thresh) e[m - 1] = TC.Zero;
            }
            else
            {
                // Chase the bulge from bottom to top.
                TC f = (TC.Abs(d[m]) - shift) * (TC.CopySign(TC.One, d[m]) + shift / d[m]);
                TC g = e[m - 1];
                for (int i = m; i > ll; i--)
                {
                    Lartg(f, g, out TC cosr, out TC sinr, out TC r);
                    if (i < m) e[i] = r;
                    f = cosr * d[i] + sinr * e[i - 1];
                    e[i - 1] = cosr * e[i - 1] - sinr * d[i];
                    g = sinr * d[i - 1];
                    d[i - 1] = cosr * d[i - 1];
                    Lartg(f, g, out TC cosl, out TC sinl, out r);
                    d[i] = r;
                    f = cosl * e[i - 1] + sinl * d[i - 1];
                    d[i - 1] = cosl * d[i - 1] - sinl * e[i - 1];
                    if (i > ll + 1)
                    {
                        g = sinl * e[i - 2];
                        e[i - 2] = cosl * e[i - 2];
                    }
                    int j = i - ll - 1;
                    cl[j] = cosr; sl[j] = -sinr; cr[j] = cosl; sr[j] = -sinl;
                }
                e[ll] = f;
                if (TC.Abs(e[ll]) <= thresh) e[ll] = TC.Zero;
                Push(uRot, ll, false, cl, sl, len, tc, ts);
                Push(vRot, ll, false, cr, sr, len, tc, ts);
            }
        }
    }

    private static void Push<TC, T>(PlaneRotations<T>? queue, int first, bool forward, TC[] c, TC[] s, int len, T[] tc, T[] ts)
        where TC : unmanaged, IFloatingPointIeee754<TC> where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (queue is null) return;
        for (int i = 0; i < len; i++) { tc[i] = T.CreateTruncating(c[i]); ts[i] = T.CreateTruncating(s[i]); }
        queue.AddSweep(first, forward, tc.AsSpan(0, len), ts.AsSpan(0, len));
    }

    /// <summary>Plane rotation with <c>c·f + s·g = r</c>, <c>−s·f + c·g = 0</c>, c ≥ 0 (LAPACK lartg).</summary>
    internal static void Lartg<T>(T f, T g, out T c, out T s, out T r) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (g == T.Zero) { c = T.One; s = T.Zero; r = f; return; }
        if (f == T.Zero) { c = T.Zero; s = T.CopySign(T.One, g); r = T.Abs(g); return; }
        r = T.CopySign(T.Hypot(f, g), f);
        c = f / r;
        s = g / r;
    }

    /// <summary>Smaller singular value of [f g; 0 h] (LAPACK dlas2).</summary>
    internal static T Sv2x2Min<T>(T f, T g, T h) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T fa = T.Abs(f), ga = T.Abs(g), ha = T.Abs(h);
        T fhmn = T.Min(fa, ha), fhmx = T.Max(fa, ha);
        T one = T.One, two = one + one;
        if (fhmn == T.Zero) return T.Zero;
        if (ga < fhmx)
        {
            T asv = one + fhmn / fhmx, at = (fhmx - fhmn) / fhmx, au = (ga / fhmx) * (ga / fhmx);
            T c = two / (T.Sqrt(asv * asv + au) + T.Sqrt(at * at + au));
            return fhmn * c;
        }
        else
        {
            T au = fhmx / ga;
            if (au == T.Zero) return fhmn * fhmx / ga;
            T asv = one + fhmn / fhmx, at = (fhmx - fhmn) / fhmx;
            T c = one / (T.Sqrt(one + (asv * au) * (asv * au)) + T.Sqrt(one + (at * au) * (at * au)));
            T ssmin = fhmn * c * au;
            return ssmin + ssmin;
        }
    }

    /// <summary>
    /// SVD of the 2 × 2 upper triangular [f g; 0 h] (LAPACK dlasv2):
    /// <c>[csl snl; −snl csl]·[f g; 0 h]·[csr −snr; snr csr] = diag(ssmax, ssmin)</c>, |ssmax| ≥ |ssmin|.
    /// </summary>
    internal static void Svd2x2<T>(T f, T g, T h, out T ssmin, out T ssmax, out T snr, out T csr, out T snl, out T csl)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T one = T.One, two = one + one, four = two + two, half = one / two;
        T eps = T.CreateTruncating(typeof(T) == typeof(float) ? 5.9604645e-8 : 1.1102230246251565e-16);
        T ft = f, fa = T.Abs(ft), ht = h, ha = T.Abs(h);
        int pmax = 1;
        bool swap = ha > fa;
        if (swap)
        {
            pmax = 3;
            (ft, ht) = (ht, ft);
            (fa, ha) = (ha, fa);
        }
        T gt = g, ga = T.Abs(gt);
        T clt, crt, slt, srt;
        if (ga == T.Zero)
        {
            ssmin = ha; ssmax = fa;
            clt = one; crt = one; slt = T.Zero; srt = T.Zero;
        }
        else
        {
            bool gasmal = true;
            ssmin = T.Zero; ssmax = T.Zero;
            clt = one; crt = one; slt = T.Zero; srt = T.Zero;
            if (ga > fa)
            {
                pmax = 2;
                if (fa / ga < eps)
                {
                    gasmal = false;
                    ssmax = ga;
                    ssmin = ha > one ? fa / (ga / ha) : (fa / ga) * ha;
                    clt = one;
                    slt = ht / gt;
                    srt = one;
                    crt = ft / gt;
                }
            }
            if (gasmal)
            {
                T dd = fa - ha;
                T l = dd == fa ? one : dd / fa;
                T mq = gt / ft;
                T t = two - l;
                T mm = mq * mq, tt = t * t;
                T s = T.Sqrt(tt + mm);
                T r = l == T.Zero ? T.Abs(mq) : T.Sqrt(l * l + mm);
                T a = half * (s + r);
                ssmin = ha / a;
                ssmax = fa * a;
                if (mm == T.Zero)
                {
                    if (l == T.Zero) t = T.CopySign(two, ft) * T.CopySign(one, gt);
                    else t = gt / T.CopySign(dd, ft) + mq / t;
                }
                else
                {
                    t = (mq / (s + t) + mq / (r + l)) * (one + a);
                }
                l = T.Sqrt(t * t + four);
                crt = two / l;
                srt = t / l;
                clt = (crt + srt * mq) / a;
                slt = ht / ft * srt / a;
            }
        }
        if (swap) { csl = srt; snl = crt; csr = slt; snr = clt; }
        else { csl = clt; snl = slt; csr = crt; snr = srt; }
        T tsign = pmax switch
        {
            1 => T.CopySign(one, csr) * T.CopySign(one, csl) * T.CopySign(one, f),
            2 => T.CopySign(one, snr) * T.CopySign(one, csl) * T.CopySign(one, g),
            _ => T.CopySign(one, snr) * T.CopySign(one, snl) * T.CopySign(one, h),
        };
        ssmax = T.CopySign(ssmax, tsign);
        ssmin = T.CopySign(ssmin, tsign * T.CopySign(one, f) * T.CopySign(one, h));
    }
}
