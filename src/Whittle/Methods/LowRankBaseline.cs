// The SVD baselines of METHODS.md §4 on one engine: every linear (and ungrouped convolution) site is factorized as
// W ≈ L·R at a rank that saves parameters, by plain truncated SVD, activation-aware SVD or whitened SVD.
//
// Pipeline
//   1. Sites: every eligible linear site and ungrouped convolution in graph order (FactorSites; tied or quantized
//      weights and layers with no parameter-saving rank are left alone, with the reason in the report). The layer
//      writing a graph output (classifier layer, language-model head) is kept unless IncludeOutputLayer is set.
//   2. Calibration (when the decomposition or the output-error report needs it): the Gram G = XᵀX of every site's
//      inputs — linear inputs through CalibrationRunner, convolution im2col patches through ConvPatchGram.
//   3. Decomposition, once per site at its largest parameter-saving rank r_max = ⌈mn/(m + n)⌉ − 1; every budget's
//      rank-c factors are prefixes of these (the c leading columns of L and rows of R).
//   4. Ranks per budget:
//        --keep-params F   global (RankAllocation.cs): the ranks minimizing Σ_i ‖E_i‖²/‖M_i‖, E_i the truncation
//                          error of the matrix M_i site i decomposes, for the budget — one threshold on each singular
//                          direction's gain σ²/‖M‖ per parameter, from every site's spectrum on the original (a survey of the segments when
//                          the decomposition reads the inputs), ranks rounded up to the alignment;
//                          sensitivity: the same threshold on each direction's measured gain in KL to the original (each site
//                          alone truncated at 4 ranks); auto (default): sensitivity where those passes are cheap, else global;
//                          uniform (RankAllocation.Uniform): one ratio ρ for every site, c = clamp(⌊ρ·mn/(m + n)⌋, 1, r_max),
//                          i.e. each site keeps the fraction ρ of its weight parameters (rounded down to a whole rank); ρ is
//                          the largest ratio (bisection) for which the whole model keeps at most F of its parameters —
//                          tensors that are not factorized (embeddings, norms, biases, skipped sites) count in full.
//        --tolerance ε     per site the smallest c whose relative truncation error sqrt(Σ_{j≥c} σ_j² / Σ_j σ_j²) ≤ ε,
//                          σ those of the decomposed matrix (W, W·D or W·S: for whitened SVD this is the relative output
//                          error on the calibration data), rounded up to the alignment; a site is left alone when that c
//                          saves no parameters.
//   5. Rewrite a copy of the graph (FactorChain / ConvFactorChain), measure sizes, report per site the rank, the
//      truncation error, the weight error ‖W − LR‖_F/‖W‖_F, the calibration output error ‖(W − LR)Xᵀ‖_F/‖WXᵀ‖_F and the
//      parameters before and after.

using System.Globalization;
using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Decompositions;
using Whittle.Calibration;
using Whittle.Rewriting;
using Whittle.LinearAlgebra;
using Whittle.Onnx;

namespace Whittle.Methods;

/// <summary>Options shared by the SVD baselines. Immutable.</summary>
public sealed record LowRankBaselineOptions
{
    /// <summary>Factorize ungrouped convolutions too (as an r-channel convolution and a 1 × 1 convolution); default true.</summary>
    public bool IncludeConvolutions { get; init; } = true;

    /// <summary>
    /// Report each site's output error on the calibration data (needs the inputs' Gram matrices: one calibration pass,
    /// n² doubles per distinct site input); default true. Whitened SVD and ASVD collect the Gram matrices anyway.
    /// </summary>
    public bool MeasureOutputError { get; init; } = true;

    /// <summary>
    /// Factorize the layer that writes a graph output (a classifier's last layer, a language model's head) too; default
    /// false: ASVD and SVD-LLM compress the blocks and keep the head, and a uniform ratio would otherwise cut a 10-class
    /// classifier layer to a few ranks while saving almost nothing.
    /// </summary>
    public bool IncludeOutputLayer { get; init; }

