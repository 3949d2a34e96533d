using System.Globalization;
using Spectre.Console;
using Whittle.Analysis;

namespace Whittle.Cli.Commands;

/// <summary>Prints a <see cref="ModelStructure"/> as Spectre.Console tables (for <c>whittle inspect</c>).</summary>
internal static class StructureTables
{
    /// <summary>Prints every table; each shows at most <paramref name="maxRows"/> rows (0: all) and counts the rest.</summary>
    public static void Print(IAnsiConsole console, ModelStructure s, AnalysisShapes shapes, int maxRows)
    {
        var macs = s.Macs.Layers.Where(l => l.IsSite).GroupBy(l => l.Name).ToDictionary(g => g.Key, g => g.First().PerExample, StringComparer.Ordinal);
        string Macs(string site) => macs.TryGetValue(site, out var m) ? Count(m) : "?";

        PrintShapes(console, shapes);

        if (s.LinearSites.Count > 0)
        {
            var t = new Table().Title($"Linear sites ({s.LinearSites.Count})").AddColumns("name", "op", "out × in", "bias");
            t.AddColumn(new TableColumn("parameters").RightAligned()).AddColumn(new TableColumn("MACs / example").RightAligned());
            AddRows(t, s.LinearSites, maxRows, l => [Markup.Escape(l.Name), l.OpType, $"{l.OutFeatures} × {l.InFeatures}", l.Bias is null ? "" : "yes",
                Count(l.Parameters), Macs(l.Name)]);
            console.Write(t);
        }
        if (s.ConvSites.Count > 0)
        {
            var t = new Table().Title($"Convolution sites ({s.ConvSites.Count})").AddColumns("name", "Cout × Cin × kernel", "stride", "groups");
            t.AddColumn(new TableColumn("parameters").RightAligned()).AddColumn(new TableColumn("MACs / example").RightAligned());
            AddRows(t, s.ConvSites, maxRows, c => [Markup.Escape(c.Name), $"{c.OutChannels} × {c.InChannels} × {string.Join("×", c.Kernel)}",
                string.Join("×", c.Strides), c.Groups.ToString(CultureInfo.InvariantCulture), Count(c.Parameters), Macs(c.Name)]);
            console.Write(t);
        }
        if (s.Chains.Count > 0)
        {
            var t = new Table().Title($"Prunable chains ({s.Chains.Count})").AddColumns("kind", "producers → consumers");
            t.AddColumn(new TableColumn("channels").RightAligned()).AddColumns("activation", "shrinks together");
            AddRows(t, s.Chains, maxRows, c => [c.Kind.ToString(), Markup.Escape($"{string.Join(" + ", c.Producers)} → {string.Join(", ", c.Consumers)}"),
                c.Channels.ToString(CultureInfo.InvariantCulture) + (c.ChannelFactor > 1 ? $" (× {c.ChannelFactor})" : ""),
                Markup.Escape(c.Activation), Markup.Escape(Slices(c.SliceTogether))]);
            console.Write(t);
        }
        if (s.Rejected.Count > 0)
        {
            var t = new Table().Title($"Not prunable ({s.Rejected.Count})").AddColumns("producer", "why");
            AddRows(t, s.Rejected, maxRows, r => [Markup.Escape(r.Producer), Markup.Escape(r.Reason)]);
            console.Write(t);
        }
        if (s.Blocks.Count > 0)
        {
            var t = new Table().Title($"Transformer blocks ({s.Blocks.Count})").AddColumns("#", "attention: q / k / v → o", "heads (KV) × size", "MLP: gate / up → down");
            AddRows(t, s.Blocks, maxRows, b => [b.Index.ToString(CultureInfo.InvariantCulture), Markup.Escape(Attention(b.Attention)),
                b.Attention is { } a ? $"{a.Heads} ({a.KvHeads}) × {a.HeadSize}" : "", Markup.Escape(Mlp(b.Mlp))]);
            console.Write(t);
        }
        var products = s.Macs.Layers.Where(l => !l.IsSite).ToList();
        if (products.Count > 0)
        {
            var t = new Table().Title($"Products of two activations ({products.Count})").AddColumns("name", "op").AddColumn(new TableColumn("MACs / example").RightAligned());
            AddRows(t, products, maxRows, p => [Markup.Escape(p.Name), p.OpType, Count(p.PerExample)]);
            console.Write(t);
        }

        var totals = new Table().Title("Totals").AddColumn("").AddColumn(new TableColumn("").RightAligned());
        totals.HideHeaders();
        totals.AddRow("parameters", Count(s.Parameters));
        totals.AddRow("in linear and conv sites", Count(s.SiteParameters));
        totals.AddRow("MACs / example", $"{Count(s.Macs.PerExample)} ({Short(s.Macs.PerExample)})");
        totals.AddRow("in linear and conv sites", $"{Count(s.Macs.SitesPerExample)} ({Short(s.Macs.SitesPerExample)})");
        if (s.ResidualStream is { } stream) totals.AddRow("residual stream", $"{stream.AddNodes.Count} residual adds");
        console.Write(totals);
        if (s.Macs.Unknown.Count > 0)
            console.MarkupLineInterpolated($"[yellow]MACs unknown (shapes missing) for {s.Macs.Unknown.Count} layer(s): {Truncate(s.Macs.Unknown, 5)}[/]");
        foreach (var w in s.Warnings) console.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
    }

