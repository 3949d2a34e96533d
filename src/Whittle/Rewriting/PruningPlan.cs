// Structural pruning as data: every edit that removing some neurons, channels or heads makes to a graph.
//
// Contract
//   A PruningPlan lists, for one prunable site (a channel chain, an attention block):
//     TensorEdits      stored tensors whose axis shrinks: each AxisSegment of the axis holds Units blocks
//                      of Factor consecutive entries (a channel's H·W inputs at the flatten boundary, a head
//                      group's g·d entries); the new segment holds, for each row j of the selection,
//                        Mix = null: block Kept[j] (slicing: producers, per-channel parameters, magnitude pruning)
//                        Mix     : Σ_c Mix[j, c]·block c, entry by entry within the block (W_next·(T ⊗ I_F)ᵀ)
//                      Entries outside every segment are kept as they are (the other parts of a fused QKV weight).
//     ShapeEdits       one entry of a Reshape/Expand shape operand or of Split's sizes, set to a new value
//                      (the head count, the merged width), at a ShapeSlot resolved on the original graph
//     AttributeEdits   an integer attribute (a depthwise convolution's group)
//     ValueShapeEdits  one dimension of a value's recorded type (value_info), where the graph records one
//   Check reports the first reason the plan cannot be applied (a tensor read by nodes outside the site, an axis
//   of another length, a quantized tensor that would need a correction folded in) without editing anything;
//   Apply checks, then edits the model in place and returns one line per edit, for reports.
//   Floating-point tensors are edited in float32 (float64 tensors in float64) and written back in their own
//   type; integer (quantized) tensors can only be sliced.

using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Rewriting;

/// <summary>Which units (neurons, channels, head groups) of a site stay, and how the removed ones are folded into what reads them.</summary>
/// <param name="Kept">The kept units, distinct; new unit j is old unit <c>Kept[j]</c>.</param>
/// <param name="Interpolation">The correction folded into the consumers, or null for plain selection (magnitude pruning):
/// for a channel chain the ID's T (k × h over units); for attention heads the least-squares M (k·B × h·B over the
/// consumer's input entries, B entries per head group). Rows follow <paramref name="Kept"/>.</param>
public sealed record UnitSelection(int[] Kept, Matrix<double>? Interpolation)
{
    /// <summary>Keeps every unit: the identity edit.</summary>
    public static UnitSelection All(int width) => new([.. Enumerable.Range(0, width)], null);
}

/// <summary>One contiguous segment of a tensor axis: <paramref name="Units"/> blocks of <paramref name="Factor"/> entries from <paramref name="Offset"/>.</summary>
/// <param name="Offset">The first entry of the segment.</param>
/// <param name="Units">Blocks in the segment now.</param>
/// <param name="Factor">Entries per block.</param>
/// <param name="Kept">The blocks kept (new block j = old block <c>Kept[j]</c>) when <paramref name="Mix"/> is null.</param>
/// <param name="Mix">Rows × <paramref name="Units"/>: new block j = Σ_c Mix[j, c]·block c; or null for selection.</param>
public sealed record AxisSegment(int Offset, int Units, int Factor, int[] Kept, Matrix<double>? Mix)
{
    /// <summary>Entries of the segment before the edit.</summary>
    public int OldLength => Units * Factor;

    /// <summary>Entries after.</summary>
    public int NewLength => (Mix?.Rows ?? Kept.Length) * Factor;
}

/// <summary>A stored tensor whose axis shrinks.</summary>
/// <param name="Tensor">The initializer or <c>Constant</c> output (a Cast/Identity of one is followed).</param>
/// <param name="Axis">The axis of the stored tensor.</param>
/// <param name="Length">Its length now (checked).</param>
/// <param name="Segments">The segments that change, in axis order, not overlapping.</param>
/// <param name="Role">What the tensor is to the site.</param>
/// <param name="Readers">Nodes allowed to read the tensor (directly or through Transpose/Cast/Identity/DequantizeLinear); anyone else reading it makes the plan infeasible.</param>
public sealed record TensorEdit(string Tensor, int Axis, int Length, IReadOnlyList<AxisSegment> Segments, SliceRole Role, IReadOnlyList<string> Readers);

