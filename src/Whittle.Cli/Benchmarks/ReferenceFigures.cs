using System.Text.Json.Nodes;

namespace Whittle.Cli.Benchmarks;

/// <summary>
/// Figures measured by another implementation on the same matrices (<c>scripts/bench_openblas.py</c>):
/// seconds per (case, n), the singular values it computed for the SVD case, and those of the same
/// matrix factored in double precision (the yardstick for both single-precision results).
/// </summary>
internal sealed record ReferenceFigures(
    IReadOnlyDictionary<(string Case, int N), double> Seconds,
    IReadOnlyDictionary<int, IReadOnlyList<double>> SingularValues,
    IReadOnlyDictionary<int, IReadOnlyList<double>> ExactSingularValues)
{
    public static ReferenceFigures? Load(FileInfo? file)
    {
        if (file is null) return null;
        if (!file.Exists) throw new FileNotFoundException($"Reference figures not found: {file.FullName}", file.FullName);
        var root = JsonNode.Parse(File.ReadAllText(file.FullName)) as JsonObject
            ?? throw new InvalidDataException($"{file.FullName}: expected a JSON object of benchmark arrays.");
        var seconds = new Dictionary<(string, int), double>();
        var values = new Dictionary<int, IReadOnlyList<double>>();
        var exact = new Dictionary<int, IReadOnlyList<double>>();
        foreach (var (key, node) in root)
        {
            if (node is JsonArray array)
            {
                foreach (var item in array)
                    if (item?["n"] is { } n && item["seconds"] is { } s)
                        seconds[(key, n.GetValue<int>())] = s.GetValue<double>();
            }
            else if (node is JsonObject byN && key is "svd_values" or "svd_values_exact")
            {
                var target = key == "svd_values" ? values : exact;
                foreach (var (n, list) in byN)
                    if (int.TryParse(n, out int size) && list is JsonArray sigma)
                        target[size] = [.. sigma.Select(v => v!.GetValue<double>())];
            }
        }
        return new ReferenceFigures(seconds, values, exact);
    }
}
