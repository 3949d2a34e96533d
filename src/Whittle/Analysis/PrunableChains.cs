using Whittle.Onnx.Proto;

namespace Whittle.Analysis;

/// <summary>The kind of a prunable chain.</summary>
public enum ChainKind
{
    /// <summary>Fully connected: linear → [bias] → elementwise ops → linear; neurons on the last axis.</summary>
    Linear,

    /// <summary>Gated MLP: <c>Mul(act(gate), up) → down</c>; gate and up rows are kept together. <see cref="PrunableChain.Producers"/> lists the gate first.</summary>
    GatedLinear,

    /// <summary>Convolution channels: Conv → [BatchNormalization] → activation → [pooling] → Conv; channels on axis 1 (NCHW).</summary>
    Conv,

    /// <summary>Convolution channels crossing the flatten boundary into a fully connected layer (channel-major, <see cref="PrunableChain.ChannelFactor"/> = H·W).</summary>
    ConvToLinear,
}

/// <summary>What a sliced tensor is to the chain.</summary>
public enum SliceRole
{
    /// <summary>A producer's weight: keep the rows (output features/channels) kept.</summary>
    ProducerWeight,

    /// <summary>A producer's bias.</summary>
    ProducerBias,

    /// <summary>A per-axis DequantizeLinear scale or zero point of a producer's weight.</summary>
    QuantizationParameter,

    /// <summary>A per-channel parameter of an op between producer and consumer (BatchNorm scale/bias/mean/var, PRelu slope, a per-channel constant, a depthwise conv).</summary>
    PerChannelParameter,

    /// <summary>A consumer's weight: the input features; the interpolation matrix is folded in here.</summary>
    ConsumerWeight,
}

/// <summary>An op of the chain between producer(s) and consumer(s).</summary>
/// <param name="Node">Node name (its first output where it has none).</param>
/// <param name="OpType">Op type.</param>
public sealed record ChainOp(string Node, string OpType);

/// <summary>A stored tensor that shrinks with the chain's channels.</summary>
/// <param name="Tensor">The initializer (or constant) name.</param>
/// <param name="Axis">The axis of the stored tensor that indexes the chain's channels.</param>
/// <param name="Role">What the tensor is to the chain.</param>
/// <param name="Owner">The site or node that reads it.</param>
/// <param name="Factor">Entries per channel along <paramref name="Axis"/>: 1, or H·W at the flatten boundary (channel <c>c</c> owns entries <c>c·Factor … (c+1)·Factor − 1</c>).</param>
public sealed record SliceTarget(string Tensor, int Axis, SliceRole Role, string Owner, int Factor);

/// <summary>
/// A set of neurons/channels that can be removed together: rows of the producer(s), columns of the
/// consumer(s), and every per-channel tensor in between.
/// </summary>
/// <param name="Id">The first producer's name.</param>
/// <param name="Kind">Chain kind.</param>
/// <param name="Producers">Producer site names (gate first for a gated MLP).</param>
/// <param name="Consumers">Consumer site names.</param>
/// <param name="Ops">Ops between producers and consumers, in topological order.</param>
/// <param name="Channels">The number of prunable neurons/channels <c>h</c>.</param>
/// <param name="ChannelAxis">The channel axis of <see cref="Activation"/>: −1 (last) for fully connected, 1 for NCHW.</param>
/// <param name="ChannelFactor">1, or H·W where a Flatten/Reshape turns each channel into H·W consecutive consumer inputs.</param>
/// <param name="Activation">The value whose columns are the neurons (<c>Z</c>: after the nonlinearity and per-channel ops, before the consumers or the flatten).</param>
/// <param name="SliceTogether">Every tensor that shrinks with the channels.</param>
/// <remarks>
/// A residual stream of a CNN is one chain: walking a producer's channels into a residual <c>Add</c>, the other operand's
/// writer (a convolution, through per-channel ops: a block's last conv + BN, or a projection shortcut) joins as another
/// producer, so one channel set runs through the stem, every block's output and every reader of the stream.
/// </remarks>
public sealed record PrunableChain(
    string Id,
    ChainKind Kind,
    IReadOnlyList<string> Producers,
    IReadOnlyList<string> Consumers,
    IReadOnlyList<ChainOp> Ops,
    int Channels,
    int ChannelAxis,
    int ChannelFactor,
    string Activation,
    IReadOnlyList<SliceTarget> SliceTogether)
{
    /// <summary>
    /// The values whose rows together are Z: <see cref="Activation"/>, or for a residual stream every value its consumers read
    /// (the stream at each of its join points), stacked.
    /// </summary>
    public IReadOnlyList<string> Activations { get; init; } = [Activation];

    /// <summary>Whether the chain is a residual stream: several producers whose outputs are summed (residual Adds), one channel set for all.</summary>
    public bool IsStream { get; init; }
}

