using Whittle.IO;

namespace Whittle.Cli.Reports;

/// <summary>One line of a chart: a name and its (x, y) points.</summary>
/// <param name="Name">Legend text (a method).</param>
/// <param name="Points">Points, drawn in x order.</param>
internal sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>Quality against size: one line per method, written as a PNG (ScottPlot).</summary>
internal static class QualityChart
{
    /// <summary>Draws <paramref name="series"/> and writes the PNG to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, string title, string xLabel, string yLabel, IReadOnlyList<ChartSeries> series, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(series);
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < series.Count; i++)
        {
            var points = series[i].Points.OrderBy(p => p.X).ToArray();
            if (points.Length == 0) continue;
            var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray(), palette.GetColor(i));
            line.LegendText = series[i].Name;
            line.MarkerSize = 7;
            line.LineWidth = 2;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        byte[] png = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(png));
    }
}
