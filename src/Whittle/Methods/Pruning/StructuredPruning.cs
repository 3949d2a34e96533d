// The structured-pruning run shared by the interpolative decomposition and its magnitude baseline; only the
// ranking of a unit's columns (IUnitPath) differs between them.
//
//   1. Structure: probe the model on the first calibration batch, find the units (channel chains, attention
//      blocks) and the sites left alone with reasons.
//   2. Bisection schedule (default) and tolerance budgets: one calibration pass for every unit, one factorization
//      per unit (its path), then per budget one global tolerance ε — every unit keeps k(ε) = min{k : ε_k ≤ ε} —
//      the smallest ε whose model fits the budget (bisection over the candidate ε, the breakpoints of k(ε)),
//      and the surgery on a copy of the model.
//   3. Greedy schedule: repeatedly shrink the unit with the smallest ε_k per unit of budget saved by the greedy
//      factor, recalibrating the pruned network after every step; a copy is kept when each budget is met.
//   4. Optionally the output error of every unit's consumers, measured in ONNX Runtime on the calibration data.

using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Evaluation;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;

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
    }

    public IReadOnlyList<CompressionResult> Run(CompressionJob job, IReadOnlyList<CompressionBudget> budgets, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(budgets);
        options.Validate();
        if (budgets.Count == 0) ThrowHelper.Argument(nameof(budgets), $"{method}: give at least one budget (keep MACs, keep parameters or a tolerance).");
        if (budgets.FirstOrDefault(b => b.Kind == BudgetKind.MethodDefault) is not null)
            ThrowHelper.Argument(nameof(budgets), $"{method} needs a budget: --keep-macs, --keep-params or --tolerance.");
        
        var clock = new StageClock();
        var model = job.Model;
        var (context, units, skipped) = clock.Time(Stages.Calibration, () =>
        {
            var first = job.Calibration[0];
            var probe = ShapeProbe.Run(model, first, job.Runtime);
            int batch = first.BatchSize;
            var structure = ModelStructure.Analyze(model, probe.Shapes, batch);
            var ctx = new PruningContext(model, structure, probe.Shapes);
            var (u, s) = PruningUnits.Find(ctx, options.Targets, correction);
            return (ctx, u, s);
        });
        if (units.Count == 0)
            throw new ArgumentException($"{method}: {OnnxModelException.Describe(model.FilePath)} has nothing prunable for targets {options.Targets}"
                + (skipped.Count > 0 ? $"; e.g. '{skipped[0].Site}': {skipped[0].Skipped}" : "."), nameof(job));
        var sizes = new SizeModel(model, context.Structure, units);
        var example = job.Calibration.FirstExample();
        var before = clock.Time(Stages.Measurement, () => ModelCost.Measure(model, example, job.Runtime));

        long samples = 0;
        var shortData = new List<string>();
        var outcomes = new Outcome?[budgets.Count];
        bool greedy = options.Schedule == PruningSchedule.Greedy;
        var direct = Enumerable.Range(0, budgets.Count).Where(i => !greedy || budgets[i].Kind == BudgetKind.Tolerance).ToList();
        if (direct.Count > 0)
        {
            var factors = clock.Time(Stages.Calibration, () =>
                UnitFactors.Collect(model, context.Structure, units, sizes.Original, options, job, cancellationToken, out samples));
            var paths = clock.Time(Stages.Decomposition, () => Paths(factors, job));
            foreach (var f in factors.Where(f => f.Rows < f.A.Cols))
                shortData.Add($"'{f.Unit.Name}' saw {f.Rows} activation rows for {f.A.Cols} columns: its calibrated rank is at most {f.Rows}, so the ID drops units "
                    + "the data cannot tell apart; calibrate on more samples.");
            foreach (int i in direct)
            {
                cancellationToken.ThrowIfCancellationRequested();
                outcomes[i] = Bisect(budgets[i], model, context, units, sizes, paths, clock);
            }
        }
        if (greedy)
        {
            var order = Enumerable.Range(0, budgets.Count).Where(i => budgets[i].Kind != BudgetKind.Tolerance)
                .OrderByDescending(i => budgets[i].Value).ToList();
            if (order.Count > 0)
            {
                var made = Greedy([.. order.Select(i => budgets[i])], job, context, units, sizes, clock, cancellationToken, ref samples);
                for (int j = 0; j < order.Count; j++) outcomes[order[j]] = made[j];
            }
        }

        double[][]? measured = null;
        if (options.MeasureErrors)
        {
            var groups = units.Select(u => (IReadOnlyList<string>)[.. u.Consumers.Select(c => ConsumerValue(context.Structure, c))]).ToList();
            var narrowed = outcomes.Select(o => Narrowed(context.Structure, units, o!)).ToList();
            measured = clock.Time(Stages.Measurement, () =>
                OutputErrors.Measure(model, [.. outcomes.Select(o => o!.Model)], groups, narrowed, job.Calibration, job.Runtime, cancellationToken));
        }
        var positions = Positions(context);
        var results = new List<CompressionResult>(budgets.Count);
        for (int i = 0; i < budgets.Count; i++)
        {
            var o = outcomes[i]!;
            var after = clock.Time(Stages.Measurement, () => ModelCost.Measure(o.Model, example, job.Runtime));
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
            var warnings = new List<string>(context.Structure.Warnings);
            if (correction) warnings.AddRange(shortData);
            if (!o.Met) warnings.Add($"{o.Budget} cannot be met: the smallest widths keep {sizes.Fraction(o.Budget.Kind, o.Widths):0.####} of the original.");
            if (options.Statistic == ActivationStatistic.Sketch) warnings.Add("Error estimates refer to the row sketch of each activation, not to the activation itself.");
            var runReport = new CompressionReport(method, o.Budget, [.. sites.OrderBy(s => s.Position).Select(s => s.Report)], before, after, clock.Timings)
            {
                Details = new PruningRunDetails(greedy && o.Budget.Kind != BudgetKind.Tolerance ? "greedy" : "bisection", Name(options.Statistic), o.Tolerance, o.Met, o.Steps, samples),
                Warnings = warnings,
            };
            results.Add(new CompressionResult(o.Model, runReport));
        }
        return results;
    }

    private bool Scaled(PruningUnit unit) => options.Scaling == ColumnScaling.On || (options.Scaling == ColumnScaling.Auto && unit.Transformer);

    private static string Name(ActivationStatistic s) => s switch { ActivationStatistic.Gram => "gram", ActivationStatistic.Sketch => "sketch", _ => "rfactor" };

    private List<IUnitPath> Paths(List<UnitFactor> factors, CompressionJob job)
    {
        var paths = new List<IUnitPath>(factors.Count);
        for (int u = 0; u < factors.Count; u++)
        {
            job.Progress?.Report(new CompressionProgress(Stages.Decomposition, u, factors.Count, factors[u].Unit.Name));
            paths.Add(rank(factors[u]));
        }
        return paths;
    }

    private int MinWidth(PruningUnit unit) => Math.Min(options.MinimumWidth, unit.Width);

    /// <summary>k(ε) for every unit: the fewest units with ε_k ≤ ε, at least the minimum width.</summary>
    private int[] Widths(IReadOnlyList<PruningUnit> units, IReadOnlyList<IUnitPath> paths, double epsilon)
    {
        var widths = new int[units.Count];
        for (int u = 0; u < units.Count; u++)
        {
            var p = paths[u];
            int k = 0;
            while (k < p.MaxKeep && p.Ratio(k) > epsilon) k++;
            widths[u] = Math.Clamp(k, MinWidth(units[u]), units[u].Width);
        }
        return widths;
    }

    /// <summary>The tolerance budget's widths, or the smallest global ε whose widths fit a size budget.</summary>
    private Outcome Bisect(CompressionBudget budget, OnnxModel model, PruningContext context, List<PruningUnit> units, SizeModel sizes,
        List<IUnitPath> paths, StageClock clock)
    {
        double epsilon;
        bool met = true;
        if (budget.Kind == BudgetKind.Tolerance) epsilon = budget.Value;
        else
        {
            var candidates = new SortedSet<double> { 0 };
            for (int u = 0; u < units.Count; u++)
                for (int k = MinWidth(units[u]); k < paths[u].MaxKeep; k++) candidates.Add(paths[u].Ratio(k));
            var eps = candidates.ToArray();
            bool Fits(double e) => sizes.Fraction(budget.Kind, Widths(units, paths, e)) <= budget.Value + 1e-12;
            int lo = 0, hi = eps.Length - 1;
            if (!Fits(eps[hi])) { met = false; lo = hi; }
            while (lo < hi)
            {
                int mid = (lo + hi) / 2;
                if (Fits(eps[mid])) hi = mid;
                else lo = mid + 1;
            }
            epsilon = eps[lo];
        }
        var widths = Widths(units, paths, epsilon);
        var choices = clock.Time(Stages.Decomposition, () =>
            widths.Select((w, u) => w < units[u].Width ? paths[u].Choose(w) : null).ToArray());
        var pruned = OnnxModel.FromProto(model.Proto.Clone(), model.BaseDirectory);
        var edits = units.Select(_ => new List<string>()).ToArray();
        clock.Time(Stages.Rewrite, () =>
        {
            var target = context with { Model = pruned };
            for (int u = 0; u < units.Count; u++)
                if (choices[u] is { } c) edits[u].AddRange(units[u].Plan(target, units[u].Width, c.Selection).Apply(pruned));
            pruned.Validate(checkExternalData: false);
        });
        return new Outcome(budget, pruned, widths)
        {
            Choices = choices,
            Kept = [.. choices.Select(c => c?.Selection.Kept)],
            Edits = edits,
            Tolerance = epsilon,
            Met = met,
        };
    }

    /// <summary>The reference greedy schedule, one model per budget (budgets in decreasing size).</summary>
    private List<Outcome> Greedy(List<CompressionBudget> budgets, CompressionJob job, PruningContext context, List<PruningUnit> units, SizeModel sizes,
        StageClock clock, CancellationToken cancellationToken, ref long samples)
    {
        var current = OnnxModel.FromProto(job.Model.Proto.Clone(), job.Model.BaseDirectory);
        var widths = sizes.Original.ToArray();
        var kept = units.Select(u => Enumerable.Range(0, u.Width).ToArray()).ToArray();
        var last = new UnitChoice?[units.Count];
        var edits = units.Select(_ => new List<string>()).ToArray();
        var outcomes = new List<Outcome>();
        int steps = 0;
        long seen = samples;
        foreach (var budget in budgets)
        {
            bool met = true;
            while (sizes.Fraction(budget.Kind, widths) > budget.Value + 1e-12)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var factors = clock.Time(Stages.Calibration, () =>
                    UnitFactors.Collect(current, context.Structure, units, widths, options, job, cancellationToken, out seen));
                var paths = clock.Time(Stages.Decomposition, () => Paths(factors, job));
                int best = -1, bestK = 0;
                double bestScore = double.PositiveInfinity, now = sizes.Fraction(budget.Kind, widths);
                for (int u = 0; u < units.Count; u++)
                {
                    if (widths[u] <= MinWidth(units[u])) continue;
                    int k = Math.Clamp((int)Math.Floor(widths[u] * options.GreedyFactor), MinWidth(units[u]), widths[u] - 1);
                    var trial = (int[])widths.Clone();
                    trial[u] = k;
                    // A full step past the budget: shrink only as far as the budget needs, so the last step lands on it.
                    while (trial[u] < widths[u] - 1 && Fits(budget, sizes, trial, trial[u] + 1, u)) trial[u]++;
                    k = trial[u];
                    double saved = now - sizes.Fraction(budget.Kind, trial);
                    if (saved <= 0) continue;
                    double score = paths[u].Ratio(Math.Min(k, paths[u].MaxKeep)) / saved;
                    if (score < bestScore) { bestScore = score; best = u; bestK = k; }
                }
                if (best < 0) { met = false; break; }
                var choice = clock.Time(Stages.Decomposition, () => paths[best].Choose(bestK));
                clock.Time(Stages.Rewrite, () =>
                    edits[best].AddRange(units[best].Plan(context with { Model = current }, widths[best], choice.Selection).Apply(current)));
                kept[best] = [.. choice.Selection.Kept.Select(i => kept[best][i])];
                widths[best] = bestK;
                last[best] = choice;
                steps++;
                job.Progress?.Report(new CompressionProgress(Stages.Rewrite, steps, null, $"{units[best].Name} → {units[best].Reported(bestK)}"));
            }
            current.Validate(checkExternalData: false);
            outcomes.Add(new Outcome(budget, OnnxModel.FromProto(current.Proto.Clone(), current.BaseDirectory), (int[])widths.Clone())
            {
                Choices = (UnitChoice?[])last.Clone(),
                Kept = [.. kept.Select((k, u) => widths[u] < units[u].Width ? (int[])k.Clone() : null)],
                Edits = [.. edits.Select(e => new List<string>(e))],
                Met = met,
                Steps = steps,
            });
        }
        samples = Math.Max(samples, seen);
        return outcomes;
    }

    /// <summary>Whether the widths with unit <paramref name="u"/> at <paramref name="k"/> meet the budget.</summary>
    private static bool Fits(CompressionBudget budget, SizeModel sizes, int[] widths, int k, int u)
    {
        int old = widths[u];
        widths[u] = k;
        bool fits = sizes.Fraction(budget.Kind, widths) <= budget.Value + 1e-12;
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
