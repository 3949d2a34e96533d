using System.Text.Json;

namespace Whittle.Tests.Fixtures;

/// <summary>
/// The trained fixtures of the repository's top-level <c>fixtures/</c> folder (made by
/// <c>scripts/train_*_fixtures.py</c>). They are product data (the demo uses them) and tens of megabytes, so the
/// test project does not copy them to its output: tests find them by walking up from the test assembly to the
/// repository root (the folder holding <c>Whittle.slnx</c> and <c>fixtures/</c>).
/// </summary>
internal static class RepoFixtures
{
    /// <summary>The repository root.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>A path below <c>fixtures/</c>.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, "fixtures", .. parts]);

    /// <summary>The corpus fetched by <c>scripts/fetch_data.sh</c> (run by <c>.ci/run</c>); absent on a bare clone.</summary>
    public static string MobyDick => System.IO.Path.Combine(Root, "data", "moby-dick.txt");

    /// <summary>A folder's <c>fixtures.json</c> (the figures the scripts recorded).</summary>
    public static JsonElement Figures(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path(folder, "fixtures.json")));
        return doc.RootElement.Clone();
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Whittle.slnx")) && Directory.Exists(System.IO.Path.Combine(dir.FullName, "fixtures")))
                return dir.FullName;
        }
        throw new DirectoryNotFoundException($"No repository root (Whittle.slnx with fixtures/) above {AppContext.BaseDirectory}.");
    }
}
