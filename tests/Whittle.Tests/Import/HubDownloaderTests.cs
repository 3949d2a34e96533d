using Whittle.Import;

namespace Whittle.Tests.Import;

/// <summary>Downloads from <see cref="LocalHub"/> on 127.0.0.1 only; no other host is ever contacted.</summary>
public sealed class HubDownloaderTests : IDisposable
{
    private const string Repo = "whittle-tests/tiny-qwen2";
    private readonly string _dir = Directory.CreateTempSubdirectory("whittle-hub-").FullName;
    private readonly string _served;

    public HubDownloaderTests()
    {
        _served = Path.Combine(_dir, "served");
        Directory.CreateDirectory(_served);
        foreach (var f in Directory.GetFiles(HfImportTests.Fixture("qwen2"))) File.Copy(f, Path.Combine(_served, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(_served, "tokenizer.json"), Whittle.Tests.Text.HfTokenizerTests.MetaspaceJson());
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private HubOptions Options(LocalHub hub, int attempts = 4) => new() { Endpoint = hub.Endpoint, CacheDirectory = Path.Combine(_dir, "cache"), Attempts = attempts };

    private static void AssertSameFiles(string expectedDir, string actualDir, params string[] files)
    {
        foreach (var f in files) Assert.Equal(File.ReadAllBytes(Path.Combine(expectedDir, f)), File.ReadAllBytes(Path.Combine(actualDir, f)));
    }

    [Fact]
    public async Task ShardedCheckpoint_DownloadsChecksAndImports()
    {
        using var hub = new LocalHub(_served, Repo);
        using var downloader = new HubDownloader(Options(hub));
        var progress = new List<HubProgress>();
        string folder = await downloader.DownloadAsync(HubModelId.Parse($"hf:{Repo}"), new Progress<HubProgress>(progress.Add));
        Assert.Equal(Path.Combine(_dir, "cache", "whittle-tests--tiny-qwen2", "main"), folder);
        AssertSameFiles(_served, folder, "config.json", "tokenizer.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
        Assert.Empty(Directory.GetFiles(folder, "*.incomplete"));
        Assert.False(File.Exists(Path.Combine(folder, "tokenizer.model")));
        // Shards came through the redirect, the optional files that do not exist were asked for once each.
        Assert.Contains(hub.Requests, r => r.Path == "/lfs/model-00002-of-00002.safetensors");
        Assert.Single(hub.Requests, r => r.Path == $"/{Repo}/resolve/main/tokenizer.model");

        var original = HfImporter.Import(HfImportTests.Fixture("qwen2"));
        var downloaded = HfImporter.Import(folder);
        long[] ids = [1, 5, 9, 2, 33, 7];
        Assert.Equal(LanguageModelRunner.Run(original.Model, [("input_ids", ids, [1, 6])])["logits"].Values,
            LanguageModelRunner.Run(downloaded.Model, [("input_ids", ids, [1, 6])])["logits"].Values);
        Assert.Equal(Whittle.Text.TokenizerSource.HfJsonKind, downloaded.Tokenizer!.Kind);

        // A second call finds everything in the cache and asks the hub nothing.
        int before = hub.Requests.Count;
        await downloader.DownloadAsync(HubModelId.Parse($"hf:{Repo}"));
        Assert.Equal(before, hub.Requests.Count);
    }

    [Fact]
    public async Task InterruptedTransfer_ResumesWithARangeRequest()
    {
        const string shard = "model-00001-of-00002.safetensors";
        using var hub = new LocalHub(_served, Repo);
        hub.CutAfter[shard] = 1000;
        using var downloader = new HubDownloader(Options(hub));
        string folder = await downloader.DownloadAsync(HubModelId.Parse($"hf:{Repo}@main"));
        AssertSameFiles(_served, folder, shard);
        var lfs = hub.Requests.Where(r => r.Path == "/lfs/" + shard).ToList();
        Assert.Equal(["", "bytes=1000-"], lfs.Select(r => r.Range));
    }

    [Fact]
    public async Task InterruptedRun_ResumesInTheNextRun()
    {
        const string shard = "model-00002-of-00002.safetensors";
        using var hub = new LocalHub(_served, Repo);
        hub.CutAfter[shard] = 777;
        var id = HubModelId.Parse($"hf:{Repo}");
        using (var once = new HubDownloader(Options(hub, attempts: 1)))
            await Assert.ThrowsAnyAsync<IOException>(() => once.DownloadAsync(id));
        string folder = new HubDownloader(Options(hub)).LocalFolder(id);
        Assert.Equal(777, new FileInfo(Path.Combine(folder, shard + ".incomplete")).Length);
        Assert.False(File.Exists(Path.Combine(folder, shard)));

        using (var again = new HubDownloader(Options(hub)))
            await again.DownloadAsync(id);
        AssertSameFiles(_served, folder, shard);
        Assert.Equal("bytes=777-", hub.Requests.Last(r => r.Path == "/lfs/" + shard).Range);
    }

    [Fact]
    public async Task CorruptFiles_AreRejectedAndDeleted()
    {
        using var hub = new LocalHub(_served, Repo);
        hub.Corrupt.Add("model-00001-of-00002.safetensors");
        hub.Corrupt.Add("config.json");
        using var downloader = new HubDownloader(Options(hub));
        var id = HubModelId.Parse($"hf:{Repo}");
        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => downloader.DownloadAsync(id));
        Assert.Contains("config.json", ex.Message);
        Assert.Contains("git blob SHA-1", ex.Message);
        hub.Corrupt.Remove("config.json");
        ex = await Assert.ThrowsAsync<InvalidDataException>(() => downloader.DownloadAsync(id));
        Assert.Contains("SHA-256", ex.Message);
        string folder = downloader.LocalFolder(id);
        Assert.False(File.Exists(Path.Combine(folder, "model-00001-of-00002.safetensors")));
        Assert.False(File.Exists(Path.Combine(folder, "model-00001-of-00002.safetensors.incomplete")));
    }

    [Fact]
    public async Task MissingModel_IsACheckpointError()
    {
        using var hub = new LocalHub(_served, Repo);
        using var downloader = new HubDownloader(Options(hub));
        var ex = await Assert.ThrowsAsync<CheckpointException>(() => downloader.DownloadAsync(HubModelId.Parse("hf:nobody/nothing")));
        Assert.Contains("no 'config.json'", ex.Message);
    }

    [Theory]
    [InlineData("hf:org/name", "org/name", "main")]
    [InlineData("hf:Org-1/name_2.5@v1.0", "Org-1/name_2.5", "v1.0")]
    [InlineData("hf:org/name@0123abcd", "org/name", "0123abcd")]
    public void ModelIds_Parse(string text, string repo, string revision)
    {
        var id = HubModelId.Parse(text);
        Assert.Equal((repo, revision), (id.Repository, id.Revision));
    }

    [Theory]
    [InlineData("org/name")]
    [InlineData("hf:name")]
    [InlineData("hf:a/b/c")]
    [InlineData("hf:../b")]
    [InlineData("hf:org/name@")]
    [InlineData("hf:org/na me")]
    public void ModelIds_RejectMalformed(string text) => Assert.Throws<FormatException>(() => HubModelId.Parse(text));
}
