// Per-layer ranks of the SVD family for a keep-parameters budget.
//
//   Uniform   one ratio ρ for every layer (LowRankBaseline.UniformRatioRanks): each keeps ρ of its weights.
//   Global    the ranks that minimize Σ_i ‖E_i‖_F² / ‖M_i‖_F for the budget, M_i the matrix a layer's method decomposes
//             (W, W·D or W·S) and E_i its truncation error — for whitened SVD, each layer's squared output error on the
//             calibration data divided by the norm of what the layer computes. Direction j of layer i lowers that sum by
//             σ_ij² / ‖M_i‖_F and costs m_i + n_i parameters, and the gains fall with j, so the optimum (of the continuous
//             relaxation) keeps every direction whose gain per parameter exceeds one threshold λ — the smallest λ
//             (bisection over those values) whose model fits the budget. A layer whose rank would save nothing stays
//             dense; what λ's breakpoints leave of the budget goes, one step at a time, to the layers whose next
//             direction gains most per parameter. The weight 1/‖M_i‖ lies between the relative error (1/‖M_i‖², every
//             layer alike, however little its output weighs) and the absolute error (1, the largest layers take
//             everything); measured on the fixtures and stories260K it beat both, and one tolerance on every layer's
//             relative error (scripts/svd_allocation.sh, README). SVD-LLM v2 and MoDeGPT allocate in closed form too.
//   Aligned   ranks rounded up to multiples of N (HardwareAlignment: the width a CPU GEMM kernel works in); layers whose
//             saving range is under 4·N take any rank.

using System.Globalization;
using Whittle.Compression;
using Whittle.Decompositions;

namespace Whittle.Methods;

/// <summary>How keep-parameters budgets of the SVD baselines set each layer's rank.</summary>
public enum RankAllocation
{
    /// <summary>
    /// Per-layer ranks that minimize Σ_i ‖E_i‖² / ‖M_i‖ over the layers for the budget, E_i the truncation error of the
    /// matrix M_i a layer's method decomposes (one threshold on each singular direction's gain per parameter; the default).
    /// </summary>
    Global,

    /// <summary>One ratio for every layer: each keeps the same fraction of its weight parameters.</summary>
    Uniform,
}

/// <summary>One layer as a rank allocation sees it: its shape and the singular values of the matrix its method decomposes.</summary>
/// <param name="Rows">m.</param>
/// <param name="Cols">n.</param>
/// <param name="SingularValues">σ, descending.</param>
internal sealed record SpectrumSite(int Rows, int Cols, IReadOnlyList<double> SingularValues)
{
    private readonly double _energy = SingularValues.Sum(s => s * s);

    /// <summary>The largest rank that saves parameters.</summary>
    public int MaxSavingRank => LowRank.MaxSavingRank(Rows, Cols);

    /// <summary>Parameters the layer keeps at <paramref name="rank"/> (null: dense).</summary>
    public long Parameters(int? rank) => rank is { } c ? (long)c * (Rows + Cols) : (long)Rows * Cols;

    /// <summary>σ_j² / ‖M‖_F / (m + n): what direction <paramref name="j"/> (0-based) takes off the allocation's objective, per parameter it costs.</summary>
    public double GainPerParameter(int j) =>
        j < SingularValues.Count && _energy > 0 ? SingularValues[j] * SingularValues[j] / Math.Sqrt(_energy) / (Rows + Cols) : 0;
}

