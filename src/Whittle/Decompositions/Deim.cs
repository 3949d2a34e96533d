// DEIM index selection: r distinct rows p of an n × r basis U so that U[p, :] is well conditioned.
//
// Contract
//   Shapes: U (the basis) is n × r with orthonormal columns (n ≥ r; for CURing: the top-r left or right
//   singular vectors of the importance matrix S, n = m or n). The result is r distinct row indices in
//   selection order; ‖(Pᵀ·U)⁻¹‖₂ is the DEIM error constant. U is never modified. Ties: lowest index.
//   Textbook  (Chaturantabut & Sorensen 2010): p_0 = argmax |u_0|; for j ≥ 1 solve
//             U[p_{:j}, :j]·c = U[p_{:j}, j], residual ρ = u_j − U[:, :j]·c, p_j = argmax |ρ| over rows
//             not yet chosen (in exact arithmetic ρ vanishes on chosen rows; excluding them guards
//             distinctness against rounding).
//   Reference (the public CURing code, as METHODS.md §1 step 6): on a working copy W of U, at step i
//             p_i = argmax |W[:, i]| over rows not yet picked, then deflate the remaining columns with
//             that single row: a = W[p_i, :i+1], W[:, i+1:] −= W[:, :i+1]·(aᵀ/‖a‖²)·W[p_i, i+1:].
//             (Row p_i of W[:, i+1:] becomes zero.)
//   QDeim     (Drmač & Gugercin 2016): the first r pivots of the column-pivoted QR of Uᵀ.
//
// Reference
//   Chaturantabut & Sorensen, "Nonlinear model reduction via discrete empirical interpolation",
//   SISC 32 (2010), Alg. 1; Sorensen & Embree, "A DEIM induced CUR factorization", SISC 38 (2016);
//   Drmač & Gugercin, "A new selection operator for the discrete empirical interpolation method",
//   SISC 38 (2016); Park & Moon, "CURing Large Models", arXiv 2501.04211 (code lukepark327/CURing).
//
// Numerical caveats
//   Textbook: ‖(PᵀU)⁻¹‖ ≤ (1 + sqrt(2n))^{r−1}/‖u_0‖_∞ (pessimistic; small in practice). Q-DEIM:
//   ≤ sqrt(n − r + 1)·O(2^r) with the same practical behaviour and a rank-revealing justification.
//   The Reference variant's single-row deflation is not the textbook interpolation residual (for
//   i ≥ 1 it is a rank-one update, not a projection onto the chosen rows), so its bound is not the
//   DEIM bound; it is offered for faithfulness. The j × j solves of Textbook are done in double by LU
//   with partial pivoting (O(r⁴) in total; fine for r ≤ a few hundred).

using System.Diagnostics;
using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>Which DEIM index-selection rule <see cref="Deim.SelectRows{T}"/> uses.</summary>
public enum DeimVariant
{
    /// <summary>Chaturantabut–Sorensen DEIM: interpolation residual against all chosen indices.</summary>
    Textbook,

    /// <summary>The CURing reference code's variant: deflation with the single newly chosen row.</summary>
    Reference,

    /// <summary>Drmač–Gugercin Q-DEIM: the first r pivots of the column-pivoted QR of Uᵀ.</summary>
    QDeim,
}

