using System.Globalization;
using Spectre.Console;
using Whittle.Compression;
using Whittle.Evaluation;

namespace Whittle.Cli.Reports;

/// <summary>One compressed model as a table row.</summary>
/// <param name="Model">The original model's name, or null where a table has one model.</param>
/// <param name="Method">The method.</param>
/// <param name="Setting">The budget or setting it was made for.</param>
/// <param name="File">The file written, or null to leave the column out.</param>
/// <param name="Report">What the method did.</param>
/// <param name="Evaluation">Its comparison with the original, or null.</param>
internal sealed record ResultRow(string? Model, string Method, string Setting, string? File, CompressionReport Report, EvaluationReport? Evaluation);

/// <summary>
/// The comparison table of <c>whittle compress</c> and <c>whittle demo</c>: size kept (parameters, MACs, stored bytes), quality (accuracy for a classifier,
/// perplexity for a language model, the original's in brackets), agreement and KL with the original, latency ratio, time
/// and peak working set of the compression.
/// </summary>
internal static class ResultsTable
{
    /// <summary>Builds the table; columns without a value in any row (model, file, evaluation) are left out, and so is the
    /// method column when every row has the same (the title says it).</summary>
    public static Table Create(string title, IReadOnlyList<ResultRow> rows)
    {
        bool models = rows.Any(r => r.Model is not null), files = rows.Any(r => r.File is not null);
        bool methods = rows.Select(r => r.Method).Distinct().Count() > 1;
        bool evaluated = rows.Any(r => r.Evaluation is not null);
        var tasks = rows.Select(r => r.Evaluation?.Task.Task).OfType<ModelTask>().Distinct().ToList();
        string quality = tasks switch
        {
            [ModelTask.LanguageModel] => "perplexity (orig.)",
            [ModelTask.Classifier] => "accuracy (orig.)",
            [ModelTask.Embedding] => "cosine mean / p5",
            _ => "accuracy / ppl (orig.)",
        };

        var table = new Table().Title(Markup.Escape(title));
        if (models) table.AddColumn("model");
        if (methods) table.AddColumn("method");
        table.AddColumn("budget");
        if (files) table.AddColumn("file");
        table.AddColumn(Right("params kept")).AddColumn(Right("of compressible")).AddColumn(Right("MACs kept")).AddColumn(Right("bytes kept"));
        if (evaluated) table.AddColumn(Right(quality)).AddColumn(Right("agreement")).AddColumn(Right("KL")).AddColumn(Right("latency"));
        table.AddColumn(Right("compress s")).AddColumn(Right("peak GiB"));

        foreach (var r in rows)
        {
            var cells = new List<string>();
            if (models) cells.Add(r.Model ?? "");
            if (methods) cells.Add(r.Method);
            cells.Add(r.Setting);
            if (files) cells.Add(r.File ?? "");
            cells.Add(Fraction(r.Report.After.Parameters, r.Report.Before.Parameters));
            cells.Add(r.Report.Compressible is { } c ? Fraction(c.ParametersAfter, c.ParametersBefore) : "-");
            cells.Add(Fraction(r.Report.After.MacsPerExample, r.Report.Before.MacsPerExample));
            cells.Add(Fraction(r.Report.After.StoredBytes, r.Report.Before.StoredBytes));
            if (evaluated)
            {
                var e = r.Evaluation;
                cells.Add(e is null ? "-" : Quality(e));
                cells.Add(Percent(e?.Comparison?.Agreement));
                cells.Add(e?.Comparison?.MeanKl?.ToString("G3", CultureInfo.InvariantCulture) ?? "-");
                cells.Add(LatencyRatio(e) is { } ratio ? ratio.ToString("F2", CultureInfo.InvariantCulture) + "×" : "-");
            }
            cells.Add(r.Report.Timings.Sum(t => t.Seconds).ToString("F1", CultureInfo.InvariantCulture));
            cells.Add(r.Report.PeakWorkingSetBytes > 0 ? (r.Report.PeakWorkingSetBytes / (double)(1L << 30)).ToString("F2", CultureInfo.InvariantCulture) : "-");
            table.AddRow([.. cells.Select(Markup.Escape)]);
        }
        return table;
    }

    /// <summary>
    /// <paramref name="console"/>, at least 200 columns wide when the output is redirected (Spectre gives a pipe or a file
    /// 80 columns, which wraps every cell of a results table).
    /// </summary>
    public static IAnsiConsole Widened(IAnsiConsole console)
    {
        if (Console.IsOutputRedirected) console.Profile.Width = Math.Max(console.Profile.Width, 200);
        return console;
    }

    /// <summary>Median batch-1 latency of the model over the original's, or null when either was not timed.</summary>
    public static double? LatencyRatio(EvaluationReport? e) =>
        e is { Model.Latency.Count: > 0, Reference.Latency.Count: > 0 }
            ? e.Model.Latency[0].MedianMilliseconds / e.Reference.Latency[0].MedianMilliseconds
            : null;

    /// <summary><paramref name="part"/>/<paramref name="whole"/> to three decimals, "-" when the whole is 0.</summary>
    public static string Fraction(double part, double whole) => whole > 0 ? (part / whole).ToString("F3", CultureInfo.InvariantCulture) : "-";

    private static string Quality(EvaluationReport e) => e.Task.Task switch
    {
        ModelTask.LanguageModel => $"{Number(e.Model.Perplexity)} ({Number(e.Reference?.Perplexity)})",
        ModelTask.Embedding => e.Comparison?.Embedding is { } c
            ? $"{c.Mean.ToString("F4", CultureInfo.InvariantCulture)} / {c.Percentile5.ToString("F4", CultureInfo.InvariantCulture)}" : "-",
        _ => $"{Percent(e.Model.Accuracy)} ({Percent(e.Reference?.Accuracy)})",
    };

    private static string Number(double? v) => v?.ToString("F3", CultureInfo.InvariantCulture) ?? "-";

    private static string Percent(double? v) => v is { } x ? (100 * x).ToString("F2", CultureInfo.InvariantCulture) + " %" : "-";

    private static TableColumn Right(string header) => new TableColumn(header).RightAligned();
}
