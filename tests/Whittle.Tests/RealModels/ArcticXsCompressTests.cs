using System.Text.Json.Nodes;
using Whittle.Tests.Cli;
using Whittle.Tests.IO;

namespace Whittle.Tests.RealModels;

/// <summary><c>whittle compress --task embedding</c> on the real sentence encoder, held-out real sentences.</summary>
public sealed class ArcticXsCompressTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static (int Exit, string Out, string Err) Compress(params string[] args) => CompressCli.Run(args);

    [Fact]
    public void IdHeadsAndFfn_KeepsTheEmbeddingsCloserThanMagnitude_AtTheSameCompressibleBudget()
    {
        string calib = _dir.File("calib.npz"), heldOut = _dir.File("heldout.npz");
        ArcticSentences.WriteNpz(ArcticSentences.Tokenized(skip: 100, take: 240), calib);
        ArcticSentences.WriteNpz(ArcticSentences.Tokenized(skip: 400, take: 32), heldOut);
        var cosine = new Dictionary<string, double>();
        foreach (var method in new[] { "id", "magnitude" })
        {
            string output = _dir.File($"{method}.onnx"), report = _dir.File($"{method}.json");
            var (exit, stdout, err) = Compress("--model", RealModels.ArcticXs, "--method", method, "--prune", "fc,heads", "--keep-params", "0.8",
                "--calib", calib, "--eval", heldOut, "--task", "embedding", "--out", output, "--report", report);
            Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
            var r = JsonNode.Parse(File.ReadAllText(report))!["results"]!.AsArray().Single()!;
            var rep = r["report"]!;
            var part = rep["compressible"]!;
            double compressible = part["parametersAfter"]!.GetValue<double>() / part["parametersBefore"]!.GetValue<double>();
            double whole = rep["after"]!["parameters"]!.GetValue<double>() / rep["before"]!["parameters"]!.GetValue<double>();
            Assert.InRange(compressible, 0.75, 0.8);
            Assert.True(whole > 0.85, $"{method}: the word embeddings (half the model) count in the whole model only; kept {whole}");
            var e = r["evaluation"]!["comparison"]!["embedding"]!;
            Assert.Equal(32, e["examples"]!.GetValue<int>());
            Assert.True(e["percentile5"]!.GetValue<double>() <= e["mean"]!.GetValue<double>());
            cosine[method] = e["mean"]!.GetValue<double>();
            Assert.True(File.Exists(_dir.File($"{method}.curve.png")), "the quality chart (embedding cosine against MACs kept)");
        }
        Assert.True(cosine["id"] > cosine["magnitude"], $"id {cosine["id"]:F4} vs magnitude {cosine["magnitude"]:F4}");
    }
}
