// The structured-pruning run shared by the interpolative decomposition and its magnitude baseline; only the
// ranking of a unit's columns (IUnitPath) differs between them.
//
//   1. Units: the channel chains and attention blocks of the original's structure (each within one segment), and the
//      sites left alone with reasons.
//   2. Size budgets (bisection): one survey of the original model gives every unit's path ε_k; per budget, one global
//      tolerance ε — every unit keeps k(ε) = min{k : ε_k ≤ ε} — the smallest ε whose model fits the budget (bisection
//      over the breakpoints of k(ε)); what the breakpoints leave of the budget (much, with aligned widths) then goes one
//      step at a time to the unit with the largest error at its width. The widths stay global whatever the calibration mode.
//      The sensitivity schedule first maps each unit's ε_k onto its measured effect on the output (SensitivityCurve); a
//      latency budget bisects ε against each candidate's latency, timed against the original (LatencyProbe).
//   3. The pass (CompressionRun.Pass): per segment, the units it holds get their selection and correction — in
//      sequential mode from a new factorization of their activations as the compressed segments before produce them
//      (at the widths of step 2, or k(ε) of a tolerance budget), in parallel mode from the survey's paths — and the
//      surgery on each budget's copy.
//   4. Greedy schedule: repeatedly shrink the unit with the smallest ε_k per unit of budget saved by the greedy
//      factor, surveying the pruned network again after every step (sequential by nature, in both modes).
//   5. Optionally the output error of every unit's consumers: the original and each pruned model side by side on the
//      calibration data (CompressionRun.Compare).

using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Evaluation;
using Whittle.Calibration;
using Whittle.Onnx;
using Whittle.Rewriting;

namespace Whittle.Methods.Pruning;

/// <summary>Runs structured pruning with a given ranking of units.</summary>
/// <param name="method">The method's name for reports.</param>
/// <param name="options">The options.</param>
/// <param name="rank">Builds the path of a unit from its factor.</param>
/// <param name="correction">Whether the consumers receive a correction (ID) rather than a selection.</param>
internal sealed class StructuredPruning(string method, PruningOptions options, Func<UnitFactor, IUnitPath> rank, bool correction)
{
    /// <summary>One compressed model before it is measured and reported.</summary>
    private sealed class Outcome(CompressionBudget budget, OnnxModel model, int[] widths)
    {
        public CompressionBudget Budget { get; } = budget;
        public OnnxModel Model { get; } = model;
        public int[] Widths { get; } = widths;
        public UnitChoice?[] Choices { get; init; } = [];
        public int[]?[] Kept { get; init; } = [];
        public List<string>[] Edits { get; init; } = [];
        public double? Tolerance { get; init; }
        public bool Met { get; init; } = true;
        public int? Steps { get; init; }
        public double? Latency { get; init; }
    }

    public IReadOnlyList<CompressionResult> Run(CompressionRun run, IReadOnlyList<CompressionBudget> budgets)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(budgets);
        options.Validate();
        if (options.Targets.HasFlag(PruningTargets.ResidualStream)) run.IncludeResidualStreams();
        var model = run.Original;
        var context = new PruningContext(model, run.Structure, run.Shapes);
        var (units, skipped) = run.Time(Stages.Analysis, () => PruningUnits.Find(context, options.Targets, correction));
        if (units.Count == 0)
            throw new ArgumentException($"{method}: {OnnxModelException.Describe(model.FilePath)} has nothing prunable for targets {options.Targets}"
                + (skipped.Count > 0 ? $"; e.g. '{skipped[0].Site}': {skipped[0].Skipped}" : "."), nameof(run));
        var sizes = new SizeModel(model, run.Structure, units);
        var shortData = new List<string>();
        var outcomes = new Outcome?[budgets.Count];
        bool greedy = options.Schedule == PruningSchedule.Greedy;
        var direct = Enumerable.Range(0, budgets.Count).Where(i => !greedy || budgets[i].Kind is BudgetKind.Tolerance or BudgetKind.KeepLatency).ToList();
        if (direct.Count > 0) Direct(run, context, units, sizes, budgets, direct, outcomes, shortData);
        if (greedy)
        {
            var order = Enumerable.Range(0, budgets.Count).Where(i => budgets[i].Kind is not (BudgetKind.Tolerance or BudgetKind.KeepLatency))
                .OrderByDescending(i => budgets[i].Value).ToList();
            if (order.Count > 0)
            {
                var made = Greedy(run, [.. order.Select(i => budgets[i])], context, units, sizes);
                for (int j = 0; j < order.Count; j++) outcomes[order[j]] = made[j];
            }
        }