    /// <summary>
    /// How keep-parameters budgets set each layer's rank; default <see cref="RankAllocation.Auto"/>: measured sensitivities where
    /// they are cheap, else the global rule on each layer's truncation error.
    /// </summary>
    public RankAllocation Allocation { get; init; } = RankAllocation.Auto;

    /// <summary>
    /// Ranks of global and tolerance budgets are multiples of this (rounded up, so the error rule still holds; layers whose
    /// saving range is under 4·N take any rank, <see cref="HardwareAlignment"/>): ONNX Runtime's CPU GEMM works on blocks of
    /// 16 columns, and an odd rank costs the time of the next multiple. Default 16; 1 turns it off. Uniform ratios are not aligned.
    /// </summary>
    public int Align { get; init; } = HardwareAlignment.Default;

    /// <summary>
    /// Times candidates for <see cref="BudgetKind.KeepLatency"/> budgets (from the original, its calibration data and session
    /// settings); null (the default) times them with ONNX Runtime on this machine (<c>LatencyProbe</c>).
    /// </summary>
    internal Func<OnnxModel, Data.BatchSet, Runtime.RuntimeOptions, Evaluation.ILatencyProbe>? LatencyProbe { get; init; }

    /// <summary>Multiply-adds of measurement up to which <see cref="RankAllocation.Auto"/> measures (default <see cref="SensitivityCost.AutoLimit"/>).</summary>
    internal double AutoSensitivityLimit { get; init; } = SensitivityCost.AutoLimit;
}

/// <summary>What a baseline did to one site (<see cref="SiteReport.Details"/>).</summary>
/// <param name="Layer"><c>linear</c> or <c>conv</c>.</param>
/// <param name="OutFeatures">m (output channels for a convolution).</param>
/// <param name="InFeatures">n (Cin·kernel for a convolution).</param>
/// <param name="MaxSavingRank">The largest rank that saves parameters.</param>
/// <param name="Decomposition">The decomposition path (<c>svd</c>, <c>asvd</c>, <c>whitened-cholesky</c>, <c>whitened-eigen</c>).</param>
/// <param name="WeightError"><c>‖W − LR‖_F / ‖W‖_F</c>.</param>
public sealed record LowRankSiteDetails(string Layer, int OutFeatures, int InFeatures, int MaxSavingRank, string Decomposition, double WeightError);

/// <summary>Method-wide facts of a baseline run (<see cref="CompressionReport.Details"/>).</summary>
/// <param name="Decomposition">The method (<c>svd</c>, <c>asvd</c>, <c>whitened-svd</c>).</param>
/// <param name="Rule">How ranks were chosen: <c>uniform ratio ρ = …</c> or <c>tolerance ε = …</c>.</param>
/// <param name="Ratio">The uniform ratio ρ (fraction of each site's weight parameters kept), or null for a tolerance budget.</param>
/// <param name="Alpha">ASVD's exponent α, or null.</param>
/// <param name="CalibrationRows">Rows of the calibration inputs behind the Gram matrices (largest over sites), or null when none were collected.</param>
public sealed record LowRankBaselineDetails(string Decomposition, string Rule, double? Ratio, double? Alpha, long? CalibrationRows)
{
    /// <summary>The tolerance ε every site's rank meets (tolerance budgets); null for keep-parameters budgets.</summary>
    public double? Tolerance { get; init; }

    /// <summary>A global allocation's threshold λ on each direction's gain per parameter (σ²/‖M‖_F, or the measured loss with <see cref="RankAllocation.Sensitivity"/>); null otherwise.</summary>
    public double? Threshold { get; init; }

    /// <summary>Ranks are multiples of this where the layer allows (1: any rank).</summary>
    public int Align { get; init; } = 1;