/// <summary>A candidate producer whose output channels cannot be pruned, and why.</summary>
/// <param name="Producer">The site name.</param>
/// <param name="Reason">Why (one sentence naming the op or value at fault).</param>
/// <param name="Node">The node where the walk stopped, or null.</param>
public sealed record RejectedChain(string Producer, string Reason, string? Node);

/// <summary>
/// Finds prunable chains by walking each candidate producer's output forward in topological order,
/// applying <see cref="ChannelRules"/> to every node that reads a value carrying the channel axis.
/// </summary>
internal sealed class ChainFinder
{
    private readonly GraphQuery _q;
    private readonly Dictionary<string, NodeProto> _siteNodes;
    private readonly Dictionary<NodeProto, LinearSite> _linearByNode = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, ConvSite> _convByNode = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, LinearSite> _linearByOutput = [];
    private readonly Dictionary<string, ConvSite> _convByOutput = [];
    private readonly HashSet<string> _claimed = [];

    private readonly bool _streams;

    /// <param name="q">The graph.</param>
    /// <param name="linear">Its linear sites.</param>
    /// <param name="conv">Its convolution sites.</param>
    /// <param name="siteNodes">Each site's node.</param>
    /// <param name="streams">Join a CNN's residual Adds into one stream chain rather than rejecting them.</param>
    public ChainFinder(GraphQuery q, IReadOnlyList<LinearSite> linear, IReadOnlyList<ConvSite> conv, Dictionary<string, NodeProto> siteNodes, bool streams = false)
    {
        _q = q;
        _streams = streams;
        _siteNodes = siteNodes;
        foreach (var s in linear)
        {
            _linearByNode[siteNodes[s.Name]] = s;
            _linearByOutput.TryAdd(s.Output, s);
        }
        foreach (var s in conv)
        {
            _convByNode[siteNodes[s.Name]] = s;
            _convByOutput.TryAdd(s.Output, s);
        }
    }

    public List<PrunableChain> Chains { get; } = [];

    public List<RejectedChain> Rejected { get; } = [];

    public SortedSet<string> Warnings { get; } = new(StringComparer.Ordinal);

    public void Run()
    {
        var candidates = _q.Order.Where(n => _linearByNode.ContainsKey(n) || _convByNode.ContainsKey(n)).ToList();
        foreach (var node in candidates)
        {
            string name = GraphQuery.NameOf(node);
            if (_claimed.Contains(name)) continue;
            if (_linearByNode.TryGetValue(node, out var l))
            {
                if (l.WeightIsLeftOperand) Rejected.Add(new(name, "The weight is the left MatMul operand (W·x): features lie on the second-to-last axis, which chain pruning does not handle.", name));
                else Walk(node, l.Output, l.OutFeatures, conv: false);
            }
            else
            {
                var c = _convByNode[node];
                if (c.Groups != 1) Rejected.Add(new(name, $"A grouped convolution (group = {c.Groups}) does not own its output channels independently of its input channels.", name));
                else Walk(node, c.Output, c.OutChannels, conv: true);
            }
        }
        // A chain's partner claimed after it was rejected on its own: drop the stale rejection.
        Rejected.RemoveAll(r => _claimed.Contains(r.Producer));
    }