/// <summary>Sets one shape entry.</summary>
/// <param name="Node">The node whose shape changes (for the log).</param>
/// <param name="Slot">Where the entry lives.</param>
/// <param name="Value">The new value.</param>
public sealed record ShapeEdit(string Node, ShapeSlot Slot, long Value);

/// <summary>Sets an integer attribute of a node.</summary>
public sealed record AttributeEdit(string Node, string Attribute, long Value);

/// <summary>Sets one dimension of a value's recorded type (graph output or value_info), where there is one.</summary>
public sealed record ValueShapeEdit(string Value, int Axis, long Size);

/// <summary>Every edit that pruning one site makes; see the file header for the semantics.</summary>
/// <param name="Site">The site (chain id, attention block) for messages.</param>
/// <param name="Tensors">Stored tensors that shrink.</param>
/// <param name="Shapes">Shape entries that change.</param>
/// <param name="Attributes">Attributes that change.</param>
/// <param name="Values">Recorded value shapes that change.</param>
public sealed record PruningPlan(
    string Site,
    IReadOnlyList<TensorEdit> Tensors,
    IReadOnlyList<ShapeEdit> Shapes,
    IReadOnlyList<AttributeEdit> Attributes,
    IReadOnlyList<ValueShapeEdit> Values)
{
    private static readonly HashSet<string> PathOps = ["Transpose", "Cast", "Identity", "DequantizeLinear"];

    /// <summary>The first reason the plan cannot be applied to <paramref name="model"/>, or null when it can.</summary>
    public string? Check(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in Tensors)
        {
            if (ResolveTensor(graph, e.Tensor) is not { } proto) return $"'{e.Tensor}' is not a constant tensor.";
            if (!seen.Add(proto.Storage)) return $"tensor '{proto.Storage}' would be edited twice.";
            int rank = proto.Tensor.Dims.Count;
            int axis = e.Axis < 0 ? e.Axis + rank : e.Axis;
            if (axis < 0 || axis >= rank) return $"tensor '{e.Tensor}' has no axis {e.Axis} (shape [{string.Join(", ", proto.Tensor.Dims)}]).";
            if (proto.Tensor.Dims[axis] != e.Length) return $"tensor '{e.Tensor}' has {proto.Tensor.Dims[axis]} entries on axis {axis}, expected {e.Length}.";
            int end = 0;
            foreach (var s in e.Segments)
            {
                if (s.Offset < end || s.Offset + s.OldLength > e.Length) return $"tensor '{e.Tensor}': segment [{s.Offset}, {s.Offset + s.OldLength}) lies outside axis {axis} or overlaps another.";
                if (s.Mix is { } mix && mix.Cols != s.Units) return $"tensor '{e.Tensor}': the correction has {mix.Cols} columns for {s.Units} units.";
                if (s.Mix is null && s.Kept.Any(k => k < 0 || k >= s.Units)) return $"tensor '{e.Tensor}': a kept unit lies outside 0..{s.Units - 1}.";
                end = s.Offset + s.OldLength;
            }
            var type = (OnnxDataType)proto.Tensor.DataType;
            if (!TensorAxis.IsFloating(type))
            {
                if (e.Segments.Any(s => s.Mix is not null)) return $"tensor '{e.Tensor}' is {OnnxDataTypes.Name(type)}: a correction cannot be folded into a quantized tensor.";
                if (OnnxDataTypes.BitsPerElement(type) % 8 != 0) return $"tensor '{e.Tensor}' is {OnnxDataTypes.Name(type)}, whose packed elements cannot be sliced.";
            }
            if (ForeignReader(graph, proto.Storage, e.Readers) is { } other) return $"tensor '{proto.Storage}' is also read by '{other}', outside the site.";
        }
        foreach (var s in Shapes)
            if (GraphQuery.FindNode(graph, s.Slot.Holder) is not { } holder || (s.Slot.Attribute is null && holder.Input.Count <= s.Slot.Input))
                return $"shape holder '{s.Slot.Holder}' of node '{s.Node}' is not in the graph.";
        foreach (var a in Attributes)
            if (GraphQuery.FindNode(graph, a.Node) is null) return $"node '{a.Node}' is not in the graph.";
        return null;
    }

    /// <summary>Applies every edit to <paramref name="model"/> in place.</summary>
    /// <returns>One line per edit.</returns>
    /// <exception cref="InvalidOperationException">The plan cannot be applied (<see cref="Check"/>'s reason); the model is then unchanged.</exception>
    public IReadOnlyList<string> Apply(OnnxModel model)
    {
        if (Check(model) is { } reason) throw new InvalidOperationException($"Pruning '{Site}': {reason}");
        var graph = model.Graph;
        var log = new List<string>();
        foreach (var e in Tensors)
        {
            var (storage, tensor) = ResolveTensor(graph, e.Tensor)!.Value;
            int axis = e.Axis < 0 ? e.Axis + tensor.Dims.Count : e.Axis;
            var edited = TensorAxis.Map(model.Tensor(tensor), axis, e.Segments, storage);
            StoreTensor(graph, storage, edited);
            bool mixed = e.Segments.Any(s => s.Mix is not null);
            log.Add($"{(mixed ? "fold" : "slice")} '{storage}' ({e.Role}) axis {axis}: {e.Length} → {edited.Dims[axis]}");
        }
        foreach (var s in Shapes)
        {
            ShapeSlotEdits.Set(graph, s.Slot, s.Value);
            log.Add($"shape of '{s.Node}': entry → {s.Value}");
        }
        foreach (var a in Attributes)
        {
            var node = GraphQuery.FindNode(graph, a.Node)!;
            var attr = node.Attribute.FirstOrDefault(x => x.Name == a.Attribute);
            if (attr is null) node.Attribute.Add(attr = new AttributeProto { Name = a.Attribute, Type = AttributeProto.Types.AttributeType.Int });
            attr.I = a.Value;
            log.Add($"'{a.Node}'.{a.Attribute} → {a.Value}");
        }
        foreach (var v in Values) SetValueDim(graph, v);
        graph.Invalidate();
        return log;
    }

    /// <summary>The stored constant behind <paramref name="value"/>, following Cast and Identity.</summary>
    private static (string Storage, TensorProto Tensor)? ResolveTensor(OnnxGraph graph, string value)
    {
        for (int depth = 0; depth < 8; depth++)
        {
            if (GraphQuery.ConstantTensor(graph, value) is { } t) return (value, t);
            if (graph.Producer(value) is not { OpType: "Cast" or "Identity" } p) return null;
            value = p.Input[0];
        }
        return null;
    }

    /// <summary>A node reading <paramref name="value"/> (through weight-path ops) that is not one of <paramref name="readers"/>, or null.</summary>
    private static string? ForeignReader(OnnxGraph graph, string value, IReadOnlyList<string> readers)
    {
        foreach (var c in graph.Consumers(value))
        {
            string name = GraphQuery.NameOf(c);
            if (readers.Contains(name)) continue;
            if (PathOps.Contains(c.OpType) && !graph.IsGraphOutput(c.Output[0]))
            {
                if (ForeignReader(graph, c.Output[0], readers) is { } deeper) return deeper;
                continue;
            }
            return name;
        }
        return graph.IsGraphOutput(value) ? "the graph outputs" : null;
    }

    private static void StoreTensor(OnnxGraph graph, string storage, TensorProto edited)
    {
        if (graph.TryGetInitializer(storage, out _))
        {
            graph.ReplaceInitializer(edited);
            return;
        }
        var node = graph.Producer(storage)!; // a Constant node (ResolveTensor found it)
        var attr = node.Attribute.First(a => a.Name == "value");
        edited.Name = attr.T.Name;
        attr.T = edited;
        graph.Invalidate();
    }

    private static void SetValueDim(OnnxGraph graph, ValueShapeEdit v)
    {
        foreach (var info in graph.Proto.Input.Concat(graph.Proto.Output).Concat(graph.Proto.ValueInfo))
        {
            if (info.Name != v.Value || info.Type?.TensorType?.Shape is not { } shape) continue;
            int axis = v.Axis < 0 ? v.Axis + shape.Dim.Count : v.Axis;
            if (axis < 0 || axis >= shape.Dim.Count) continue;
            shape.Dim[axis] = new TensorShapeProto.Types.Dimension { DimValue = v.Size };
        }
    }
}
