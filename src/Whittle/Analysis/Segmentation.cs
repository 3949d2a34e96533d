// The graph as an ordered list of segments, each joined to the next by one boundary value (plus side values such as
// attention masks, position ids and rotary tables, computed before the first boundary and read by later segments).
//
// Boundaries
//   Transformers: what each block reads, then what the last block writes: segments "embedding", "block 0" …
//   "block L−1", "head". Other models: the values through which everything flows at one point of the topological
//   order (residual joins of a CNN), except inside a prunable chain (its producers and consumers must stay in one
//   segment), merged so that every segment holds a weight site; with no such value the whole model is one segment.
//
// Layout (of any model carrying the same boundaries, e.g. one being compressed)
//   Every node depending on boundary b_k and on no later one belongs to segment k + 1; nodes depending on no boundary
//   (the embedding lookup, rotary tables, mask expansion) to segment 0. Nodes depending on no graph input at all
//   (Constant, shape arithmetic on initializers) are copied into each segment that reads them. A valid layout
//   produces b_k in segment k. A segment's inputs are the values it reads from earlier segments or the graph's
//   inputs; what is carried past segment k is every value produced up to k and read after it.

using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Analysis;

/// <summary>The cut of a model's graph into segments run one after the other (see the file header).</summary>
public sealed class Segmentation
{
    private Segmentation(IReadOnlyList<string> boundaries, IReadOnlyList<string> names, string rule)
    {
        Boundaries = boundaries;
        Names = names;
        Rule = rule;
    }

    /// <summary>The boundary values b_0 … b_{K−1}, in order: segment k + 1 starts at b_k.</summary>
    public IReadOnlyList<string> Boundaries { get; }

    /// <summary>One name per segment (K + 1 of them): <c>embedding</c>, <c>block 3</c>, <c>head</c>; <c>segment 2</c> elsewhere.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>How the boundaries were chosen: <c>transformer blocks</c>, <c>single-value cuts</c> or <c>whole model</c>.</summary>
    public string Rule { get; }

    /// <summary>The number of segments.</summary>
    public int Count => Names.Count;

    /// <summary>The whole model as one segment.</summary>
    public static Segmentation Whole { get; } = new([], ["model"], "whole model");

