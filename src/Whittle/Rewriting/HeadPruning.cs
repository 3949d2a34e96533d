// Attention-head pruning: the plan that removes whole head groups of a self-attention block found by the head-axis walk
// (Analysis.AttentionHeadWalk): slice the rows of Q/K/V (or the three parts of a fused QKV weight) and their biases to
// the kept groups, fold the correction M (k·g·d × G·g·d) into W_O's input axis (W_O ← W_O·Mᵀ; kept columns when M is
// null), set every shape slot the walk found, and update recorded shapes.

using Whittle.Analysis;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Rewriting;

/// <summary>Builds the <see cref="PruningPlan"/>s of attention blocks found by <see cref="AttentionHeadWalk"/>.</summary>
public static class HeadPruning
{
    /// <summary>The plan keeping <paramref name="selection"/> of the block's <paramref name="groups"/> current groups.</summary>
    /// <param name="context">Model, structure and shapes.</param>
    /// <param name="heads">The block (from <see cref="AttentionHeadWalk.Find"/> on the original model).</param>
    /// <param name="groups">The current number of groups (KvHeads, or fewer after earlier pruning).</param>
    /// <param name="selection">Kept groups and the optional least-squares correction M (k·B × <paramref name="groups"/>·B).</param>
    /// <exception cref="ArgumentException">The selection does not fit.</exception>
    public static PruningPlan Plan(PruningContext context, AttentionHeads heads, int groups, UnitSelection selection)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(heads);
        ArgumentNullException.ThrowIfNull(selection);
        ChannelPruning.CheckSelection(selection with { Interpolation = null }, groups, heads.Name);
        int k = selection.Kept.Length, b = heads.GroupSize, d = heads.HeadSize;
        if (selection.Interpolation is { } m && (m.Rows != k * b || m.Cols != groups * b))
            ThrowHelper.ShapeMismatch(nameof(selection), $"'{heads.Name}': the correction", $"{k * b} × {groups * b}", $"{m.Rows} × {m.Cols}");
        var sites = context.Structure.LinearSites.ToDictionary(s => s.Name);
        var tensors = new List<TensorEdit>();

        void Producer(string siteName, params (int Offset, int Unit)[] parts)
        {
            var s = sites[siteName];
            string[] readers = s.BiasNode is { } bn ? [s.Name, bn] : [s.Name];
            var segments = parts.Select(p => new AxisSegment(p.Offset, groups, p.Unit, selection.Kept, null)).ToList();
            int length = parts.Sum(p => groups * p.Unit);
            tensors.Add(new TensorEdit(s.Weight.Initializer, s.StoredOutAxis, length, segments, SliceRole.ProducerWeight, readers));
            if (s.Bias is not null) tensors.Add(new TensorEdit(s.Bias, -1, length, segments, SliceRole.ProducerBias, readers));
        }

        if (heads.Fused is { } fused) Producer(fused, (0, b), (groups * b, d), (groups * b + groups * d, d));
        else
        {
            Producer(heads.Q!, (0, b));
            Producer(heads.K!, (0, d));
            Producer(heads.V!, (0, d));
        }
        var o = sites[heads.Output];
        var keptEntries = selection.Kept.SelectMany(g => Enumerable.Range(g * b, b)).ToArray();
        var consumer = selection.Interpolation is { } mix
            ? new AxisSegment(0, groups * b, 1, keptEntries, mix)
            : new AxisSegment(0, groups, b, selection.Kept, null);
        tensors.Add(new TensorEdit(o.Weight.Initializer, 1 - o.StoredOutAxis, groups * b, [consumer], SliceRole.ConsumerWeight, [o.Name]));
        var shapes = heads.Slots.Select(s => new ShapeEdit(s.Node, s.Slot, s.PerGroup * k)).ToList();
        var values = heads.Values.Select(v => new ValueShapeEdit(v.Value, v.Axis, v.PerGroup * k)).ToList();
        return new PruningPlan(heads.Name, tensors, shapes, [], values);
    }
}
