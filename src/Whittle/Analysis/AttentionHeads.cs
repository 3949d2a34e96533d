// Attention heads: which tensors, shape constants and recorded shapes change when whole head groups of a
// self-attention block go, found by following the head axis from the Q/K/V projections to the output projection.
//
// Contract
//   The unit is a key/value group: one key/value head and the g = Heads / KvHeads query heads that share it (for
//   plain multi-head attention, one head). Removing groups keeps Q, K and V consistent under grouped-query
//   attention. Along the way from the projections to W_O each value carries a marked axis holding G units
//   (G = KvHeads now) of u entries each; the walk applies one rule per op type:
//     Reshape/Flatten/(Un)Squeeze  the marked axis is the output axis j with the same product of leading dims
//                                  and a size divisible by G (splitting [B,S,G·u] into [B,S,G,u'], merging back);
//                                  a Reshape's target entry j, when a positive constant, becomes (size/G)·k
//     Expand                       right-aligned; a target entry other than 1 becomes (size/G)·k (repeat_kv)
//     Transpose                    the marked axis follows the permutation
//     MatMul of two activations    the marked axis must be a batch axis (scores Q·Kᵀ, context P·V)
//     Split (fused QKV)            on the marked axis, sizes [g·d·G, d·G, d·G] → [g·d·k, d·k, d·k]
//     elementwise, Softmax, Slice, Concat  pass the axis through when they do not act along it and other
//                                  operands broadcast over it (masks, rotary tables, the 1/√d scale)
//     Shape/Size                   not followed (a shape computed from a pruned tensor is right by itself)
//   Anything else reading a marked value (an unknown op, another weight layer, a graph output) makes the block
//   not prunable, with the reason. The walk ends at W_O's input, which must hold the G groups of g·d columns.
//   Rewriting.HeadPruning builds the plan from what the walk records.

using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Analysis;

/// <summary>A self-attention block whose head groups can be pruned, with everything the walk found.</summary>
/// <param name="Name">The block for reports (<c>block 3 attention</c>).</param>
/// <param name="Q">The query projection site, or null when fused.</param>
/// <param name="K">The key projection site, or null when fused.</param>
/// <param name="V">The value projection site, or null when fused.</param>
/// <param name="Fused">The fused Q/K/V projection site, or null.</param>
/// <param name="Output">The output projection site W_O.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads G: the units pruned.</param>
/// <param name="HeadSize">d, entries per head.</param>
/// <param name="Slots">Shape entries that carry the head count: each becomes <c>PerGroup·k</c>.</param>
/// <param name="Values">Values on the way and their head axis: recorded shapes become <c>PerGroup·k</c> there.</param>
/// <param name="Products">The activation MatMuls (scores, context), whose MACs scale with the kept groups.</param>
public sealed record AttentionHeads(
    string Name, string? Q, string? K, string? V, string? Fused, string Output, int Heads, int KvHeads, int HeadSize,
    IReadOnlyList<HeadSlot> Slots, IReadOnlyList<HeadValue> Values, IReadOnlyList<string> Products)
{
    /// <summary>g, query heads per group.</summary>
    public int GroupHeads => Heads / KvHeads;

    /// <summary>B = g·d: W_O input entries (context columns) per group.</summary>
    public int GroupSize => GroupHeads * HeadSize;

    /// <summary>The context value W_O reads: rows = tokens, columns = G groups of <see cref="GroupSize"/>.</summary>
    public string Context { get; init; } = "";
}

/// <summary>A shape entry that carries the head count.</summary>
/// <param name="Node">The Reshape/Expand/Split node.</param>
/// <param name="Slot">Where the entry lives.</param>
/// <param name="PerGroup">Its value divided by the number of groups.</param>
public sealed record HeadSlot(string Node, ShapeSlot Slot, long PerGroup);

/// <summary>A value on the head path and the axis holding the groups.</summary>
public sealed record HeadValue(string Value, int Axis, long PerGroup);

