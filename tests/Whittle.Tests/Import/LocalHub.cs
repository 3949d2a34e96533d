using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Whittle.Tests.Import;

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 serving a fixture folder the way a model hub does:
/// <c>/ORG/NAME/resolve/REV/FILE</c>; small files directly with their git blob SHA-1 as ETag, <c>*.safetensors</c>
/// through a redirect carrying <c>X-Linked-Etag</c> (SHA-256) and <c>X-Linked-Size</c>, with <c>Range</c> support.
/// It can cut a file's first transfer short and corrupt a file. One connection per request; it stops when disposed.
/// </summary>
internal sealed class LocalHub : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly string _root;
    private readonly string _repository;
    private readonly Task _loop;
    private readonly ConcurrentDictionary<string, int> _served = new();

    public LocalHub(string root, string repository)
    {
        _root = root;
        _repository = repository;
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public Uri Endpoint => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    /// <summary>Requests seen: path and Range header ("" when none).</summary>
    public ConcurrentQueue<(string Path, string Range)> Requests { get; } = new();

    /// <summary>Files whose first transfer stops after this many bytes (the connection then closes).</summary>
    public Dictionary<string, int> CutAfter { get; } = [];

    /// <summary>Files served with one byte flipped (hash headers still of the true content).</summary>
    public HashSet<string> Corrupt { get; } = [];

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var (path, headers) = await ReadRequestAsync(stream);
            headers.TryGetValue("range", out var range);
            Requests.Enqueue((path, range ?? ""));
            await RespondAsync(stream, path, range);
        }
        catch (IOException)
        {
            // The client went away; nothing to do.
        }
    }

    private static async Task<(string Path, Dictionary<string, string> Headers)> ReadRequestAsync(NetworkStream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (bytes.Count < 16384)
        {
            if (await stream.ReadAsync(one) == 0) break;
            bytes.Add(one[0]);
            int n = bytes.Count;
            if (n >= 4 && bytes[n - 4] == '\r' && bytes[n - 3] == '\n' && bytes[n - 2] == '\r' && bytes[n - 1] == '\n') break;
        }
        var lines = Encoding.ASCII.GetString([.. bytes]).Split("\r\n");
        var parts = lines[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon > 0) headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return (parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "/", headers);
    }

    private async Task RespondAsync(NetworkStream stream, string path, string? range)
    {
        string resolve = $"/{_repository}/resolve/";
        if (path.StartsWith("/lfs/", StringComparison.Ordinal))
        {
            await SendFileAsync(stream, path["/lfs/".Length..], range, etagHeader: null);
            return;
        }
        if (!path.StartsWith(resolve, StringComparison.Ordinal))
        {
            await SendAsync(stream, "404 Not Found", [], ReadOnlyMemory<byte>.Empty);
            return;
        }
        string file = path[resolve.Length..];
        file = file[(file.IndexOf('/') + 1)..]; // drop the revision
        string full = Path.Combine(_root, file);
        if (!File.Exists(full))
        {
            await SendAsync(stream, "404 Not Found", [("X-Error-Code", "EntryNotFound")], ReadOnlyMemory<byte>.Empty);
            return;
        }
        var content = File.ReadAllBytes(full);
        if (file.EndsWith(".safetensors", StringComparison.Ordinal))
        {
            string sha256 = Convert.ToHexStringLower(SHA256.HashData(content));
            await SendAsync(stream, "302 Found", [("Location", "/lfs/" + file), ("X-Linked-Etag", $"\"{sha256}\""), ("X-Linked-Size", content.Length.ToString())], ReadOnlyMemory<byte>.Empty);
            return;
        }
        var blob = Encoding.ASCII.GetBytes($"blob {content.Length}\0").Concat(content).ToArray();
        await SendFileAsync(stream, file, range, etagHeader: $"\"{Convert.ToHexStringLower(SHA1.HashData(blob))}\"");
    }

    private async Task SendFileAsync(NetworkStream stream, string file, string? range, string? etagHeader)
    {
        var content = File.ReadAllBytes(Path.Combine(_root, file));
        if (Corrupt.Contains(file)) content[content.Length / 2] ^= 0xFF;
        long from = 0;
        if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-')) from = long.Parse(range[6..^1]);
        var headers = new List<(string, string)>();
        if (etagHeader is not null) headers.Add(("ETag", etagHeader));
        if (from >= content.Length && from > 0)
        {
            await SendAsync(stream, "416 Range Not Satisfiable", [.. headers, ("Content-Range", $"bytes */{content.Length}")], ReadOnlyMemory<byte>.Empty);
            return;
        }
        var body = content.AsMemory((int)from);
        string status = from > 0 ? "206 Partial Content" : "200 OK";
        if (from > 0) headers.Add(("Content-Range", $"bytes {from}-{content.Length - 1}/{content.Length}"));
        int count = _served.AddOrUpdate(file, 1, (_, c) => c + 1);
        int? cut = count == 1 && CutAfter.TryGetValue(file, out int c) ? c : null;
        await SendAsync(stream, status, headers, body, declaredLength: body.Length, cutAfter: cut);
    }

    private static async Task SendAsync(NetworkStream stream, string status, IEnumerable<(string Name, string Value)> headers, ReadOnlyMemory<byte> body,
        long? declaredLength = null, int? cutAfter = null)
    {
        var head = new StringBuilder($"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {declaredLength ?? body.Length}\r\n");
        foreach (var (n, v) in headers) head.Append(n).Append(": ").Append(v).Append("\r\n");
        head.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()));
        await stream.WriteAsync(cutAfter is { } c ? body[..Math.Min(c, body.Length)] : body);
        await stream.FlushAsync();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // Stopped.
        }
        _stop.Dispose();
    }
}