    private void Walk(NodeProto producerNode, string start, int channels, bool conv)
    {
        string producer = GraphQuery.NameOf(producerNode);
        var reached = new HashSet<string> { start };
        var ops = new List<ChainOp>();
        var slices = new List<SliceTarget>();
        var consumers = new List<(string Name, string Tensor, int Axis)>();
        var consumerInputs = new List<string>();
        var producers = new List<string> { producer };
        bool stream = false;
        string? partner = null;
        bool partnerIsGate = false, flattened = false;
        string activation = start;
        int? factor = null;
        AddProducerSlices(producer, slices);

        bool Reject(string reason, NodeProto? at)
        {
            Rejected.Add(new(producer, reason, at is null ? null : GraphQuery.NameOf(at)));
            return false;
        }

        bool Reach(string value, NodeProto from)
        {
            if (_q.Graph.IsGraphOutput(value)) return Reject($"'{value}' carries the channels and is a graph output.", from);
            reached.Add(value);
            return true;
        }

        if (_q.Graph.IsGraphOutput(start))
        {
            Reject($"The output '{start}' is a graph output.", null);
            return;
        }
        int from = _q.Position(producerNode) + 1;
        for (int i = from; i < _q.Order.Count; i++)
        {
            var node = _q.Order[i];
            var hits = node.Input.Where(reached.Contains).ToList();
            if (hits.Count == 0) continue;
            string nodeName = GraphQuery.NameOf(node);
            if (_linearByNode.TryGetValue(node, out var ls) && hits.Count == 1 && hits[0] == ls.Input)
            {
                if (ls.WeightIsLeftOperand) { Reject($"Consumer '{ls.Name}' has its weight on the left (W·x).", node); return; }
                if (conv && !flattened) { Reject($"Fully connected layer '{ls.Name}' reads the convolution channels without a Flatten.", node); return; }
                int f = factor ?? (flattened ? ls.InFeatures / channels : 1);
                if (ls.InFeatures != channels * f || f < 1)
                {
                    Reject($"Consumer '{ls.Name}' reads {ls.InFeatures} features, not {channels}{(flattened ? " × H·W" : "")}.", node);
                    return;
                }
                factor = f;
                consumers.Add((ls.Name, ls.Weight.Initializer, 1 - ls.StoredOutAxis));
                consumerInputs.Add(flattened ? activation : hits[0]);
                continue;
            }
            if (_convByNode.TryGetValue(node, out var cs) && hits.Count == 1 && hits[0] == cs.Input)
            {
                if (!conv || flattened) { Reject($"Convolution '{cs.Name}' reads a value whose channels are not on axis 1.", node); return; }
                if (cs.IsDepthwise && cs.Groups == channels)
                {
                    ops.Add(new(nodeName, node.OpType));
                    slices.Add(new(cs.Weight.Initializer, 0, SliceRole.PerChannelParameter, cs.Name, 1));
                    if (cs.Bias is not null) slices.Add(new(cs.Bias, 0, SliceRole.PerChannelParameter, cs.Name, 1));
                    if (!Reach(cs.Output, node)) return;
                    activation = cs.Output;
                    continue;
                }
                if (cs.Groups != 1 || cs.InChannels != channels)
                {
                    Reject($"Convolution '{cs.Name}' (group = {cs.Groups}, {cs.InChannels} input channels) cannot drop single input channels of {channels}.", node);
                    return;
                }
                consumers.Add((cs.Name, cs.Weight.Initializer, 1));
                consumerInputs.Add(hits[0]);
                continue;
            }

            var (behavior, why) = ChannelRules.For(node.OpType, out bool known);
            if (!known)
                Warnings.Add($"Unknown op '{node.OpType}' (node '{nodeName}'): channel chains through it are treated as not prunable.");
            switch (behavior)
            {
                case ChannelBehavior.ShapeOnly:
                    continue;
                case ChannelBehavior.Unary:
                    if (hits.Count != 1 || hits[0] != node.Input[0] || node.Input.Skip(1).Any(x => x.Length > 0 && !_q.IsConstant(x)))
                    {
                        Reject($"{node.OpType} '{nodeName}' reads the channels through an operand other than its data input.", node);
                        return;
                    }
                    // ORT's fused GELUs add a bias over the channels first: it shrinks with them.
                    if (node.OpType is "FastGelu" or "BiasGelu" && node.Input.Count > 1 && node.Input[1].Length > 0
                        && !ConstantBroadcasts(node.Input[1], channels, conv && !flattened, nodeName, slices))
                    {
                        Reject($"{node.OpType} '{nodeName}': its bias '{node.Input[1]}' does not broadcast over the channels.", node);
                        return;
                    }
                    break;
                case ChannelBehavior.Binary:
                {
                    if (node.Input.Count != 2) { Reject($"{node.OpType} '{nodeName}' has {node.Input.Count} operands.", node); return; }
                    if (hits.Count == 2) break; // both operands carry the same channels: x·Sigmoid(x), GELU's erf/tanh forms
                    string other = node.Input[0] == hits[0] ? node.Input[1] : node.Input[0];
                    if (_q.IsConstant(other))
                    {
                        if (!ConstantBroadcasts(other, channels, conv && !flattened, nodeName, slices))
                        {
                            Reject($"{node.OpType} '{nodeName}': the constant '{other}' does not broadcast over the channels.", node);
                            return;
                        }
                        break;
                    }
                    if (node.OpType == "Mul" && !conv && partner is null && FindPartner(other, node, channels, producer) is { } p)
                    {
                        partner = p.Site.Name;
                        partnerIsGate = p.Cone.Any(n => ChannelRules.IsActivation(n.OpType)) && !ops.Any(o => ChannelRules.IsActivation(o.OpType));
                        _claimed.Add(partner);
                        producers.Add(partner);
                        AddProducerSlices(partner, slices);
                        ops.AddRange(p.Cone.OrderBy(_q.Position).Select(n => new ChainOp(GraphQuery.NameOf(n), n.OpType)));
                        break;
                    }
                    if (_streams && node.OpType == "Add" && conv && !flattened && StreamWriter(other, node, channels, producer) is { } writer)
                    {
                        // A residual join: the other operand's writer keeps the same channels (one stream).
                        stream = true;
                        _claimed.Add(writer.Site.Name);
                        producers.Add(writer.Site.Name);
                        AddProducerSlices(writer.Site.Name, slices);
                        foreach (var n in writer.Cone)
                        {
                            string opName = GraphQuery.NameOf(n);
                            ops.Add(new(opName, n.OpType));
                            bool perChannel = ChannelRules.For(n.OpType, out _).Item1 == ChannelBehavior.PerChannel;
                            foreach (var param in n.Input.Where(x => x.Length > 0 && _q.IsConstant(x)))
                            {
                                if (perChannel)
                                {
                                    if (_q.ConstantElementCount(param) is > 1) slices.Add(new(param, 0, SliceRole.PerChannelParameter, opName, 1));
                                }
                                else if (!ConstantBroadcasts(param, channels, true, opName, slices))
                                {
                                    Reject($"{n.OpType} '{opName}' on the residual branch has a constant '{param}' that does not broadcast over the channels.", n);
                                    return;
                                }
                            }
                        }
                        break;
                    }
                    string what = node.OpType == "Add"
                        ? $"Add '{nodeName}' sums the channels with another activation '{other}' (a residual or skip connection): they must stay aligned."
                        : $"{node.OpType} '{nodeName}' combines the channels with another activation '{other}'.";
                    Reject(what, node);
                    return;
                }
                case ChannelBehavior.PerChannel:
                    if (hits.Count != 1 || hits[0] != node.Input[0]) { Reject($"{node.OpType} '{nodeName}' reads the channels as a parameter.", node); return; }
                    foreach (var param in node.Input.Skip(1).Where(x => x.Length > 0))
                    {
                        if (!_q.IsConstant(param)) { Reject($"{node.OpType} '{nodeName}' has a non-constant parameter '{param}'.", node); return; }
                        if (_q.ConstantElementCount(param) is > 1) slices.Add(new(param, 0, SliceRole.PerChannelParameter, nodeName, 1));
                    }
                    break;
                case ChannelBehavior.Pool:
                    if (!conv || flattened) { Reject($"{node.OpType} '{nodeName}' pools a value whose channels are not on axis 1.", node); return; }
                    break;
                case ChannelBehavior.Reshape:
                    if (hits[0] != node.Input[0]) { Reject($"{node.OpType} '{nodeName}' reads the channels as its shape.", node); return; }
                    if (conv && !flattened)
                    {
                        bool ok = node.OpType == "Flatten"
                            ? GraphQuery.Int(node, "axis", 1) == 1
                            : _q.ShapeOperand(node.Input[1]) is { Length: 2 } || _q.Shape(node.Output[0]) is { Length: 2 };
                        if (!ok) { Reject($"{node.OpType} '{nodeName}' does not flatten [N, C, …] to [N, C·H·W].", node); return; }
                        flattened = true;
                        activation = node.Input[0];
                        if (_q.Shape(node.Input[0]) is { Length: >= 3 } s) factor = s.Skip(2).Aggregate(1, (a, d) => a * d);
                        ops.Add(new(nodeName, node.OpType));
                        if (!Reach(node.Output[0], node)) return;
                        continue;
                    }
                    if (!KeepsLastAxis(node, channels))
                    {
                        Reject($"{node.OpType} '{nodeName}' mixes the pruned axis with others.", node);
                        return;
                    }
                    break;
                default:
                    Reject($"{node.OpType} '{nodeName}' {why}.", node);
                    return;
            }
            ops.Add(new(nodeName, node.OpType));
            if (!Reach(node.Output[0], node)) return;
            if (!flattened) activation = node.Output[0];
        }
        if (consumers.Count == 0)
        {
            Reject("The channels reach no consuming weight layer.", null);
            return;
        }
        int fac = factor ?? 1;
        foreach (var (name, tensor, axis) in consumers) slices.Add(new(tensor, axis, SliceRole.ConsumerWeight, name, fac));
        if (partnerIsGate) producers.Reverse();
        var kind = partner is not null ? ChainKind.GatedLinear : conv ? (flattened ? ChainKind.ConvToLinear : ChainKind.Conv) : ChainKind.Linear;
        Chains.Add(new PrunableChain(producers[0], kind, producers, [.. consumers.Select(c => c.Name).Distinct()], ops, channels,
            conv ? 1 : -1, fac, activation, slices)
        {
            Activations = stream ? [.. consumerInputs.Distinct()] : [activation],
            IsStream = stream,
        });
    }

