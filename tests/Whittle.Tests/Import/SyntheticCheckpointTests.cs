using System.Buffers.Binary;
using System.Text.Json;
using Whittle.Analysis;
using Whittle.Data;
using Whittle.Import;
using Whittle.IO;
using Whittle.Onnx;

namespace Whittle.Tests.Import;

/// <summary>Synthetic Llama checkpoints: deterministic bytes, the Hugging Face layout, the intended statistics, and they import and run.</summary>
public sealed class SyntheticCheckpointTests : IDisposable
{
    private static readonly SyntheticLlamaShape Tiny = new(Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, Ffn: 128, Vocab: 100);

    private readonly string _root = Directory.CreateTempSubdirectory("whittle-synthetic-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Folder(string name) => Path.Combine(_root, name);

    private static byte[] Weights(string dir) => File.ReadAllBytes(Path.Combine(dir, "model.safetensors"));

    [Fact]
    public void SameSeed_SameBytes_OtherSeed_OtherWeights()
    {
        SyntheticCheckpoint.Write(Folder("a"), Tiny, seed: 7);
        SyntheticCheckpoint.Write(Folder("b"), Tiny, seed: 7);
        SyntheticCheckpoint.Write(Folder("c"), Tiny, seed: 8);
        Assert.Equal(Weights(Folder("a")), Weights(Folder("b")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(Folder("a"), "config.json")), File.ReadAllBytes(Path.Combine(Folder("c"), "config.json")));
        var a = Weights(Folder("a"));
        var c = Weights(Folder("c"));
        Assert.Equal(a.Length, c.Length);
        Assert.NotEqual(a, c);
        // Only the weights differ: the header (and the norms) are the same for both seeds.
        int header = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(a);
        Assert.Equal(a.AsSpan(0, header).ToArray(), c.AsSpan(0, header).ToArray());
    }

    [Fact]
    public void File_HasEveryHfTensor_Bf16_OutInShapes_HeaderPadded()
    {
        var files = SyntheticCheckpoint.Write(Folder("m"), Tiny, seed: 1);
        var bytes = Weights(Folder("m"));
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, n % 8);
        Assert.Equal((byte)'}', bytes[8..(8 + (int)n)].Last(b => b != (byte)' '));

        using var st = SafeTensorsFile.Open(files.WeightsPath);
        var expected = new Dictionary<string, long[]>
        {
            ["model.embed_tokens.weight"] = [100, 64],
            ["model.norm.weight"] = [64],
            ["lm_head.weight"] = [100, 64],
        };
        for (int i = 0; i < 2; i++)
        {
            string p = $"model.layers.{i}.";
            expected[p + "self_attn.q_proj.weight"] = [64, 64];
            expected[p + "self_attn.k_proj.weight"] = [32, 64]; // 2 KV heads × head size 16
            expected[p + "self_attn.v_proj.weight"] = [32, 64];
            expected[p + "self_attn.o_proj.weight"] = [64, 64];
            expected[p + "mlp.gate_proj.weight"] = [128, 64];
            expected[p + "mlp.up_proj.weight"] = [128, 64];
            expected[p + "mlp.down_proj.weight"] = [64, 128];
            expected[p + "input_layernorm.weight"] = [64];
            expected[p + "post_attention_layernorm.weight"] = [64];
        }
        Assert.Equal(expected.Keys.Order(), st.Tensors.Select(t => t.Name).Order());
        foreach (var t in st.Tensors)
        {
            Assert.Equal(SafeTensorsDType.BF16, t.DType);
            Assert.Equal(expected[t.Name], t.Shape);
        }
        Assert.Equal("pt", st.Metadata["format"]);
        long parameters = expected.Values.Sum(s => s.Aggregate(1L, (a, x) => a * x));
        Assert.Equal(parameters, files.Parameters);
        Assert.Equal(Tiny.ParameterCount, parameters);
        Assert.Equal(8 + (long)n + 2 * parameters, files.WeightsBytes);
    }

