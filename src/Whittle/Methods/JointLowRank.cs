// Joint low-rank factorization optimization (METHODS.md §3): choose each layer's rank against the model's measured
// calibration loss, so that the factorized model loses nothing without fine-tuning.
//
// Paper: Zhang, Cheng, Zhang, Liu, Tian, "Lossless Model Compression via Joint Low-Rank Factorization Optimization",
// arXiv 2412.06867 (no public code); theory in the companion "Compression for Better", arXiv 2412.06868.
//
// The loss f (CalibrationObjective): by default KL(original ‖ compressed) of the output distributions — the task's own
// loss (cross-entropy with labels, next-token cross-entropy) lets ranks that fit the calibration labels better than the
// original pass as lossless while they drift from it, which held-out data do not confirm. Threshold τ = f₀ + tolerance
// (absolute, plus relative to the loss's scale: f₀, or for KL the original's mean output entropy; 0.01 of it by default
// where f₀ alone would admit nothing).
//
// Lossless mode, the paper's pass (layer by layer — in graph order, or most parameters first — earlier layers as chosen):
//   1. For the next layer W (m × n): one SVD W = Σ σ_j u_j v_jᵀ; candidate ranks ⌈i·r_max/N⌉, i = 1..N, all saving
//      parameters (c·(m + n) < m·n); Ŵ_c = L_c·R_c with L_c = U_c Σ_c^{1/2}, R_c = Σ_c^{1/2} V_cᵀ; δ_c = Ŵ_c − W.
//   2. Predicted first-order change of each candidate, ⟨∇_W f, δ_c⟩:
//        exact               at a linear layer that writes the logits: G = α·Σ_t g_t x_tᵀ from one tapped pass (g the
//                            loss gradient w.r.t. the logits), then Δ[c] = −Σ_{j≥c} σ_j u_jᵀ G v_j for every c at once
//                            (TruncationLoss.FirstOrderLossChange) — one SVD and one gradient per layer;
//        central difference  anywhere: [f(W + hδ_c) − f(W − hδ_c)] / 2h, two passes per candidate (h = 1: f(W + δ_c) is
//                            the candidate's measured loss, so one extra pass).
//   3. Measured loss f(Ŵ_c) of the current model with this layer replaced by its two factors (in memory, ModelRunner):
//      among candidates with predicted change ≤ 0, the lowest measured loss, kept if it is ≤ τ; none → the layer stays.
//   Every kept model has loss ≤ τ, so the final calibration loss is ≤ τ by construction.
//
// Compact mode, one threshold shared by every layer (a per-layer search in graph order lets the first layers spend the
// tolerance, so that a larger tolerance compressed less):
//   1. Each layer alone on the original: candidate losses from the largest rank down until one exceeds τ;
//      Δ_i(c) = f(c) − f₀.
//   2. For a shared t, layer i keeps the smallest candidate whose larger candidates all have Δ_i ≤ t (none: dense).
//   3. Bisection over the measured Δ values for the largest t whose combined model has loss ≤ τ (measured).
//   The final loss is again ≤ τ by construction; a larger tolerance admits every t a smaller one did.
//
// (open) choices made here: the threshold is the original model's loss (not the previous layer's), so gains at one
// layer can be spent at later ones; candidate grid equally spaced in parameters; exact gradients only where they are
// closed-form; compact mode holds every layer's factors at its largest passing candidate (at most the model's size).

using System.Globalization;
using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Decompositions;
using Whittle.Evaluation;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Calibration;
using Whittle.Runtime;

namespace Whittle.Methods;

/// <summary>
/// Joint low-rank factorization (Zhang et al. 2024): every linear and ungrouped convolution layer is factorized at the rank
/// its measured calibration loss allows — lossless (best loss among ranks predicted not to hurt) or compact (smallest rank
/// within the loss threshold).
/// </summary>
public sealed class JointLowRank : ICompressionMethod
{
    /// <summary>A joint low-rank method with <paramref name="options"/> (null: lossless, exact gradients, 16 candidates).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public JointLowRank(JointLowRankOptions? options = null)
    {
        Options = options ?? new JointLowRankOptions();
        Options.Validate();
    }

