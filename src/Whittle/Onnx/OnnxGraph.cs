using System.Diagnostics.CodeAnalysis;
using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>
/// The main graph of an <see cref="OnnxModel"/>, with the lookups and edits that compression passes
/// need: topological order, producers and consumers of values, initializers (data loaded lazily),
/// unique names, replacing a node by a subgraph, and clean-up. It knows no operator's semantics.
/// </summary>
/// <remarks>
/// Lookups are indexed once and re-indexed after edits made through this class; after editing
/// <see cref="Proto"/> directly, call <see cref="Invalidate"/>. Values read inside subgraphs (If, Loop,
/// Scan bodies) from the enclosing graph count as inputs of the node holding the subgraph.
/// </remarks>
public sealed class OnnxGraph
{
    private readonly OnnxModel _model;
    private readonly HashSet<string> _generatedNames = [];
    private Index? _index;

    internal OnnxGraph(OnnxModel model) => _model = model;

    /// <summary>The graph message (shared).</summary>
    public GraphProto Proto => _model.Proto.Graph;

    /// <summary>The nodes in stored order (ONNX requires it to be topological; <see cref="ReplaceNode"/> keeps it so).</summary>
    public IReadOnlyList<NodeProto> Nodes => Proto.Node;

    /// <summary>Graph inputs.</summary>
    public IReadOnlyList<ValueInfoProto> Inputs => Proto.Input;

    /// <summary>Graph outputs.</summary>
    public IReadOnlyList<ValueInfoProto> Outputs => Proto.Output;

    /// <summary>Names of the initializers, in stored order.</summary>
    public IReadOnlyList<string> InitializerNames => [.. Proto.Initializer.Select(t => t.Name)];

    /// <summary>Forgets the lookups, after <see cref="Proto"/> was edited directly.</summary>
    public void Invalidate() => _index = null;

    private Index Current => _index ??= new Index(Proto);

    /// <summary>The node that produces <paramref name="value"/>, or null for graph inputs, initializers and unknown names.</summary>
    public NodeProto? Producer(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return Current.Producers.GetValueOrDefault(value);
    }

    /// <summary>The nodes that read <paramref name="value"/> (directly or inside their subgraphs), in stored order.</summary>
    public IReadOnlyList<NodeProto> Consumers(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return Current.Consumers.TryGetValue(value, out var list) ? list : [];
    }

    /// <summary>The values <paramref name="node"/> reads: its inputs and what its subgraphs read from this graph (no empty names).</summary>
    /// <exception cref="KeyNotFoundException">The node is not in this graph.</exception>
    public IReadOnlyList<string> Reads(NodeProto node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return Current.Reads.TryGetValue(node, out var reads) ? reads
            : throw new KeyNotFoundException($"Node '{node.Name}' ({node.OpType}) is not in this graph.");
    }

    /// <summary>Whether <paramref name="value"/> is a graph output.</summary>
    public bool IsGraphOutput(string value) => Current.Outputs.Contains(value);

    /// <summary>Whether <paramref name="value"/> is a graph input.</summary>
    public bool IsGraphInput(string value) => Current.Inputs.Contains(value);

    /// <summary>The initializer called <paramref name="name"/>, as a lazy reader of its data.</summary>
    public bool TryGetInitializer(string name, [NotNullWhen(true)] out OnnxTensor? tensor)
    {
        ArgumentNullException.ThrowIfNull(name);
        tensor = Current.Initializers.TryGetValue(name, out var proto) ? _model.Tensor(proto) : null;
        return tensor is not null;
    }

    /// <summary>The initializer called <paramref name="name"/>, as a lazy reader of its data.</summary>
    /// <exception cref="KeyNotFoundException">There is none.</exception>
    public OnnxTensor GetInitializer(string name) => TryGetInitializer(name, out var t)
        ? t
        : throw new KeyNotFoundException($"{OnnxModelException.Describe(_model.FilePath)}: the graph has no initializer '{name}'.");

