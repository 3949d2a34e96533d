using System.Diagnostics.CodeAnalysis;
using Whittle.Onnx.Proto;

namespace Whittle.Runtime;

/// <summary>Value names of a graph, and the "did you mean" messages for unknown ones.</summary>
internal static class ValueNames
{
    /// <summary>Every value of the main graph: inputs, initializers and node outputs.</summary>
    public static HashSet<string> MainGraph(GraphProto graph)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in graph.Input) names.Add(i.Name);
        foreach (var t in graph.Initializer) names.Add(t.Name);
        foreach (var n in graph.Node)
            foreach (var o in n.Output)
                if (o.Length > 0) names.Add(o);
        return names;
    }

    /// <summary>Values defined inside subgraphs (If/Loop/Scan bodies), with the main-graph node that holds them.</summary>
    public static Dictionary<string, NodeProto> InSubgraphs(GraphProto graph)
    {
        var found = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var a in node.Attribute)
            {
                if (a.G is not null) Collect(a.G, node, found);
                foreach (var g in a.Graphs) Collect(g, node, found);
            }
        return found;
    }

    private static void Collect(GraphProto g, NodeProto owner, Dictionary<string, NodeProto> found)
    {
        foreach (var name in MainGraph(g)) found.TryAdd(name, owner);
        foreach (var node in g.Node)
            foreach (var a in node.Attribute)
            {
                if (a.G is not null) Collect(a.G, owner, found);
                foreach (var sub in a.Graphs) Collect(sub, owner, found);
            }
    }

    [DoesNotReturn]
    public static void ThrowUnknown(GraphProto graph, IReadOnlyCollection<string> known, string name, string paramName)
    {
        if (InSubgraphs(graph).TryGetValue(name, out var owner))
            ThrowHelper.Argument(paramName,
                $"'{name}' is defined inside a subgraph of node '{owner.Name}' ({owner.OpType}); ONNX Runtime can only tap values of the main graph.");
        var close = CloseMatches(name, known, 5);
        ThrowHelper.Argument(paramName, close.Count == 0
            ? $"'{name}' is not a value of the model's graph (it has {known.Count} values)."
            : $"'{name}' is not a value of the model's graph; close matches: {List(close)}.");
    }

    /// <summary>Up to <paramref name="count"/> names nearest to <paramref name="name"/>: substrings first, then by edit distance.</summary>
    public static List<string> CloseMatches(string name, IEnumerable<string> candidates, int count)
    {
        string lower = name.ToLowerInvariant();
        return [.. candidates
            .Select(c => (Name: c, Score: Score(lower, c.ToLowerInvariant())))
            .Where(c => c.Score <= Math.Max(3, name.Length / 2))
            .OrderBy(c => c.Score).ThenBy(c => c.Name, StringComparer.Ordinal)
            .Take(count)
            .Select(c => c.Name)];
    }

    public static string List(IEnumerable<string> names)
    {
        var list = names.Take(11).ToList();
        string shown = string.Join(", ", list.Take(10).Select(n => $"'{n}'"));
        return list.Count > 10 ? shown + ", …" : shown;
    }

    private static int Score(string a, string b)
    {
        if (a.Length > 0 && (b.Contains(a, StringComparison.Ordinal) || a.Contains(b, StringComparison.Ordinal)))
            return Math.Min(1, Math.Abs(a.Length - b.Length));
        return Levenshtein(a, b);
    }

    private static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
