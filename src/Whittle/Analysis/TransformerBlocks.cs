using Whittle.Onnx.Proto;

namespace Whittle.Analysis;

/// <summary>The normalization in front of a sub-block.</summary>
public enum NormKind
{
    /// <summary>None: the projections read the residual stream directly.</summary>
    None,

    /// <summary>LayerNormalization (the op, or its exported ReduceMean/Sub/Pow/Sqrt/Div form).</summary>
    LayerNorm,

    /// <summary>RMSNorm (SimplifiedLayerNormalization, RMSNormalization, or the exported Pow/ReduceMean/Add/Sqrt/Div/Mul form).</summary>
    RmsNorm,

    /// <summary>Something else.</summary>
    Other,
}

/// <summary>A normalization in front of a sub-block.</summary>
/// <param name="Kind">Which normalization.</param>
/// <param name="Input">The value normalized (the residual stream for pre-norm blocks).</param>
/// <param name="Output">The normalized value the projections read.</param>
/// <param name="Node">The normalization node (the op, or the last node of its exported form), or null.</param>
/// <param name="Scale">The scale (gamma) constant, where found.</param>
public sealed record NormInfo(NormKind Kind, string Input, string Output, string? Node, string? Scale);

/// <summary>A residual stream: a chain of Add nodes each adding a branch to the previous stream value.</summary>
/// <param name="Start">The stream value before the first Add (the embedding output).</param>
/// <param name="AddNodes">The residual Add nodes, in order.</param>
/// <param name="Values">The stream value after each Add.</param>
public sealed record ResidualStream(string Start, IReadOnlyList<string> AddNodes, IReadOnlyList<string> Values);

/// <summary>A self-attention sub-block.</summary>
/// <param name="Residual">The residual Add that adds it to the stream.</param>
/// <param name="Norm">The normalization its projections read.</param>
/// <param name="Q">The query projection site, or null (fused or not found).</param>
/// <param name="K">The key projection site, or null.</param>
/// <param name="V">The value projection site, or null.</param>
/// <param name="FusedQkv">A fused Q/K/V projection site (split afterwards), or null.</param>
/// <param name="Output">The output projection site, or null.</param>
/// <param name="Heads">Query heads (0 when no head Reshape was found).</param>
/// <param name="KvHeads">Key/value heads (fewer than <paramref name="Heads"/> for grouped-query attention).</param>
/// <param name="HeadSize">Size of one head.</param>
public sealed record AttentionInfo(string Residual, NormInfo Norm, string? Q, string? K, string? V, string? FusedQkv, string? Output,
    int Heads, int KvHeads, int HeadSize)
{
    /// <summary>Query heads per key/value head (1 for plain multi-head attention).</summary>
    public int KvGroupSize => KvHeads > 0 ? Heads / KvHeads : 0;
}

/// <summary>An MLP (feed-forward) sub-block.</summary>
/// <param name="Residual">The residual Add that adds it to the stream.</param>
/// <param name="Norm">The normalization its first projections read.</param>
/// <param name="FirstProjections">Sites reading the normalized input (gate and up, or the single first projection).</param>
/// <param name="Gate">The gate projection of a gated MLP, or null.</param>
/// <param name="Up">The up projection (the first projection of a plain MLP), or null.</param>
/// <param name="Down">The down (last) projection, or null.</param>
public sealed record MlpInfo(string Residual, NormInfo Norm, IReadOnlyList<string> FirstProjections, string? Gate, string? Up, string? Down);

/// <summary>A transformer block: attention and/or MLP sub-blocks on the residual stream.</summary>
/// <param name="Index">0-based position.</param>
/// <param name="Input">The stream value entering the block (hidden state <c>h_{l−1}</c>).</param>
/// <param name="Output">The stream value leaving it (hidden state <c>h_l</c>).</param>
/// <param name="Attention">The attention sub-block, or null.</param>
/// <param name="Mlp">The MLP sub-block, or null.</param>
public sealed record TransformerBlock(int Index, string Input, string Output, AttentionInfo? Attention, MlpInfo? Mlp);