    [Fact]
    public void Values_MatricesNormalWithStd002_NormsOne_TensorsDistinct()
    {
        using var st = SafeTensorsFile.Open(SyntheticCheckpoint.Write(Folder("m"), Tiny, seed: 3).WeightsPath);
        var pooled = new List<float>();
        var seen = new HashSet<string>();
        foreach (var t in st.Tensors)
        {
            var v = st.ReadFloat32(t.Name);
            if (t.Name.EndsWith("norm.weight", StringComparison.Ordinal))
            {
                Assert.All(v, x => Assert.Equal(1f, x));
                continue;
            }
            var (mean, std) = MeanStd(v);
            Assert.InRange(mean, -0.002, 0.002);
            Assert.InRange(std, 0.018, 0.022);
            Assert.True(seen.Add(Convert.ToHexString(st.ReadBytes(t.Name).AsSpan(0, 64))), $"{t.Name} starts like another tensor");
            pooled.AddRange(v);
        }
        var (_, all) = MeanStd([.. pooled]);
        Assert.InRange(all, 0.0196, 0.0204);
        // Normal-ish: about 68.3 % within one σ, 95.4 % within two (Irwin–Hall with four terms: 66.9 %, 95.7 %).
        double within1 = pooled.Count(x => Math.Abs(x) < 0.02) / (double)pooled.Count;
        double within2 = pooled.Count(x => Math.Abs(x) < 0.04) / (double)pooled.Count;
        Assert.InRange(within1, 0.65, 0.70);
        Assert.InRange(within2, 0.94, 0.97);
    }

    [Fact]
    public void LargeTensor_SpanningBuffers_HasNoRepeatedChunks()
    {
        // 70000 × 64 = 4.48 Mi elements: more than one 4 Mi-element buffer, 69 chunks of 64 Ki.
        var shape = new SyntheticLlamaShape(64, 1, 4, 4, 64, 70000);
        using var st = SafeTensorsFile.Open(SyntheticCheckpoint.Write(Folder("big"), shape, seed: 5).WeightsPath);
        var bytes = st.ReadBytes("model.embed_tokens.weight");
        const int chunkBytes = 2 << 16;
        var starts = new HashSet<string>();
        for (int off = 0; off < bytes.Length; off += chunkBytes)
            Assert.True(starts.Add(Convert.ToHexString(bytes, off, 64)), $"chunk at byte {off} repeats an earlier one");
        Assert.Equal((bytes.Length + chunkBytes - 1) / chunkBytes, starts.Count);
        var (mean, std) = MeanStd(st.ReadFloat32("model.embed_tokens.weight"));
        Assert.InRange(mean, -0.0002, 0.0002);
        Assert.InRange(std, 0.0199, 0.0201);
        Assert.NotEqual(bytes, st.ReadBytes("lm_head.weight"));
    }

    [Fact]
    public void Config_DescribesTheShape()
    {
        var files = SyntheticCheckpoint.Write(Folder("m"), Tiny, seed: 1);
        using var doc = JsonDocument.Parse(File.ReadAllText(files.ConfigPath));
        var c = doc.RootElement;
        Assert.Equal("LlamaForCausalLM", c.GetProperty("architectures")[0].GetString());
        Assert.Equal((64, 128, 2, 4, 2, 100), (c.GetProperty("hidden_size").GetInt32(), c.GetProperty("intermediate_size").GetInt32(),
            c.GetProperty("num_hidden_layers").GetInt32(), c.GetProperty("num_attention_heads").GetInt32(),
            c.GetProperty("num_key_value_heads").GetInt32(), c.GetProperty("vocab_size").GetInt32()));
        Assert.Equal(1e-5, c.GetProperty("rms_norm_eps").GetDouble());
        Assert.Equal(10000.0, c.GetProperty("rope_theta").GetDouble());
        Assert.Equal(2048, c.GetProperty("max_position_embeddings").GetInt32());
        Assert.False(c.GetProperty("tie_word_embeddings").GetBoolean());
        Assert.Equal("bfloat16", c.GetProperty("torch_dtype").GetString());
    }

    [Fact]
    public void Imports_AndRunsInOnnxRuntime_WithFiniteLogits()
    {
        var dir = Folder("m");
        SyntheticCheckpoint.Write(dir, Tiny, seed: 11);
        var result = HfImporter.Import(dir);
        Assert.Equal("LlamaForCausalLM", result.Architecture);

        var structure = ModelStructure.Analyze(result.Model);
        Assert.Equal(2, structure.Blocks.Count);
        var attention = structure.Blocks[0].Attention!;
        Assert.Equal((4, 2, 16), (attention.Heads, attention.KvHeads, attention.HeadSize));

        long[] ids = [1, 17, 42, 99, 0, 5];
        var (logits, shape) = LanguageModelRunner.Run(result.Model, [("input_ids", ids, [2, 3])])["logits"];
        Assert.Equal([2L, 3, 100], shape);
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
        Assert.True(MeanStd(logits).Std > 1e-4, "the logits are constant: the weights did not reach the model");
        // Both sequences see different tokens, so their last-position logits differ.
        Assert.NotEqual(logits.AsSpan(200, 100).ToArray(), logits.AsSpan(500, 100).ToArray());
    }

