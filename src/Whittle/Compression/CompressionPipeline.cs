// Two methods one after the other (`compress --method id --quantize int4`): every model the first makes for a budget is
// compressed again by the second with its own default, on the same calibration data, in a run of its own (the structure
// of the compressed model is analysed afresh). One report per budget covers both: the original's size before, the final
// size after, the sites of both stages and the timings of both.

namespace Whittle.Compression;

/// <summary>What each stage of a <see cref="CompressionPipeline"/> found (<see cref="CompressionReport.Details"/>).</summary>
/// <param name="First">The first method's details.</param>
/// <param name="Then">The second method's details.</param>
/// <param name="FirstAfter">The model's size between the two stages.</param>
public sealed record PipelineDetails(object? First, object? Then, Analysis.ModelCost FirstAfter);

/// <summary><paramref name="first"/>, then <paramref name="then"/> at its method default (see the file header).</summary>
public sealed class CompressionPipeline(ICompressionMethod first, ICompressionMethod then) : ICompressionMethod
{
    /// <summary>The first stage: it takes the budgets.</summary>
    public ICompressionMethod First { get; } = first ?? throw new ArgumentNullException(nameof(first));

    /// <summary>The last stage: run at its own default on each of the first stage's models.</summary>
    public ICompressionMethod Then { get; } = then ?? throw new ArgumentNullException(nameof(then));

    /// <inheritdoc/>
    public string Name => $"{First.Name}+{Then.Name}";

    /// <inheritdoc/>
    public BudgetKinds Budgets => First.Budgets;

    /// <inheritdoc/>
    public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(budgets);
        if (!Then.Budgets.HasFlag(BudgetKinds.MethodDefault))
            throw new ArgumentException($"{Then.Name} cannot be a last stage: it needs a budget of its own.", nameof(budgets));
        var firsts = First.Compress(run, budgets);
        var results = new List<CompressionResult>();
        try
        {
            foreach (var r in firsts) results.Add(Next(run, r));
        }
        catch
        {
            // Nobody will save these: their staging folders go now.
            foreach (var r in firsts.Concat(results)) r.Model.Staging?.Dispose();
            throw;
        }
        return results;
    }

    private CompressionResult Next(CompressionRun run, CompressionResult r)
    {
        run.CancellationToken.ThrowIfCancellationRequested();
        var job = run.Job with { Model = r.Model, Structure = null };
        var second = Then.Compress(job, [CompressionBudget.MethodDefault], run.CancellationToken)[0];
        // The second stage copied what it needs into its own staging folder; the intermediate model is not saved.
        r.Model.Staging?.Dispose();
        var a = r.Report;
        var b = second.Report;
        var report = new CompressionReport(Name, a.Budget, [.. a.Sites, .. b.Sites], a.Before, b.After, [.. a.Timings, .. b.Timings])
        {
            Details = new PipelineDetails(a.Details, b.Details, a.After),
            Calibration = a.Calibration,
            Warnings = [.. a.Warnings.Concat(b.Warnings).Distinct()],
            Compressible = a.Compressible,
        };
        return new CompressionResult(second.Model, report);
    }
}