/// <summary>Finds the residual stream, its blocks, attention and MLP sub-blocks.</summary>
internal sealed class TransformerFinder(GraphQuery q, IReadOnlyList<LinearSite> linear, Dictionary<string, NodeProto> siteNodes)
{
    private sealed record Residual(NodeProto Add, string Skip, string Branch);

    public ResidualStream? Stream { get; private set; }

    public List<TransformerBlock> Blocks { get; } = [];

    /// <summary>What the analysis could not link, for <see cref="ModelStructure.Warnings"/>.</summary>
    public List<string> Warnings { get; } = [];

    private readonly Dictionary<NodeProto, LinearSite> _sites = linear.ToDictionary<LinearSite, NodeProto, LinearSite>(s => siteNodes[s.Name], s => s, ReferenceEqualityComparer.Instance);

    public void Run()
    {
        var residuals = new List<Residual>();
        foreach (var n in q.Order)
        {
            if (n.OpType != "Add" || n.Input.Count != 2 || q.IsConstant(n.Input[0]) || q.IsConstant(n.Input[1])) continue;
            string a = n.Input[0], b = n.Input[1];
            Residual? r = q.DependsOn(b, a) ? new(n, a, b) : q.DependsOn(a, b) ? new(n, b, a) : null;
            if (r is not null && Cone(r.Branch, [r.Skip]).Where(_sites.ContainsKey).Any(n => ReadsStream(_sites[n], r.Skip))) residuals.Add(r);
        }
        if (residuals.Count == 0) return;
        Residual? Next(Residual r)
        {
            // Post-norm blocks (BERT) normalize the sum before the next block reads it: step over the norm.
            foreach (var c in residuals)
                if (c.Skip == r.Add.Output[0] || NormalizationOf(c.Skip, r.Add.Output[0]) is not NormKind.None) return c;
            return null;
        }
        var nexts = residuals.Select(Next).Where(x => x is not null).ToHashSet();
        List<Residual> best = [];
        foreach (var head in residuals.Where(r => !nexts.Contains(r)))
        {
            var chain = new List<Residual>();
            for (var r = head; r is not null && chain.Count <= residuals.Count; r = Next(r)) chain.Add(r);
            if (chain.Count > best.Count) best = chain;
        }
        if (best.Count < residuals.Count)
            Warnings.Add($"found {best.Count} of {residuals.Count} residual adds on one stream ({residuals.Count - best.Count} not linked to it, "
                + "e.g. through a normalization or op the analysis does not recognize): blocks off the stream are not compressed as blocks.");
        var streamValues = new HashSet<string>(best.Select(r => r.Skip).Concat(best.Select(r => r.Add.Output[0])));
        Stream = new ResidualStream(best[0].Skip, [.. best.Select(r => GraphQuery.NameOf(r.Add))], [.. best.Select(r => r.Add.Output[0])]);

        AttentionInfo? pendingAttn = null;
        string? pendingInput = null, pendingOutput = null;
        foreach (var r in best)
        {
            var cone = Cone(r.Branch, streamValues);
            bool attention = cone.Any(n => n.OpType == "Softmax" || (n.OpType == "MatMul" && !_sites.ContainsKey(n)));
            if (attention)
            {
                if (pendingAttn is not null) Blocks.Add(new(Blocks.Count, pendingInput!, pendingOutput!, pendingAttn, null));
                pendingAttn = Attention(r, cone);
                pendingInput = r.Skip;
                pendingOutput = r.Add.Output[0];
            }
            else
            {
                var mlp = Mlp(r, cone);
                Blocks.Add(new(Blocks.Count, pendingInput ?? r.Skip, r.Add.Output[0], pendingAttn, mlp));
                pendingAttn = null;
                pendingInput = null;
            }
        }
        if (pendingAttn is not null) Blocks.Add(new(Blocks.Count, pendingInput!, best[^1].Add.Output[0], pendingAttn, null));
    }