/// <summary>Discrete empirical interpolation (DEIM) row selection from an orthonormal basis.</summary>
public static class Deim
{
    /// <summary>Chooses r distinct rows of the n × r basis U, in selection order.</summary>
    /// <param name="basis">U, n × r with n ≥ r, finite, (ideally) orthonormal columns. Not modified.</param>
    /// <param name="variant">The selection rule; <see cref="DeimVariant.Reference"/> (the CURing code's) by default.</param>
    /// <returns>r distinct row indices in 0..n−1.</returns>
    /// <exception cref="ArgumentException">r &gt; n, non-finite entries, or (Q-DEIM) U has rank below r.</exception>
    public static int[] SelectRows<T>(MatrixView<T> basis, DeimVariant variant = DeimVariant.Reference)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = basis.Rows, r = basis.Cols;
        if (r > n)
            ThrowHelper.ShapeMismatch(nameof(basis), "Deim.SelectRows: the basis must have at least as many rows as columns",
                $"n×r with n ≥ r", $"{n}×{r}");
        for (int i = 0; i < n; i++)
            for (int j = 0; j < r; j++)
                if (!T.IsFinite(basis[i, j]))
                    ThrowHelper.Argument(nameof(basis), $"The basis must be finite, but entry ({i}, {j}) is {basis[i, j]}.");
        int[] p = variant switch
        {
            DeimVariant.Textbook => Textbook(basis),
            DeimVariant.Reference => Reference(basis),
            DeimVariant.QDeim => QDeim(basis),
            _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, "Expected a defined DeimVariant."),
        };
        Debug.Assert(p.Length == r && p.Distinct().Count() == r, "r distinct indices");
        return p;
    }

    /// <summary>argmax_i |v_i| over rows not picked (first on ties); -1 when every row is picked.</summary>
    private static int ArgMaxAbs<T>(ReadOnlySpan<T> v, bool[] picked) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int best = -1;
        T bestAbs = T.Zero;
        for (int i = 0; i < v.Length; i++)
        {
            if (picked[i]) continue;
            T a = T.Abs(v[i]);
            if (best < 0 || a > bestAbs) { best = i; bestAbs = a; }
        }
        return best;
    }

    private static int[] Textbook<T>(MatrixView<T> basis) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = basis.Rows, r = basis.Cols;
        var u = basis.ToMatrix();
        var ut = u.Transpose().ToMatrix(); // r × n: row j = column j of U (contiguous)
        var p = new int[r];
        var picked = new bool[n];
        var residual = new T[n];
        var c = new T[r];
        for (int j = 0; j < r; j++)
        {
            ut.Row(j).CopyTo(residual);
            if (j > 0)
            {
                // c = U[p, :j]⁻¹·U[p, j];  ρ = u_j − U[:, :j]·c
                var a = new double[j * j];
                var b = new double[j];
                for (int s = 0; s < j; s++)
                {
                    for (int t = 0; t < j; t++) a[s * j + t] = double.CreateTruncating(u[p[s], t]);
                    b[s] = double.CreateTruncating(u[p[s], j]);
                }
                SolveDense(a, b, j);
                for (int t = 0; t < j; t++) c[t] = T.CreateTruncating(b[t]);
                Blas.Gemv(-T.One, u.Slice(0, 0, n, j), c.AsSpan(0, j), T.One, residual);
            }
            p[j] = ArgMaxAbs<T>(residual, picked);
            picked[p[j]] = true;
        }
        return p;
    }

    private static int[] Reference<T>(MatrixView<T> basis) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = basis.Rows, r = basis.Cols;
        var w = basis.ToMatrix();
        var p = new int[r];
        var picked = new bool[n];
        var column = new T[n];
        var v = new T[n];
        for (int i = 0; i < r; i++)
        {
            for (int s = 0; s < n; s++) column[s] = w[s, i];
            int pi = ArgMaxAbs<T>(column, picked);
            p[i] = pi;
            picked[pi] = true;
            int rest = r - i - 1;
            if (rest == 0) break;
            // a = W[p_i, :i+1]; v = W[:, :i+1]·aᵀ / ‖a‖²; W[:, i+1:] −= v·W[p_i, i+1:]
            var a = w.Row(pi).Slice(0, i + 1);
            T norm2 = T.Zero;
            foreach (T x in a) norm2 += x * x;
            if (norm2 == T.Zero) continue;
            Blas.Gemv(T.One / norm2, w.Slice(0, 0, n, i + 1), a, T.Zero, v);
            var rowRest = w.Row(pi).Slice(i + 1, rest).ToArray();
            Blas.Ger(-T.One, v, rowRest, w.Slice(0, i + 1, n, rest));
        }
        return p;
    }

    private static int[] QDeim<T>(MatrixView<T> basis) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int r = basis.Cols;
        var qr = PivotedQr.Compute(basis.Transpose(), new PivotedQrOptions(MaxRank: r));
        if (qr.Rank < r)
            ThrowHelper.Argument(nameof(basis), $"Q-DEIM needs a basis of full column rank {r}, but its pivoted QR stopped at rank {qr.Rank}.");
        return qr.Pivots[..r].ToArray();
    }

    /// <summary>Solves the j × j system A·x = b in place (b ← x) by LU with partial pivoting; a singular pivot gives zero.</summary>
    private static void SolveDense(double[] a, double[] b, int j)
    {
        for (int col = 0; col < j; col++)
        {
            int piv = col;
            for (int i = col + 1; i < j; i++)
                if (Math.Abs(a[i * j + col]) > Math.Abs(a[piv * j + col])) piv = i;
            if (piv != col)
            {
                for (int t = 0; t < j; t++) (a[col * j + t], a[piv * j + t]) = (a[piv * j + t], a[col * j + t]);
                (b[col], b[piv]) = (b[piv], b[col]);
            }
            double d = a[col * j + col];
            if (d == 0) continue;
            for (int i = col + 1; i < j; i++)
            {
                double f = a[i * j + col] / d;
                if (f == 0) continue;
                for (int t = col; t < j; t++) a[i * j + t] -= f * a[col * j + t];
                b[i] -= f * b[col];
            }
        }
        for (int i = j - 1; i >= 0; i--)
        {
            double s = b[i];
            for (int t = i + 1; t < j; t++) s -= a[i * j + t] * b[t];
            double d = a[i * j + i];
            b[i] = d == 0 ? 0 : s / d;
        }
    }
}
