// Parameters and MACs of the pruned model as a function of every unit's width, without building it: each layer's
// MACs and each tensor's elements scale with (kept / original) of the unit producing its output axis times that of
// the unit consuming its input axis (a convolution can be both). Activation products of attention (scores, context)
// scale with the kept head groups; depthwise convolutions and per-channel parameters inside a chain with its width.
// Exact for the edits ChannelPruning and HeadPruning make; the reports still measure the written model.

using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Onnx;

namespace Whittle.Methods.Pruning;

/// <summary>Sizes of pruned variants of one model.</summary>
internal sealed class SizeModel
{
    private readonly List<(double Macs, int Out, int In)> _layers = [];
    private readonly List<(string Tensor, long Count, int Out, int In)> _tensors = [];
    private readonly int[] _original;

    public SizeModel(OnnxModel model, ModelStructure structure, IReadOnlyList<PruningUnit> units)
    {
        _original = [.. units.Select(u => u.Width)];
        Macs0 = structure.Macs.PerExample;
        Parameters0 = structure.Parameters;
        var outUnit = new Dictionary<string, int>(StringComparer.Ordinal);
        var inUnit = new Dictionary<string, int>(StringComparer.Ordinal);
        var perChannel = new List<(string Tensor, int Unit)>();
        for (int u = 0; u < units.Count; u++)
        {
            foreach (var p in units[u].Producers) outUnit[p] = u;
            foreach (var c in units[u].Consumers) inUnit[c] = u;
            if (units[u].Heads is { } h) foreach (var m in h.Products) outUnit[m] = u;
            if (units[u].Chain is { } chain)
                foreach (var t in chain.SliceTogether.Where(t => t.Role is SliceRole.PerChannelParameter or SliceRole.QuantizationParameter))
                {
                    perChannel.Add((t.Tensor, u));
                    if (structure.ConvSites.Any(c => c.Name == t.Owner)) outUnit[t.Owner] = u; // a depthwise convolution inside the chain
                }
        }
        int Out(string name) => outUnit.TryGetValue(name, out int u) ? u : -1;
        int In(string name) => inUnit.TryGetValue(name, out int u) ? u : -1;
        foreach (var layer in structure.Macs.Layers)
            if (layer.PerExample is { } macs && (Out(layer.Name) >= 0 || In(layer.Name) >= 0)) _layers.Add((macs, Out(layer.Name), In(layer.Name)));

        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Tensor(string? name, int o, int i)
        {
            if (name is null || !seen.Add(name) || (o < 0 && i < 0) || !model.Graph.TryGetInitializer(name, out var t)) return;
            _tensors.Add((name, t.ElementCount, o, i));
        }
        foreach (var (tensor, unit) in perChannel) Tensor(tensor, unit, -1);
        foreach (var l in structure.LinearSites)
        {
            Tensor(l.Weight.Initializer, Out(l.Name), In(l.Name));
            Tensor(l.Bias, Out(l.Name), -1);
            Tensor(l.Weight.QuantizationScale, Out(l.Name), -1);
            Tensor(l.Weight.QuantizationZeroPoint, Out(l.Name), -1);
        }
        foreach (var c in structure.ConvSites)
        {
            Tensor(c.Weight.Initializer, Out(c.Name), In(c.Name));
            Tensor(c.Bias, Out(c.Name), -1);
        }
        _unitTensors = [.. Enumerable.Range(0, units.Count).Select(u => _tensors.Where(t => t.Out == u || t.In == u).ToList())];
        CompressibleParameters0 = _tensors.Sum(t => t.Count);
        CompressibleMacs0 = _layers.Sum(l => l.Macs);
    }

    /// <summary>Parameters of the tensors some unit edits: what a compressible-scope budget counts.</summary>
    public long CompressibleParameters0 { get; }

    /// <summary>MACs per example of the layers some unit shrinks.</summary>
    public double CompressibleMacs0 { get; }

    private readonly List<(string Tensor, long Count, int Out, int In)>[] _unitTensors;

    /// <summary>MACs per example of the original model.</summary>
    public double Macs0 { get; }

    /// <summary>Parameters of the original model.</summary>
    public long Parameters0 { get; }

    /// <summary>The original widths.</summary>
    public IReadOnlyList<int> Original => _original;

    public double Macs(IReadOnlyList<int> widths)
    {
        double total = Macs0;
        foreach (var (macs, o, i) in _layers) total -= macs * (1 - Scale(widths, o) * Scale(widths, i));
        return total;
    }

    public double Parameters(IReadOnlyList<int> widths)
    {
        double total = Parameters0;
        foreach (var (_, count, o, i) in _tensors) total -= count * (1 - Scale(widths, o) * Scale(widths, i));
        return total;
    }

    /// <summary>The size a budget constrains, as a fraction of the original's (whole, or compressible part: <see cref="CompressionBudget.Scope"/>).</summary>
    public double Fraction(CompressionBudget budget, IReadOnlyList<int> widths)
    {
        bool parameters = budget.Kind == BudgetKind.KeepParameters;
        double whole = parameters ? Parameters0 : Macs0, now = parameters ? Parameters(widths) : Macs(widths);
        if (budget.Scope == BudgetScope.Model) return whole > 0 ? now / whole : 1;
        double part = parameters ? CompressibleParameters0 : CompressibleMacs0;
        return part > 0 ? 1 - (whole - now) / part : 1;
    }

    /// <summary>Elements of the tensors unit <paramref name="u"/> edits, at the given widths.</summary>
    public long UnitParameters(int u, IReadOnlyList<int> widths) =>
        (long)Math.Round(_unitTensors[u].Sum(t => t.Count * Scale(widths, t.Out) * Scale(widths, t.In)));

    private double Scale(IReadOnlyList<int> widths, int unit) => unit < 0 ? 1 : (double)widths[unit] / _original[unit];
}