/// <summary>Finds the attention blocks whose head groups can be pruned, by following the head axis (see the file header).</summary>
public static class AttentionHeadWalk
{
    /// <summary>Walks the head axis of <paramref name="attention"/>; null with <paramref name="reason"/> when the block cannot be pruned.</summary>
    /// <param name="model">The model.</param>
    /// <param name="structure">Its structure.</param>
    /// <param name="shapes">Runtime shapes (from a probe with a batch and sequence longer than 1).</param>
    /// <param name="name">The block's name for reports.</param>
    /// <param name="attention">The block as the analysis found it.</param>
    /// <param name="reason">Why not, when null is returned.</param>
    public static AttentionHeads? Find(OnnxModel model, ModelStructure structure, IReadOnlyDictionary<string, int[]> shapes, string name, AttentionInfo attention,
        out string? reason)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(structure);
        ArgumentNullException.ThrowIfNull(shapes);
        ArgumentNullException.ThrowIfNull(attention);
        var walk = new HeadWalk(model, structure, shapes, attention);
        var result = walk.Run(name);
        reason = walk.Reason;
        return result;
    }

    /// <summary>The head-axis walk of one attention block.</summary>
    private sealed class HeadWalk(OnnxModel model, ModelStructure structure, IReadOnlyDictionary<string, int[]> shapes, AttentionInfo attention)
    {
        private sealed record Marker(int Axis, long[] PerGroup); // one entry per segment (three for a fused QKV output)

        private readonly OnnxGraph _graph = model.Graph;
        private readonly Dictionary<string, Marker> _marks = new(StringComparer.Ordinal);
        private readonly List<HeadSlot> _slots = [];
        private readonly List<string> _products = [];
        private int _groups;

        public string? Reason { get; private set; }

        private AttentionHeads? Fail(string reason)
        {
            Reason = reason;
            return null;
        }

        public AttentionHeads? Run(string name)
        {
            var a = attention;
            if (a.Output is null) return Fail("the output projection was not found.");
            if (a.Heads < 2 || a.KvHeads < 1 || a.HeadSize < 1 || a.Heads % a.KvHeads != 0)
                return Fail($"the head layout ({a.Heads} heads, {a.KvHeads} key/value heads of size {a.HeadSize}) was not recognised.");
            if (a.KvHeads < 2) return Fail("there is a single key/value head: no group can go without emptying the block.");
            _groups = a.KvHeads;
            int g = a.Heads / a.KvHeads, d = a.HeadSize;
            var sites = structure.LinearSites.ToDictionary(s => s.Name);
            var o = sites[a.Output];
            if (o.Weight.Path.Contains("DequantizeLinear")) return Fail("the output projection is quantized: the correction cannot be folded in.");
            if (o.InFeatures != a.Heads * d) return Fail($"the output projection reads {o.InFeatures} features, not {a.Heads}·{d}.");
            var starts = new List<LinearSite>();
            if (a.FusedQkv is { } f)
            {
                var s = sites[f];
                if (s.OutFeatures != (a.Heads + 2 * a.KvHeads) * d) return Fail($"the fused projection '{f}' has {s.OutFeatures} outputs, not ({a.Heads} + 2·{a.KvHeads})·{d}.");
                if (!Mark(s.Output, -1, [g * d, d, d], out var why)) return Fail(why!);
                starts.Add(s);
            }
            else
            {
                if (a.Q is null || a.K is null || a.V is null) return Fail("the Q, K and V projections were not all found.");
                foreach (var (site, unit) in new[] { (sites[a.Q], g * d), (sites[a.K], d), (sites[a.V], d) })
                {
                    if (site.OutFeatures != _groups * unit) return Fail($"projection '{site.Name}' has {site.OutFeatures} outputs, not {_groups}·{unit}.");
                    if (!Mark(site.Output, -1, [unit], out var why)) return Fail(why!);
                    starts.Add(site);
                }
            }
            if (starts.Any(s => s.Weight.Path.Contains("DequantizeLinear"))) return Fail("a Q/K/V projection is quantized.");
            var siteNodes = new HashSet<string>(structure.LinearSites.Select(s => s.Name).Concat(structure.ConvSites.Select(s => s.Name)));
            var order = _graph.TopologicalOrder();
            bool reachedOutput = false;
            foreach (var node in order)
            {
                var marked = node.Input.Where(i => i.Length > 0 && _marks.ContainsKey(i)).Distinct().ToList();
                if (marked.Count == 0) continue;
                string nodeName = GraphQuery.NameOf(node);
                if (nodeName == o.Name)
                {
                    if (marked.Count != 1 || marked[0] != o.Input) return Fail($"the output projection reads a head value other than its input.");
                    var m = _marks[o.Input];
                    if (m.PerGroup.Length != 1 || m.PerGroup[0] != g * d || m.Axis != Rank(o.Input) - 1)
                        return Fail($"the output projection's input '{o.Input}' does not hold {_groups} groups of {g * d} columns on its last axis.");
                    reachedOutput = true;
                    continue;
                }
                if (node.OpType is "Shape" or "Size") continue;
                if (siteNodes.Contains(nodeName)) return Fail($"weight layer '{nodeName}' reads head value '{marked[0]}'.");
                if (!Step(node, marked, out var reason)) return Fail($"{node.OpType} '{nodeName}': {reason}");
            }
            if (!reachedOutput) return Fail("the head path does not reach the output projection.");
            var values = _marks.Where(p => p.Value.PerGroup.Length == 1)
                .Select(p => new HeadValue(p.Key, p.Value.Axis, p.Value.PerGroup[0])).ToList();
            return new AttentionHeads(name, a.Q, a.K, a.V, a.FusedQkv, a.Output, a.Heads, a.KvHeads, d, _slots, values, _products) { Context = o.Input };
        }

        private int Rank(string value) => Shape(value)?.Length ?? -1;

        private int[]? Shape(string value) =>
            GraphQuery.ConstantTensor(_graph, value) is { } t ? [.. t.Dims.Select(x => (int)x)] : shapes.TryGetValue(value, out var s) ? s : null;

        private bool Mark(string value, int axis, long[] perGroup, out string? reason)
        {
            reason = null;
            if (Shape(value) is not { } s) { reason = $"the shape of '{value}' is unknown."; return false; }
            if (axis < 0) axis += s.Length;
            if (_graph.IsGraphOutput(value)) { reason = $"'{value}' carries heads and is a graph output."; return false; }
            if (s[axis] != _groups * perGroup.Sum()) { reason = $"'{value}' has {s[axis]} entries on its head axis, not {_groups}·{perGroup.Sum()}."; return false; }
            var m = new Marker(axis, perGroup);
            if (_marks.TryGetValue(value, out var old) && (old.Axis != axis || !old.PerGroup.SequenceEqual(perGroup)))
            { reason = $"'{value}' is reached with two head layouts."; return false; }
            _marks[value] = m;
            return true;
        }

        private bool Step(NodeProto node, List<string> marked, out string? reason)
        {
            reason = null;
            var first = _marks[marked[0]];
            string output = node.Output[0];
            int outRank = Rank(output);
            if (outRank < 0) { reason = $"the shape of '{output}' is unknown."; return false; }
            if (node.OpType != "Split" && (first.PerGroup.Length != 1 || marked.Any(v => _marks[v].PerGroup.Length != 1)))
            {
                reason = "it reads the fused Q/K/V output, which only a Split on the head axis may divide.";
                return false;
            }
            switch (node.OpType)
            {
                case "Split":
                {
                    int axis = Normalize((int)GraphQuery.Int(node, "axis", 0), Rank(node.Input[0]));
                    if (axis != first.Axis)
                    {
                        if (first.PerGroup.Length != 1) { reason = "it splits the fused Q/K/V output off the head axis."; return false; }
                        foreach (var o in node.Output.Where(o => o.Length > 0))
                            if (!Mark(o, first.Axis, first.PerGroup, out reason)) return false;
                        return true;
                    }
                    var parts = first.PerGroup.Length == node.Output.Count ? first.PerGroup : null;
                    if (parts is null) { reason = $"it splits into {node.Output.Count} parts, not the {first.PerGroup.Length} of the head layout."; return false; }
                    for (int i = 0; i < parts.Length; i++)
                    {
                        if (!Mark(node.Output[i], axis, [parts[i]], out reason)) return false;
                        bool hasSizes = (node.Input.Count > 1 && node.Input[1].Length > 0) || node.Attribute.Any(x => x.Name == "split");
                        if (!hasSizes) continue;
                        var slot = ShapeSlots.Resolve(_graph, shapes, node, 1, i, out reason);
                        if (slot is null) return false;
                        _slots.Add(new HeadSlot(GraphQuery.NameOf(node), slot, parts[i]));
                    }
                    return true;
                }
                case "Transpose":
                {
                    var perm = GraphQuery.Ints(node, "perm") ?? [.. Enumerable.Range(0, outRank).Reverse().Select(x => (long)x)];
                    int j = Array.IndexOf(perm, (long)first.Axis);
                    return Mark(output, j, first.PerGroup, out reason);
                }
                case "Reshape" or "Flatten" or "Squeeze" or "Unsqueeze":
                {
                    var input = Shape(node.Input[0])!;
                    var outShape = Shape(output)!;
                    long prefix = 1;
                    for (int i = 0; i < first.Axis; i++) prefix *= input[i];
                    int j = -1;
                    long lead = 1;
                    for (int i = 0; i < outShape.Length; i++)
                    {
                        if (lead == prefix && outShape[i] >= _groups && outShape[i] % _groups == 0) { j = i; break; }
                        lead *= outShape[i];
                        if (lead > prefix) break;
                    }
                    if (j < 0) { reason = "it mixes the head axis with the axes before it."; return false; }
                    long perGroup = outShape[j] / _groups;
                    if (node.OpType == "Reshape")
                    {
                        // A constant or computed head entry becomes a constant (head counts never depend on batch or
                        // sequence); −1 is inferred; 0 copies the input's dimension, right only if that is the same head axis.
                        var slot = ShapeSlots.Resolve(_graph, shapes, node, 1, j, out reason);
                        if (slot is null) return false;
                        long? current = ShapeSlots.Current(_graph, slot);
                        if (current == 0 && !(j == first.Axis && input[j] == outShape[j])) { reason = "its target copies a dimension (0) that the pruning changes."; return false; }
                        if (current is null or > 0) _slots.Add(new HeadSlot(GraphQuery.NameOf(node), slot, perGroup));
                    }
                    return Mark(output, j, [perGroup], out reason);
                }
                case "Expand":
                {
                    var input = Shape(node.Input[0])!;
                    var outShape = Shape(output)!;
                    int j = first.Axis + outShape.Length - input.Length;
                    if (outShape[j] != input[first.Axis]) { reason = "it broadcasts along the head axis."; return false; }
                    int shapeLength = Shape(node.Input[1]) is [var len] ? len : -1;
                    int entry = j - (outShape.Length - shapeLength);
                    if (shapeLength > 0 && entry >= 0)
                    {
                        var slot = ShapeSlots.Resolve(_graph, shapes, node, 1, entry, out reason);
                        if (slot is null) return false;
                        if (ShapeSlots.Current(_graph, slot) != 1) _slots.Add(new HeadSlot(GraphQuery.NameOf(node), slot, outShape[j] / _groups));
                    }
                    return Mark(output, j, first.PerGroup, out reason);
                }
                case "MatMul":
                {
                    int j = -1;
                    foreach (var v in node.Input)
                    {
                        int r = Rank(v);
                        if (_marks.TryGetValue(v, out var m))
                        {
                            if (m.Axis >= r - 2) { reason = $"'{v}' is multiplied along its head axis."; return false; }
                            int jj = m.Axis + outRank - r;
                            if (j >= 0 && jj != j) { reason = "its operands hold the heads on different axes."; return false; }
                            j = jj;
                        }
                    }
                    foreach (var v in node.Input.Where(v => !_marks.ContainsKey(v)))
                        if (!Broadcasts(v, j, outRank)) { reason = $"'{v}' does not broadcast over the heads."; return false; }
                    _products.Add(GraphQuery.NameOf(node));
                    return Mark(output, j, [Shape(output)![j] / _groups], out reason);
                }
                case "Softmax" or "LogSoftmax":
                {
                    long fallback = model.OpsetVersion("") is < 13 ? 1 : -1; // before opset 13 Softmax flattened from axis 1
                    int axis = Normalize((int)GraphQuery.Int(node, "axis", fallback), outRank);
                    if (axis <= first.Axis) { reason = "it normalizes across the head axis."; return false; }
                    return Mark(output, first.Axis, first.PerGroup, out reason);
                }
                case "Concat":
                {
                    int axis = Normalize((int)GraphQuery.Int(node, "axis", 0), outRank);
                    if (axis == first.Axis) { reason = "it concatenates along the head axis."; return false; }
                    if (node.Input.Any(v => !_marks.ContainsKey(v))) { reason = "it joins head values with other values."; return false; }
                    return Mark(output, first.Axis, first.PerGroup, out reason);
                }
                case "Slice":
                {
                    var input = Shape(node.Input[0])!;
                    var outShape = Shape(output)!;
                    if (outShape.Length != input.Length || outShape[first.Axis] != input[first.Axis]) { reason = "it slices the head axis."; return false; }
                    if (marked.Any(v => v != node.Input[0])) { reason = "a head value is its slicing parameter."; return false; }
                    return Mark(output, first.Axis, first.PerGroup, out reason);
                }
                default:
                {
                    var (behavior, _) = ChannelRules.For(node.OpType, out bool known);
                    bool elementwise = known && behavior is ChannelBehavior.Unary or ChannelBehavior.Binary
                        || node.OpType is "Where" or "Equal" or "Not" or "And" or "Or" or "Xor" or "Greater" or "Less" or "GreaterOrEqual" or "LessOrEqual" or "Mod";
                    if (!elementwise) { reason = "it is not known to keep the head axis."; return false; }
                    int j = -1;
                    foreach (var v in marked)
                    {
                        var m = _marks[v];
                        int jj = m.Axis + outRank - Rank(v);
                        if (j >= 0 && jj != j) { reason = "its operands hold the heads on different axes."; return false; }
                        j = jj;
                    }
                    foreach (var v in node.Input.Where(v => v.Length > 0 && !_marks.ContainsKey(v)))
                        if (!Broadcasts(v, j, outRank)) { reason = $"'{v}' does not broadcast over the heads."; return false; }
                    foreach (var o in node.Output.Where(o => o.Length > 0))
                        if (!Mark(o, j, first.PerGroup, out reason)) return false;
                    return true;
                }
            }
        }

        /// <summary>Whether <paramref name="value"/> has size 1 (or no axis) where the output's axis <paramref name="axis"/> is.</summary>
        private bool Broadcasts(string value, int axis, int outRank)
        {
            if (Shape(value) is not { } s) return false;
            int p = axis - (outRank - s.Length);
            return p < 0 || s[p] == 1;
        }

        private static int Normalize(int axis, int rank) => axis < 0 ? axis + rank : axis;
    }
}
