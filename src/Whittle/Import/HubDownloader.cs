using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Whittle.Import;

/// <summary>A model on a Hugging Face-style hub: <c>hf:ORG/NAME[@REVISION]</c> (revision <c>main</c> by default).</summary>
/// <param name="Repository">ORG/NAME.</param>
/// <param name="Revision">A branch, tag or commit.</param>
public sealed record HubModelId(string Repository, string Revision)
{
    /// <summary>The prefix that marks a hub model in <c>--model</c>.</summary>
    public const string Prefix = "hf:";

    /// <summary>Whether <paramref name="text"/> names a hub model (starts with <see cref="Prefix"/>).</summary>
    public static bool IsHubReference(string text) => text.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Parses <c>hf:ORG/NAME[@REVISION]</c>.</summary>
    /// <exception cref="FormatException">It is not of that form.</exception>
    public static HubModelId Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!IsHubReference(text)) throw new FormatException($"'{text}' is not a hub model: expected hf:ORG/NAME[@REVISION].");
        string rest = text[Prefix.Length..];
        int at = rest.IndexOf('@', StringComparison.Ordinal);
        string repo = at < 0 ? rest : rest[..at], revision = at < 0 ? "main" : rest[(at + 1)..];
        var parts = repo.Split('/');
        bool Valid(string s) => s.Length > 0 && s != "." && s != ".." && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
        if (parts.Length != 2 || !parts.All(Valid) || revision.Length == 0 || revision.Contains("..", StringComparison.Ordinal) || revision.Any(char.IsWhiteSpace))
            throw new FormatException($"'{text}' is not a hub model: expected hf:ORG/NAME[@REVISION] (letters, digits, '-', '_', '.').");
        return new HubModelId(repo, revision);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Prefix}{Repository}@{Revision}";
}

/// <summary>Where and how <see cref="HubDownloader"/> fetches.</summary>
public sealed record HubOptions
{
    /// <summary>Environment variable with the hub's base URL.</summary>
    public const string EndpointVariable = "WHITTLE_HUB_ENDPOINT";

    /// <summary>Environment variable with the cache folder.</summary>
    public const string CacheVariable = "WHITTLE_HUB_CACHE";

    /// <summary>The hub used when neither the options nor the environment name one.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>The hub's base URL; null takes <see cref="EndpointVariable"/>, then <c>HF_ENDPOINT</c>, then <see cref="DefaultEndpoint"/>.</summary>
    public Uri? Endpoint { get; init; }

    /// <summary>The cache folder; null takes <see cref="CacheVariable"/>, then <c>~/.cache/whittle/hub</c>.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>A bearer token for gated or private models; null takes <c>HF_TOKEN</c> from the environment.</summary>
    public string? Token { get; init; }

    /// <summary>Attempts per file; each resumes where the last stopped.</summary>
    public int Attempts { get; init; } = 4;

    /// <summary>How long one request may stall.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The endpoint after defaults.</summary>
    public Uri ResolvedEndpoint => Endpoint ?? new Uri(Environment.GetEnvironmentVariable(EndpointVariable) is { Length: > 0 } e ? e
        : Environment.GetEnvironmentVariable("HF_ENDPOINT") is { Length: > 0 } h ? h : DefaultEndpoint);

    /// <summary>The cache folder after defaults.</summary>
    public string ResolvedCacheDirectory => CacheDirectory ?? (Environment.GetEnvironmentVariable(CacheVariable) is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "whittle", "hub"));
}

/// <summary>Progress of one file.</summary>
/// <param name="File">The file's name in the repository.</param>
/// <param name="Bytes">Bytes on disk so far.</param>
/// <param name="Total">Its size, when the hub states it.</param>
/// <param name="Cached">Whether it was already in the cache.</param>
public sealed record HubProgress(string File, long Bytes, long? Total, bool Cached);

/// <summary>
/// Fetches what a checkpoint needs from a hub — <c>config.json</c>, the tokenizer files, <c>model.safetensors</c> or
/// <c>model.safetensors.index.json</c> and its shards — over HTTP(S) into a local cache folder
/// (<c>CACHE/ORG--NAME/REVISION/</c>), which <see cref="HfImporter"/> then reads.
/// </summary>
/// <remarks>
/// Each file downloads into <c>FILE.incomplete</c> and is renamed into place only when whole and checked: its size
/// against <c>X-Linked-Size</c>/<c>Content-Length</c>, its content against the ETag (<c>X-Linked-Etag</c> for large
/// files: their SHA-256; otherwise the git blob SHA-1 of small files). An interrupted transfer resumes with an HTTP
/// <c>Range</c> request, in the same call (up to <see cref="HubOptions.Attempts"/>) or a later one. Files already in
/// the cache are not fetched again, and a folder once complete (see <see cref="CompleteMarker"/>) is used without asking the hub.
/// </remarks>
public sealed class HubDownloader : IDisposable
{
    private static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"];
    /// <summary>Written into the local folder when every file is in place; its presence lets later runs work offline.</summary>
    public const string CompleteMarker = ".whittle-complete";