    /// <summary>Adds an initializer.</summary>
    /// <exception cref="ArgumentException">A value of that name already exists.</exception>
    public void AddInitializer(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (string.IsNullOrEmpty(tensor.Name)) ThrowHelper.Argument(nameof(tensor), "An initializer needs a name.");
        if (Current.IsDefined(tensor.Name))
            ThrowHelper.Argument(nameof(tensor), $"Cannot add initializer '{tensor.Name}': the graph already has a value of that name.");
        Proto.Initializer.Add(tensor);
        Invalidate();
    }

    /// <summary>Replaces the data of an existing initializer (same name), keeping its place.</summary>
    /// <exception cref="KeyNotFoundException">There is no initializer of that name.</exception>
    public void ReplaceInitializer(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        int i = IndexOfInitializer(tensor.Name);
        if (i < 0) throw new KeyNotFoundException($"{OnnxModelException.Describe(_model.FilePath)}: the graph has no initializer '{tensor.Name}'.");
        Proto.Initializer[i] = tensor;
        Invalidate();
    }

    /// <summary>Removes an initializer, and its graph input and value info entries where there are any.</summary>
    /// <returns>Whether there was one.</returns>
    public bool RemoveInitializer(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        int i = IndexOfInitializer(name);
        if (i < 0) return false;
        Proto.Initializer.RemoveAt(i);
        RemoveAll(Proto.Input, v => v.Name == name);
        RemoveAll(Proto.ValueInfo, v => v.Name == name);
        Invalidate();
        return true;
    }

    /// <summary>
    /// A name no value, node or initializer of the graph (subgraphs included) uses and that this method has
    /// not returned before: <paramref name="prefix"/> itself, or <paramref name="prefix"/>_1, _2, ….
    /// </summary>
    public string UniqueName(string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        var used = Current.AllNames;
        string name = prefix;
        for (int k = 1; used.Contains(name) || _generatedNames.Contains(name); k++) name = $"{prefix}_{k}";
        _generatedNames.Add(name);
        return name;
    }

    /// <summary>
    /// The nodes in an order where every node comes after the producers of what it reads (stable:
    /// nodes already in order keep it).
    /// </summary>
    /// <exception cref="OnnxModelException">The graph has a cycle.</exception>
    public IReadOnlyList<NodeProto> TopologicalOrder() => Current.TopologicalOrder(_model.FilePath);

    /// <summary>
    /// Replaces <paramref name="node"/> by <paramref name="replacement"/> nodes and adds
    /// <paramref name="initializers"/>; the node list is then re-sorted topologically. Every output of
    /// <paramref name="node"/> that is read or is a graph output must be produced by the replacement.
    /// </summary>
    /// <exception cref="ArgumentException">The node is not in the graph, a used output is not produced, a name collides, or the result reads undefined values or has a cycle; the graph is then unchanged.</exception>
    public void ReplaceNode(NodeProto node, IReadOnlyList<NodeProto> replacement, IReadOnlyList<TensorProto>? initializers = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(replacement);
        initializers ??= [];
        var index = Current;
        if (!index.Position.TryGetValue(node, out int at))
            ThrowHelper.Argument(nameof(node), $"Node '{node.Name}' ({node.OpType}) is not in the graph.");
        var produced = replacement.SelectMany(n => n.Output).Where(o => o.Length > 0).ToList();
        var producedSet = produced.ToHashSet();
        if (producedSet.Count != produced.Count)
            ThrowHelper.Argument(nameof(replacement), "The replacement produces some value twice.");
        foreach (var output in node.Output.Where(o => o.Length > 0))
            if (!producedSet.Contains(output) && (index.Consumers.ContainsKey(output) || index.Outputs.Contains(output)))
                ThrowHelper.Argument(nameof(replacement), $"The replacement of node '{node.Name}' ({node.OpType}) does not produce '{output}', which the graph uses.");
        var oldOutputs = node.Output.ToHashSet();
        foreach (var name in produced)
            if (!oldOutputs.Contains(name) && index.IsDefined(name))
                ThrowHelper.Argument(nameof(replacement), $"The replacement produces '{name}', which the graph already defines.");
        foreach (var t in initializers)
            if (index.IsDefined(t.Name) || producedSet.Contains(t.Name))
                ThrowHelper.Argument(nameof(initializers), $"Initializer '{t.Name}' collides with a value the graph already defines.");

        var oldNodes = Proto.Node.ToList();
        int oldInitializerCount = Proto.Initializer.Count;
        Proto.Node.Clear();
        Proto.Node.Add(oldNodes.Take(at).Concat(replacement).Concat(oldNodes.Skip(at + 1)));
        Proto.Initializer.Add(initializers);
        Invalidate();
        try
        {
            Current.CheckDefined(_model.FilePath);
            var order = TopologicalOrder();
            Proto.Node.Clear();
            Proto.Node.Add(order);
        }
        catch (OnnxModelException ex)
        {
            Proto.Node.Clear();
            Proto.Node.Add(oldNodes);
            while (Proto.Initializer.Count > oldInitializerCount) Proto.Initializer.RemoveAt(Proto.Initializer.Count - 1);
            Invalidate();
            throw new ArgumentException($"Replacing node '{node.Name}' ({node.OpType}) would break the graph: {ex.Message}", nameof(replacement), ex);
        }
        Invalidate();
    }