    /// <summary>For a latency budget: the chosen ranks' batch-1 latency over the original's, as measured during the search.</summary>
    public double? MeasuredLatency { get; init; }
}

/// <summary>
/// The shared engine of the SVD baselines (<see cref="PlainSvd"/>, <see cref="ActivationAwareSvd"/>, <see cref="WhitenedSvd"/>):
/// sites, calibration, one decomposition per site, ranks per budget, rewrite and report. Budgets: keep-parameters (uniform
/// ratio) or tolerance. A new variant overrides <see cref="Factorize"/> (and says whether it reads the inputs' statistics).
/// </summary>
public abstract class LowRankBaseline : ICompressionMethod
{
    /// <summary>A baseline with <paramref name="options"/> (null: defaults).</summary>
    protected LowRankBaseline(LowRankBaselineOptions? options) => Options = options ?? new LowRankBaselineOptions();

    /// <summary>The options.</summary>
    public LowRankBaselineOptions Options { get; }

    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <inheritdoc/>
    public BudgetKinds Budgets => BudgetKinds.KeepParameters | BudgetKinds.Tolerance | BudgetKinds.KeepLatency;

    /// <summary>Whether the decomposition needs the inputs' Gram matrix (or the RMS derived from it).</summary>
    protected abstract bool NeedsInputs { get; }

    /// <summary>ASVD's α, for the report; null otherwise.</summary>
    protected virtual double? Alpha => null;

    /// <summary>The rank-<paramref name="rank"/> factors of <paramref name="w"/> (m × n) given its inputs' statistics (null when not collected).</summary>
    protected abstract LowRankFactors<double> Factorize(Matrix<double> w, GramMatrix? inputs, int rank);

    /// <summary>
    /// All singular values of the matrix <see cref="Factorize"/> decomposes (W, W·D or W·S), which a global allocation reads
    /// before choosing ranks. The default takes them from a rank-0 factorization; variants override it with a cheaper path.
    /// </summary>
    protected virtual double[] Spectrum(Matrix<double> w, GramMatrix? inputs) => Factorize(w, inputs, 0).SingularValues;

    /// <inheritdoc/>
    public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(budgets);
        var model = run.Original;
        var (sites, skipped) = FactorSites.Find(model, run.Structure, Options.IncludeConvolutions);
        if (!Options.IncludeOutputLayer)
            foreach (var s in sites.ToList())
                if (FactorSites.GraphOutput(model, s) is { } output)
                {
                    sites.Remove(s);
                    skipped.Add(s.Skip($"it writes the graph output '{output}'; the output layer is kept (include it with IncludeOutputLayer)"));
                }
        bool calibrate = NeedsInputs || Options.MeasureOutputError;
        var measurable = sites.Where(s => SiteInputs.Unavailable(s) is null).ToHashSet();
        if (NeedsInputs)
            foreach (var s in sites.Where(s => !measurable.Contains(s)).ToList())
            {
                sites.Remove(s);
                skipped.Add(s.Skip($"{Name} needs the layer's input statistics, and {SiteInputs.Unavailable(s)}"));
            }
        if (sites.Count == 0) run.Warn($"{Name}: no layer of {model.FilePath ?? "the model"} can be factorized (see the per-site reasons).");

