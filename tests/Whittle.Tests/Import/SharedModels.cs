namespace Whittle.Tests.Import;

/// <summary>Finds <c>shared/</c> (the project's data beside the repository: <c>../shared</c> from the root) by walking up from the test binaries.</summary>
internal static class SharedModels
{
    public static string Stories260K(string file)
    {
        var tried = new List<string>();
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "models", "stories260K", file);
            tried.Add(candidate);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(
            $"stories260K file '{file}' not found; the tests expect ../shared/models/stories260K beside the repository. Looked in: {string.Join(", ", tried)}");
    }
}
