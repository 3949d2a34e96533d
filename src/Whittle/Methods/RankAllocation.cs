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
//   Sensitivity  the global rule on measured losses (ASVD's sensitivity-based rank search, put on the global threshold):
//             each layer alone is truncated on a copy of the original at a few ranks (⅛, ¼, ½, ¾ of its largest saving
//             rank) and KL(original ‖ copy) is measured on the calibration data; D_i, the loss as a piecewise-linear
//             function of the relative squared truncation error e² = Σ_{j≥c} σ_j² / ‖M_i‖² (through 0 at e² = 0, made
//             rising), replaces the proxy: direction j gains D_i(e²_j) − D_i(e²_{j+1}). Costs one calibration pass per
//             layer and grid rank — for small models, where the proxy can misjudge which layers matter. Auto measures
//             when those passes are cheap (SensitivityCost) and uses the proxy otherwise.
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

    /// <summary>
    /// The global threshold on each direction's gain per parameter, the gains read from each layer's measured effect on the
    /// output (KL to the original when the layer alone is truncated at a few ranks) instead of the error proxy.
    /// </summary>
    Sensitivity,

    /// <summary>
    /// <see cref="Sensitivity"/> when its measurements are cheap — a classifier or language model whose sites × 4 calibration
    /// passes take at most 5·10¹² multiply-adds (about two minutes on two cores) — else <see cref="Global"/> (the default).
    /// </summary>
    Auto,
}

/// <summary>Where <see cref="RankAllocation.Sensitivity"/> measures, what that costs, and the limit <see cref="RankAllocation.Auto"/> applies.</summary>
internal static class SensitivityCost
{
    /// <summary>Multiply-adds of the measurement passes up to which <see cref="RankAllocation.Auto"/> measures: about two minutes on two cores.</summary>
    public const double AutoLimit = 5e12;

    /// <summary>The ranks each site is truncated at alone, as fractions of its largest saving rank.</summary>
    public static IReadOnlyList<double> Grid { get; } = [0.125, 0.25, 0.5, 0.75];

    /// <summary>Multiply-adds of measuring <paramref name="sites"/> sites on <paramref name="examples"/> calibration examples of <paramref name="macsPerExample"/> each.</summary>
    public static double Macs(int sites, int examples, double macsPerExample) => (double)sites * Grid.Count * examples * macsPerExample;
}

/// <summary>
/// A layer's measured loss as a function of its relative squared truncation error e²: piecewise linear through (0, 0)
/// and the measured points, increasing, extended beyond the last point by its last slope.
/// </summary>
internal sealed class LossCurve
{
    private readonly double[] _e2;
    private readonly double[] _loss;

    /// <summary>
    /// The curve through <paramref name="points"/> (e², loss), in any order. Losses are made increasing in e²: every segment's
    /// slope is at least 10⁻³ of the mean slope (10⁻¹² when nothing was measured), so that a flat stretch — measurement noise,
    /// or a layer the output ignores — still ranks directions by σ² and its directions still take what a budget leaves.
    /// </summary>
    public LossCurve(IEnumerable<(double RelativeSquaredError, double Loss)> points)
    {
        // A measurement that is not finite (a truncation that overflowed the output) says nothing the others do not.
        var sorted = points.Where(p => p.RelativeSquaredError > 0 && double.IsFinite(p.Loss)).OrderBy(p => p.RelativeSquaredError).ToList();
        _e2 = [0, .. sorted.Select(p => p.RelativeSquaredError)];
        _loss = [0, .. sorted.Select(p => Math.Max(0, p.Loss))];
        int n = _e2.Length;
        double mean = n > 1 ? _loss.Max() / _e2[^1] : 0;
        double floor = mean > 0 ? 1e-3 * mean : 1e-12;
        for (int i = 1; i < n; i++) _loss[i] = Math.Max(_loss[i], _loss[i - 1] + floor * (_e2[i] - _e2[i - 1]));
        _tailSlope = n > 1 ? (_loss[^1] - _loss[^2]) / (_e2[^1] - _e2[^2]) : floor;
    }

    private readonly double _tailSlope;

    /// <summary>The loss at relative squared error <paramref name="e2"/> ≥ 0.</summary>
    public double At(double e2)
    {
        if (e2 >= _e2[^1]) return _loss[^1] + _tailSlope * (e2 - _e2[^1]);
        int i = 1;
        while (_e2[i] < e2) i++;
        double slope = (_loss[i] - _loss[i - 1]) / (_e2[i] - _e2[i - 1]);
        return _loss[i - 1] + slope * (e2 - _e2[i - 1]);
    }
}

/// <summary>One layer as a rank allocation sees it: its shape and the singular values of the matrix its method decomposes.</summary>
/// <param name="Rows">m.</param>
/// <param name="Cols">n.</param>
/// <param name="SingularValues">σ, descending.</param>
internal sealed record SpectrumSite(int Rows, int Cols, IReadOnlyList<double> SingularValues)
{
    private readonly double _energy = SingularValues.Sum(s => s * s);
    private double[]? _gains;

    /// <summary>The layer's measured loss against its relative squared truncation error (<see cref="RankAllocation.Sensitivity"/>); null: the proxy σ²/‖M‖.</summary>
    public LossCurve? Loss
    {
        get;
        init { field = value; _gains = null; } // a `with` copy must not keep the gains of another curve
    }

    /// <summary>The largest rank that saves parameters.</summary>
    public int MaxSavingRank => LowRank.MaxSavingRank(Rows, Cols);

    /// <summary>Parameters the layer keeps at <paramref name="rank"/> (null: dense).</summary>
    public long Parameters(int? rank) => rank is { } c ? (long)c * (Rows + Cols) : (long)Rows * Cols;

    /// <summary>The relative squared truncation error at rank <paramref name="rank"/>: Σ_{j≥c} σ_j² / ‖M‖_F².</summary>
    public double RelativeSquaredError(int rank) => _energy > 0 ? SingularValues.Skip(rank).Sum(s => s * s) / _energy : 0;

    /// <summary>
    /// What direction <paramref name="j"/> (0-based) takes off the allocation's objective, per parameter it costs: σ_j² / ‖M‖_F / (m + n),
    /// or with a measured <see cref="Loss"/> D(e²_j) − D(e²_{j+1}) over m + n.
    /// </summary>
    public double GainPerParameter(int j)
    {
        if (j >= SingularValues.Count || _energy <= 0) return 0;
        if (Loss is null) return SingularValues[j] * SingularValues[j] / Math.Sqrt(_energy) / (Rows + Cols);
        if (_gains is null)
        {
            // e² after keeping j directions, from the tail sums; the gains are differences of D along them.
            var gains = new double[SingularValues.Count];
            double tail = _energy;
            for (int i = 0; i < gains.Length; i++)
            {
                double after = Math.Max(0, tail - SingularValues[i] * SingularValues[i]);
                gains[i] = Loss.At(tail / _energy) - Loss.At(after / _energy);
                tail = after;
            }
            _gains = gains;
        }
        return _gains[j] / (Rows + Cols);
    }
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
