using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>Every tensor of a model that can carry data: initializers and tensor attributes, in the main graph, its subgraphs and local functions.</summary>
internal static class TensorWalker
{
    public static IEnumerable<TensorProto> All(ModelProto model)
    {
        if (model.Graph is { } graph)
            foreach (var t in InGraph(graph)) yield return t;
        foreach (var function in model.Functions)
            foreach (var t in InNodes(function.Node)) yield return t;
    }

    public static IEnumerable<TensorProto> InGraph(GraphProto graph)
    {
        foreach (var t in graph.Initializer) yield return t;
        foreach (var t in InNodes(graph.Node)) yield return t;
    }

    /// <summary>The graphs held in <paramref name="node"/>'s attributes (If branches, Loop and Scan bodies).</summary>
    public static IEnumerable<GraphProto> Subgraphs(NodeProto node)
    {
        foreach (var a in node.Attribute)
        {
            if (a.G is { } g) yield return g;
            foreach (var sg in a.Graphs) yield return sg;
        }
    }

    private static IEnumerable<TensorProto> InNodes(IEnumerable<NodeProto> nodes)
    {
        foreach (var node in nodes)
        {
            foreach (var a in node.Attribute)
            {
                if (a.T is { } t) yield return t;
                foreach (var ts in a.Tensors) yield return ts;
            }
            foreach (var g in Subgraphs(node))
                foreach (var t in InGraph(g)) yield return t;
        }
    }
}
