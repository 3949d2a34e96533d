// The pruning plan of a channel chain (PrunableChain of any kind): neurons of fully connected layers, gated MLP
// neurons, convolution channels, channels crossing the flatten boundary.
//
// Contract
//   For a chain of current width h (its producers' output features/channels) and a UnitSelection (k kept units,
//   optionally T, k × h):
//     producer weights, biases, their DequantizeLinear scale/zero point, and every per-channel parameter between
//     producers and consumers (BatchNorm scale/bias/mean/var, PRelu slopes, per-channel constants, a depthwise
//     convolution's kernel and bias)  → keep the entries of the kept units (slicing);
//     consumer weights                 → W_next ← W_next·(T ⊗ I_F)ᵀ on the consumer's input axis (F = H·W at the
//                                        flatten boundary, else 1; conv kernels on their Cin axis), or the kept
//                                        entries when T is null (magnitude pruning);
//     depthwise convolutions inside    → group = k;
//     Reshapes inside carrying the width as a constant last entry (h, or h·F at the flatten) → k (k·F);
//     recorded shapes (value_info) of the values between producers and consumers → k on the channel axis.
//   Consumer biases are unchanged: the ID corrects the consumer's input, Z ≈ Z[:, I]·T.

using Whittle.Analysis;
using Whittle.Onnx;

namespace Whittle.Rewriting;

/// <summary>What a plan builder reads: the model, its structure, and runtime shapes of its values.</summary>
/// <param name="Model">The model the plan will edit (or one with the same names).</param>
/// <param name="Structure">Its structure (sites and chains).</param>
/// <param name="Shapes">Runtime shapes of its values (a <see cref="Runtime.ShapeProbe"/> run).</param>
public sealed record PruningContext(OnnxModel Model, ModelStructure Structure, IReadOnlyDictionary<string, int[]> Shapes);

/// <summary>Builds the <see cref="PruningPlan"/> that narrows a <see cref="PrunableChain"/>.</summary>
public static class ChannelPruning
{
    /// <summary>The plan keeping <paramref name="selection"/> of the chain's <paramref name="width"/> current units.</summary>
    /// <param name="context">Model, structure and shapes.</param>
    /// <param name="chain">The chain (from the original model's structure: names are what matters).</param>
    /// <param name="width">The chain's current width (its original <see cref="PrunableChain.Channels"/>, or less after earlier pruning).</param>
    /// <param name="selection">Kept units and the optional interpolation matrix T (k × <paramref name="width"/>).</param>
    /// <exception cref="ArgumentException">The selection does not fit the width, or a shape constant of the chain cannot be located.</exception>
    public static PruningPlan Plan(PruningContext context, PrunableChain chain, int width, UnitSelection selection)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(chain);
        ArgumentNullException.ThrowIfNull(selection);
        CheckSelection(selection, width, chain.Id);
        int k = selection.Kept.Length;
        var graph = context.Model.Graph;
        var sites = context.Structure.LinearSites.ToDictionary(s => s.Name, s => (Bias: s.BiasNode, s.Name));
        foreach (var c in context.Structure.ConvSites) sites[c.Name] = (null, c.Name);

        var tensors = new List<TensorEdit>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in chain.SliceTogether)
        {
            if (!done.Add(t.Tensor)) continue;
            bool consumer = t.Role == SliceRole.ConsumerWeight;
            int factor = consumer ? t.Factor : 1;
            var segment = new AxisSegment(0, width, factor, selection.Kept, consumer ? selection.Interpolation : null);
            string[] readers = sites.TryGetValue(t.Owner, out var site) ? site.Bias is { } b ? [site.Name, b] : [site.Name] : [t.Owner];
            tensors.Add(new TensorEdit(t.Tensor, t.Axis, width * factor, [segment], t.Role, readers));
        }

        var shapes = new List<ShapeEdit>();
        var attributes = new List<AttributeEdit>();
        var values = new List<ValueShapeEdit>();
        bool conv = chain.ChannelAxis == 1;
        foreach (var producer in chain.Producers)
        {
            if (context.Structure.LinearSites.FirstOrDefault(s => s.Name == producer) is { } l)
            {
                values.Add(new(l.ProductOutput, -1, k));
                values.Add(new(l.Output, -1, k));
            }
            else if (context.Structure.ConvSites.FirstOrDefault(s => s.Name == producer) is { } c) values.Add(new(c.Output, 1, k));
        }
        bool flattened = false;
        foreach (var op in chain.Ops)
        {
            var node = GraphQuery.FindNode(graph, op.Node)
                ?? throw new ArgumentException($"Chain '{chain.Id}': node '{op.Node}' is not in the graph.", nameof(context));
            bool flattens = conv && !flattened && op.OpType is "Flatten" or "Reshape";
            if (op.OpType == "Conv") attributes.Add(new(op.Node, "group", k));
            if (op.OpType == "Reshape")
            {
                // A constant width in the target must follow; −1, 0 and entries computed from the tensor follow by themselves.
                int factor = flattens ? chain.ChannelFactor : 1;
                int entries = context.Shapes.TryGetValue(node.Input[1], out var s) && s.Length == 1 ? s[0]
                    : (int)(GraphQuery.ConstantTensor(graph, node.Input[1])?.Dims.Aggregate(1L, (a, d) => a * d) ?? 0);
                var slot = entries > 0 ? ShapeSlots.Resolve(graph, context.Shapes, node, 1, entries - 1, out _) : null;
                if (slot is not null && ShapeSlots.Current(graph, slot) is > 0 and var current)
                {
                    if (current != (long)width * factor)
                        throw new ArgumentException($"Chain '{chain.Id}': Reshape '{op.Node}' targets {current} on its last axis, expected {width * factor}.", nameof(context));
                    shapes.Add(new ShapeEdit(op.Node, slot, (long)k * factor));
                }
            }
            flattened |= flattens;
            foreach (var o in node.Output.Where(o => o.Length > 0))
                values.Add(flattened ? new(o, -1, (long)k * chain.ChannelFactor) : new(o, conv ? 1 : -1, k));
        }
        return new PruningPlan(chain.Id, tensors, shapes, attributes, values);
    }

    internal static void CheckSelection(UnitSelection selection, int width, string site)
    {
        if (width < 1) ThrowHelper.ArgumentOutOfRange(nameof(width), width, $"a positive width for '{site}'");
        int k = selection.Kept.Length;
        if (k < 1 || k > width || selection.Kept.Distinct().Count() != k || selection.Kept.Any(i => i < 0 || i >= width))
            ThrowHelper.Argument(nameof(selection), $"Site '{site}': the kept units must be 1 to {width} distinct indices in 0..{width - 1}.");
        if (selection.Interpolation is { } t && (t.Rows != k || t.Cols != width))
            ThrowHelper.ShapeMismatch(nameof(selection), $"Site '{site}': the interpolation matrix", $"{k} × {width}", $"{t.Rows} × {t.Cols}");
    }
}