/// <summary>The global rank allocation (see the file header).</summary>
internal static class GlobalRankAllocation
{
    /// <summary>
    /// The ranks (null: the layer stays dense) of the smallest threshold λ on the gain per parameter whose model keeps at
    /// most <paramref name="keep"/> of <paramref name="totalParameters"/>, and λ.
    /// </summary>
    /// <param name="sites">The layers.</param>
    /// <param name="totalParameters">Parameters before (layers not listed count in full).</param>
    /// <param name="keep">F, the fraction to keep.</param>
    /// <param name="align">Ranks are multiples of this where the layer is large enough (1: any rank).</param>
    /// <param name="method">For the error message.</param>
    /// <exception cref="ArgumentException">Even the smallest ranks keep more than F.</exception>
    public static (double Threshold, int?[] Ranks) Ranks(IReadOnlyList<SpectrumSite> sites, long totalParameters, double keep, int align, string method)
    {
        double target = keep * totalParameters;
        long fixedPart = totalParameters - sites.Sum(s => (long)s.Rows * s.Cols);
        long Kept(double lambda) => fixedPart + sites.Sum(s => s.Parameters(Rank(s, lambda, align)));

        var candidates = new SortedSet<double> { 0, double.PositiveInfinity };
        foreach (var s in sites)
            for (int j = 0; j <= s.MaxSavingRank; j++) candidates.Add(s.GainPerParameter(j));
        var lambdas = candidates.ToArray();
        var (at, met) = Bisection.First(lambdas.Length, i => Kept(lambdas[i]) <= target);
        if (!met)
            ThrowHelper.Argument(nameof(keep), $"{method}: keeping {keep.ToString("G4", CultureInfo.InvariantCulture)} of the parameters is out of reach; "
                + $"rank 1{(align > 1 ? $" ({align} where a layer is large enough for --align {align})" : "")} at every factorizable layer keeps "
                + $"{(Kept(lambdas[^1]) / (double)Math.Max(1, totalParameters)).ToString("F4", CultureInfo.InvariantCulture)}.");
        var ranks = sites.Select(s => Rank(s, lambdas[at], align)).ToArray();
        Fill(sites, ranks, target - Kept(lambdas[at]), align);
        return (lambdas[at], ranks);
    }

    /// <summary>
    /// The rank at threshold <paramref name="lambda"/>: every direction whose gain per parameter exceeds it (at least one),
    /// rounded up to the alignment; null when that saves nothing.
    /// </summary>
    public static int? Rank(SpectrumSite site, double lambda, int align)
    {
        int max = site.MaxSavingRank;
        int c = 1;
        while (c <= max && site.GainPerParameter(c) > lambda) c++;
        return c <= max ? Align(c, max, align) : null;
    }

    /// <summary>
    /// <paramref name="rank"/> rounded up to a multiple of <paramref name="align"/> (<see cref="HardwareAlignment"/>); null
    /// when the multiple would save nothing (above <paramref name="maxRank"/>).
    /// </summary>
    public static int? Align(int rank, int maxRank, int align)
    {
        if (!HardwareAlignment.Applies(maxRank, align)) return rank;
        int up = (rank + align - 1) / align * align;
        return up <= maxRank ? up : null;
    }

    /// <summary>
    /// Spends what λ's breakpoints leave of the budget (much, with aligned ranks): repeatedly one more step (of
    /// <paramref name="align"/> ranks where the layer is aligned, else one) for the factorized layer whose next direction
    /// gains most per parameter, while it fits.
    /// </summary>
    private static void Fill(IReadOnlyList<SpectrumSite> sites, int?[] ranks, double slack, int align)
    {
        while (true)
        {
            int best = -1, bestStep = 0;
            double most = 0;
            for (int i = 0; i < sites.Count; i++)
            {
                int step = HardwareAlignment.Applies(sites[i].MaxSavingRank, align) ? align : 1;
                if (ranks[i] is not { } c || c + step > sites[i].MaxSavingRank || (double)step * (sites[i].Rows + sites[i].Cols) > slack) continue;
                double gain = sites[i].GainPerParameter(c);
                if (gain > most) { most = gain; best = i; bestStep = step; }
            }
            if (best < 0) return;
            ranks[best] += bestStep;
            slack -= (double)bestStep * (sites[best].Rows + sites[best].Cols);
        }
    }
}
