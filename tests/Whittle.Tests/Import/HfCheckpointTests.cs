using System.Text.Json;
using System.Text.Json.Nodes;
using Whittle.Import;
using Whittle.IO;
using Whittle.Onnx;

namespace Whittle.Tests.Import;

/// <summary>Checkpoint folders Whittle writes itself: shards, dtypes and the errors for broken folders.</summary>
public sealed class HfCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whittle-hf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Copies the llama fixture into a new folder with its tensors in <paramref name="shards"/> files of <paramref name="dtype"/>, optionally edited.</summary>
    private string Reshard(string name, int shards, SafeTensorsDType dtype = SafeTensorsDType.F32, Func<string, float[], IReadOnlyList<long>, (float[], IReadOnlyList<long>)?>? edit = null)
    {
        string target = Path.Combine(_dir, name);
        Directory.CreateDirectory(target);
        string source = HfImportTests.Fixture("llama");
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(target, "config.json"));
        using var f = SafeTensorsFile.Open(Path.Combine(source, "model.safetensors"));
        var tensors = new List<SafeTensorData>();
        foreach (var t in f.Tensors)
        {
            var values = f.ReadFloat32(t.Name);
            IReadOnlyList<long> shape = t.Shape;
            if (edit?.Invoke(t.Name, values, shape) is { } changed) (values, shape) = changed;
            tensors.Add(SafeTensorData.FromFloat32(t.Name, values, shape, dtype));
        }
        if (shards == 1)
        {
            SafeTensorsWriter.Write(Path.Combine(target, HfCheckpoint.WeightsFile), tensors);
            return target;
        }
        var map = new JsonObject();
        int per = (tensors.Count + shards - 1) / shards;
        for (int s = 0; s < shards; s++)
        {
            string file = $"model-{s + 1:00000}-of-{shards:00000}.safetensors";
            var part = tensors.Skip(s * per).Take(per).ToList();
            SafeTensorsWriter.Write(Path.Combine(target, file), part);
            foreach (var t in part) map[t.Name] = file;
        }
        File.WriteAllText(Path.Combine(target, HfCheckpoint.IndexFile), new JsonObject { ["weight_map"] = map }.ToJsonString());
        return target;
    }

    private static float[] Logits(string dir) => Logits(HfImporter.Import(dir).Model);

    private static float[] Logits(OnnxModel model)
    {
        var reference = Npz.Read(Path.Combine(HfImportTests.Fixture("llama"), "reference.npz"));
        var ids = reference["input_ids"];
        return LanguageModelRunner.Run(model, [("input_ids", ids.ToInt64Array(), [.. ids.Shape.Select(d => (long)d)])])["logits"].Values;
    }

    private static List<OnnxTensor> Matrices(OnnxModel model) => [.. model.Proto.Graph.Initializer.Where(t => t.Dims.Count >= 2).Select(model.Tensor)];

    [Fact]
    public void Bfloat16Checkpoint_KeepsItsStorageBehindCasts_WithTheLogitsOfAFloat32Import()
    {
        string dir = Reshard("bf16", 1, SafeTensorsDType.BF16);
        var kept = HfImporter.Import(dir).Model;
        var wide = HfImporter.Import(dir, storage: WeightStorage.Float32).Model;
        Assert.NotEmpty(Matrices(kept));
        Assert.All(Matrices(kept), t =>
        {
            Assert.Equal(OnnxDataType.BFloat16, t.DataType);
            Assert.Equal("Cast", Assert.Single(kept.Graph.Consumers(t.Name)).OpType);
        });
        Assert.All(Matrices(wide), t => Assert.Equal(OnnxDataType.Float, t.DataType));
        Assert.Equal(Matrices(wide).Sum(t => t.ByteLength), 2 * Matrices(kept).Sum(t => t.ByteLength));
        // ONNX Runtime folds the Casts when it loads the model: the same float32 weights, the same logits bit for bit.
        Assert.Equal(Logits(wide), Logits(kept));
    }

    [Fact]
    public void Float32Checkpoint_StaysFloat32_UnlessFloat16IsAsked()
    {
        string fixture = HfImportTests.Fixture("llama");
        var single = HfImporter.Import(fixture).Model;
        Assert.All(Matrices(single), t => Assert.Equal(OnnxDataType.Float, t.DataType));
        var half = HfImporter.Import(fixture, storage: WeightStorage.Float16).Model;
        Assert.All(Matrices(half), t => Assert.Equal(OnnxDataType.Float16, t.DataType));
        Assert.InRange(HfImportTests.RelativeError(Logits(half), Logits(single)), 1e-7, 1e-2); // rounded weights: close, not the same
    }

    [Fact]
    public void ShardedCopy_GivesTheSameLogitsAsTheSingleFile()
    {
        var single = Logits(HfImportTests.Fixture("llama"));
        var sharded = Logits(Reshard("sharded", shards: 3));
        Assert.Equal(single, sharded);
    }

    [Fact]
    public void Float16Copy_StaysCloseToTheFloat32Logits()
    {
        var single = Logits(HfImportTests.Fixture("llama"));
        var half = Logits(Reshard("half", shards: 1, SafeTensorsDType.F16));
        double error = HfImportTests.RelativeError(half, single);
        Assert.InRange(error, 1e-7, 1e-2); // rounded weights: close, but not the same
    }

    [Fact]
    public void WrongShape_NamesTheTensorAndBothShapes()
    {
        string dir = Reshard("wrong", 1, edit: (name, v, s) => name == "model.layers.1.mlp.up_proj.weight" ? (v[..(47 * 32)], [47, 32]) : null);
        var ex = Assert.Throws<CheckpointException>(() => HfImporter.Import(dir));
        Assert.Equal("model.layers.1.mlp.up_proj.weight", ex.TensorName);
        Assert.Contains("[47, 32]", ex.Message);
        Assert.Contains("expected [48, 32]", ex.Message);
    }

    [Fact]
    public void MissingTensor_IsNamed()
    {
        string dir = Reshard("missing", 1);
        File.Delete(Path.Combine(dir, HfCheckpoint.WeightsFile));
        using (var f = SafeTensorsFile.Open(Path.Combine(HfImportTests.Fixture("llama"), "model.safetensors")))
            SafeTensorsWriter.Write(Path.Combine(dir, HfCheckpoint.WeightsFile),
                [.. f.Tensors.Where(t => t.Name != "model.norm.weight").Select(t => SafeTensorData.FromFloat32(t.Name, f.ReadFloat32(t.Name), t.Shape))]);
        var ex = Assert.Throws<CheckpointException>(() => HfImporter.Import(dir));
        Assert.Equal("model.norm.weight", ex.TensorName);
        Assert.Contains("missing", ex.Message);
    }

    [Fact]
    public void BrokenFolders_GiveClearErrors()
    {
        string dir = Reshard("broken", shards: 2);
        File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"));
        Assert.Contains("shard 'model-00002-of-00002.safetensors'", Assert.Throws<CheckpointException>(() => HfImporter.Import(dir)).Message);

        string empty = Path.Combine(_dir, "empty");
        Directory.CreateDirectory(empty);
        Assert.Contains("no config.json", Assert.Throws<CheckpointException>(() => HfImporter.Import(empty)).Message);
        File.WriteAllText(Path.Combine(empty, "config.json"), "{\"architectures\": [\"T5ForConditionalGeneration\"]}");
        File.WriteAllBytes(Path.Combine(empty, "pytorch_model.bin"), [0]);
        Assert.Contains("pytorch_model.bin is not read", Assert.Throws<CheckpointException>(() => HfImporter.Import(empty)).Message);
        SafeTensorsWriter.Write(Path.Combine(empty, HfCheckpoint.WeightsFile), []);
        Assert.Contains("'T5ForConditionalGeneration' is not imported", Assert.Throws<CheckpointException>(() => HfImporter.Import(empty)).Message);

        string scaled = Reshard("scaled", 1);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(scaled, "config.json")))!;
        config["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 2.0 };
        File.WriteAllText(Path.Combine(scaled, "config.json"), config.ToJsonString(new JsonSerializerOptions()));
        Assert.Contains("rope_scaling type 'yarn'", Assert.Throws<CheckpointException>(() => HfImporter.Import(scaled)).Message);
    }

    [Fact]
    public void TokenizerJson_TravelsWithTheImportedModel()
    {
        string dir = Path.Combine(_dir, "bert-tok");
        Directory.CreateDirectory(dir);
        foreach (var file in Directory.GetFiles(HfImportTests.Fixture("bert"))) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        var bare = HfImporter.Import(dir);
        Assert.Null(bare.Tokenizer);
        Assert.Contains(bare.Notes, n => n.Contains("no tokenizer"));
        Assert.Null(Whittle.Text.TokenizerMetadata.Read(bare.Model));

        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), Whittle.Tests.Text.HfTokenizerTests.WordPieceJson());
        var result = HfImporter.Import(dir);
        Assert.Equal(Whittle.Text.TokenizerSource.HfJsonKind, result.Tokenizer!.Kind);
        var tokenizer = Whittle.Text.TokenizerMetadata.Read(result.Model)!;
        Assert.Equal(2, tokenizer.BosId);
        Assert.Equal([4, 10, 5], tokenizer.Encode("Hello, world"));
        Assert.Equal(Whittle.Text.TokenizerMetadata.EncoderTask, Whittle.Text.TokenizerMetadata.ReadTask(result.Model));
    }
}
