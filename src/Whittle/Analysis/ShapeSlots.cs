// Finds one entry of a shape operand (Reshape/Expand target, Split sizes) however the export assembled it; the
// surgery (Rewriting.ShapeSlotEdits) sets it.
//
// Contract
//   Resolve follows the operand back through Cast, Identity, a 1-D Reshape and Where's else-branch (the forms
//   PyTorch exports for dynamic shapes) to a constant or a Concat of pieces, and returns the slot holding the
//   entry: the input of some node that Set rewires to a new int64 constant. A Concat piece that is computed
//   (Unsqueeze(Gather(Shape(x)))) can be replaced only when it holds exactly that one entry: the head count and
//   merged widths never depend on the batch or sequence, so a constant is right for every input. Constants
//   already in the graph are never modified (they may be shared); a node that is rewired must feed only this
//   shape, else Resolve refuses.

using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Analysis;

/// <summary>Where one entry of a shape operand (or of Split's sizes) is stored, resolved on the graph before any edit.</summary>
/// <param name="Holder">The node whose input is rewired to a new constant: the shape's consumer, or the Concat that assembles it.</param>
/// <param name="Input">The input index of <paramref name="Holder"/> (−1 for an attribute).</param>
/// <param name="Element">The element within that input (or attribute list).</param>
/// <param name="Length">The element count of that input (a dynamic Concat piece must hold one element).</param>
/// <param name="Attribute">An ints attribute holding the values instead (Split's <c>split</c> before opset 13), or null.</param>
public sealed record ShapeSlot(string Holder, int Input, int Element, int Length, string? Attribute = null);

/// <summary>Resolves entries of shape operands (Rewriting sets them).</summary>
internal static class ShapeSlots
{
    /// <summary>The slot of entry <paramref name="entry"/> of <c>node.Input[input]</c>, or null with <paramref name="reason"/>.</summary>
    public static ShapeSlot? Resolve(OnnxGraph graph, IReadOnlyDictionary<string, int[]> shapes, NodeProto node, int input, int entry, out string? reason)
    {
        reason = null;
        string nodeName = GraphQuery.NameOf(node);
        if (input >= node.Input.Count || node.Input[input].Length == 0)
        {
            var attr = node.OpType == "Split" ? node.Attribute.FirstOrDefault(a => a.Name == "split") : null;
            if (attr is not null && entry < attr.Ints.Count) return new ShapeSlot(nodeName, -1, entry, attr.Ints.Count, "split");
            reason = $"{node.OpType} '{nodeName}' has no shape input {input}.";
            return null;
        }
        NodeProto holder = node;
        int holderInput = input;
        string value = node.Input[input];
        for (int depth = 0; depth < 12; depth++)
        {
            if (GraphQuery.ConstantTensor(graph, value) is { } t)
            {
                long count = t.Dims.Aggregate(1L, (a, d) => a * d);
                if (entry >= count) { reason = $"the shape of '{nodeName}' has {count} entries, not {entry + 1}."; return null; }
                return Exclusive(graph, holder, node, input, ref reason) ? new ShapeSlot(GraphQuery.NameOf(holder), holderInput, entry, (int)count) : null;
            }
            var p = graph.Producer(value);
            switch (p?.OpType)
            {
                case "Concat":
                {
                    int at = 0;
                    for (int i = 0; i < p.Input.Count; i++)
                    {
                        string piece = p.Input[i];
                        long? length = GraphQuery.ConstantTensor(graph, piece) is { } c ? c.Dims.Aggregate(1L, (a, d) => a * d)
                            : shapes.TryGetValue(piece, out var s) && s.Length == 1 ? s[0] : null;
                        if (length is null) { reason = $"the length of piece '{piece}' of the shape of '{nodeName}' is unknown."; return null; }
                        if (entry < at + length)
                        {
                            bool constant = GraphQuery.ConstantTensor(graph, piece) is not null;
                            if (!constant && length != 1) { reason = $"entry {entry} of the shape of '{nodeName}' is computed in a piece of {length} entries."; return null; }
                            return Exclusive(graph, p, node, input, ref reason) ? new ShapeSlot(GraphQuery.NameOf(p), i, entry - at, (int)length) : null;
                        }
                        at += (int)length;
                    }
                    reason = $"the shape of '{nodeName}' has {at} entries, not {entry + 1}.";
                    return null;
                }
                case "Cast" or "Identity":
                case "Reshape" when shapes.TryGetValue(value, out var rs) && rs.Length == 1:
                    holder = p;
                    holderInput = 0;
                    value = p.Input[0];
                    continue;
                case "Where":
                    holder = p;
                    holderInput = 2;
                    value = p.Input[2];
                    continue;
                default:
                    reason = $"the shape of '{nodeName}' is computed by {(p is null ? "a graph input" : $"{p.OpType} '{GraphQuery.NameOf(p)}'")}.";
                    return null;
            }
        }
        reason = $"the shape of '{nodeName}' is computed too deep to follow.";
        return null;
    }

    /// <summary>The current value of the slot, or null when it is computed.</summary>
    public static long? Current(OnnxGraph graph, ShapeSlot slot)
    {
        var holder = GraphQuery.FindNode(graph, slot.Holder);
        if (holder is null) return null;
        if (slot.Attribute is { } name) return holder.Attribute.First(a => a.Name == name).Ints[slot.Element];
        return GraphQuery.ConstantTensor(graph, holder.Input[slot.Input]) is { } t ? Values(t)[slot.Element] : null;
    }

    internal static long[] Values(TensorProto t) => [.. OnnxTensor.Of(t).ToArray<double>().Select(v => (long)v)];

    /// <summary>Whether every node fed by <paramref name="holder"/>'s output ends up only in input <paramref name="input"/> of <paramref name="target"/>.</summary>
    private static bool Exclusive(OnnxGraph graph, NodeProto holder, NodeProto target, int input, ref string? reason)
    {
        if (ReferenceEquals(holder, target)) return true;
        var ancestors = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<string>([target.Input[input]]);
        while (stack.Count > 0)
            if (graph.Producer(stack.Pop()) is { } p && ancestors.Add(p))
                foreach (var i in p.Input.Where(i => i.Length > 0)) stack.Push(i);
        var seen = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var front = new Stack<NodeProto>([holder]);
        while (front.Count > 0)
        {
            var n = front.Pop();
            if (!seen.Add(n)) continue;
            foreach (var o in n.Output)
            {
                if (graph.IsGraphOutput(o)) { reason = $"'{o}' is a graph output."; return false; }
                foreach (var c in graph.Consumers(o))
                {
                    if (ReferenceEquals(c, target))
                    {
                        if (c.Input.Where((x, i) => x == o && i != input).Any()) { reason = $"'{GraphQuery.NameOf(target)}' reads '{o}' twice."; return false; }
                        continue;
                    }
                    if (!ancestors.Contains(c)) { reason = $"'{o}' also feeds '{GraphQuery.NameOf(c)}' ({c.OpType}), not only the shape of '{GraphQuery.NameOf(target)}'."; return false; }
                    front.Push(c);
                }
            }
        }
        return true;
    }
}