    private static void PrintShapes(IAnsiConsole console, AnalysisShapes shapes)
    {
        var t = new Table().Title("Input shapes for the MAC counts").AddColumns("input", "shape", "from");
        foreach (var i in shapes.Inputs)
            t.AddRow(Markup.Escape(i.Name), $"[[{string.Join(",", i.Shape)}]]",
                Markup.Escape(i.Given ? "--input-shape" : i.Assumed.Count == 0 ? "declared" : "declared; " + string.Join("; ", i.Assumed)));
        console.Write(t);
        string origin = shapes.Origin == ShapeOrigin.Probe
            ? $"intermediate shapes: ONNX Runtime run on {shapes.ProbeFill?.ToString().ToLowerInvariant()}"
            : "intermediate shapes: recorded in the graph";
        console.MarkupLineInterpolated($"[grey]{origin}[/]");
        if (shapes.ProbeFailure is { } why)
            console.MarkupLineInterpolated($"[yellow]warning:[/] ONNX Runtime could not run the model at these shapes ({why}); give --input-shape or --sequence-length.");
    }

    private static void AddRows<T>(Table table, IReadOnlyList<T> items, int maxRows, Func<T, string[]> row)
    {
        int shown = maxRows == 0 ? items.Count : Math.Min(maxRows, items.Count);
        for (int i = 0; i < shown; i++) table.AddRow(row(items[i]));
        if (shown < items.Count)
        {
            var more = new string[table.Columns.Count];
            Array.Fill(more, "");
            more[0] = $"[grey]… {items.Count - shown} more (--rows 0 or --json for all)[/]";
            table.AddRow(more);
        }
    }

    private static string Attention(AttentionInfo? a) => a is null ? "" :
        (a.FusedQkv is not null ? $"qkv {a.FusedQkv}" : $"{a.Q ?? "?"} / {a.K ?? "?"} / {a.V ?? "?"}") + $" → {a.Output ?? "?"}";

    private static string Mlp(MlpInfo? m) => m is null ? "" :
        (m.Gate is not null ? $"{m.Gate} / {m.Up ?? "?"}" : m.Up ?? string.Join(", ", m.FirstProjections)) + $" → {m.Down ?? "?"}";

    /// <summary>"w1:0, b1:0, w2:1×64" — each tensor and the axis that shrinks (× entries per channel at a flatten), at most six.</summary>
    private static string Slices(IReadOnlyList<SliceTarget> slices) =>
        Truncate([.. slices.Select(x => $"{x.Tensor}:{x.Axis}{(x.Factor > 1 ? $"×{x.Factor}" : "")}")], 6);

    private static string Truncate(IReadOnlyList<string> items, int max) =>
        items.Count <= max ? string.Join(", ", items) : string.Join(", ", items.Take(max)) + $", … (+{items.Count - max})";

    private static string Count(double? value) => value is { } v ? v.ToString("N0", CultureInfo.InvariantCulture) : "?";

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>1.23 M, 4.56 G.</summary>
    private static string Short(double v) => v switch
    {
        >= 1e12 => string.Create(CultureInfo.InvariantCulture, $"{v / 1e12:F2} T"),
        >= 1e9 => string.Create(CultureInfo.InvariantCulture, $"{v / 1e9:F2} G"),
        >= 1e6 => string.Create(CultureInfo.InvariantCulture, $"{v / 1e6:F2} M"),
        >= 1e3 => string.Create(CultureInfo.InvariantCulture, $"{v / 1e3:F2} K"),
        _ => v.ToString("F0", CultureInfo.InvariantCulture),
    };
}
