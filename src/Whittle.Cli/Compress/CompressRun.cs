using Spectre.Console;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Cli.Compress;

/// <summary>One compressed model of a run: its budget, file, what the method did, and (with evaluation data) how it compares.</summary>
/// <param name="Budget">The budget it was made for.</param>
/// <param name="File">Where it was written.</param>
/// <param name="Report">The method's report, with the writing time appended.</param>
/// <param name="Evaluation">Its evaluation against the original on held-out data, or null.</param>
internal sealed record CompressedModel(CompressionBudget Budget, string File, CompressionReport Report, EvaluationReport? Evaluation);

/// <summary>
/// Runs one method over one or more budgets, writes each model (atomically), and evaluates each against the original
/// on held-out data when given — the shared core of <c>whittle compress</c> and <c>whittle demo</c>.
/// </summary>
internal static class CompressRun
{
    /// <summary>The file for <paramref name="budget"/>: <paramref name="output"/> itself for a single budget, else
    /// <c>NAME.LABEL.onnx</c> beside it (<c>model.macs-0.5.onnx</c>).</summary>
    public static string OutputPath(string output, CompressionBudget budget, bool several)
    {
        if (!several) return output;
        string dir = Path.GetDirectoryName(output) ?? ".";
        string stem = Path.GetFileNameWithoutExtension(output);
        return Path.Combine(dir, $"{stem}.{budget.Label}{Path.GetExtension(output)}");
    }

    /// <summary>Compresses, writes and evaluates; progress goes to <paramref name="console"/>.</summary>
    /// <param name="console">Where progress bars are drawn.</param>
    /// <param name="method">The method.</param>
    /// <param name="job">The model and calibration data.</param>
    /// <param name="budgets">At least one budget.</param>
    /// <param name="output">The output file (see <see cref="OutputPath"/>).</param>
    /// <param name="evaluation">Held-out batches to evaluate every model on, or null.</param>
    /// <param name="evaluationOptions">How to evaluate.</param>
    /// <param name="cancellationToken">Stops between stages; files already written stay, none is half-written.</param>
    public static IReadOnlyList<CompressedModel> Run(IAnsiConsole console, ICompressionMethod method, CompressionJob job,
        IReadOnlyList<CompressionBudget> budgets, string output, BatchSet? evaluation, EvaluationOptions evaluationOptions,
        CancellationToken cancellationToken = default)
    {
        var done = new List<CompressedModel>();
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                ProgressTask Task(string name, double max)
                {
                    if (!tasks.TryGetValue(name, out var t)) tasks[name] = t = ctx.AddTask(Markup.Escape(name), maxValue: Math.Max(max, 1));
                    return t;
                }
                var progress = new SyncProgress<CompressionProgress>(p =>
                {
                    var t = Task($"{method.Name}: {p.Stage}", p.Total ?? 1);
                    if (p.Total is { } total) t.MaxValue = Math.Max(total, 1);
                    t.Value = p.Done;
                    if (p.Detail is not null) t.Description = Markup.Escape($"{method.Name}: {p.Stage} ({p.Detail})");
                });
                var results = method.Compress(job with { Progress = progress }, budgets, cancellationToken);
                try
                {
                    foreach (var t in tasks.Values) t.Value = t.MaxValue;
                    if (results.Count != budgets.Count)
                        throw new InvalidOperationException($"Method '{method.Name}' returned {results.Count} models for {budgets.Count} budgets.");
                    for (int i = 0; i < results.Count; i++)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var budget = budgets[i];
                        string file = OutputPath(output, budget, budgets.Count > 1);
                        var write = Task($"write {Path.GetFileName(file)}", 1);
                        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
                        using var clock = new StageClock();
                        clock.Time(Stages.Writing, () => results[i].Model.Save(file));
                        var report = results[i].Report.WithTiming(clock.Timings[0]);
                        write.Value = 1;

                        EvaluationReport? figures = null;
                        if (evaluation is not null)
                        {
                            var eval = Task($"evaluate {Path.GetFileName(file)}", 1);
                            var saved = OnnxModel.Load(file);
                            figures = Evaluator.Evaluate(saved, job.Model, evaluation, evaluationOptions,
                                new SyncProgress<EvaluationProgress>(p => { if (p.Stage == "quality") { eval.MaxValue = Math.Max(p.Total, 1); eval.Value = p.Done; } }),
                                cancellationToken);
                            eval.Value = eval.MaxValue;
                        }
                        done.Add(new CompressedModel(budget, file, report, figures));
                    }
                }
                finally
                {
                    // A result not written (an error, Ctrl-C) leaves no staging folder behind; written ones are done already.
                    foreach (var r in results) r.Model.Staging?.Dispose();
                }
            });
        return done;
    }

    /// <summary>Reports on the calling thread (<see cref="Progress{T}"/> would post to the thread pool and race the bars).</summary>
    internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