    /// <summary>The segmentation of <paramref name="model"/> (see the file header).</summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="structure">Its structure (blocks, sites, chains).</param>
    public static Segmentation Find(OnnxModel model, ModelStructure structure)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(structure);
        if (structure.Blocks.Count > 0)
        {
            var blocks = structure.Blocks;
            var candidates = blocks.Select(b => (Value: b.Input, Name: $"block {b.Index}")).Append((blocks[^1].Output, "head")).ToList();
            var kept = Valid(model, candidates);
            if (kept.Count > 0)
            {
                List<string> names = ["embedding", .. kept.Select((_, k) => BlockSegmentName(kept, k, blocks.Count))];
                return new Segmentation([.. kept.Select(c => c.Value)], names, "transformer blocks");
            }
        }
        var cuts = Valid(model, SingleValueCuts(model, structure).Select((v, i) => (v, $"segment {i + 1}")).ToList());
        if (cuts.Count == 0) return Whole;
        return new Segmentation([.. cuts.Select(c => c.Value)], [.. Enumerable.Range(0, cuts.Count + 1).Select(i => $"segment {i}")], "single-value cuts");
    }

    /// <summary>A segmentation with the given boundaries (checked against <paramref name="model"/>).</summary>
    /// <exception cref="ArgumentException">A boundary is not produced in the segment before it.</exception>
    public static Segmentation Of(OnnxModel model, IReadOnlyList<string> boundaries)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(boundaries);
        var s = new Segmentation([.. boundaries], [.. Enumerable.Range(0, boundaries.Count + 1).Select(i => $"segment {i}")], "given");
        s.Layout(model);
        return s;
    }

    /// <summary>The segments of <paramref name="model"/> (the original or an edited copy carrying the same boundaries).</summary>
    /// <exception cref="ArgumentException">A boundary is missing, or not produced in the segment before it.</exception>
    public SegmentLayout Layout(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (stages, error) = Stages(model, Boundaries);
        if (error is not null) ThrowHelper.Argument(nameof(model), error);
        return new SegmentLayout(model, this, stages!);
    }

    // "block 2"; "blocks 2–3" where a boundary between them had to be dropped; "head" after the last block.
    private static string BlockSegmentName(List<(string Value, string Name)> kept, int k, int blockCount)
    {
        if (BlockIndex(kept[k].Name) is not { } first) return "head";
        bool last = k + 1 == kept.Count;
        int end = last ? blockCount : BlockIndex(kept[k + 1].Name) ?? blockCount;
        string blocks = end - first > 1 ? $"blocks {first}–{end - 1}" : $"block {first}";
        return last ? blocks + " and head" : blocks;
    }

    private static int? BlockIndex(string name) => name.StartsWith("block ", StringComparison.Ordinal) ? int.Parse(name[6..], System.Globalization.CultureInfo.InvariantCulture) : null;

    /// <summary>The candidates that make a valid layout, dropping the first offender until none is left.</summary>
    private static List<(string Value, string Name)> Valid(OnnxModel model, List<(string Value, string Name)> candidates)
    {
        var list = candidates.DistinctBy(c => c.Value).ToList();
        while (list.Count > 0)
        {
            var (_, error) = Stages(model, [.. list.Select(c => c.Value)], out int bad);
            if (error is null) return list;
            list.RemoveAt(bad);
        }
        return list;
    }

    private static (Dictionary<NodeProto, int>? Stages, string? Error) Stages(OnnxModel model, IReadOnlyList<string> boundaries) =>
        Stages(model, boundaries, out _);

    /// <summary>
    /// Segment − 1 of every node (−1: before the first boundary; <see cref="SegmentLayout.Constant"/>: reads no graph input),
    /// or why the boundaries do not cut the graph in order (with the index of the offending boundary).
    /// </summary>
    private static (Dictionary<NodeProto, int>? Stages, string? Error) Stages(OnnxModel model, IReadOnlyList<string> boundaries, out int bad)
    {
        bad = -1;
        var graph = model.Graph;
        var boundaryIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int k = 0; k < boundaries.Count; k++) boundaryIndex.TryAdd(boundaries[k], k);
        var valueStage = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var i in graph.Inputs)
            if (!graph.TryGetInitializer(i.Name, out _)) valueStage[i.Name] = -1;
        var stages = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        foreach (var node in graph.TopologicalOrder())
        {
            int stage = SegmentLayout.Constant;
            foreach (var r in graph.Reads(node))
                if (valueStage.TryGetValue(r, out int s)) stage = Math.Max(stage, s);
            stages[node] = stage;
            foreach (var o in node.Output)
            {
                if (o.Length == 0) continue;
                if (boundaryIndex.TryGetValue(o, out int k))
                {
                    if (stage != k - 1)
                    {
                        bad = k;
                        return (null, stage == SegmentLayout.Constant
                            ? $"Boundary '{o}' is a constant; segments must be joined by activations."
                            : $"Boundary '{o}' (segment {k + 1} starts there) is produced in segment {stage + 1}, not in segment {k}: the boundaries do not cut the graph in order.");
                    }
                    valueStage[o] = k;
                }
                else if (stage != SegmentLayout.Constant) valueStage[o] = stage;
            }
        }
        for (int k = 0; k < boundaries.Count; k++)
            if (!valueStage.ContainsKey(boundaries[k]))
            {
                bad = k;
                return (null, $"Boundary '{boundaries[k]}' is not a value computed from the graph's inputs.");
            }
        return (stages, null);
    }

    /// <summary>Values through which everything flows at one point of the graph's order, outside prunable chains, one weight site or more apart.</summary>
    private static List<string> SingleValueCuts(OnnxModel model, ModelStructure structure)
    {
        var graph = model.Graph;
        var order = graph.TopologicalOrder();
        var position = new Dictionary<string, int>(StringComparer.Ordinal);
        var constant = new HashSet<string>(graph.InitializerNames, StringComparer.Ordinal);
        var nodeByName = new Dictionary<string, int>(StringComparer.Ordinal);
        var lastRead = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int p = 0; p < order.Count; p++)
        {
            var node = order[p];
            nodeByName.TryAdd(GraphQuery.NameOf(node), p);
            var reads = graph.Reads(node);
            bool isConstant = reads.All(constant.Contains);
            foreach (var r in reads) lastRead[r] = p;
            foreach (var o in node.Output)
            {
                if (o.Length == 0) continue;
                if (isConstant) constant.Add(o);
                else position[o] = p;
            }
        }
        foreach (var i in graph.Inputs) if (!constant.Contains(i.Name)) position[i.Name] = -1;
        foreach (var o in graph.Outputs) lastRead[o.Name] = int.MaxValue;

        var forbidden = new bool[order.Count];
        foreach (var chain in structure.Chains)
        {
            var ends = chain.Producers.Concat(chain.Consumers).Where(nodeByName.ContainsKey).Select(n => nodeByName[n]).ToList();
            if (ends.Count == 0) continue;
            for (int p = ends.Min(); p < ends.Max(); p++) forbidden[p] = true;
        }
        var sites = new bool[order.Count];
        foreach (var name in structure.LinearSites.Select(s => s.Name).Concat(structure.ConvSites.Select(s => s.Name)))
            if (nodeByName.TryGetValue(name, out int p)) sites[p] = true;

        // Sweep: the live set after node p holds values produced at or before p and read after it.
        var born = new List<string>[order.Count + 1];
        var dies = new List<string>[order.Count + 1];
        foreach (var (v, p) in position)
        {
            int last = lastRead.GetValueOrDefault(v, p);
            if (last <= p) continue;
            (born[p + 1] ??= []).Add(v);
            if (last < order.Count) (dies[last] ??= []).Add(v);
        }
        var live = new HashSet<string>(StringComparer.Ordinal);
        var cuts = new List<(int Position, string Value)>();
        for (int p = 0; p <= order.Count; p++)
        {
            if (born[p] is { } b) live.UnionWith(b);
            if (p > 0 && p < order.Count && live.Count == 1 && !forbidden[p - 1]) cuts.Add((p - 1, live.First()));
            if (p < order.Count && dies[p] is { } d) live.ExceptWith(d);
        }

        // Keep cuts with a weight site on each side since the last kept cut, and before the end.
        var kept = new List<(int Position, string Value)>();
        int from = 0;
        foreach (var cut in cuts)
            if (Enumerable.Range(from, cut.Position - from + 1).Any(p => sites[p]))
            {
                kept.Add(cut);
                from = cut.Position + 1;
            }
        while (kept.Count > 0 && !Enumerable.Range(kept[^1].Position + 1, order.Count - kept[^1].Position - 1).Any(p => sites[p])) kept.RemoveAt(kept.Count - 1);
        return [.. kept.Select(c => c.Value)];
    }
}