    /// <summary>
    /// Removes nodes none of whose outputs reach a graph output, and value infos of values no longer
    /// produced by any node.
    /// </summary>
    /// <returns>The number of nodes removed.</returns>
    public int RemoveDeadNodes()
    {
        var index = Current;
        var live = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<string>(index.Outputs);
        var seen = new HashSet<string>();
        while (stack.Count > 0)
        {
            string value = stack.Pop();
            if (!seen.Add(value) || !index.Producers.TryGetValue(value, out var producer) || !live.Add(producer)) continue;
            foreach (var input in index.Reads[producer]) stack.Push(input);
        }
        int removed = RemoveAll(Proto.Node, n => !live.Contains(n));
        Invalidate();
        var defined = Current.Producers.Keys.ToHashSet();
        RemoveAll(Proto.ValueInfo, v => !defined.Contains(v.Name) && !Current.Initializers.ContainsKey(v.Name) && !Current.Inputs.Contains(v.Name));
        Invalidate();
        return removed;
    }

    /// <summary>Removes initializers that no node reads and that are not graph outputs (with their graph input entries).</summary>
    /// <returns>The number of initializers removed.</returns>
    public int RemoveUnusedInitializers()
    {
        var index = Current;
        var unused = Proto.Initializer.Select(t => t.Name).Where(n => !index.Consumers.ContainsKey(n) && !index.Outputs.Contains(n)).ToList();
        foreach (var name in unused) RemoveInitializer(name);
        return unused.Count;
    }

