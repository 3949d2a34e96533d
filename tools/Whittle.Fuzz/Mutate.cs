using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Whittle.Fuzz;

/// <summary>Mutations of bytes and JSON, drawn from a seeded <see cref="Random"/>.</summary>
public static class Mutate
{
    /// <summary>Integers that break size arithmetic: zero, negatives, the int32 and int64 edges, powers of two.</summary>
    public static readonly long[] Edges = [0, 1, -1, 2, 255, 256, 65535, 65536, 1L << 30, int.MaxValue, int.MinValue, uint.MaxValue, 1L << 40, long.MaxValue, long.MinValue, -4096];

    /// <summary>One of <see cref="Edges"/>.</summary>
    public static long Edge(Random rng) => Edges[rng.Next(Edges.Length)];

    /// <summary>JSON values of every type, for swapping into a document.</summary>
    private static JsonNode? Value(Random rng) => rng.Next(16) switch
    {
        0 => JsonValue.Create(Edge(rng)),
        1 => JsonValue.Create(rng.Next(2) == 0 ? 1e308 : -3.5),
        2 => JsonValue.Create("x"),
        3 => JsonValue.Create(""),
        4 => new JsonArray(1),
        5 => new JsonArray(),
        6 => new JsonObject(),
        7 => null,
        8 => JsonValue.Create(true),
        9 => new JsonArray(1, 2, 3),
        10 => new JsonObject { ["a"] = 1 },
        11 => JsonValue.Create("linear"),
        12 => new JsonArray("x", "y"),
        13 => JsonValue.Create(0),
        14 => JsonValue.Create(-1),
        _ => JsonValue.Create("1"),
    };

    /// <summary>
    /// <paramref name="json"/> with one change: a value replaced by one of another type, a key removed, or (one time in
    /// eight) the text cut short or a character changed. Returns the text and what was done.
    /// </summary>
    public static (string Text, string What) Json(Random rng, string json)
    {
        if (rng.Next(8) == 0) return Text(rng, json);
        var root = JsonNode.Parse(json)!;
        var nodes = new List<(JsonNode Parent, string? Key, int Index, string Path)>();
        Collect(root, "$", nodes);
        if (nodes.Count == 0) return Text(rng, json);
        var (parent, key, index, path) = nodes[rng.Next(nodes.Count)];
        var value = Value(rng);
        string what;
        if (key is not null && rng.Next(5) == 0)
        {
            ((JsonObject)parent).Remove(key);
            what = $"removed {path}";
        }
        else if (key is not null)
        {
            ((JsonObject)parent)[key] = value;
            what = $"{path} = {value?.ToJsonString() ?? "null"}";
        }
        else
        {
            ((JsonArray)parent)[index] = value;
            what = $"{path} = {value?.ToJsonString() ?? "null"}";
        }
        return (root.ToJsonString(), what);
    }

    private static void Collect(JsonNode node, string path, List<(JsonNode, string?, int, string)> into)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o.ToList())
                {
                    into.Add((o, k, -1, $"{path}.{k}"));
                    if (v is not null) Collect(v, $"{path}.{k}", into);
                }
                break;
            case JsonArray a:
                // Long arrays (a vocabulary, merges) get a few picks, not one per element.
                for (int i = 0; i < Math.Min(a.Count, 4); i++)
                {
                    into.Add((a, null, i, $"{path}[{i}]"));
                    if (a[i] is { } v) Collect(v, $"{path}[{i}]", into);
                }
                break;
        }
    }

    private static (string, string) Text(Random rng, string text)
    {
        if (text.Length == 0) return ("{", "empty → {");
        int at = rng.Next(text.Length);
        return rng.Next(2) == 0 ? (text[..at], $"cut at {at}") : (text[..at] + "\u0000\"{[" + text[(at + 1)..], $"junk at {at}");
    }

    /// <summary>
    /// <paramref name="bytes"/> with one change: cut short, extended with junk, bytes flipped, or an int32 (little-endian) at a
    /// random aligned offset in the first <paramref name="headerBytes"/> replaced by an edge value.
    /// </summary>
    public static (byte[] Bytes, string What) Bytes(Random rng, byte[] bytes, int headerBytes = 64)
    {
        switch (rng.Next(4))
        {
            case 0:
                int cut = bytes.Length == 0 ? 0 : rng.Next(bytes.Length);
                return (bytes[..cut], $"cut at {cut} of {bytes.Length}");
            case 1:
                var junk = new byte[rng.Next(1, 4096)];
                rng.NextBytes(junk);
                return ([.. bytes, .. junk], $"{junk.Length} junk bytes appended");
            case 2:
                var flipped = (byte[])bytes.Clone();
                int n = rng.Next(1, 9);
                for (int i = 0; i < n && flipped.Length > 0; i++) flipped[rng.Next(flipped.Length)] ^= (byte)(1 << rng.Next(8));
                return (flipped, $"{n} bit flips");
            default:
                var edited = (byte[])bytes.Clone();
                int slots = Math.Min(headerBytes, edited.Length) / 4;
                if (slots == 0) return (edited, "unchanged (too short)");
                int slot = rng.Next(slots);
                int value = unchecked((int)Edge(rng));
                BitConverter.TryWriteBytes(edited.AsSpan(slot * 4), value);
                return (edited, $"int32 at {slot * 4} = {value}");
        }
    }

    /// <summary>gzip of <paramref name="bytes"/>.</summary>
    public static byte[] Gzip(byte[] bytes)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(bytes);
        return ms.ToArray();
    }

    /// <summary>gzip of <paramref name="count"/> zero bytes after <paramref name="head"/>: a small file that inflates far.</summary>
    public static byte[] GzipBomb(byte[] head, long count)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest))
        {
            gz.Write(head);
            var zeros = new byte[1 << 20];
            for (long left = count; left > 0; left -= zeros.Length) gz.Write(zeros, 0, (int)Math.Min(zeros.Length, left));
        }
        return ms.ToArray();
    }

    /// <summary>Pretty-printed JSON, for reports.</summary>
    public static string Show(JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
}