        double[][]? measured = options.MeasureErrors
            ? [.. outcomes.Select(o => run.Time(Stages.Measurement, () => MeasureErrors(run, units, o!)))]
            : null;
        var positions = Positions(context);
        var results = new List<CompressionResult>(budgets.Count);
        for (int i = 0; i < budgets.Count; i++)
        {
            var o = outcomes[i]!;
            var sites = new List<(int Position, SiteReport Report)>();
            for (int u = 0; u < units.Count; u++)
            {
                var unit = units[u];
                int w = o.Widths[u];
                var report = new SiteReport(unit.Name, unit.KindName, unit.Reported(unit.Width), unit.Reported(w))
                {
                    ParametersBefore = sizes.UnitParameters(u, sizes.Original),
                    ParametersAfter = sizes.UnitParameters(u, o.Widths),
                    ErrorEstimate = o.Choices[u]?.ErrorEstimate ?? 0,
                    MeasuredError = measured is null || double.IsNaN(measured[i][u]) ? null : measured[i][u],
                    Skipped = w < unit.Width ? null : "nothing to remove at this budget",
                    Details = o.Choices[u] is { } c && w < unit.Width
                        ? new PrunedSiteDetails(o.Kept[u]!, Scaled(unit), c.ActivationError, c.PredictedOutputError, c.UsedPseudoInverse, o.Edits[u])
                        : null,
                };
                sites.Add((positions.GetValueOrDefault(unit.Producers[0], int.MaxValue), report));
            }
            foreach (var s in skipped) sites.Add((positions.GetValueOrDefault(s.Site, int.MaxValue), s));
            var warnings = new List<string>(run.Structure.Warnings);
            if (correction) warnings.AddRange(shortData);
            if (options.Targets.HasFlag(PruningTargets.ResidualStream) && run.Structure.ResidualStream is not null)
                warnings.Add("--prune stream narrows a CNN's residual streams; a transformer's hidden dimension is sliced by --method slice (SliceGPT-style), "
                    + "which this method does not combine with yet.");
            if (!o.Met)
                warnings.Add(o.Budget.Kind == BudgetKind.KeepLatency
                    ? $"{o.Budget} cannot be met: the smallest widths measured {o.Latency:0.###} of the original's latency."
                    : $"{o.Budget} cannot be met: the smallest widths keep {sizes.Fraction(o.Budget, o.Widths):0.####} of the original.");
            if (options.Statistic == ActivationStatistic.Sketch) warnings.Add("Error estimates refer to the row sketch of each activation, not to the activation itself.");
            // Tolerance and latency budgets take the bisection path whatever the schedule (greedy sizes only parameters and MACs).
            bool bisected = o.Budget.Kind == BudgetKind.Tolerance || (greedy && o.Budget.Kind == BudgetKind.KeepLatency);
            var details = new PruningRunDetails(bisected ? "bisection" : ScheduleName(options.Schedule), Name(options.Statistic),
                o.Tolerance, o.Met, o.Steps, run.Calibration.Examples) { MeasuredLatency = o.Latency };
            results.Add(run.Result(o.Budget, o.Model, sites.OrderBy(s => s.Position).Select(s => s.Report), details, warnings,
                (sizes.CompressibleParameters0, sizes.CompressibleMacs0)));
        }
        return results;
    }

    /// <summary>The budgets at <paramref name="direct"/>: widths from one global tolerance, one pass of the segments.</summary>
    private void Direct(CompressionRun run, PruningContext context, List<PruningUnit> units, SizeModel sizes, IReadOnlyList<CompressionBudget> budgets,
        List<int> direct, Outcome?[] outcomes, List<string> shortData)
    {
        // Every unit's path on the original: the widths of size budgets, and in parallel mode the selections too.
        bool parallel = run.Mode == CalibrationMode.Parallel;
        bool sensitivity = options.Schedule == PruningSchedule.Sensitivity;
        IUnitPath[]? original = null;
        if (parallel || direct.Any(i => budgets[i].Kind != BudgetKind.Tolerance))
        {
            original = new IUnitPath[units.Count];
            // Sequential mode chooses selections from a new calibration and needs only the ratios ε_k here: the Gram
            // matrix gives the same ones (its pivoted Cholesky is Z's CPQR) with no TSQR, and for the ID no QR either.
            var survey = !parallel && options.Statistic is ActivationStatistic.RFactor or ActivationStatistic.Auto ? options with { Statistic = ActivationStatistic.Gram } : options;
            run.Survey(run.Original, step =>
            {
                Factor(run, step, units, sizes.Original, original, shortData, survey);
                // Keep only the ratios the widths come from (the sensitivity measurement below still needs selections).
                if (!parallel && !sensitivity)
                    for (int u = 0; u < units.Count; u++)
                        if (original[u] is { } p and not RatioCurve) original[u] = new RatioCurve(p);
            });
            if (sensitivity) run.Time(Stages.Measurement, () => Weigh(run, context, units, original, shortData));
        }
        var planned = new Dictionary<int, (int[] Widths, double Epsilon, bool Met, double? Latency)>();
        if (direct.Any(i => budgets[i].Kind == BudgetKind.KeepLatency))
        {
            using var probe = options.LatencyProbe?.Invoke(run.Original, run.Calibration, run.Job.Runtime)
                ?? new LatencyProbe(run.Original, run.Calibration, run.Job.Runtime);
            foreach (int i in direct.Where(i => budgets[i].Kind == BudgetKind.KeepLatency))
                planned[i] = BisectLatency(run, context, budgets[i], units, original!, probe);
        }
        foreach (int i in direct.Where(i => budgets[i].Kind is BudgetKind.KeepMacs or BudgetKind.KeepParameters))
        {
            var (w, e, met) = Bisect(budgets[i], units, sizes, original!);
            planned[i] = (w, e, met, null);
        }

        var models = direct.Select(_ => run.Copy()).ToList();
        var widths = direct.Select(i => planned.TryGetValue(i, out var p) ? p.Widths : new int[units.Count]).ToArray();
        var choices = direct.Select(_ => new UnitChoice?[units.Count]).ToArray();
        var edits = direct.Select(_ => units.Select(_ => new List<string>()).ToArray()).ToArray();
        run.Pass(models, step =>
        {
            var here = Enumerable.Range(0, units.Count).Where(u => step.Holds(units[u].Producers[0])).ToList();
            if (here.Count == 0) return;
            var paths = new IUnitPath[units.Count];
            if (parallel) foreach (int u in here) paths[u] = original![u];
            else Factor(run, step, [.. here.Select(u => units[u])], [.. here.Select(u => sizes.Original[u])], paths, here, shortData);
            foreach (var target in step.Targets)
            {
                int t = target.Index;
                var budget = budgets[direct[t]];
                foreach (int u in here)
                {
                    int w = budget.Kind == BudgetKind.Tolerance ? Width(units[u], paths[u], budget.Value) : widths[t][u];
                    widths[t][u] = w;
                    if (w >= units[u].Width) continue;
                    var choice = run.Time(Stages.Decomposition, () => paths[u].Choose(w));
                    run.Time(Stages.Rewrite, () =>
                        edits[t][u].AddRange(units[u].Plan(context with { Model = target.Model }, units[u].Width, choice.Selection).Apply(target.Model)));
                    choices[t][u] = choice.Folded();
                }
            }
        });
        for (int t = 0; t < direct.Count; t++)
        {
            var budget = budgets[direct[t]];
            var plan = planned.GetValueOrDefault(direct[t]);
            outcomes[direct[t]] = new Outcome(budget, models[t], widths[t])
            {
                Choices = choices[t],
                Kept = [.. choices[t].Select(c => c?.Selection.Kept)],
                Edits = [.. edits[t]],
                Tolerance = budget.Kind == BudgetKind.Tolerance ? budget.Value : plan.Epsilon,
                Met = budget.Kind == BudgetKind.Tolerance || plan.Met,
                Latency = plan.Latency,
            };
        }
    }

    /// <summary>
    /// Replaces every path by its <see cref="SensitivityCurve"/>: for each tolerance of the grid, the unit alone is pruned on a
    /// copy of the original at that tolerance's width and KL(original ‖ copy) measured on the calibration data.
    /// </summary>
    private void Weigh(CompressionRun run, PruningContext context, List<PruningUnit> units, IUnitPath[] paths, List<string> warnings)
    {
        var objective = CalibrationObjective.Create(run, null, warnings, divergence: true);
        bool parallel = run.Mode == CalibrationMode.Parallel;
        for (int u = 0; u < units.Count; u++)
        {
            var unit = units[u];
            var measured = new List<(double, double)>();
            foreach (int k in options.SensitivityGrid.Select(e => Width(unit, paths[u], e)).Where(k => k < unit.Width).Distinct())
            {
                run.CancellationToken.ThrowIfCancellationRequested();
                run.Report(Stages.Measurement, u, units.Count, $"{unit.Name} alone at {unit.Reported(k)}");
                var model = run.Original.Clone();
                var choice = run.Time(Stages.Decomposition, () => paths[u].Choose(k));
                run.Time(Stages.Rewrite, () => unit.Plan(context with { Model = model }, unit.Width, choice.Selection).Apply(model));
                measured.Add((paths[u].Ratio(k), objective.Measure(model)));
            }
            paths[u] = new SensitivityCurve(parallel ? paths[u] : new RatioCurve(paths[u]), measured);
        }
        run.Report(Stages.Measurement, units.Count, units.Count);
    }

    /// <summary>The paths of the units of <paramref name="step"/>'s segment, from one calibration of it, into <paramref name="paths"/>.</summary>
    private void Factor(CompressionRun run, SegmentStep step, List<PruningUnit> units, IReadOnlyList<int> widths, IUnitPath[] paths, List<string> shortData,
        PruningOptions? statisticOptions = null)
    {
        var here = Enumerable.Range(0, units.Count).Where(u => step.Holds(units[u].Producers[0])).ToList();
        if (here.Count > 0) Factor(run, step, [.. here.Select(u => units[u])], [.. here.Select(u => widths[u])], paths, here, shortData, statisticOptions);
    }

    /// <summary>Factors <paramref name="units"/> (held by the step) into <paramref name="paths"/> at <paramref name="slots"/>, with <paramref name="statisticOptions"/>'s activation statistic (default: the method's options).</summary>
    private void Factor(CompressionRun run, SegmentStep step, List<PruningUnit> units, int[] widths, IUnitPath[] paths, List<int> slots, List<string> shortData,
        PruningOptions? statisticOptions = null)
    {
        var factors = UnitFactors.Collect(step, run.Structure, units, widths, statisticOptions ?? options, run.Seed);
        for (int j = 0; j < factors.Count; j++)
        {
            var f = factors[j];
            run.Report(Stages.Decomposition, slots[j], paths.Length, f.Unit.Name);
            paths[slots[j]] = run.Time(Stages.Decomposition, () => rank(f));
            if (f.Rows < f.Columns)
            {
                string warning = $"'{f.Unit.Name}' saw {f.Rows} activation rows for {f.Columns} columns: its calibrated rank is at most {f.Rows}, so the ID drops units "
                    + "the data cannot tell apart; calibrate on more samples.";
                lock (shortData) if (!shortData.Contains(warning)) shortData.Add(warning);
            }
        }
    }

    /// <summary>The output error of every unit's consumers in <paramref name="o"/>'s model against the original, on the calibration data.</summary>
    private static double[] MeasureErrors(CompressionRun run, List<PruningUnit> units, Outcome o)
    {
        var groups = units.Select(u => (IReadOnlyList<string>)[.. u.Consumers.Select(c => ConsumerValue(run.Structure, c))]).ToList();
        var errors = new OutputErrorStatistic([.. groups.SelectMany(g => g).Distinct(StringComparer.Ordinal)], Narrowed(run.Structure, units, o));
        run.Compare(run.Original, o.Model, [errors]);
        var sums = errors.Finish();
        return [.. groups.Select(sums.Relative)];
    }

    private bool Scaled(PruningUnit unit) => options.Scaling == ColumnScaling.On || (options.Scaling == ColumnScaling.Auto && unit.Transformer);

    private static string ScheduleName(PruningSchedule s) => s switch
    {
        PruningSchedule.Greedy => "greedy",
        PruningSchedule.Sensitivity => "sensitivity",
        _ => "bisection",
    };

    private static string Name(ActivationStatistic s) => s switch
    {
        ActivationStatistic.Gram => "gram",
        ActivationStatistic.Sketch => "sketch",
        ActivationStatistic.Auto => "auto",
        _ => "rfactor",
    };

    private int MinWidth(PruningUnit unit) => Math.Min(options.MinimumWidth, unit.Width);

    /// <summary>k(ε) of one unit: the fewest units with ε_k ≤ ε, at least the minimum width, rounded up to the alignment.</summary>
    private int Width(PruningUnit unit, IUnitPath path, double epsilon)
    {
        int k = 0;
        while (k < path.MaxKeep && path.Ratio(k) > epsilon) k++;
        k = Math.Clamp(k, MinWidth(unit), unit.Width);
        return unit.Kind == UnitKind.Heads ? k : HardwareAlignment.RoundUp(k, unit.Width, options.Align);
    }

    /// <summary>k(ε) for every unit.</summary>
    private int[] Widths(IReadOnlyList<PruningUnit> units, IReadOnlyList<IUnitPath> paths, double epsilon) =>
        [.. units.Select((u, i) => Width(u, paths[i], epsilon))];

    /// <summary>The smallest global ε whose widths fit a size budget, and those widths (the smallest widths when none fits).</summary>
    private (int[] Widths, double Epsilon, bool Met) Bisect(CompressionBudget budget, List<PruningUnit> units, SizeModel sizes, IReadOnlyList<IUnitPath> paths)
    {
        var eps = Breakpoints(units, paths);
        var (at, met) = Bisection.First(eps.Length, i => sizes.Fraction(budget, Widths(units, paths, eps[i])) <= budget.Value + 1e-12);
        var widths = Widths(units, paths, eps[at]);
        if (met) Fill(budget, units, sizes, paths, widths);
        return (widths, eps[at], met);
    }

    /// <summary>Every ε at which some unit's width k(ε) changes, ascending, with 0.</summary>
    private double[] Breakpoints(List<PruningUnit> units, IReadOnlyList<IUnitPath> paths)
    {
        var candidates = new SortedSet<double> { 0 };
        for (int u = 0; u < units.Count; u++)
            for (int k = MinWidth(units[u]); k < paths[u].MaxKeep; k++) candidates.Add(paths[u].Ratio(k));
        return [.. candidates];
    }

    /// <summary>
    /// The smallest global ε whose model runs within a latency budget, by bisection over ε's breakpoints like
    /// <see cref="Bisect"/>, each candidate timed against the original on this machine (<see cref="LatencyProbe"/>). A
    /// candidate keeps the first k(ε) units of every unit, uncorrected: latency depends on the widths, not on which units
    /// are kept. Nothing is filled afterwards — only a measurement could say what the remainder buys.
    /// </summary>
    private (int[] Widths, double Epsilon, bool Met, double? Latency) BisectLatency(CompressionRun run, PruningContext context, CompressionBudget budget,
        List<PruningUnit> units, IReadOnlyList<IUnitPath> paths, ILatencyProbe probe)
    {
        var eps = Breakpoints(units, paths);
        var measured = new Dictionary<int, double>();
        double Latency(int i)
        {
            if (measured.TryGetValue(i, out double ratio)) return ratio;
            var widths = Widths(units, paths, eps[i]);
            var model = run.Original.Clone();
            run.Time(Stages.Rewrite, () =>
            {
                for (int u = 0; u < units.Count; u++)
                    if (widths[u] < units[u].Width)
                        units[u].Plan(context with { Model = model }, units[u].Width, new UnitSelection([.. Enumerable.Range(0, widths[u])], null)).Apply(model);
            });
            run.Report(Stages.Measurement, probe.Calls, null, $"{budget}: latency at ε = {eps[i]:G3}");
            ratio = run.Time(Stages.Measurement, () => probe.Ratio(model, run.CancellationToken));
            measured[i] = ratio;
            return ratio;
        }
        var (at, met) = Bisection.First(eps.Length, i => Latency(i) <= budget.Value);
        return (Widths(units, paths, eps[at]), eps[at], met, Latency(at));
    }

    /// <summary>
    /// Aligned widths move in steps of the alignment, so ε's breakpoints can leave much of the budget unspent: one step at a
    /// time, the unit with the largest error at its width grows by one step (of the alignment where it is aligned) while
    /// the budget still holds.
    /// </summary>
    private void Fill(CompressionBudget budget, List<PruningUnit> units, SizeModel sizes, IReadOnlyList<IUnitPath> paths, int[] widths)
    {
        while (true)
        {
            int best = -1, next = 0;
            double worst = 0;
            for (int u = 0; u < units.Count; u++)
            {
                if (widths[u] >= units[u].Width || widths[u] >= paths[u].MaxKeep) continue;
                bool aligned = units[u].Kind != UnitKind.Heads && HardwareAlignment.Applies(units[u].Width, options.Align);
                int grown = Math.Min(units[u].Width, widths[u] + (aligned ? options.Align : 1));
                double error = paths[u].Ratio(widths[u]);
                if (error <= worst || !Fits(budget, sizes, widths, grown, u)) continue;
                (best, next, worst) = (u, grown, error);
            }
            if (best < 0) return;
            widths[best] = next;
        }
    }

    /// <summary>The reference greedy schedule, one model per budget (budgets in decreasing size).</summary>
    private List<Outcome> Greedy(CompressionRun run, List<CompressionBudget> budgets, PruningContext context, List<PruningUnit> units, SizeModel sizes)
    {
        var current = run.Copy();
        var widths = sizes.Original.ToArray();
        var kept = units.Select(u => Enumerable.Range(0, u.Width).ToArray()).ToArray();
        var last = new UnitChoice?[units.Count];
        var edits = units.Select(_ => new List<string>()).ToArray();
        var outcomes = new List<Outcome>();
        int steps = 0;
        var ignored = new List<string>();
        foreach (var budget in budgets)
        {
            bool met = true;
            while (sizes.Fraction(budget, widths) > budget.Value + 1e-12)
            {
                run.CancellationToken.ThrowIfCancellationRequested();
                var paths = new IUnitPath[units.Count];
                run.Survey(current, step => Factor(run, step, units, widths, paths, ignored));
                int best = -1, bestK = 0;
                double bestScore = double.PositiveInfinity, now = sizes.Fraction(budget, widths);
                for (int u = 0; u < units.Count; u++)
                {
                    if (widths[u] <= MinWidth(units[u])) continue;
                    int k = Math.Clamp((int)Math.Floor(widths[u] * options.GreedyFactor), MinWidth(units[u]), widths[u] - 1);
                    var trial = (int[])widths.Clone();
                    trial[u] = k;
                    // A full step past the budget: shrink only as far as the budget needs, so the last step lands on it.
                    while (trial[u] < widths[u] - 1 && Fits(budget, sizes, trial, trial[u] + 1, u)) trial[u]++;
                    k = trial[u];
                    double saved = now - sizes.Fraction(budget, trial);
                    if (saved <= 0) continue;
                    double score = paths[u].Ratio(Math.Min(k, paths[u].MaxKeep)) / saved;
                    if (score < bestScore) { bestScore = score; best = u; bestK = k; }
                }
                if (best < 0) { met = false; break; }
                var choice = run.Time(Stages.Decomposition, () => paths[best].Choose(bestK));
                run.Time(Stages.Rewrite, () =>
                    edits[best].AddRange(units[best].Plan(context with { Model = current }, widths[best], choice.Selection).Apply(current)));
                kept[best] = [.. choice.Selection.Kept.Select(i => kept[best][i])];
                widths[best] = bestK;
                last[best] = choice.Folded();
                steps++;
                run.Report(Stages.Rewrite, steps, null, $"{units[best].Name} → {units[best].Reported(bestK)}");
            }
            current.Validate(checkExternalData: false);
            outcomes.Add(new Outcome(budget, current.Clone(), (int[])widths.Clone())
            {
                Choices = (UnitChoice?[])last.Clone(),
                Kept = [.. kept.Select((k, u) => widths[u] < units[u].Width ? (int[])k.Clone() : null)],
                Edits = [.. edits.Select(e => new List<string>(e))],
                Met = met,
                Steps = steps,
            });
        }
        return outcomes;
    }

    /// <summary>Whether the widths with unit <paramref name="u"/> at <paramref name="k"/> meet the budget.</summary>
    private static bool Fits(CompressionBudget budget, SizeModel sizes, int[] widths, int k, int u)
    {
        int old = widths[u];
        widths[u] = k;
        bool fits = sizes.Fraction(budget, widths) <= budget.Value + 1e-12;
        widths[u] = old;
        return fits;
    }

    /// <summary>The value whose error measures a consumer: a linear site's product (before a separate bias), a convolution's output.</summary>
    private static string ConsumerValue(ModelStructure structure, string site) =>
        structure.LinearSites.FirstOrDefault(s => s.Name == site)?.ProductOutput ?? structure.ConvSites.First(s => s.Name == site).Output;

    /// <summary>Consumer values that are narrower in the outcome because the consumer also produces a pruned unit: axis and kept indices.</summary>
    private static IReadOnlyDictionary<string, (int Axis, int[] Kept)> Narrowed(ModelStructure structure, List<PruningUnit> units, Outcome o)
    {
        var narrowed = new Dictionary<string, (int, int[])>(StringComparer.Ordinal);
        for (int u = 0; u < units.Count; u++)
        {
            if (o.Kept[u] is not { } kept || units[u].Chain is null) continue;
            foreach (var producer in units[u].Producers)
            {
                bool conv = structure.ConvSites.Any(c => c.Name == producer);
                narrowed[ConsumerValue(structure, producer)] = (conv ? 1 : -1, kept);
            }
        }
        return narrowed;
    }

    /// <summary>Topological position of every node (by report name), to list sites in graph order.</summary>
    private static Dictionary<string, int> Positions(PruningContext context)
    {
        var order = context.Model.Graph.TopologicalOrder();
        var positions = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < order.Count; i++) positions.TryAdd(GraphQuery.NameOf(order[i]), i);
        foreach (var block in context.Structure.Blocks)
            if (block.Attention is { } a && (a.Q ?? a.FusedQkv) is { } q && positions.TryGetValue(q, out int p)) positions[$"block {block.Index} attention"] = p;
        return positions;
    }
}