    /// <summary>The options.</summary>
    public JointLowRankOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "lowrank";

    /// <summary>The candidate ranks for a layer whose largest parameter-saving rank is <paramref name="maxSavingRank"/>: ⌈i·r_max/N⌉, i = 1..N, distinct, ascending.</summary>
    public static IReadOnlyList<int> CandidateRanks(int maxSavingRank, int grid)
    {
        if (maxSavingRank < 0) ThrowHelper.ArgumentOutOfRange(nameof(maxSavingRank), maxSavingRank, "a non-negative rank");
        if (grid < 1) ThrowHelper.ArgumentOutOfRange(nameof(grid), grid, "at least one candidate");
        var ranks = new SortedSet<int>();
        for (int i = 1; i <= grid; i++)
        {
            int c = (int)(((long)i * maxSavingRank + grid - 1) / grid);
            if (c >= 1) ranks.Add(c);
        }
        return [.. ranks];
    }

    /// <inheritdoc/>
    /// <remarks>The size follows from the loss test; only <see cref="CompressionBudget.MethodDefault"/> is accepted (several give copies).</remarks>
    public BudgetKinds Budgets => BudgetKinds.MethodDefault;

    /// <inheritdoc/>
    public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(budgets);
        var warnings = new List<string>();
        var model = run.Original;
        var (sites, skipped) = FactorSites.Find(model, run.Structure, Options.IncludeConvolutions);
        if (Options.Order == LayerOrder.LargestFirst) sites = [.. sites.OrderByDescending(s => s.Parameters).ThenBy(s => s.Position)];
        if (sites.Count == 0) warnings.Add($"lowrank: no layer of {model.FilePath ?? "the model"} can be factorized (see the per-site reasons).");
        if (run.Calibration.Description is null)
            warnings.Add("lowrank: the calibration data do not say where they came from; make sure held-out figures use other data, since every rank was chosen on these.");

        bool divergence = Options.Loss == LowRankLoss.Divergence;
        var objective = run.Time(Stages.Calibration, () => CalibrationObjective.Create(run, Options.Task, warnings, divergence));
        double relative = Options.RelativeToleranceFor(objective.Kind == ObjectiveKind.KlToOriginal);
        // The loss watches one output; a layer writing another (a BERT pooler beside its hidden states) would change unseen.
        foreach (var s in sites.ToList())
            if (FactorSites.GraphOutput(model, s) is { } output && output != objective.Task.Output)
            {
                sites.Remove(s);
                skipped.Add(s.Skip($"it writes the graph output '{output}', which the loss (on '{objective.Task.Output}') does not see; it is kept"));
            }
        double original = run.Time(Stages.Measurement, () => objective.Measure(model));
        double threshold = original + Options.LossTolerance + relative * objective.Scale(original);
        var reports = skipped.Select(s => (s.Position, Report: s.Unchanged())).ToList();
        var (current, factorized, shared) = Options.Mode == LowRankMode.Compact
            ? SharedThreshold(run, objective, sites, original, threshold, reports)
            : (LayerByLayer(run, objective, sites, original, threshold, reports, out int kept), kept, (double?)null);

