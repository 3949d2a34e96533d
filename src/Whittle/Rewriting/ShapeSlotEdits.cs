using Whittle.Analysis;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Rewriting;

/// <summary>Sets entries of shape operands found by <see cref="ShapeSlots"/>. Constants already in the graph are never modified (they may be shared).</summary>
internal static class ShapeSlotEdits
{
    /// <summary>Sets the slot to <paramref name="value"/>: a new constant (or the attribute entry) replaces what the holder read.</summary>
    public static void Set(OnnxGraph graph, ShapeSlot slot, long value)
    {
        var holder = GraphQuery.FindNode(graph, slot.Holder)
            ?? throw new InvalidOperationException($"Shape holder '{slot.Holder}' is not in the graph.");
        if (slot.Attribute is { } name)
        {
            holder.Attribute.First(a => a.Name == name).Ints[slot.Element] = value;
            return;
        }
        string old = holder.Input[slot.Input];
        long[] values = GraphQuery.ConstantTensor(graph, old) is { } t ? ShapeSlots.Values(t) : new long[slot.Length];
        values[slot.Element] = value;
        var tensor = new TensorProto { Name = graph.UniqueName(GraphQuery.NameOf(holder) + ".pruned_shape"), DataType = (int)OnnxDataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.Add(values);
        graph.AddInitializer(tensor);
        holder.Input[slot.Input] = tensor.Name;
        graph.Invalidate();
    }
}