    /// <summary>
    /// Records the type and shape of <paramref name="value"/>: in the graph input or output of that name if
    /// there is one, else in <c>value_info</c> (added or replaced). A null dimension is unknown.
    /// </summary>
    public void SetValueInfo(string value, OnnxDataType dataType, IReadOnlyList<long?> shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        ArgumentNullException.ThrowIfNull(shape);
        var type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)dataType, Shape = new TensorShapeProto() } };
        foreach (var d in shape)
            type.TensorType.Shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension());
        var existing = Proto.Input.Concat(Proto.Output).Concat(Proto.ValueInfo).Where(v => v.Name == value).ToList();
        if (existing.Count == 0) Proto.ValueInfo.Add(new ValueInfoProto { Name = value, Type = type });
        foreach (var v in existing) v.Type = type.Clone();
    }

    /// <summary>Removes the <c>value_info</c> entry of <paramref name="value"/> (e.g. when an edit changes its shape in a way not worth recording).</summary>
    /// <returns>Whether there was one.</returns>
    public bool RemoveValueInfo(string value) => RemoveAll(Proto.ValueInfo, v => v.Name == value) > 0;

    /// <summary>
    /// Makes sure the model imports <paramref name="domain"/> at version <paramref name="version"/> or later,
    /// adding the import if missing. An older import is an error: raising it could change the meaning of existing nodes.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model imports an older version of the domain.</exception>
    public void EnsureOpset(string domain, long version)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (version < 1) ThrowHelper.ArgumentOutOfRange(nameof(version), version, "a positive opset version");
        long? current = _model.OpsetVersion(domain);
        if (current is null)
            _model.Proto.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        else if (current < version)
            throw new InvalidOperationException(
                $"{OnnxModelException.Describe(_model.FilePath)}: the model imports opset '{(domain.Length == 0 ? "ai.onnx" : domain)}' version {current}, but version {version} is needed; convert the model to a newer opset first.");
    }

    /// <summary>The structural checks of <see cref="OnnxModel.Validate"/>: every read value defined (subgraphs included), no cycle.</summary>
    internal void Check()
    {
        Invalidate();
        Current.CheckDefined(_model.FilePath);
        Current.TopologicalOrder(_model.FilePath);
    }

    private int IndexOfInitializer(string name)
    {
        for (int i = 0; i < Proto.Initializer.Count; i++)
            if (Proto.Initializer[i].Name == name) return i;
        return -1;
    }

    private static int RemoveAll<T>(Google.Protobuf.Collections.RepeatedField<T> list, Func<T, bool> remove)
    {
        var keep = list.Where(x => !remove(x)).ToList();
        int removed = list.Count - keep.Count;
        if (removed > 0)
        {
            list.Clear();
            list.Add(keep);
        }
        return removed;
    }

    /// <summary>Lookups over one state of the graph.</summary>
    private sealed class Index
    {
        private readonly GraphProto _graph;

        public Index(GraphProto graph)
        {
            _graph = graph;
            foreach (var v in graph.Input) Inputs.Add(v.Name);
            foreach (var v in graph.Output) Outputs.Add(v.Name);
            foreach (var t in graph.Initializer) Initializers.TryAdd(t.Name, t);
            for (int i = 0; i < graph.Node.Count; i++)
            {
                var node = graph.Node[i];
                Position[node] = i;
                foreach (var o in node.Output)
                    if (o.Length > 0) Producers.TryAdd(o, node);
                var reads = node.Input.Where(s => s.Length > 0).ToList();
                foreach (var g in TensorWalker.Subgraphs(node)) reads.AddRange(OuterReads(g));
                reads = [.. reads.Distinct()];
                Reads[node] = reads;
                foreach (var r in reads)
                {
                    if (!Consumers.TryGetValue(r, out var list)) Consumers[r] = list = [];
                    list.Add(node);
                }
            }
        }

        public HashSet<string> Inputs { get; } = [];
        public HashSet<string> Outputs { get; } = [];
        public Dictionary<string, TensorProto> Initializers { get; } = [];
        public Dictionary<string, NodeProto> Producers { get; } = [];
        public Dictionary<string, List<NodeProto>> Consumers { get; } = [];
        public Dictionary<NodeProto, List<string>> Reads { get; } = new(ReferenceEqualityComparer.Instance);
        public Dictionary<NodeProto, int> Position { get; } = new(ReferenceEqualityComparer.Instance);

        public bool IsDefined(string name) => Inputs.Contains(name) || Initializers.ContainsKey(name) || Producers.ContainsKey(name)
            || _graph.SparseInitializer.Any(s => s.Values?.Name == name);

        public HashSet<string> AllNames
        {
            get
            {
                var names = new HashSet<string>();
                Collect(_graph, names);
                return names;
            }
        }

        private static void Collect(GraphProto g, HashSet<string> names)
        {
            foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo)) names.Add(v.Name);
            foreach (var t in g.Initializer) names.Add(t.Name);
            foreach (var n in g.Node)
            {
                names.Add(n.Name);
                foreach (var s in n.Input.Concat(n.Output)) names.Add(s);
                foreach (var sg in TensorWalker.Subgraphs(n)) Collect(sg, names);
            }
        }

        /// <summary>Names read inside <paramref name="g"/> (and its own subgraphs) that it does not define.</summary>
        private static IEnumerable<string> OuterReads(GraphProto g)
        {
            var defined = new HashSet<string>(g.Input.Select(v => v.Name).Concat(g.Initializer.Select(t => t.Name))
                .Concat(g.SparseInitializer.Select(s => s.Values?.Name ?? "")).Concat(g.Node.SelectMany(n => n.Output)));
            var outer = new List<string>();
            foreach (var n in g.Node)
            {
                outer.AddRange(n.Input.Where(s => s.Length > 0 && !defined.Contains(s)));
                foreach (var sg in TensorWalker.Subgraphs(n)) outer.AddRange(OuterReads(sg).Where(s => !defined.Contains(s)));
            }
            outer.AddRange(g.Output.Select(v => v.Name).Where(s => s.Length > 0 && !defined.Contains(s)));
            return outer;
        }

        public void CheckDefined(string? file) => CheckDefined(_graph, new HashSet<string>(), file, "graph");

        private static void CheckDefined(GraphProto g, HashSet<string> outer, string? file, string where)
        {
            var defined = new HashSet<string>(outer);
            foreach (var v in g.Input) defined.Add(v.Name);
            foreach (var t in g.Initializer) defined.Add(t.Name);
            foreach (var s in g.SparseInitializer) if (s.Values is { } values) defined.Add(values.Name);
            var producedHere = new HashSet<string>();
            foreach (var n in g.Node)
                foreach (var o in n.Output)
                    if (o.Length > 0 && !producedHere.Add(o))
                        throw new OnnxModelException(
                            $"{OnnxModelException.Describe(file)}: {where}: value '{o}' is produced by more than one node (the second is '{n.Name}' ({n.OpType})).", file, o);
            defined.UnionWith(producedHere);
            foreach (var n in g.Node)
            {
                foreach (var i in n.Input)
                    if (i.Length > 0 && !defined.Contains(i))
                        throw new OnnxModelException(
                            $"{OnnxModelException.Describe(file)}: {where}: node '{n.Name}' ({n.OpType}) reads '{i}', which no node, graph input or initializer defines.", file, i);
                foreach (var sg in TensorWalker.Subgraphs(n))
                    CheckDefined(sg, defined, file, $"subgraph '{sg.Name}' of node '{n.Name}' ({n.OpType})");
            }
            foreach (var o in g.Output)
                if (!defined.Contains(o.Name))
                    throw new OnnxModelException(
                        $"{OnnxModelException.Describe(file)}: {where}: output '{o.Name}' is not defined by any node, graph input or initializer.", file, o.Name);
        }

        public IReadOnlyList<NodeProto> TopologicalOrder(string? file)
        {
            var nodes = _graph.Node;
            var pending = new int[nodes.Count];
            var dependents = new List<int>[nodes.Count];
            for (int i = 0; i < nodes.Count; i++)
            {
                foreach (var r in Reads[nodes[i]])
                {
                    if (!Producers.TryGetValue(r, out var p)) continue;
                    int j = Position[p];
                    (dependents[j] ??= []).Add(i);
                    pending[i]++;
                }
            }
            var ready = new PriorityQueue<int, int>();
            for (int i = 0; i < nodes.Count; i++) if (pending[i] == 0) ready.Enqueue(i, i);
            var order = new List<NodeProto>(nodes.Count);
            while (ready.TryDequeue(out int i, out _))
            {
                order.Add(nodes[i]);
                if (dependents[i] is { } deps)
                    foreach (int d in deps)
                        if (--pending[d] == 0) ready.Enqueue(d, d);
            }
            if (order.Count < nodes.Count)
            {
                var stuck = Enumerable.Range(0, nodes.Count).Where(i => pending[i] > 0).Take(5)
                    .Select(i => $"'{nodes[i].Name}' ({nodes[i].OpType})");
                var first = nodes[Enumerable.Range(0, nodes.Count).First(i => pending[i] > 0)];
                throw new OnnxModelException(
                    $"{OnnxModelException.Describe(file)}: the graph has a cycle through nodes {string.Join(", ", stuck)}.", file, first.Output.FirstOrDefault());
            }
            return order;
        }
    }
}
