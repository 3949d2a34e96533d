using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Compression;
using Whittle.Rewriting;

namespace Whittle.Methods.Pruning;

/// <summary>What a pruning unit removes.</summary>
internal enum UnitKind
{
    /// <summary>Neurons of a fully connected chain.</summary>
    Neurons,

    /// <summary>Channels of a convolution chain.</summary>
    Channels,

    /// <summary>Key/value head groups of an attention block.</summary>
    Heads,
}

/// <summary>
/// One site that pruning narrows: a channel chain or an attention block. Its activation Z (the value tapped) has
/// <see cref="Width"/>·<see cref="GroupSize"/> columns: one per neuron/channel, or <see cref="GroupSize"/> = g·d per head group.
/// </summary>
internal sealed record PruningUnit(string Name, UnitKind Kind, int Width, int GroupSize, string Activation, FeatureAxis Axis, bool Transformer,
    PrunableChain? Chain, AttentionHeads? Heads)
{
    public string KindName => Kind switch { UnitKind.Neurons => "neurons", UnitKind.Channels => "channels", _ => "heads" };

    /// <summary>The sites whose output units this unit removes.</summary>
    public IReadOnlyList<string> Producers => Chain?.Producers ?? (Heads!.Fused is { } f ? [f] : [Heads.Q!, Heads.K!, Heads.V!]);

    /// <summary>The values whose rows together are Z (several for a residual stream: the stream at each join point).</summary>
    public IReadOnlyList<string> Activations => Chain?.Activations ?? [Activation];

    /// <summary>The sites that read the activation (and receive the correction).</summary>
    public IReadOnlyList<string> Consumers => Chain?.Consumers ?? [Heads!.Output];

    /// <summary>The width to report: units, or query heads for attention.</summary>
    public int Reported(int width) => Heads is { } h ? width * h.GroupHeads : width;

    public PruningPlan Plan(PruningContext context, int width, UnitSelection selection) =>
        Chain is not null ? ChannelPruning.Plan(context, Chain, width, selection) : HeadPruning.Plan(context, Heads!, width, selection);
}

/// <summary>Finds the pruning units of a model and the sites left alone, with reasons.</summary>
internal static class PruningUnits
{
    /// <summary>Units for <paramref name="targets"/>, and a skipped report for every other candidate site.</summary>
    /// <param name="context">The original model, its structure and shapes.</param>
    /// <param name="targets">What may be pruned.</param>
    /// <param name="correction">Whether consumers receive a correction (ID) rather than a selection (magnitude): quantized consumers then cannot be pruned.</param>
    public static (List<PruningUnit> Units, List<SiteReport> Skipped) Find(PruningContext context, PruningTargets targets, bool correction)
    {
        var s = context.Structure;
        var units = new List<PruningUnit>();
        var skipped = new List<SiteReport>();
        var mlpSites = s.Blocks.Where(b => b.Mlp is not null).SelectMany(b => b.Mlp!.FirstProjections).ToHashSet(StringComparer.Ordinal);
        var attentionSites = new HashSet<string>(StringComparer.Ordinal);

        foreach (var block in s.Blocks)
        {
            if (block.Attention is not { } attention) continue;
            string name = $"block {block.Index} attention";
            if (!targets.HasFlag(PruningTargets.AttentionHeads))
            {
                skipped.Add(new SiteReport(name, "heads", attention.Heads, attention.Heads) { Skipped = "not a pruning target" });
                continue;
            }
            var heads = AttentionHeadWalk.Find(context.Model, context.Structure, context.Shapes, name, attention, out var reason);
            if (heads is not null)
            {
                var unit = new PruningUnit(name, UnitKind.Heads, heads.KvHeads, heads.GroupSize, heads.Context, FeatureAxis.Last, true, null, heads);
                reason = Feasible(context, unit, correction);
                if (reason is null)
                {
                    units.Add(unit);
                    foreach (var site in new[] { heads.Q, heads.K, heads.V, heads.Fused }.OfType<string>()) attentionSites.Add(site);
                    continue;
                }
            }
            skipped.Add(new SiteReport(name, "heads", attention.Heads, attention.Heads) { Skipped = reason });
        }

        foreach (var chain in s.Chains)
        {
            bool fc = chain.Kind is ChainKind.Linear or ChainKind.GatedLinear;
            var kind = fc ? UnitKind.Neurons : UnitKind.Channels;
            string kindName = fc ? "neurons" : "channels";
            if (!targets.HasFlag(chain.IsStream ? PruningTargets.ResidualStream : fc ? PruningTargets.FullyConnected : PruningTargets.Convolution))
            {
                skipped.Add(new SiteReport(chain.Id, kindName, chain.Channels, chain.Channels) { Skipped = "not a pruning target" });
                continue;
            }
            var unit = new PruningUnit(chain.Id, kind, chain.Channels, 1, chain.Activation, chain.ChannelAxis == 1 ? FeatureAxis.Channel : FeatureAxis.Last,
                chain.Producers.Any(mlpSites.Contains), chain, null);
            if (Feasible(context, unit, correction) is { } reason)
                skipped.Add(new SiteReport(chain.Id, kindName, chain.Channels, chain.Channels) { Skipped = reason });
            else units.Add(unit);
        }

        var widths = s.LinearSites.ToDictionary(l => l.Name, l => l.OutFeatures);
        foreach (var c in s.ConvSites) widths[c.Name] = c.OutChannels;
        foreach (var r in s.Rejected.Where(r => !attentionSites.Contains(r.Producer)))
        {
            int w = widths.GetValueOrDefault(r.Producer);
            bool conv = s.ConvSites.Any(c => c.Name == r.Producer);
            skipped.Add(new SiteReport(r.Producer, conv ? "channels" : "neurons", w, w) { Skipped = r.Reason });
        }
        return (units, skipped);
    }

    /// <summary>Why the unit's plan cannot be applied (a shared or quantized tensor, a shape constant not found), or null.</summary>
    private static string? Feasible(PruningContext context, PruningUnit unit, bool correction)
    {
        int entries = unit.Width * unit.GroupSize;
        var identity = correction ? (unit.Chain is not null ? LinearAlgebra.Matrix<double>.Identity(unit.Width) : LinearAlgebra.Matrix<double>.Identity(entries)) : null;
        try
        {
            return unit.Plan(context, unit.Width, new UnitSelection([.. Enumerable.Range(0, unit.Width)], identity)).Check(context.Model);
        }
        catch (ArgumentException ex)
        {
            return ex.Message;
        }
    }
}