        run.Time(Stages.Rewrite, () => FactorChain.Tidy(current));
        double final = run.Time(Stages.Measurement, () => objective.Measure(current));
        var details = new JointLowRankDetails(
            Options.Mode == LowRankMode.Lossless ? "lossless" : "compact", Options.Order == LayerOrder.Graph ? "graph" : "largest-first", objective.Loss.Name,
            $"{DetectedTask.Name(objective.Task.Task)} ({objective.Task.Reason})",
            Options.Gradient == GradientSource.Exact ? "exact where closed-form (a linear layer writing the logits), else central-difference" : "central-difference",
            Options.DifferenceStep, Options.RankGrid, Options.LossTolerance, original, threshold, final,
            run.Calibration.Description, run.Calibration.Examples, sites.Count, factorized, objective.Passes)
        { RelativeLossTolerance = relative, SharedThreshold = shared };
        var result = run.Result(budgets[0], current, reports.OrderBy(r => r.Position).Select(r => r.Report), details, warnings,
            compressible: (sites.Sum(s => s.Parameters), null));
        var results = new List<CompressionResult> { result };
        for (int b = 1; b < budgets.Count; b++) results.Add(new(FactorSites.Copy(current), result.Report));
        return results;
    }

    /// <summary>Lossless mode, the paper's pass: layer by layer, each searched on the model as chosen so far against the threshold.</summary>
    private OnnxModel LayerByLayer(CompressionRun run, CalibrationObjective objective, List<FactorSite> sites, double original, double threshold,
        List<(int Position, SiteReport Report)> reports, out int factorized)
    {
        var current = run.Copy();
        double currentLoss = original;
        factorized = 0;
        for (int i = 0; i < sites.Count; i++)
        {
            run.CancellationToken.ThrowIfCancellationRequested();
            var site = sites[i];
            // The progress line says early when nothing passes the loss test (a tolerance too tight for this model).
            run.Report(Stages.Measurement, i, sites.Count, i == 0 ? site.Name : $"{site.Name}; {factorized} of {i} layers factorized so far");
            var (report, chosen, loss) = SearchLayer(run, objective, site, current, currentLoss, threshold);
            reports.Add((site.Position, report));
            if (chosen is not null)
            {
                current = chosen;
                currentLoss = loss;
                factorized++;
            }
        }
        run.Report(Stages.Measurement, sites.Count, sites.Count);
        return current;
    }

    /// <summary>
    /// Compact mode: one threshold t shared by every layer, so that no layer early in the graph spends the tolerance for
    /// little saving. Each layer alone, on the original: the loss of its candidates from the largest rank down until one
    /// exceeds the threshold, Δ_i(c) = f(c) − f₀. For a t, layer i takes the smallest candidate c such that every candidate
    /// from the largest down to c has Δ_i ≤ t (none: it stays dense). The largest t whose combined model keeps its loss within
    /// the threshold is found by bisection over the measured Δ values: a larger tolerance admits every t a smaller one does.
    /// </summary>
    private (OnnxModel Model, int Factorized, double? Shared) SharedThreshold(CompressionRun run, CalibrationObjective objective, List<FactorSite> sites,
        double original, double threshold, List<(int Position, SiteReport Report)> reports)
    {
        var clock = run.Clock;
        var baseModel = run.Copy();
        var curves = new List<LayerCurve>(sites.Count);
        for (int i = 0; i < sites.Count; i++)
        {
            run.CancellationToken.ThrowIfCancellationRequested();
            var site = sites[i];
            run.Report(Stages.Measurement, i, sites.Count, $"{site.Name} (alone)");
            var w = LowRankBaseline.Widen(site.Weight(baseModel));
            var svd = clock.Time(Stages.Decomposition, () => Svd.Compute<double>(w));
            var ranks = CandidateRanks(site.MaxSavingRank, Options.RankGrid);
            var measured = new double?[ranks.Count];
            for (int k = ranks.Count - 1; k >= 0; k--)
            {
                run.CancellationToken.ThrowIfCancellationRequested();
                var candidate = clock.Time(Stages.Rewrite, () => Factorized(baseModel, site, svd, ranks[k]));
                measured[k] = clock.Time(Stages.Measurement, () => objective.Measure(candidate));
                if (measured[k] > threshold) break;
            }
            // The factors at the largest candidate: every smaller candidate's are their prefixes.
            var top = ranks.Count > 0 && measured[^1] <= threshold ? LowRank.Split(svd, ranks[^1]) : default;
            curves.Add(new LayerCurve(site, ranks, measured, top.Item1 is null ? null : LowRankBaseline.Narrow(top.Item1),
                top.Item2 is null ? null : LowRankBaseline.Narrow(top.Item2), svd.S));
        }

        var steps = curves.SelectMany(c => c.Measured).OfType<double>().Where(f => f <= threshold).Select(f => Math.Max(0, f - original)).Distinct().Order().ToArray();
        OnnxModel Build(double t) => clock.Time(Stages.Rewrite, () =>
        {
            var m = FactorSites.Copy(baseModel);
            foreach (var c in curves)
                if (c.Choice(t, original) is { } k)
                    c.Site.Replace(m, c.L!.Slice(0, 0, c.L.Rows, c.Ranks[k]).ToMatrix(), c.R!.Slice(0, 0, c.Ranks[k], c.R.Cols).ToMatrix());
            FactorChain.Tidy(m);
            return m;
        });
        int good = -1;
        OnnxModel? best = null;
        for (int lo = 0, hi = steps.Length - 1; lo <= hi;)
        {
            int mid = (lo + hi) / 2;
            run.Report(Stages.Measurement, sites.Count, sites.Count, $"shared threshold {Format(steps[mid])}");
            var model = Build(steps[mid]);
            if (clock.Time(Stages.Measurement, () => objective.Measure(model)) <= threshold)
            {
                good = mid;
                best = model;
                lo = mid + 1;
            }
            else hi = mid - 1;
        }

        double? shared = good >= 0 ? steps[good] : null;
        int factorized = 0;
        foreach (var c in curves)
        {
            int? k = shared is { } t ? c.Choice(t, original) : null;
            if (k is not null) factorized++;
            string decision = k is { } chosen
                ? $"shared threshold t = {Format(shared!.Value)}: the smallest candidate such that every larger one, alone, raises the loss by at most t"
                : c.Ranks.Count == 0 ? "left alone: no rank saves parameters"
                : shared is null ? $"left alone: no shared threshold keeps the combined model's loss within {Format(threshold)}"
                : $"left alone: the largest candidate rank {c.Ranks[^1]} alone raises the loss by {Format(c.Measured[^1]!.Value - original)} > t = {Format(shared.Value)}";
            var candidates = c.Ranks.Select((rank, j) => new RankCandidate(rank, c.Site.FactorParameters(rank), null, c.Measured[j], c.Measured[j] - original, j == k)).ToList();
            var details = new JointLowRankSiteDetails(c.Site.Kind, c.Site.Rows, c.Site.Cols, c.Site.MaxSavingRank, "not used", original,
                k is { } j2 ? c.Measured[j2]!.Value : original, candidates, decision);
            int rank = k is { } j3 ? c.Ranks[j3] : c.Site.FullRank;
            reports.Add((c.Site.Position, new SiteReport(c.Site.Name, "low-rank", c.Site.FullRank, rank)
            {
                ParametersBefore = c.Site.Parameters,
                ParametersAfter = k is null ? c.Site.Parameters : c.Site.FactorParameters(rank),
                ErrorEstimate = k is null ? null : LowRankBaseline.TruncationError(c.Singular, rank),
                Skipped = k is null ? decision : null,
                Details = details,
            }));
        }
        return (best ?? baseModel, factorized, shared);
    }

    /// <summary>A copy of <paramref name="model"/> with <paramref name="site"/> replaced by the rank-<paramref name="rank"/> factors of its SVD.</summary>
    private static OnnxModel Factorized(OnnxModel model, FactorSite site, SvdResult<double> svd, int rank)
    {
        var (l, r) = LowRank.Split(svd, rank);
        var m = FactorSites.Copy(model);
        site.Replace(m, LowRankBaseline.Narrow(l), LowRankBaseline.Narrow(r));
        FactorChain.Tidy(m);
        return m;
    }

    /// <summary>One layer's candidates measured alone (null: not measured), with the factors at the largest candidate when it passed.</summary>
    private sealed record LayerCurve(FactorSite Site, IReadOnlyList<int> Ranks, double?[] Measured, Matrix<float>? L, Matrix<float>? R, double[] Singular)
    {
        /// <summary>The candidate index for shared threshold <paramref name="t"/>, or null (dense).</summary>
        public int? Choice(double t, double original)
        {
            int? k = null;
            for (int j = Ranks.Count - 1; j >= 0 && Measured[j] is { } f && f - original <= t; j--) k = j;
            return k is not null && L is not null ? k : null;
        }
    }

    /// <summary>One layer: SVD, predictions, measured candidates, the decision. Returns the report, the chosen model (null: unchanged) and its loss.</summary>
    private (SiteReport Report, OnnxModel? Chosen, double Loss) SearchLayer(CompressionRun run, CalibrationObjective objective, FactorSite site,
        OnnxModel current, double currentLoss, double threshold)
    {
        var clock = run.Clock;
        var cancellationToken = run.CancellationToken;
        var w = LowRankBaseline.Widen(site.Weight(current));
        var svd = clock.Time(Stages.Decomposition, () => Svd.Compute<double>(w));
        var ranks = CandidateRanks(site.MaxSavingRank, Options.RankGrid);
        bool exact = Options.Gradient == GradientSource.Exact && ExactGradientApplies(site, objective, current);
        double[]? delta = null;
        if (exact)
        {
            var g = clock.Time(Stages.Calibration, () => ExactGradient(run, objective, (LinearFactorSite)site, current));
            delta = clock.Time(Stages.Decomposition, () => TruncationLoss.FirstOrderLossChange(svd, g.View));
        }

        var predicted = new double?[ranks.Count];
        var measured = new double?[ranks.Count];
        double h = Options.DifferenceStep;

        // Measures candidate k (the factorized model, returned) and, for central differences, its predicted change.
        OnnxModel Evaluate(int k)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int c = ranks[k];
            var candidate = clock.Time(Stages.Rewrite, () => Factorized(current, site, svd, c));
            measured[k] = clock.Time(Stages.Measurement, () => objective.Measure(candidate));
            if (delta is not null) predicted[k] = delta[c];
            else
            {
                var (l, r) = LowRank.Split(svd, c);
                var approx = Blas.Multiply(l.View, r.View);
                double minus = MeasureDense(objective, site, current, w, approx, -h, clock);
                double plus = h == 1 ? measured[k]!.Value : MeasureDense(objective, site, current, w, approx, h, clock);
                predicted[k] = (plus - minus) / (2 * h);
            }
            return candidate;
        }

        int chosen = -1;
        OnnxModel? best = null;
        string decision;
        if (Options.Mode == LowRankMode.Lossless)
        {
            for (int k = 0; k < ranks.Count; k++)
            {
                if (delta is not null)
                {
                    predicted[k] = delta[ranks[k]];
                    if (predicted[k] > 0) continue;                  // exact prediction: measure only candidates predicted not to hurt
                }
                var candidate = Evaluate(k);
                if (predicted[k] <= 0 && measured[k] <= threshold && (chosen < 0 || measured[k] < measured[chosen]))
                {
                    chosen = k;
                    best = candidate;
                }
            }
            int eligible = Enumerable.Range(0, ranks.Count).Count(k => predicted[k] <= 0);
            decision = chosen >= 0
                ? $"lowest measured loss among the {eligible} candidates with predicted change ≤ 0"
                : eligible == 0 ? "left alone: no candidate has predicted change ≤ 0"
                : $"left alone: none of the {eligible} candidates with predicted change ≤ 0 has loss ≤ {Format(threshold)}";
        }
        else
        {
            // From the largest candidate down, stopping at the first over the threshold: the loss grows as the rank falls, so
            // a layer that cannot be compressed costs one measurement, not one per candidate.
            for (int k = ranks.Count - 1; k >= 0; k--)
            {
                var candidate = Evaluate(k);
                if (measured[k] > threshold) break;
                chosen = k;
                best = candidate;
            }
            decision = ranks.Count == 0 ? "left alone: no rank saves parameters"
                : chosen < 0
                ? $"left alone: the largest candidate rank {ranks[^1]} has loss {Format(measured[^1]!.Value)} > {Format(threshold)}"
                : chosen == 0 ? "smallest candidate rank; every candidate down to it has loss within the threshold"
                : $"smallest candidate rank reached with loss ≤ {Format(threshold)}; rank {ranks[chosen - 1]} exceeds it";
            if (delta is not null)
                for (int k = 0; k < ranks.Count; k++) predicted[k] ??= delta[ranks[k]];
        }

        double after = chosen >= 0 ? measured[chosen]!.Value : currentLoss;
        var candidates = ranks.Select((c, k) => new RankCandidate(c, site.FactorParameters(c), predicted[k], measured[k],
            measured[k] - currentLoss, k == chosen)).ToList();
        var details = new JointLowRankSiteDetails(site.Kind, site.Rows, site.Cols, site.MaxSavingRank, exact ? "exact" : "central-difference",
            currentLoss, after, candidates, decision);
        int rank = chosen >= 0 ? ranks[chosen] : site.FullRank;
        var report = new SiteReport(site.Name, "low-rank", site.FullRank, rank)
        {
            ParametersBefore = site.Parameters,
            ParametersAfter = chosen >= 0 ? site.FactorParameters(rank) : site.Parameters,
            ErrorEstimate = chosen >= 0 ? LowRankBaseline.TruncationError(svd.S, rank) : null,
            Skipped = chosen >= 0 ? null : decision,
            Details = details,
        };
        return (report, best, after);
    }

    /// <summary>The loss of the current model with the layer's weight replaced by the dense <c>W + s·(Ŵ − W)</c>.</summary>
    private static double MeasureDense(CalibrationObjective objective, FactorSite site, OnnxModel current, Matrix<double> w, Matrix<double> approx,
        double s, StageClock clock)
    {
        var perturbed = clock.Time(Stages.Rewrite, () =>
        {
            var dense = new Matrix<float>(w.Rows, w.Cols);
            for (int i = 0; i < w.Rows; i++)
                for (int j = 0; j < w.Cols; j++) dense[i, j] = (float)(w[i, j] + s * (approx[i, j] - w[i, j]));
            var m = FactorSites.Copy(current);
            site.ReplaceDense(m, dense);
            FactorChain.Tidy(m);
            return m;
        });
        return clock.Time(Stages.Measurement, () => objective.Measure(perturbed));
    }

    /// <summary>Whether the closed-form gradient applies: a linear layer (x·W form) whose output is the logits the loss reads.</summary>
    private static bool ExactGradientApplies(FactorSite site, CalibrationObjective objective, OnnxModel model) =>
        site is LinearFactorSite { Site.WeightIsLeftOperand: false } l && l.Output == objective.Output && model.Graph.IsGraphOutput(l.Output);

    /// <summary>
    /// <c>∇_W f = α·Σ_t g_t x_tᵀ / count</c> (m × n) for a linear layer writing the logits: one survey of the current model
    /// feeding the layer's input and the logits to a <see cref="GradientStatistic"/>.
    /// </summary>
    private static Matrix<double> ExactGradient(CompressionRun run, CalibrationObjective objective, LinearFactorSite site, OnnxModel current)
    {
        var statistic = new GradientStatistic(objective, site);
        run.Survey(current, step =>
        {
            if (step.Holds(site.Name)) step.Calibrate(statistic);
        });
        objective.CountPass();
        var gradient = statistic.Finish();
        double scale = site.Scale(current) / Math.Max(1, statistic.Count);
        foreach (ref double v in gradient.AsSpan()) v *= scale;
        return gradient;
    }

    /// <summary><c>Σ_t g_t x_tᵀ</c> over the calibration set: g the loss's closed-form logit gradient, x the layer's input.</summary>
    private sealed class GradientStatistic(CalibrationObjective objective, LinearFactorSite site) : IBatchStatistic<Matrix<double>>
    {
        private readonly Matrix<double> _sum = new(site.Rows, site.Cols);

        public IReadOnlyCollection<string> Reads { get; } = [site.Input, objective.Output];

        /// <summary>Items the gradient sums over.</summary>
        public long Count { get; private set; }

        public void AddBatch(StatisticBatch batch)
        {
            int m = site.Rows, n = site.Cols;
            var x = batch[site.Input].Span;
            var (g, count) = objective.LogitGradient(batch.Index, batch[objective.Output].AsHostTensor());
            Count += count;
            int rows = g.Length / m;
            if (x.Length != (long)rows * n)
                ThrowHelper.ShapeMismatch(nameof(batch), $"Layer '{site.Name}': input rows against logit rows", $"{rows}×{n} inputs", $"{x.Length} values");
            var xd = new double[x.Length];
            for (int i = 0; i < x.Length; i++) xd[i] = x[i];
            var gv = new MatrixView<double>(g, 0, rows, m, m, 1);
            var xv = new MatrixView<double>(xd, 0, rows, n, n, 1);
            Blas.Gemm(1.0, gv.Transpose(), xv, 1.0, _sum.View);          // G += gᵀ·X
        }

        public Matrix<double> Finish() => _sum;
    }

    private static string Format(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
