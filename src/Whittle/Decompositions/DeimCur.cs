// CUR decomposition with DEIM-selected rows and columns (CURing, steps 5–7).
//
// Contract: for W (m × n, out × in) and a rank r in 1..min(m, n), returns W ≈ C·U·R with C = W[:, J] (m × r),
// R = W[I, :] (r × n) and the core U (r × r) chosen by DeimCurOptions.Core (see CurCore). W is never modified.
//   1. Importance matrix S (m × n): the WANDA scores S_ij = |W_ij|·a_j when an activation RMS a is known, else
//      S = W. a is the given activationRms, or, when only the Gram matrix G = XᵀX is given, a_j = sqrt(G_jj)
//      (= sqrt(T)·RMS_j for T calibration tokens: a positive multiple of the RMS, and the singular vectors of S,
//      hence the selected indices, and every core are invariant to scaling a).
//   2. The top-r left and right singular vectors U_s (m × r), V_s (n × r) of S by TruncatedSvd (seeded by
//      DeimCurOptions.Seed, default oversampling 10 and 2 power iterations; an exact dense SVD when
//      r + 10 ≥ min(m, n)).
//   3. I = DEIM rows of U_s, J = DEIM rows of V_s (Deim.SelectRows with DeimCurOptions.Deim; the CURing
//      reference variant by default). Indices are distinct, in selection order.
//   4. C, R and the core by Cur.Compute (PseudoInverse: U = C⁺·W·R⁺; Activation needs G; Diagonal needs a,
//      given or derived from G as above).
// If W has exact rank r, DEIM on its exact singular vectors makes U_s[I, :] and V_s[J, :] nonsingular, so
// rank(C) = rank(R) = r and the pseudo-inverse core reproduces W (to rounding).
//
// Reference: Park & Moon, "CURing Large Models: Compression via CUR Decomposition", arXiv 2501.04211
// (code lukepark327/CURing); Sorensen & Embree, "A DEIM induced CUR factorization", SISC 38 (2016).
//
// Numerical caveats: the randomized SVD is accurate for the leading singular vectors when S's spectrum decays;
// for flat spectra (random matrices) the selected indices depend on the seed, but any DEIM selection from an
// approximately orthonormal basis still gives a valid CUR. Columns with a_j = 0 have zero scores and are never
// preferred by the selection.

using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>Options of <see cref="DeimCur.Compute{T}"/>.</summary>
/// <param name="Rank">The number r of rows and columns to keep, 1 ≤ r ≤ min(m, n) (CURing: <see cref="Cur.Rank"/>).</param>
/// <param name="Deim">The DEIM variant that selects the rows and columns (default: the CURing reference code's).</param>
/// <param name="Core">How the core U is computed (default: the paper's <c>C⁺·W·R⁺</c>).</param>
/// <param name="Seed">Seed of the randomized truncated SVD of the importance matrix.</param>
public sealed record DeimCurOptions(int Rank, DeimVariant Deim = DeimVariant.Reference, CurCore Core = CurCore.PseudoInverse, int Seed = 0);

/// <summary>
/// CURing's CUR decomposition: rows and columns picked by DEIM on the leading singular vectors of the (WANDA-weighted)
/// importance matrix, then the core by <see cref="Cur.Compute{T}"/>.
/// </summary>
public static class DeimCur
{
    /// <summary>Oversampling of the truncated SVD of the importance matrix (<see cref="TruncatedSvdOptions.Oversampling"/>).</summary>
    private const int Oversampling = 10;

    /// <summary>
    /// Decomposes <paramref name="w"/> as <c>C·U·R</c> with r = <see cref="DeimCurOptions.Rank"/> DEIM-selected rows and columns.
    /// </summary>
    /// <param name="w">m × n weight matrix (out × in), finite. Not modified.</param>
    /// <param name="options">Rank, DEIM variant, core and seed.</param>
    /// <param name="gram">Optional n × n Gram matrix G = XᵀX of the calibration inputs: needed by <see cref="CurCore.Activation"/>;
    /// when <paramref name="activationRms"/> is empty, <c>a_j = sqrt(G_jj)</c> weights the selection (WANDA) and feeds
    /// <see cref="CurCore.Diagonal"/>.</param>
    /// <param name="activationRms">Optional length-n per-input-feature RMS a (non-negative, finite): WANDA-weights the selection
    /// and feeds <see cref="CurCore.Diagonal"/>. Takes precedence over the one derived from <paramref name="gram"/>.</param>
    /// <returns>The decomposition; <see cref="CurDecomposition{T}.Rows"/> and <see cref="CurDecomposition{T}.Cols"/> in DEIM selection order.</returns>
    /// <exception cref="ArgumentException">The rank is out of range, a shape does not match, the core's input is missing
    /// (G for Activation; a or G for Diagonal), or a value is negative or not finite.</exception>
    public static CurDecomposition<T> Compute<T>(MatrixView<T> w, DeimCurOptions options, MatrixView<T>? gram = null, ReadOnlySpan<T> activationRms = default)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(options);
        int m = w.Rows, n = w.Cols, r = options.Rank;
        if (r < 1 || r > Math.Min(m, n))
            ThrowHelper.ArgumentOutOfRange(nameof(options), r, $"a rank in 1..min(m, n) = 1..{Math.Min(m, n)} for a {m}×{n} matrix");
        if (gram is { } g && (g.Rows != n || g.Cols != n))
            ThrowHelper.ShapeMismatch(nameof(gram), "DeimCur.Compute: G = XᵀX must be n × n (n = columns of W)", $"{n}×{n}", $"{g.Rows}×{g.Cols}");
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                if (!T.IsFinite(w[i, j]))
                    ThrowHelper.Argument(nameof(w), $"DeimCur.Compute: W must be finite, but entry ({i}, {j}) is {w[i, j]}.");

        T[]? rms = !activationRms.IsEmpty ? activationRms.ToArray() : gram is { } gg ? RmsFromGram(gg) : null;
        MatrixView<T> scores = rms is null ? w : Cur.WandaScores(w, rms).View;

        var svd = TruncatedSvd.Compute(scores, r, new TruncatedSvdOptions(Oversampling: Oversampling, Seed: options.Seed));
        int[] rows = Deim.SelectRows(svd.U.View, options.Deim);
        int[] cols = Deim.SelectRows(svd.Vt.Transpose(), options.Deim);
        return Cur.Compute(w, rows, cols, options.Core, gram, rms);
    }

    /// <summary><c>a_j = sqrt(max(G_jj, 0))</c>: proportional to the per-feature RMS of the inputs behind G.</summary>
    private static T[] RmsFromGram<T>(MatrixView<T> g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = new T[g.Rows];
        for (int j = 0; j < a.Length; j++)
        {
            T d = g[j, j];
            if (!T.IsFinite(d))
                ThrowHelper.Argument("gram", $"DeimCur.Compute: the Gram matrix holds a non-finite value at ({j}, {j}).");
            a[j] = T.Sqrt(T.Max(d, T.Zero));
        }
        return a;
    }
}