    /// <summary>
    /// Whether <paramref name="site"/> reads <paramref name="stream"/> itself, through its normalization, or through a few
    /// one-input ops (a reshape, BatchNormalization, an activation): what tells a residual Add from one that adds, say, an attention
    /// mask to scores that merely depend on it through earlier blocks.
    /// </summary>
    private bool ReadsStream(LinearSite site, string stream)
    {
        string v = site.Input;
        for (int step = 0; step < 4; step++)
        {
            if (v == stream || NormalizationOf(v, stream) is not NormKind.None) return true;
            if (q.Graph.Producer(v) is not { } p) return false;
            var live = p.OpType is "Reshape" or "Squeeze" or "Unsqueeze" or "Flatten" or "Transpose"
                ? [p.Input[0]] : p.Input.Where(i => i.Length > 0 && !q.IsConstant(i)).ToList();
            if (live.Count != 1) return false;
            v = live[0];
        }
        return false;
    }

    /// <summary>Nodes computing <paramref name="value"/>, walking back until a stop value, a constant or a graph input.</summary>
    private List<NodeProto> Cone(string value, ICollection<string> stops)
    {
        var nodes = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var seen = new HashSet<string>();
        var stack = new Stack<string>();
        stack.Push(value);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (!seen.Add(v) || stops.Contains(v)) continue;
            if (q.Graph.Producer(v) is not { } p || p.OpType == "Constant") continue;
            if (!nodes.Add(p)) continue;
            foreach (var i in p.Input.Where(i => i.Length > 0 && q.ConstantTensor(i) is null)) stack.Push(i);
        }
        return [.. nodes.OrderBy(q.Position)];
    }

    private AttentionInfo Attention(Residual r, List<NodeProto> cone)
    {
        var inCone = new HashSet<NodeProto>(cone, ReferenceEqualityComparer.Instance);
        var sites = cone.Where(_sites.ContainsKey).Select(n => _sites[n]).ToList();
        var softmaxOuts = cone.Where(n => n.OpType == "Softmax").Select(n => n.Output[0]).ToList();
        var actMatMuls = cone.Where(n => n.OpType == "MatMul" && !_sites.ContainsKey(n)).ToList();
        bool IsContext(NodeProto m) => softmaxOuts.Any(s => q.DependsOn(m.Input[0], s));
        string? qs = null, ks = null, vs = null, fused = null;
        foreach (var s in sites)
        {
            var hits = new HashSet<string>();
            foreach (var (m, idx) in ReachMatMuls(s.Output, inCone, actMatMuls))
                hits.Add(IsContext(m) ? (idx == 1 ? "V" : "?") : idx == 0 ? "Q" : "K");
            if (hits.SetEquals(["Q", "K", "V"])) fused ??= s.Name;
            else if (hits.SetEquals(["Q"])) qs ??= s.Name;
            else if (hits.SetEquals(["K"])) ks ??= s.Name;
            else if (hits.SetEquals(["V"])) vs ??= s.Name;
        }
        var used = new HashSet<string?> { qs, ks, vs, fused };
        string? output = sites.Where(s => !used.Contains(s.Name)).Select(s => s.Name).LastOrDefault();
        var first = sites.FirstOrDefault(s => s.Name == (qs ?? fused)) ?? sites.FirstOrDefault();
        var norm = Norm(first?.Input ?? r.Skip, r.Skip);
        var (h, d) = qs is not null ? Heads(qs, inCone) : fused is not null ? Heads(fused, inCone) : (0, 0);
        int kvh = h;
        if (ks is not null && Heads(ks, inCone) is var (hk, dk) && hk > 0) kvh = hk;
        if (fused is not null && d > 0 && h > 0)
        {
            int total = Site(fused).OutFeatures / d;
            if (total > h && (total - h) % 2 == 0) kvh = (total - h) / 2;
        }
        return new AttentionInfo(GraphQuery.NameOf(r.Add), norm, qs, ks, vs, fused, output, h, kvh, d);
    }

    private LinearSite Site(string name) => _sites.Values.First(s => s.Name == name);

    /// <summary>Activation MatMuls reached forward from <paramref name="value"/> (without crossing another), with the operand index reached.</summary>
    private List<(NodeProto MatMul, int Index)> ReachMatMuls(string value, HashSet<NodeProto> inCone, List<NodeProto> actMatMuls)
    {
        var found = new List<(NodeProto, int)>();
        var seen = new HashSet<string>();
        var stack = new Stack<string>();
        stack.Push(value);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (!seen.Add(v)) continue;
            foreach (var c in q.Graph.Consumers(v))
            {
                if (!inCone.Contains(c) || _sites.ContainsKey(c)) continue;
                if (actMatMuls.Contains(c))
                {
                    for (int i = 0; i < 2; i++) if (c.Input[i] == v) found.Add((c, i));
                    continue;
                }
                foreach (var o in c.Output) stack.Push(o);
            }
        }
        return found;
    }

    /// <summary>Heads and head size from the first Reshape to [B, S, heads, head_dim] after a projection.</summary>
    private (int Heads, int HeadSize) Heads(string siteName, HashSet<NodeProto> inCone)
    {
        var site = Site(siteName);
        var queue = new Queue<(string, int)>();
        queue.Enqueue((site.Output, 0));
        var seen = new HashSet<string>();
        while (queue.Count > 0)
        {
            var (v, depth) = queue.Dequeue();
            if (!seen.Add(v) || depth > 6) continue;
            foreach (var c in q.Graph.Consumers(v))
            {
                if (!inCone.Contains(c) || _sites.ContainsKey(c) || c.OpType == "MatMul") continue;
                if (c.OpType == "Reshape" && c.Input[0] == v)
                {
                    int width = q.Shape(v) is { Length: > 0 } sv ? sv[^1] : site.OutFeatures;
                    var target = q.ShapeOperand(c.Input[1]);
                    if (target is { Length: 4 } && target[2] is { } h && target[3] is { } d)
                    {
                        if (h > 0 && d > 0) return ((int)h, (int)d);
                        if (h == -1 && d > 0) return ((int)(width / d), (int)d);
                        if (d == -1 && h > 0) return ((int)h, (int)(width / h));
                    }
                    if (q.Shape(c.Output[0]) is { Length: 4 } s) return (s[2], s[3]);
                    continue;
                }
                foreach (var o in c.Output) queue.Enqueue((o, depth + 1));
            }
        }
        return (0, 0);
    }

    private MlpInfo Mlp(Residual r, List<NodeProto> cone)
    {
        var sites = cone.Where(_sites.ContainsKey).Select(n => _sites[n]).ToList();
        if (sites.Count == 0) return new MlpInfo(GraphQuery.NameOf(r.Add), Norm(r.Skip, r.Skip), [], null, null, null);
        string input = sites[0].Input;
        var firsts = sites.Where(s => s.Input == input).ToList();
        var down = sites.Count > firsts.Count ? sites[^1] : null;
        string? gate = null, up = null;
        if (firsts.Count == 2)
        {
            var inCone = new HashSet<NodeProto>(cone, ReferenceEqualityComparer.Instance);
            bool HasActivation(LinearSite s)
            {
                var stack = new Stack<string>([s.Output]);
                var seen = new HashSet<string>();
                while (stack.Count > 0)
                {
                    var v = stack.Pop();
                    if (!seen.Add(v)) continue;
                    foreach (var c in q.Graph.Consumers(v))
                    {
                        if (!inCone.Contains(c) || _sites.ContainsKey(c)) continue;
                        if (ChannelRules.IsActivation(c.OpType)) return true;
                        if (c.OpType == "Mul" && c.Input.All(i => !q.IsConstant(i)) && !c.Input.All(i => q.DependsOn(i, s.Output))) continue;
                        foreach (var o in c.Output) stack.Push(o);
                    }
                }
                return false;
            }
            bool a0 = HasActivation(firsts[0]), a1 = HasActivation(firsts[1]);
            if (a0 != a1) (gate, up) = a0 ? (firsts[0].Name, firsts[1].Name) : (firsts[1].Name, firsts[0].Name);
        }
        else if (firsts.Count == 1) up = firsts[0].Name;
        return new MlpInfo(GraphQuery.NameOf(r.Add), Norm(input, r.Skip), [.. firsts.Select(s => s.Name)], gate, up, down?.Name);
    }

    /// <summary>Classifies the normalization producing <paramref name="normalized"/> from the stream value <paramref name="stream"/>.</summary>
    private NormInfo Norm(string normalized, string stream)
    {
        if (normalized == stream) return new NormInfo(NormKind.None, stream, normalized, null, null);
        var p = q.Graph.Producer(normalized);
        if (p is null) return new NormInfo(NormKind.Other, stream, normalized, null, null);
        string name = GraphQuery.NameOf(p);
        var kind = NormalizationOf(normalized, stream);
        if (kind is NormKind.None) return new NormInfo(NormKind.Other, stream, normalized, name, null);
        if (p.OpType is "LayerNormalization" or "SimplifiedLayerNormalization" or "RMSNormalization" or "SkipSimplifiedLayerNormalization")
            return new NormInfo(kind, p.Input[0], normalized, name, p.Input.Count > 1 ? p.Input[1] : null);
        // The exported form ends in ·γ (+ β): the scale is the Mul's 1-D constant, found behind a final bias Add.
        var mul = p.OpType == "Add" && p.Input.FirstOrDefault(i => !q.IsConstant(i)) is { } x && q.Graph.Producer(x) is { OpType: "Mul" } m ? m : p;
        string? gamma = mul.OpType == "Mul" ? mul.Input.FirstOrDefault(i => q.ConstantDims(i) is { Count: 1 }) : null;
        return new NormInfo(kind, stream, normalized, name, gamma);
    }

    // Ops an exported LayerNorm or RMSNorm is built from (with Casts to and from float32 around it).
    private static readonly HashSet<string> NormOps = ["ReduceMean", "Sub", "Pow", "Mul", "Add", "Sqrt", "Div", "Reciprocal", "Cast"];

    /// <summary>
    /// Which normalization of <paramref name="stream"/> computes <paramref name="normalized"/>: the op, or its exported form
    /// (a handful of arithmetic nodes whose only non-constant input is <paramref name="stream"/>, with a ReduceMean and a
    /// square root or power; a LayerNorm also subtracts the mean). <see cref="NormKind.None"/> when it is not one.
    /// </summary>
    private NormKind NormalizationOf(string normalized, string stream)
    {
        if (q.Graph.Producer(normalized) is not { } p) return NormKind.None;
        if (p.OpType is "LayerNormalization" or "SimplifiedLayerNormalization" or "RMSNormalization")
            return p.Input.Count > 0 && p.Input[0] == stream ? (p.OpType == "LayerNormalization" ? NormKind.LayerNorm : NormKind.RmsNorm) : NormKind.None;
        if (!NormOps.Contains(p.OpType)) return NormKind.None;
        var nodes = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<string>([normalized]);
        bool reachesStream = false;
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (v == stream) { reachesStream = true; continue; }
            if (q.ConstantTensor(v) is not null) continue;
            if (q.Graph.Producer(v) is not { } n || !NormOps.Contains(n.OpType)) return NormKind.None;
            if (!nodes.Add(n)) continue;
            if (nodes.Count > 14) return NormKind.None;
            foreach (var i in n.Input.Where(i => i.Length > 0)) stack.Push(i);
        }
        var ops = nodes.Select(n => n.OpType).ToHashSet();
        if (!reachesStream || !ops.Contains("ReduceMean") || !(ops.Contains("Sqrt") || ops.Contains("Pow") || ops.Contains("Reciprocal")))
            return NormKind.None;
        // A LayerNorm centres its input: Sub(x, ReduceMean(x)).
        bool centres = nodes.Any(n => n.OpType == "Sub" && q.Graph.Producer(n.Input[1]) is { OpType: "ReduceMean" });
        return centres ? NormKind.LayerNorm : NormKind.RmsNorm;
    }
}