/// <summary>One segment of a layout.</summary>
/// <param name="Index">Its position.</param>
/// <param name="Name">Its name.</param>
/// <param name="Nodes">Its nodes in topological order, with copies of the constant nodes it reads.</param>
/// <param name="Inputs">Values it reads from earlier segments or the graph's inputs.</param>
/// <param name="Produced">Non-constant values its nodes produce.</param>
public sealed record Segment(int Index, string Name, IReadOnlyList<NodeProto> Nodes, IReadOnlyList<string> Inputs, IReadOnlySet<string> Produced);

/// <summary>The segments of one model (<see cref="Segmentation.Layout"/>): which node runs where, what each segment reads and what is carried past it.</summary>
public sealed class SegmentLayout
{
    /// <summary>The stage of nodes that read no graph input.</summary>
    internal const int Constant = -2;

    private readonly Dictionary<string, int> _segmentOfNode = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _lastRead = new(StringComparer.Ordinal);

    internal SegmentLayout(OnnxModel model, Segmentation segmentation, Dictionary<NodeProto, int> stages)
    {
        Model = model;
        Segmentation = segmentation;
        var graph = model.Graph;
        var order = graph.TopologicalOrder();
        int count = segmentation.Count;
        var nodes = Enumerable.Range(0, count).Select(_ => new List<NodeProto>()).ToArray();
        var constantProducer = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in order)
        {
            int stage = stages[node];
            if (stage == Constant)
            {
                foreach (var o in node.Output) if (o.Length > 0) constantProducer[o] = node;
                continue;
            }
            nodes[stage + 1].Add(node);
            _segmentOfNode.TryAdd(GraphQuery.NameOf(node), stage + 1);
        }
        var segments = new List<Segment>(count);
        for (int s = 0; s < count; s++)
        {
            var own = nodes[s];
            var produced = own.SelectMany(n => n.Output).Where(o => o.Length > 0).ToHashSet(StringComparer.Ordinal);
            var inputs = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var constants = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
            foreach (var node in own)
                foreach (var r in graph.Reads(node))
                {
                    if (constantProducer.ContainsKey(r)) AddConstant(graph, r, constantProducer, constants);
                    else if (!produced.Contains(r) && !graph.TryGetInitializer(r, out _) && seen.Add(r)) inputs.Add(r);
                    if (!produced.Contains(r)) _lastRead[r] = Math.Max(_lastRead.GetValueOrDefault(r, -1), s);
                }
            // Constant nodes first, in graph order: they read only initializers and each other.
            List<NodeProto> all = [.. order.Where(constants.Contains), .. own];
            segments.Add(new Segment(s, segmentation.Names[s], all, inputs, produced));
        }
        Segments = segments;
    }

    /// <summary>The model laid out.</summary>
    public OnnxModel Model { get; }

    /// <summary>The segmentation.</summary>
    public Segmentation Segmentation { get; }

    /// <summary>The segments, in order.</summary>
    public IReadOnlyList<Segment> Segments { get; }

    /// <summary>The segment holding the node called <paramref name="node"/> (a site name), or −1 (a constant node, or none).</summary>
    public int SegmentOf(string node) => _segmentOfNode.TryGetValue(node, out int s) ? s : -1;

    /// <summary>Whether a later segment than <paramref name="segment"/> reads <paramref name="value"/>.</summary>
    public bool ReadAfter(string value, int segment) => _lastRead.GetValueOrDefault(value, -1) > segment;

    private static void AddConstant(OnnxGraph graph, string value, Dictionary<string, NodeProto> producers, HashSet<NodeProto> into)
    {
        if (!producers.TryGetValue(value, out var node) || !into.Add(node)) return;
        foreach (var r in graph.Reads(node)) AddConstant(graph, r, producers, into);
    }
}