    private readonly HttpClient _http;
    private readonly HubOptions _options;

    /// <summary>Creates a downloader.</summary>
    /// <param name="options">Endpoint, cache and retries; null for the defaults.</param>
    /// <param name="handler">The HTTP handler (tests, proxies); null for a default one. Redirects are followed by the downloader.</param>
    public HubDownloader(HubOptions? options = null, HttpMessageHandler? handler = null)
    {
        _options = options ?? new HubOptions();
        if (_options.Attempts < 1) ThrowHelper.ArgumentOutOfRange(nameof(options), _options.Attempts, "at least one attempt");
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None }, disposeHandler: true)
        {
            Timeout = _options.Timeout,
        };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("whittle", "1.0"));
    }

    /// <summary>The local folder for <paramref name="id"/>.</summary>
    public string LocalFolder(HubModelId id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return Path.Combine(_options.ResolvedCacheDirectory, id.Repository.Replace("/", "--", StringComparison.Ordinal), id.Revision.Replace("/", "--", StringComparison.Ordinal));
    }

    /// <summary>Fetches the checkpoint's files and returns the local folder.</summary>
    /// <exception cref="CheckpointException">config.json or the weights are missing on the hub.</exception>
    /// <exception cref="HttpRequestException">The hub could not be reached or answered with an error.</exception>
    /// <exception cref="InvalidDataException">A file failed its size or hash check.</exception>
    public async Task<string> DownloadAsync(HubModelId id, IProgress<HubProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        string folder = LocalFolder(id), marker = Path.Combine(folder, CompleteMarker);
        if (File.Exists(marker) && File.ReadAllLines(marker).All(f => File.Exists(Path.Combine(folder, f)))) return folder; // complete earlier: work offline
        Directory.CreateDirectory(folder);
        var fetched = new List<string>();
        async Task<bool> Fetch(string file, bool required)
        {
            bool found = await FetchAsync(id, file, folder, required, progress, cancellationToken).ConfigureAwait(false);
            if (found) fetched.Add(file);
            return found;
        }
        await Fetch("config.json", required: true).ConfigureAwait(false);
        foreach (var f in TokenizerFiles) await Fetch(f, required: false).ConfigureAwait(false);
        if (!await Fetch(HfCheckpoint.WeightsFile, required: false).ConfigureAwait(false))
        {
            if (!await Fetch(HfCheckpoint.IndexFile, required: false).ConfigureAwait(false))
                throw new CheckpointException($"{id}: the hub has neither {HfCheckpoint.WeightsFile} nor {HfCheckpoint.IndexFile} (Whittle reads safetensors weights only).", folder);
            foreach (var shard in Shards(Path.Combine(folder, HfCheckpoint.IndexFile))) await Fetch(shard, required: true).ConfigureAwait(false);
        }
        IO.AtomicFile.WriteAllText(marker, string.Join('\n', fetched));
        return folder;
    }

    private static IEnumerable<string> Shards(string indexPath)
    {
        JsonDocument doc;
        try
        {
            var bytes = File.ReadAllBytes(indexPath);
            IO.StrictUtf8.Check(bytes);
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException ex)
        {
            throw new CheckpointException($"{indexPath}: not well-formed JSON: {ex.Message}", indexPath, null, ex);
        }
        catch (System.Text.DecoderFallbackException ex)
        {
            throw new CheckpointException($"{indexPath}: not UTF-8 text: {ex.Message}", indexPath, null, ex);
        }
        using var owner = doc;
        if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{indexPath}: no \"weight_map\" object.", indexPath);
        var shards = map.EnumerateObject().Select(p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : "").Distinct().ToList();
        foreach (var s in shards)
            if (s.Length == 0 || s.Contains('/', StringComparison.Ordinal) || s.Contains('\\', StringComparison.Ordinal) || s.Contains("..", StringComparison.Ordinal))
                throw new CheckpointException($"{indexPath}: shard name '{s}' is not a plain file name.", indexPath);
        return shards;
    }

    /// <summary>Fetches one file into <paramref name="folder"/>; false when it is optional and the hub has none.</summary>
    private async Task<bool> FetchAsync(HubModelId id, string file, string folder, bool required, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        string target = Path.Combine(folder, file), partial = target + ".incomplete";
        if (File.Exists(target))
        {
            progress?.Report(new HubProgress(file, new FileInfo(target).Length, new FileInfo(target).Length, Cached: true));
            return true;
        }
        var url = new Uri(_options.ResolvedEndpoint, $"{_options.ResolvedEndpoint.AbsolutePath.TrimEnd('/')}/{id.Repository}/resolve/{Uri.EscapeDataString(id.Revision)}/{Uri.EscapeDataString(file)}");
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                var outcome = await TransferAsync(url, file, partial, progress, ct).ConfigureAwait(false);
                if (outcome is null)
                {
                    if (required) throw new CheckpointException($"{id}: the hub has no '{file}' ({url}).", url.ToString());
                    return false;
                }
                Verify(file, partial, outcome.Value.Size, outcome.Value.ETag);
                File.Move(partial, target, overwrite: true);
                return true;
            }
            catch (Exception ex) when (attempt < _options.Attempts && !ct.IsCancellationRequested
                && ex is IOException or HttpRequestException or TaskCanceledException && ex is not CheckpointException)
            {
                // The partial file stays: the next attempt resumes from its end.
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One GET (following redirects), appending to <paramref name="partial"/>; null on 404. Returns the expected size and ETag.</summary>
    private async Task<(long? Size, string? ETag)?> TransferAsync(Uri url, string file, string partial, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        string? linkedEtag = null;
        long? linkedSize = null;
        var current = url;
        for (int hop = 0; hop < 8; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, current);
            if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
            if ((_options.Token ?? Environment.GetEnvironmentVariable("HF_TOKEN")) is { Length: > 0 } token && current.Host == url.Host)
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            linkedEtag ??= Header(response, "X-Linked-Etag");
            linkedSize ??= long.TryParse(Header(response, "X-Linked-Size"), out long ls) ? ls : null;
            int status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                current = location.IsAbsoluteUri ? location : new Uri(current, location);
                continue;
            }
            if (response.StatusCode == HttpStatusCode.NotFound) return null;
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                File.Delete(partial); // stale or oversized partial file: start again
                throw new IOException($"{file}: the server refused to resume at byte {have}; restarting.");
            }
            if (!response.IsSuccessStatusCode)
                throw new HttpRequestException($"{file}: {current} answered {status} {response.ReasonPhrase}.", null, response.StatusCode);
            string? etag = linkedEtag ?? response.Headers.ETag?.Tag;
            bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
            if (resumed && response.Content.Headers.ContentRange?.From != have)
                throw new IOException($"{file}: the server resumed at byte {response.Content.Headers.ContentRange?.From}, not {have}.");
            long? size = linkedSize ?? (resumed ? response.Content.Headers.ContentRange?.Length : response.Content.Headers.ContentLength);
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using var output = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            long done = resumed ? have : 0;
            var buffer = new byte[1 << 16];
            int n;
            while ((n = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                done += n;
                progress?.Report(new HubProgress(file, done, size, Cached: false));
            }
            await output.FlushAsync(ct).ConfigureAwait(false);
            if (size is { } expected && done < expected)
                throw new IOException($"{file}: the connection closed after {done} of {expected} bytes.");
            return (size, etag);
        }
        throw new HttpRequestException($"{file}: more than 8 redirects from {url}.");
    }

    private static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : r.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;

    /// <summary>Checks the size and, where the ETag is a content hash, the hash; deletes the file on failure.</summary>
    private static void Verify(string file, string path, long? size, string? etag)
    {
        long length = new FileInfo(path).Length;
        string? problem = null;
        if (size is { } s && length != s) problem = $"{length} bytes, expected {s}";
        else if (etag is not null)
        {
            string tag = etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag;
            tag = tag.Trim('"').ToLowerInvariant();
            if (tag.Length == 64 && tag.All(char.IsAsciiHexDigit))
            {
                using var stream = File.OpenRead(path);
                string actual = Convert.ToHexStringLower(SHA256.HashData(stream));
                if (actual != tag) problem = $"SHA-256 {actual}, expected {tag}";
            }
            else if (tag.Length == 40 && tag.All(char.IsAsciiHexDigit))
            {
                using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
                sha1.AppendData(Encoding.ASCII.GetBytes($"blob {length}\0"));
                sha1.AppendData(File.ReadAllBytes(path));
                string actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
                if (actual != tag) problem = $"git blob SHA-1 {actual}, expected {tag}";
            }
        }
        if (problem is null) return;
        File.Delete(path);
        throw new InvalidDataException($"{file}: the download is corrupt ({problem}); it was deleted, run again to fetch it anew.");
    }

    /// <summary>Releases the HTTP client.</summary>
    public void Dispose() => _http.Dispose();
}