    [Fact]
    public void Progress_ReportsEveryTensor_EndingAtTheTotal()
    {
        var reports = new List<SyntheticCheckpointProgress>();
        var files = SyntheticCheckpoint.Write(Folder("m"), Tiny, seed: 1, new ListProgress(reports));
        Assert.Equal(Tiny.Tensors().Select(t => t.Name), reports.Select(r => r.Tensor));
        Assert.Equal(Enumerable.Range(0, reports.Count), reports.Select(r => r.Index));
        Assert.Equal(2 * files.Parameters, reports[^1].BytesWritten);
        Assert.All(reports, r => Assert.Equal(2 * files.Parameters, r.TotalBytes));
    }

    [Fact]
    public void Cancelled_LeavesNoWeightsFileAndNoTemporaryFile()
    {
        var dir = Folder("m");
        using var cts = new CancellationTokenSource();
        var progress = new ListProgress([], _ => cts.Cancel()); // cancel once the first tensor is written
        Assert.ThrowsAny<OperationCanceledException>(() => SyntheticCheckpoint.Write(dir, Tiny, seed: 1, progress, cts.Token));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    [Theory]
    [InlineData(64, 2, 3, 3, 128, 100)] // 3 heads do not divide 64
    [InlineData(64, 2, 4, 3, 128, 100)] // 3 KV heads do not divide 4
    [InlineData(64, 2, 64, 64, 128, 100)] // head size 1: odd, RoPE rotates pairs
    [InlineData(64, 0, 4, 2, 128, 100)]
    [InlineData(64, 2, 4, 2, 128, 0)]
    public void InvalidShape_Throws_AndWritesNothing(int dim, int layers, int heads, int kv, int ffn, int vocab)
    {
        var dir = Folder("bad");
        Assert.ThrowsAny<ArgumentException>(() => SyntheticCheckpoint.Write(dir, new SyntheticLlamaShape(dim, layers, heads, kv, ffn, vocab), 1));
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Presets_HaveTheirPublishedSizes()
    {
        Assert.Equal(134_105_856, SyntheticLlamaShape.Llama134M.ParameterCount);
        Assert.Equal(1_100_048_384, SyntheticLlamaShape.TinyLlama1B.ParameterCount);
        Assert.Equal(6_738_415_616, SyntheticLlamaShape.Llama2_7B.ParameterCount);
        Assert.Same(SyntheticLlamaShape.TinyLlama1B, SyntheticLlamaShape.Presets["tinyllama-1.1b"]);
    }

    [Fact]
    public void TokenIds_SeededInRange_AndFeedTheImportedModel()
    {
        string a = Path.Combine(_root, "a.npy"), b = Path.Combine(_root, "b.npy"), c = Path.Combine(_root, "c.npy");
        SyntheticCheckpoint.WriteTokenIds(a, sequences: 40, length: 50, vocab: 100, seed: 2);
        SyntheticCheckpoint.WriteTokenIds(b, 40, 50, 100, 2);
        SyntheticCheckpoint.WriteTokenIds(c, 40, 50, 100, 3);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.NotEqual(File.ReadAllBytes(a), File.ReadAllBytes(c));

        var array = Npy.Read(a);
        Assert.Equal(NpyDType.Int64, array.DType);
        Assert.Equal([40, 50], array.Shape);
        var ids = array.ToInt64Array();
        Assert.All(ids, id => Assert.InRange(id, 0, 99));
        Assert.Equal(100, ids.Distinct().Count()); // 2000 uniform draws hit every one of 100 ids (all but surely)

        SyntheticCheckpoint.Write(Folder("m"), Tiny, seed: 1);
        var inputs = ModelInput.FromModel(HfImporter.Import(Folder("m")).Model);
        var data = NpyInputs.Load(a, inputs);
        Assert.Equal(40, data.Count);
        Assert.Equal([40, 50], data.Samples["input_ids"].Shape);
        Assert.Equal(ids, data.Samples["input_ids"].AsInt64());
    }

    private static (double Mean, double Std) MeanStd(float[] v)
    {
        double mean = v.Average(x => (double)x);
        double variance = v.Sum(x => (x - mean) * (x - mean)) / v.Length;
        return (mean, Math.Sqrt(variance));
    }

    /// <summary>Collects reports synchronously (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class ListProgress(List<SyntheticCheckpointProgress> reports, Action<SyntheticCheckpointProgress>? then = null)
        : IProgress<SyntheticCheckpointProgress>
    {
        public void Report(SyntheticCheckpointProgress value)
        {
            reports.Add(value);
            then?.Invoke(value);
        }
    }
}
