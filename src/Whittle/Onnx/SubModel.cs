// A model made of part of another model's main graph, for running one segment in its own ONNX Runtime session.
//
// Contract
//   The sub-model holds the given nodes (in the given, topological order), exactly the initializers they read
//   (directly or inside subgraphs), the given graph inputs and outputs, the value_info of values its nodes produce,
//   and the source's IR version, opset imports and local functions. Node and tensor messages are shared with the
//   source, not copied: serialize the result before editing the source again. External data is found through the
//   source's base directory.

using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>Extracts part of a model's main graph as a model of its own.</summary>
public static class SubModel
{
    /// <summary>A model of <paramref name="nodes"/> of <paramref name="source"/> (see the file header).</summary>
    /// <param name="source">The model; not modified.</param>
    /// <param name="nodes">Nodes of its main graph, in topological order.</param>
    /// <param name="inputs">The graph inputs: every value the nodes read that they neither produce nor find among the initializers, with its type.</param>
    /// <param name="outputs">Values the nodes produce (or inputs passed through) to output.</param>
    /// <exception cref="ArgumentException">A node reads a value that is neither produced, an input nor an initializer.</exception>
    public static ModelProto Extract(OnnxModel source, IReadOnlyList<NodeProto> nodes, IReadOnlyList<ValueInfoProto> inputs, IReadOnlyList<string> outputs)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outputs);
        var graph = source.Graph;
        var from = source.Proto;
        var sub = new GraphProto { Name = string.IsNullOrEmpty(from.Graph.Name) ? "segment" : from.Graph.Name + "_segment" };
        var produced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            sub.Node.Add(n);
            foreach (var o in n.Output) if (o.Length > 0) produced.Add(o);
        }
        var given = inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var initializers = from.Graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var added = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in nodes)
            foreach (var r in graph.Reads(n))
            {
                if (produced.Contains(r) || given.Contains(r)) continue;
                if (initializers.TryGetValue(r, out var t))
                {
                    if (added.Add(r)) sub.Initializer.Add(t);
                    continue;
                }
                ThrowHelper.Argument(nameof(inputs), $"Node '{n.Name}' ({n.OpType}) reads '{r}', which the segment neither computes, takes as an input nor holds as an initializer.");
            }
        sub.Input.AddRange(inputs);
        foreach (var o in outputs)
        {
            if (!produced.Contains(o) && !given.Contains(o))
                ThrowHelper.Argument(nameof(outputs), $"'{o}' is not computed by the segment's nodes.");
            sub.Output.Add(graph.Outputs.FirstOrDefault(v => v.Name == o)?.Clone() ?? new ValueInfoProto { Name = o });
        }
        sub.ValueInfo.AddRange(from.Graph.ValueInfo.Where(v => produced.Contains(v.Name)));
        var model = new ModelProto
        {
            IrVersion = from.IrVersion,
            ProducerName = "whittle-segment",
            Graph = sub,
        };
        model.OpsetImport.AddRange(from.OpsetImport);
        model.Functions.AddRange(from.Functions);
        return model;
    }
}