        // Ranks of keep-parameters budgets, fixed before the pass: a uniform ratio from the shapes alone, or one global
        // tolerance from every site's spectrum on the original.
        long compressible = sites.Sum(s => s.Parameters);
        var keeps = budgets.Select((b, i) => (Budget: b, Index: i)).Where(p => p.Budget.Kind == BudgetKind.KeepParameters).ToList();
        var timed = budgets.Select((b, i) => (Budget: b, Index: i)).Where(p => p.Budget.Kind == BudgetKind.KeepLatency).ToList();
        var plans = new Allocated?[budgets.Count];
        var warnings = new List<string>();
        bool measured = false;
        if (timed.Count > 0 || keeps.Count > 0 && Options.Allocation != RankAllocation.Uniform)
        {
            measured = Measured(run, sites.Count);
            var (spectra, factors) = Spectra(run, sites, calibrate: NeedsInputs, keepFactors: measured);
            if (measured) spectra = Weigh(run, sites, spectra, factors!, warnings);
            if (Options.Allocation != RankAllocation.Uniform)
                foreach (var (b, i) in keeps)
                {
                    var (lambda, ranks) = GlobalRankAllocation.Ranks(spectra, b.Scope == BudgetScope.Model ? run.OriginalCost.Parameters : compressible, b.Value, Options.Align, Name);
                    plans[i] = new Allocated(ranks, null, lambda);
                }
            if (timed.Count > 0)
            {
                using var probe = Options.LatencyProbe?.Invoke(run.Original, run.Calibration, run.Job.Runtime)
                    ?? new Evaluation.LatencyProbe(run.Original, run.Calibration, run.Job.Runtime);
                foreach (var (b, i) in timed) plans[i] = Timed(run, sites, spectra, b, probe, warnings);
            }
        }
        if (Options.Allocation == RankAllocation.Uniform)
            foreach (var (b, i) in keeps)
            {
                var (rho, ranks) = UniformRatioRanks([.. sites.Select(s => (s.Rows, s.Cols))], b.Scope == BudgetScope.Model ? run.OriginalCost.Parameters : compressible, b.Value, Name);
                plans[i] = new Allocated([.. ranks.Select(r => (int?)r)], rho, null);
            }
        var reports = budgets.Select(_ => skipped.Select(s => (s.Position, Report: s.Unchanged())).ToList()).ToArray();
        var models = budgets.Select(_ => run.Copy()).ToList();
        long rows = 0;
        run.Pass(models, step =>
        {
            var here = sites.Where(s => step.Holds(s.Name)).ToList();
            if (here.Count == 0) return;
            var inputs = calibrate ? SiteInputs.Grams(step, [.. here.Where(measurable.Contains)]) : [];
            foreach (var site in here)
            {
                run.CancellationToken.ThrowIfCancellationRequested();
                run.Report(Stages.Decomposition, sites.IndexOf(site), sites.Count, site.Name);
                var w = SiteInputs.WeightOf(site, step.Source);
                var gram = inputs.GetValueOrDefault(site.Name);
                if (gram is not null) rows = Math.Max(rows, gram.Rows);
                // One decomposition at the largest saving rank; every budget's rank-c factors are its prefixes.
                var factors = run.Time(Stages.Decomposition, () => Factorize(w, gram, site.MaxSavingRank));
                var d = new Decomposed(site, w, gram, factors);
                foreach (var target in step.Targets)
                {
                    var budget = budgets[target.Index];
                    var plan = plans[target.Index];
                    int? rank = plan is not null ? plan.Ranks[sites.IndexOf(site)] : AlignedToleranceRank(factors.SingularValues, budget.Value, site.MaxSavingRank);
                    if (rank is not { } c)
                    {
                        string saving = $"≤ {site.MaxSavingRank}{(HardwareAlignment.Applies(site.MaxSavingRank, Options.Align) ? $", a multiple of {Options.Align}" : "")}";
                        reports[target.Index].Add((site.Position, site.Skip(plan is null
                            ? $"no parameter-saving rank ({saving}) meets tolerance {budget.Value.ToString("G4", CultureInfo.InvariantCulture)}"
                            : $"every direction up to the largest parameter-saving rank ({saving}) gains more per parameter than the budget's threshold: it stays dense").Unchanged()));
                        continue;
                    }
                    var (l, r) = Prefix(factors, c);
                    run.Time(Stages.Rewrite, () => site.Replace(target.Model, Narrow(l), Narrow(r)));
                    reports[target.Index].Add((site.Position, Report(d, l, r, c)));
                }
            }
        });
        var results = new List<CompressionResult>();
        for (int b = 0; b < budgets.Count; b++)
        {
            run.Time(Stages.Rewrite, () => FactorChain.Tidy(models[b]));
            string aligned = Options.Align > 1 ? $", ranks multiples of {Options.Align}" : "";
            var plan = plans[b];
            string rule = plan switch
            {
                { Ratio: { } rho } => $"uniform ratio ρ = {rho.ToString("F4", CultureInfo.InvariantCulture)} of each site's weight parameters, for {budgets[b]}",
                { Threshold: { } l } => (measured
                    ? "sensitivity: every singular direction whose measured gain in KL to the original per parameter exceeds λ"
                    : "global: every singular direction whose gain σ²/‖M‖ per parameter exceeds λ") + $" = {l.ToString("G4", CultureInfo.InvariantCulture)}{aligned}, for {budgets[b]}"
                    + (plan.Latency is { } t ? $" (measured {t.ToString("F3", CultureInfo.InvariantCulture)} of the original's latency)" : ""),
                _ => $"tolerance ε = {budgets[b].Value.ToString("G4", CultureInfo.InvariantCulture)} on the relative truncation error{aligned}",
            };
            var details = new LowRankBaselineDetails(Name, rule, plan?.Ratio, Alpha, calibrate && rows > 0 ? rows : null)
            {
                Tolerance = plan is null ? budgets[b].Value : null,
                Threshold = plan?.Threshold,
                Align = plan?.Ratio is null ? Options.Align : 1,
                MeasuredLatency = plan?.Latency,
            };
            var budgetWarnings = warnings.Where(w => w.StartsWith(budgets[b].ToString(), StringComparison.Ordinal));
            results.Add(run.Result(budgets[b], models[b], reports[b].OrderBy(r => r.Position).Select(r => r.Report), details, budgetWarnings,
                compressible: (compressible, null)));
        }
        return results;
    }

    /// <summary>
    /// The uniform-ratio ranks for a keep-parameters budget: the largest ρ ∈ (0, 1] (bisection to 1e-9) such that
    /// factorizing every site at <c>c = clamp(⌊ρ·mn/(m + n)⌋, 1, r_max)</c> keeps at most <paramref name="keep"/> of
    /// <paramref name="totalParameters"/>.
    /// </summary>
    /// <param name="sites">Each site's m × n.</param>
    /// <param name="totalParameters">The model's parameters before (everything counts, factorized or not).</param>
    /// <param name="keep">F, the fraction of the model's parameters to keep.</param>
    /// <param name="method">For the error message.</param>
    /// <returns>ρ and one rank per site.</returns>
    /// <exception cref="ArgumentException">Even rank 1 everywhere keeps more than F (the message gives the smallest reachable fraction).</exception>
    internal static (double Ratio, int[] Ranks) UniformRatioRanks(IReadOnlyList<(int Rows, int Cols)> sites, long totalParameters, double keep, string method)
    {
        double target = keep * totalParameters;
        long Kept(double rho)
        {
            long kept = totalParameters;
            foreach (var (m, n) in sites) kept -= (long)m * n - (long)RankAt(rho, m, n) * (m + n);
            return kept;
        }
        if (Kept(0) > target)
            ThrowHelper.Argument(nameof(keep), $"{method}: keeping {keep.ToString("G4", CultureInfo.InvariantCulture)} of the parameters is out of reach; "
                + $"rank 1 at every factorizable layer keeps {(Kept(0) / (double)Math.Max(1, totalParameters)).ToString("F4", CultureInfo.InvariantCulture)}.");
        double lo = 0, hi = 1;
        if (Kept(hi) <= target) lo = hi;
        else
            while (hi - lo > 1e-9)
            {
                double mid = 0.5 * (lo + hi);
                if (Kept(mid) <= target) lo = mid;
                else hi = mid;
            }
        return (lo, [.. sites.Select(s => RankAt(lo, s.Rows, s.Cols))]);
    }

    /// <summary>
    /// The smallest rank c whose relative truncation error <c>sqrt(Σ_{j≥c} σ_j² / Σ_j σ_j²)</c> is at most
    /// <paramref name="epsilon"/> (at least 1), or null when it exceeds <paramref name="maxRank"/>.
    /// </summary>
    internal static int? ToleranceRank(IReadOnlyList<double> singularValues, double epsilon, int maxRank)
    {
        double total = singularValues.Sum(s => s * s);
        if (total == 0) return Math.Min(1, maxRank) is > 0 and var one ? one : null;
        double tail = total;
        for (int c = 0; c <= singularValues.Count; c++)
        {
            if (Math.Sqrt(Math.Max(0, tail) / total) <= epsilon)
            {
                int rank = Math.Max(1, c);
                return rank <= maxRank ? rank : null;
            }
            if (c < singularValues.Count) tail -= singularValues[c] * singularValues[c];
        }
        return null;
    }

    /// <summary>The relative truncation error at rank <paramref name="rank"/>: sqrt(Σ_{j≥c} σ_j² / Σ_j σ_j²).</summary>
    internal static double TruncationError(IReadOnlyList<double> singularValues, int rank)
    {
        double total = 0, tail = 0;
        for (int j = 0; j < singularValues.Count; j++)
        {
            double s2 = singularValues[j] * singularValues[j];
            total += s2;
            if (j >= rank) tail += s2;
        }
        return total > 0 ? Math.Sqrt(tail / total) : 0;
    }

    private static int RankAt(double rho, int m, int n)
    {
        int max = LowRank.MaxSavingRank(m, n);
        long c = (long)Math.Floor(rho * ((double)m * n / (m + n)));
        return (int)Math.Clamp(c, 1, max);
    }

    /// <summary>
    /// Every site's spectrum on the original: from a survey of the segments when the decomposition reads the inputs, else from
    /// the weights; with <paramref name="keepFactors"/> also its factors at the largest saving rank (for <see cref="Weigh"/>).
    /// </summary>
    private (List<SpectrumSite> Spectra, LowRankFactors<double>[]? Factors) Spectra(CompressionRun run, List<FactorSite> sites, bool calibrate, bool keepFactors = false)
    {
        var spectra = new SpectrumSite?[sites.Count];
        var factors = keepFactors ? new LowRankFactors<double>[sites.Count] : null;
        void Add(FactorSite site, OnnxModel model, GramMatrix? gram)
        {
            int i = sites.IndexOf(site);
            run.Report(Stages.Decomposition, i, sites.Count, $"{site.Name} (spectrum)");
            var w = SiteInputs.WeightOf(site, model);
            double[] sigma;
            if (factors is null) sigma = run.Time(Stages.Decomposition, () => Spectrum(w, gram));
            else
            {
                factors[i] = run.Time(Stages.Decomposition, () => Factorize(w, gram, site.MaxSavingRank));
                sigma = factors[i].SingularValues;
            }
            spectra[i] = new SpectrumSite(site.Rows, site.Cols, sigma);
        }
        if (calibrate)
            run.Survey(run.Original, step =>
            {
                var here = sites.Where(s => step.Holds(s.Name)).ToList();
                if (here.Count == 0) return;
                var grams = SiteInputs.Grams(step, here);
                foreach (var site in here) Add(site, step.Source, grams[site.Name]);
            });
        else
            foreach (var site in sites) Add(site, run.Original, null);
        return ([.. spectra.Select((s, i) => s ?? throw new InvalidOperationException($"{Name}: site '{sites[i].Name}' lies in no calibration segment."))], factors);
    }

    /// <summary>
    /// Whether ranks come from measured sensitivities: always with <see cref="RankAllocation.Sensitivity"/> (a classifier or
    /// language model), with <see cref="RankAllocation.Auto"/> when such a model's measurements cost at most <see cref="SensitivityCost.AutoLimit"/>.
    /// </summary>
    private bool Measured(CompressionRun run, int sites)
    {
        if (Options.Allocation is not (RankAllocation.Sensitivity or RankAllocation.Auto)) return false;
        Evaluation.ModelTask task;
        try { task = Evaluation.DetectedTask.Detect(run.Original).Task; }
        catch (InvalidDataException) when (Options.Allocation == RankAllocation.Auto) { return false; }
        bool logits = task is Evaluation.ModelTask.Classifier or Evaluation.ModelTask.LanguageModel;
        if (Options.Allocation == RankAllocation.Sensitivity)
            return logits ? true : throw new ArgumentException($"{Name} --allocation sensitivity measures KL to the original's output distribution, "
                + $"and {run.Original.FilePath ?? "the model"} is a {task} model, not a classifier or language model; use --allocation global.");
        return logits && SensitivityCost.Macs(sites, run.Calibration.Examples, run.OriginalCost.MacsPerExample) <= Options.AutoSensitivityLimit;
    }

    /// <summary>
    /// The spectra with each site's measured <see cref="LossCurve"/>: the site alone truncated on a copy of the original at
    /// the grid's ranks (its real rewrite), KL(original ‖ copy) on the calibration data (RankAllocation.cs).
    /// </summary>
    private List<SpectrumSite> Weigh(CompressionRun run, List<FactorSite> sites, List<SpectrumSite> spectra, LowRankFactors<double>[] factors, List<string> warnings)
    {
        var objective = CalibrationObjective.Create(run, null, warnings, divergence: true);
        var weighed = new List<SpectrumSite>(sites.Count);
        for (int i = 0; i < sites.Count; i++)
        {
            var site = sites[i];
            var points = new List<(double, double)>();
            foreach (int c in SensitivityCost.Grid.Select(f => Math.Clamp((int)Math.Round(f * site.MaxSavingRank), 1, site.MaxSavingRank)).Distinct())
            {
                run.CancellationToken.ThrowIfCancellationRequested();
                run.Report(Stages.Measurement, i, sites.Count, $"{site.Name} alone at rank {c}");
                var model = run.Original.Clone();
                var (l, r) = Prefix(factors[i], c);
                run.Time(Stages.Rewrite, () => site.Replace(model, Narrow(l), Narrow(r)));
                points.Add((spectra[i].RelativeSquaredError(c), run.Time(Stages.Measurement, () => objective.Measure(model))));
            }
            weighed.Add(new SpectrumSite(site.Rows, site.Cols, spectra[i].SingularValues) { Loss = new LossCurve(points) });
        }
        run.Report(Stages.Measurement, sites.Count, sites.Count);
        return weighed;
    }

    /// <summary>A tolerance budget's rank: the smallest meeting ε, rounded up to a multiple of <see cref="LowRankBaselineOptions.Align"/>.</summary>
    private int? AlignedToleranceRank(IReadOnlyList<double> singularValues, double epsilon, int maxRank) =>
        ToleranceRank(singularValues, epsilon, maxRank) is { } c ? GlobalRankAllocation.Align(c, maxRank, Options.Align) : null;

    private SiteReport Report(Decomposed d, Matrix<double> l, Matrix<double> r, int rank)
    {
        var approx = Blas.Multiply(l.View, r.View);
        double weightError = MatrixNorms.Frobenius(d.W.View) is > 0 and var norm ? MatrixNorms.FrobeniusDistance(d.W.View, approx.View) / norm : 0;
        return new SiteReport(d.Site.Name, "low-rank", d.Site.FullRank, rank)
        {
            ParametersBefore = d.Site.Parameters,
            ParametersAfter = d.Site.FactorParameters(rank),
            ErrorEstimate = TruncationError(d.Factors.SingularValues, rank),
            MeasuredError = Options.MeasureOutputError ? d.Inputs?.OutputError(d.W.View, approx.View) : null,
            Details = new LowRankSiteDetails(d.Site.Kind, d.Site.Rows, d.Site.Cols, d.Site.MaxSavingRank, PathName(d.Factors.Method), weightError),
        };
    }

    private static string PathName(LowRankMethod method) => method switch
    {
        LowRankMethod.ActivationAware => "asvd",
        LowRankMethod.WhitenedCholesky => "whitened-cholesky",
        LowRankMethod.WhitenedEigen => "whitened-eigen",
        _ => "svd",
    };

    /// <summary>The rank-c prefix of factors computed at a higher rank: L[:, :c], R[:c, :].</summary>
    internal static (Matrix<double> L, Matrix<double> R) Prefix(LowRankFactors<double> f, int rank) =>
        (f.L.Slice(0, 0, f.L.Rows, rank).ToMatrix(), f.R.Slice(0, 0, rank, f.R.Cols).ToMatrix());

    internal static Matrix<double> Widen(Matrix<float> m)
    {
        var w = new Matrix<double>(m.Rows, m.Cols);
        var src = m.AsSpan();
        var dst = w.AsSpan();
        for (int i = 0; i < src.Length; i++) dst[i] = src[i];
        return w;
    }

    internal static Matrix<float> Narrow(Matrix<double> m)
    {
        var w = new Matrix<float>(m.Rows, m.Cols);
        var src = m.AsSpan();
        var dst = w.AsSpan();
        for (int i = 0; i < src.Length; i++) dst[i] = (float)src[i];
        return w;
    }

    /// <summary>The ranks of a keep-parameters budget (null: the site stays dense), with the ratio or threshold that gave them.</summary>
    private sealed record Allocated(int?[] Ranks, double? Ratio, double? Threshold, double? Latency = null);

    /// <summary>
    /// A latency budget: the smallest threshold λ of the global allocation (the most directions) whose model, timed against
    /// the original on this machine, runs within the budget — bisection over λ's breakpoints, each candidate built with
    /// zero factors of its ranks (time depends on the shapes only).
    /// </summary>
    private Allocated Timed(CompressionRun run, List<FactorSite> sites, List<SpectrumSite> spectra, CompressionBudget budget, Evaluation.ILatencyProbe probe,
        List<string> warnings)
    {
        var candidates = new SortedSet<double> { 0, double.PositiveInfinity };
        foreach (var s in spectra)
            for (int j = 0; j <= s.MaxSavingRank; j++) candidates.Add(s.GainPerParameter(j));
        var lambdas = candidates.ToArray();
        int?[] RanksAt(int i) => [.. spectra.Select(s => GlobalRankAllocation.Rank(s, lambdas[i], Options.Align))];
        var measured = new Dictionary<int, double>();
        double Latency(int i)
        {
            if (measured.TryGetValue(i, out double ratio)) return ratio;
            var ranks = RanksAt(i);
            var model = run.Original.Clone();
            run.Time(Stages.Rewrite, () =>
            {
                for (int s = 0; s < sites.Count; s++)
                    if (ranks[s] is { } c) sites[s].Replace(model, new Matrix<float>(sites[s].Rows, c), new Matrix<float>(c, sites[s].Cols));
                FactorChain.Tidy(model);
            });
            run.Report(Stages.Measurement, probe.Calls, null, $"{budget}: latency at λ = {lambdas[i]:G3}");
            return measured[i] = run.Time(Stages.Measurement, () => probe.Ratio(model, run.CancellationToken));
        }
        var (at, met) = Bisection.First(lambdas.Length, i => Latency(i) <= budget.Value);
        if (!met) warnings.Add($"{budget} cannot be met: rank 1 at every factorizable layer measured {Latency(at):0.###} of the original's latency.");
        return new Allocated(RanksAt(at), null, lambdas[at], Latency(at));
    }

    private sealed record Decomposed(FactorSite Site, Matrix<double> W, GramMatrix? Inputs, LowRankFactors<double> Factors);
}