    /// <summary>
    /// The writer of a residual branch: <paramref name="other"/> must be computed from the output of exactly one ungrouped
    /// convolution with <paramref name="channels"/> output channels by channel-wise ops (per-channel ones such as
    /// BatchNormalization, unary activations, constants), none of whose values feeds anything else.
    /// </summary>
    private (ConvSite Site, List<NodeProto> Cone)? StreamWriter(string other, NodeProto join, int channels, string producer)
    {
        var cone = new List<NodeProto>();
        string v = other;
        ConvSite? site;
        while (!_convByOutput.TryGetValue(v, out site))
        {
            var p = _q.Graph.Producer(v);
            if (p is null || _q.IsConstant(v)) return null;
            var (b, _) = ChannelRules.For(p.OpType, out _);
            var data = p.Input.Where(i => i.Length > 0 && !_q.IsConstant(i)).ToList();
            if (b is not (ChannelBehavior.Unary or ChannelBehavior.PerChannel or ChannelBehavior.Binary) || data.Count != 1 || data[0] != p.Input[0] && b != ChannelBehavior.Binary)
                return null;
            cone.Insert(0, p);
            v = data[0];
        }
        if (site.Name == producer || site.Groups != 1 || site.OutChannels != channels || _claimed.Contains(site.Name)) return null;
        // Every value from the writer's output to the join feeds only the next op of the branch.
        var next = cone.Append(join).ToList();
        var values = new List<string> { site.Output };
        values.AddRange(cone.Select(n => n.Output[0]));
        for (int i = 0; i < values.Count; i++)
        {
            if (_q.Graph.IsGraphOutput(values[i])) return null;
            var readers = _q.Graph.Consumers(values[i]).ToList();
            if (readers.Count != 1 || !ReferenceEquals(readers[0], next[i])) return null;
        }
        return (site, cone);
    }

