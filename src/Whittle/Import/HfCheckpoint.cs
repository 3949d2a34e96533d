using System.Text.Json;
using Whittle.IO;

namespace Whittle.Import;

/// <summary>
/// A Hugging Face checkpoint folder: <c>config.json</c> and the weights, <c>model.safetensors</c> or shards listed in
/// <c>model.safetensors.index.json</c>. Shards stay open and tensors are read on demand (F32, F16, BF16 and F64
/// convert to float32). Dispose to close them.
/// </summary>
public sealed class HfCheckpoint : ICheckpointTensors, IDisposable
{
    /// <summary>The single-file weights.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>The index of sharded weights.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    private readonly Dictionary<string, SafeTensorsFile> _byTensor;
    private readonly List<SafeTensorsFile> _files;

    private HfCheckpoint(string directory, JsonElement config, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> byTensor)
    {
        Directory = directory;
        Config = config;
        _files = files;
        _byTensor = byTensor;
    }

    /// <summary>The checkpoint folder (full path).</summary>
    public string Directory { get; }

    /// <summary>The parsed <c>config.json</c>.</summary>
    public JsonElement Config { get; }

    /// <inheritdoc/>
    public string Source => Directory;

    /// <summary>The weight files, in order.</summary>
    public IReadOnlyList<string> WeightFiles => [.. _files.Select(f => f.FilePath)];

    /// <summary>Names of all tensors.</summary>
    public IEnumerable<string> TensorNames => _byTensor.Keys;

    /// <summary>Opens <paramref name="directory"/>: parses <c>config.json</c>, opens and checks every weight file.</summary>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    /// <exception cref="CheckpointException">A file is missing or malformed, or the index names a tensor its shard lacks.</exception>
    /// <exception cref="SafeTensorsException">A weight file is malformed.</exception>
    public static HfCheckpoint Open(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string dir = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(dir)) throw new DirectoryNotFoundException($"checkpoint folder '{dir}' not found.");
        string configPath = Path.Combine(dir, "config.json");
        if (!File.Exists(configPath)) throw new CheckpointException($"{dir}: no config.json; a Hugging Face checkpoint folder holds config.json and model.safetensors.", configPath);
        var config = ParseJson(configPath);
        if (config.ValueKind != JsonValueKind.Object) throw new CheckpointException($"{configPath}: not a JSON object.", configPath);
        var files = new List<SafeTensorsFile>();
        var byTensor = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        try
        {
            string single = Path.Combine(dir, WeightsFile), index = Path.Combine(dir, IndexFile);
            if (File.Exists(single))
            {
                var f = SafeTensorsFile.Open(single);
                files.Add(f);
                foreach (var t in f.Tensors) byTensor[t.Name] = f;
            }
            else if (File.Exists(index))
            {
                var json = ParseJson(index);
                if (!json.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                    throw new CheckpointException($"{index}: no \"weight_map\" object.", index);
                var shards = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
                foreach (var entry in map.EnumerateObject())
                {
                    if (entry.Value.ValueKind != JsonValueKind.String)
                        throw new CheckpointException($"{index}: weight_map[\"{entry.Name}\"] is {entry.Value}; expected a shard file name (a string).", index, entry.Name);
                    string shard = entry.Value.GetString()!;
                    if (shard.Length == 0 || Path.IsPathRooted(shard) || shard.Contains("..", StringComparison.Ordinal))
                        throw new CheckpointException($"{index}: tensor '{entry.Name}' maps to '{shard}', not a file name in the folder.", index, entry.Name);
                    if (!shards.TryGetValue(shard, out var f))
                    {
                        string path = Path.Combine(dir, shard);
                        if (!File.Exists(path)) throw new CheckpointException($"{index}: shard '{shard}' (of tensor '{entry.Name}') is missing.", path, entry.Name);
                        shards[shard] = f = SafeTensorsFile.Open(path);
                        files.Add(f);
                    }
                    if (!f.Contains(entry.Name)) throw new CheckpointException($"{f.FilePath}: the index places tensor '{entry.Name}' here, but the shard has no such tensor.", f.FilePath, entry.Name);
                    byTensor[entry.Name] = f;
                }
            }
            else
            {
                string hint = File.Exists(Path.Combine(dir, "pytorch_model.bin")) ? " (pytorch_model.bin is not read: save the model with safe_serialization=True)" : "";
                throw new CheckpointException($"{dir}: neither {WeightsFile} nor {IndexFile}{hint}.", dir);
            }
            return new HfCheckpoint(dir, config, files, byTensor);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    private static JsonElement ParseJson(string path)
    {
        try
        {
            FileChecks.RequireRegularFile(path, "JSON file");
            var bytes = File.ReadAllBytes(path);
            StrictUtf8.Check(bytes);
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{path}: the JSON is {doc.RootElement.ValueKind}, expected an object.", path);
            return doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new CheckpointException($"{path}: not well-formed JSON: {ex.Message}", path, null, ex);
        }
        catch (System.Text.DecoderFallbackException ex)
        {
            throw new CheckpointException($"{path}: not UTF-8 text: {ex.Message}", path, null, ex);
        }
    }

    /// <inheritdoc/>
    public bool Contains(string name) => _byTensor.ContainsKey(name);

    /// <inheritdoc/>
    public IReadOnlyList<long> Shape(string name) => FileOf(name)[name].Shape;

    /// <summary>The element type <paramref name="name"/> is stored in.</summary>
    public SafeTensorsDType DType(string name) => FileOf(name)[name].DType;

    /// <inheritdoc/>
    public float[] ReadFloat32(string name)
    {
        var f = FileOf(name);
        try
        {
            return f.ReadFloat32(name);
        }
        catch (SafeTensorsException ex)
        {
            throw new CheckpointException(ex.Message, f.FilePath, name, ex);
        }
    }

    private SafeTensorsFile FileOf(string name) => _byTensor.TryGetValue(name, out var f) ? f
        : throw new CheckpointException($"{Directory}: the checkpoint has no tensor '{name}'.", Directory, name);

    /// <summary>Closes the weight files.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