    private bool KeepsLastAxis(NodeProto node, int channels)
    {
        if (node.OpType == "Flatten") return false;
        var target = _q.ShapeOperand(node.Input[1]);
        if (target is { Length: > 0 } && target[^1] == channels) return true;
        return _q.Shape(node.Output[0]) is { Length: > 0 } o && o[^1] == channels
            && _q.Shape(node.Input[0]) is { Length: > 0 } i && i[^1] == channels;
    }

    private bool ConstantBroadcasts(string value, int channels, bool conv, string owner, List<SliceTarget> slices)
    {
        var dims = _q.ConstantDims(value);
        if (dims is null) return _q.ConstantElementCount(value) is 1 or null;
        if (dims.Aggregate(1L, (a, d) => a * d) == 1) return true;
        int axis = conv ? dims.Count - 3 : dims.Count - 1; // channel axis of [.., C, H, W] or [.., C]
        for (int k = 0; k < dims.Count; k++)
            if (k != axis && dims[k] != 1) return false;
        if (axis < 0) return false;
        if (dims[axis] == channels)
        {
            slices.Add(new(value, axis, SliceRole.PerChannelParameter, owner, 1));
            return true;
        }
        return dims[axis] == 1;
    }

    private void AddProducerSlices(string siteName, List<SliceTarget> slices)
    {
        var node = _siteNodes[siteName];
        if (_linearByNode.TryGetValue(node, out var l))
        {
            slices.Add(new(l.Weight.Initializer, l.StoredOutAxis, SliceRole.ProducerWeight, l.Name, 1));
            AddQuantization(l.Weight, l.OutFeatures, l.Name, slices);
            if (l.Bias is not null) slices.Add(new(l.Bias, Math.Max(0, (_q.ConstantDims(l.Bias)?.Count ?? 1) - 1), SliceRole.ProducerBias, l.Name, 1));
        }
        else
        {
            var c = _convByNode[node];
            slices.Add(new(c.Weight.Initializer, 0, SliceRole.ProducerWeight, c.Name, 1));
            AddQuantization(c.Weight, c.OutChannels, c.Name, slices);
            if (c.Bias is not null) slices.Add(new(c.Bias, 0, SliceRole.ProducerBias, c.Name, 1));
        }
    }

    private void AddQuantization(WeightSource w, int outCount, string owner, List<SliceTarget> slices)
    {
        foreach (var p in new[] { w.QuantizationScale, w.QuantizationZeroPoint })
            if (p is not null && _q.ConstantElementCount(p) == outCount)
                slices.Add(new(p, 0, SliceRole.QuantizationParameter, owner, 1));
    }

    /// <summary>
    /// The other producer of a gated MLP: <paramref name="other"/> must be computed by elementwise ops from the output of
    /// exactly one linear site of the same width, whose values feed nothing else.
    /// </summary>
    private (LinearSite Site, List<NodeProto> Cone)? FindPartner(string other, NodeProto join, int channels, string producer)
    {
        var cone = new List<NodeProto>();
        var coneValues = new HashSet<string>();
        LinearSite? leaf = null;
        var stack = new Stack<string>();
        stack.Push(other);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (!coneValues.Add(v)) continue;
            if (_linearByOutput.TryGetValue(v, out var site))
            {
                if (leaf is not null && leaf != site) return null;
                leaf = site;
                continue;
            }
            if (_q.IsConstant(v)) continue;
            var p = _q.Graph.Producer(v);
            if (p is null) return null;
            var (b, _) = ChannelRules.For(p.OpType, out _);
            if (b is not (ChannelBehavior.Unary or ChannelBehavior.Binary)) return null;
            if (!cone.Contains(p)) cone.Add(p);
            foreach (var i in p.Input.Where(i => i.Length > 0)) stack.Push(i);
        }
        if (leaf is null || leaf.Name == producer || leaf.WeightIsLeftOperand || leaf.OutFeatures != channels || _claimed.Contains(leaf.Name)) return null;
        var inside = new HashSet<NodeProto>(cone, ReferenceEqualityComparer.Instance) { join };
        foreach (var v in coneValues.Where(v => !_q.IsConstant(v)))
        {
            if (_q.Graph.IsGraphOutput(v)) return null;
            if (_q.Graph.Consumers(v).Any(c => !inside.Contains(c) && !(v == leaf.ProductOutput))) return null;
        }
        return (leaf, cone);
    }
}
