using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Whittle.Analysis;
using Whittle.Data;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Fixtures;

/// <summary>
/// The trained fixtures in <c>fixtures/</c> load in Whittle, run in ONNX Runtime, and reproduce the figures the
/// training scripts recorded in each folder's <c>fixtures.json</c> (computed there by running the exported graph
/// with PyTorch ops): held-out accuracy and cross-entropy of the classifiers, excerpt perplexity of the language
/// models, and the reference outputs of the Hugging Face layout checkpoints.
/// </summary>
public class TrainedFixturesTests
{
    public static TheoryData<string> Classifiers => new() { "mlp", "vgg", "resnet" };

    public static TheoryData<string> LanguageModels => new() { "gpt2", "llama" };

    public static TheoryData<string> HuggingFaceFolders => new() { "gpt2", "llama", "bert" };

    [Theory]
    [MemberData(nameof(Classifiers))]
    public void ClassifierReproducesRecordedHeldOutFiguresInOnnxRuntime(string name)
    {
        var entry = RepoFixtures.Figures("fashion-mnist").GetProperty("models").GetProperty(name);
        string path = RepoFixtures.Path("fashion-mnist", name + ".onnx");
        LoadAndCheck(path, entry, "classifier");

        var images = Idx.ReadImages(RepoFixtures.Path("fashion-mnist", "heldout-images-idx3-ubyte.gz"));
        long[] labels = Idx.ReadLabels(RepoFixtures.Path("fashion-mnist", "heldout-labels-idx1-ubyte.gz")).Data is long[] l ? l : throw new InvalidDataException("labels are not int64");
        Assert.Equal([2000, 28, 28], images.Shape);

        var (logits, correct, meanNll) = Evaluate(path, (float[])images.Data, labels);

        var reference = entry.GetProperty("reference");
        var first4 = reference.GetProperty("heldout_first4_logits").EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(v => v.GetDouble()).ToArray();
        AssertClose(first4, logits.AsSpan(0, 40), $"{name}: logits of the first 4 held-out images");
        var held = reference.GetProperty("heldout_2000");
        // ORT and PyTorch sum in different orders (logits differ by ~1e-6): an exact tie could flip one argmax.
        Assert.InRange(correct, held.GetProperty("correct").GetInt32() - 1, held.GetProperty("correct").GetInt32() + 1);
        Assert.Equal(held.GetProperty("mean_cross_entropy").GetDouble(), meanNll, 1e-4);
    }

    [Fact]
    public void MlpReproducesRecordedFullTestSetFigures()
    {
        const string images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
        Assert.True(File.Exists(images), $"{images} is missing: apt-get install dataset-fashion-mnist (.ci/run does).");
        var test = Idx.ReadImages(images);
        long[] labels = Idx.ReadLabels("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").Data is long[] l ? l : throw new InvalidDataException("labels are not int64");
        var (_, correct, meanNll) = Evaluate(RepoFixtures.Path("fashion-mnist", "mlp.onnx"), (float[])test.Data, labels);
        var full = RepoFixtures.Figures("fashion-mnist").GetProperty("models").GetProperty("mlp").GetProperty("reference").GetProperty("test_10000");
        Assert.InRange(correct, full.GetProperty("correct").GetInt32() - 1, full.GetProperty("correct").GetInt32() + 1);
        Assert.Equal(full.GetProperty("mean_cross_entropy").GetDouble(), meanNll, 1e-4);
    }

    /// <summary>Logits of 28×28 images (pixel / 255) in ONNX Runtime, the top-1 correct count and the mean cross-entropy.</summary>
    private static (float[] Logits, int Correct, double MeanNll) Evaluate(string path, ReadOnlySpan<float> images, long[] labels)
    {
        using var options = OrtTensors.SingleThreaded();
        using var session = new InferenceSession(path, options);
        const int batch = 250;
        int n = labels.Length;
        var logits = new float[n * 10];
        for (int start = 0; start < n; start += batch)
        {
            int rows = Math.Min(batch, n - start);
            var input = OnnxTensors.FromArray<float>("input", images.Slice(start * 784, rows * 784), [rows, 1, 28, 28], OnnxDataType.Float);
            var output = Assert.Single(OrtTensors.Run(session, [("input", input)], ["logits"]));
            Assert.Equal([rows, 10L], output.Dims);
            OnnxTensor.Of(output).ToArray<float>().CopyTo(logits, start * 10);
        }
        int correct = 0;
        double nll = 0;
        for (int i = 0; i < n; i++)
        {
            var row = logits.AsSpan(i * 10, 10);
            int argmax = 0;
            for (int c = 1; c < 10; c++) if (row[c] > row[argmax]) argmax = c;
            if (argmax == labels[i]) correct++;
            nll += LogSumExp(row) - row[(int)labels[i]];
        }
        return (logits, correct, nll / n);
    }

    [Theory]
    [InlineData("vgg", 4)]
    [InlineData("resnet", 9)]
    public void ConvolutionalClassifiersKeepTheirBatchNormNodes(string name, int batchNorms)
    {
        var model = OnnxModel.Load(RepoFixtures.Path("fashion-mnist", name + ".onnx"));
        var bns = model.Graph.Nodes.Where(n => n.OpType == "BatchNormalization").ToList();
        Assert.Equal(batchNorms, bns.Count);
        // Each reads its own scale, bias, mean and variance initializers, and follows a Conv.
        Assert.All(bns, n => Assert.All(n.Input.Skip(1), i => Assert.True(model.Graph.TryGetInitializer(i, out _), $"{n.Name}: {i} is not an initializer")));
        Assert.All(bns, n => Assert.Equal("Conv", model.Graph.Producer(n.Input[0])?.OpType));
        Assert.Equal(bns.Count, bns.SelectMany(n => n.Input.Skip(1)).Distinct().Count() / 4);
    }

    /// <summary>
    /// Whittle's structure analysis sees in each classifier what the training script built (expected values from
    /// the architectures in scripts/train_image_fixtures.py): the hidden layer of the MLP; every conv-to-conv and
    /// conv-to-linear channel chain of the VGG (through BatchNorm, ReLU and max pooling; 49 = 7×7 inputs per
    /// channel after the flatten); only the inner conv of each residual block of the ResNet (the others feed the
    /// residual sum).
    /// </summary>
    [Theory]
    [InlineData("mlp", 2, 0, "Linear:1024")]
    [InlineData("vgg", 2, 4, "Conv:32 Conv:32 Conv:64 ConvToLinear:64x49 Linear:256")]
    [InlineData("resnet", 1, 9, "Conv:16 Conv:32 Conv:64")]
    public void StructureAnalysisFindsTheClassifiersLayersAndChains(string name, int linear, int conv, string chains)
    {
        var structure = ModelStructure.Analyze(OnnxModel.Load(RepoFixtures.Path("fashion-mnist", name + ".onnx")));
        Assert.Equal(linear, structure.LinearSites.Count);
        Assert.Equal(conv, structure.ConvSites.Count);
        var found = structure.Chains.Select(c => $"{c.Kind}:{c.Channels}" + (c.ChannelFactor > 1 ? $"x{c.ChannelFactor}" : ""));
        Assert.Equal(chains, string.Join(" ", found));
        var entry = RepoFixtures.Figures("fashion-mnist").GetProperty("models").GetProperty(name);
        Assert.Equal(entry.GetProperty("parameters").GetInt64(), structure.SiteParameters + BatchNormParameters(name));
    }

    /// <summary>The language models' blocks, as built by scripts/hf_models.py (GPT-2: 4 blocks, fused q|k|v, 8 heads
    /// of 16, MLP 512; Llama: 6 blocks, 8 query / 4 KV heads of 16, gated MLP 352).</summary>
    [Theory]
    [InlineData("gpt2", 4, 8, 8, 512)]
    [InlineData("llama", 6, 8, 4, 352)]
    public void StructureAnalysisFindsTheLanguageModelsBlocks(string name, int blocks, int heads, int kvHeads, int mlp)
    {
        var structure = ModelStructure.Analyze(OnnxModel.Load(RepoFixtures.Path("text", name + ".onnx")));
        Assert.Equal(blocks, structure.Blocks.Count);
        Assert.All(structure.Blocks, b =>
        {
            Assert.NotNull(b.Attention);
            Assert.NotNull(b.Mlp);
            Assert.Equal((heads, kvHeads, 16), (b.Attention.Heads, b.Attention.KvHeads, b.Attention.HeadSize));
            Assert.Equal(name == "gpt2", b.Attention.FusedQkv is not null);
            Assert.Equal(name == "llama", b.Mlp.Gate is not null);
        });
        var mlpChains = structure.Chains.Where(c => c.Kind is ChainKind.Linear or ChainKind.GatedLinear).ToList();
        Assert.Equal(blocks, mlpChains.Count);
        Assert.All(mlpChains, c => Assert.Equal(mlp, c.Channels));
    }

    private static long BatchNormParameters(string name) => name switch
    {
        // Scale and bias per channel (running statistics are buffers, not parameters, in PyTorch's count).
        "vgg" => 2 * (32 + 32 + 64 + 64),
        "resnet" => 2 * (16 + 16 + 16 + 32 + 32 + 32 + 64 + 64 + 64),
        _ => 0,
    };

    [Fact]
    public void DataSubsetsAreTheRecordedImages()
    {
        var data = RepoFixtures.Figures("fashion-mnist").GetProperty("data");
        var calib = Idx.Read(RepoFixtures.Path("fashion-mnist", "calib-images-idx3-ubyte.gz"));
        var calibLabels = Idx.Read(RepoFixtures.Path("fashion-mnist", "calib-labels-idx1-ubyte.gz"));
        var held = Idx.Read(RepoFixtures.Path("fashion-mnist", "heldout-images-idx3-ubyte.gz"));
        Assert.Equal([1000, 28, 28], calib.Shape);
        Assert.Equal([1000], calibLabels.Shape);
        Assert.Equal([2000, 28, 28], held.Shape);
        Assert.Equal(IdxElementType.UInt8, calib.ElementType);

        const string debian = "/usr/share/datasets/fashion-mnist";
        Assert.True(File.Exists(Path.Combine(debian, "train-images-idx3-ubyte.gz")), $"{debian} is missing: apt-get install dataset-fashion-mnist (.ci/run does).");
        var train = Idx.Read(Path.Combine(debian, "train-images-idx3-ubyte.gz"));
        var trainLabels = Idx.Read(Path.Combine(debian, "train-labels-idx1-ubyte.gz"));
        var test = Idx.Read(Path.Combine(debian, "t10k-images-idx3-ubyte.gz"));
        int[] indices = [.. data.GetProperty("calib").GetProperty("train_indices").EnumerateArray().Select(e => e.GetInt32())];
        Assert.Equal(1000, indices.Length);
        for (int k = 0; k < indices.Length; k++)
        {
            Assert.True(train.Values.AsSpan(indices[k] * 784, 784).SequenceEqual(calib.Values.AsSpan(k * 784, 784)), $"calib image {k} is not train image {indices[k]}");
            Assert.Equal(trainLabels.Values[indices[k]], calibLabels.Values[k]);
        }
        Assert.True(test.Values.AsSpan(0, 2000 * 784).SequenceEqual(held.Values), "held-out images are not the first 2000 test images");
    }

    [Theory]
    [MemberData(nameof(LanguageModels))]
    public void LanguageModelReproducesRecordedExcerptPerplexityInOnnxRuntime(string name)
    {
        var figures = RepoFixtures.Figures("text");
        var entry = figures.GetProperty("models").GetProperty(name);
        string path = RepoFixtures.Path("text", name + ".onnx");
        var model = LoadAndCheck(path, entry, "language-model");
        Assert.Equal("bytes", Metadata(model)["whittle.tokenizer"]);

        byte[] text = File.ReadAllBytes(RepoFixtures.Path("text", "heldout-excerpt.txt"));
        const int t = 128;
        int windows = text.Length / t;
        var reference = entry.GetProperty("reference");
        var excerpt = reference.GetProperty("excerpt");
        Assert.Equal(excerpt.GetProperty("windows").GetInt32(), windows);

        using var options = OrtTensors.SingleThreaded();
        using var session = new InferenceSession(path, options);
        double nll = 0;
        long predicted = 0;
        float[]? window0 = null;
        for (int w0 = 0; w0 < windows; w0 += 16)
        {
            int n = Math.Min(16, windows - w0);
            var ids = Ids(text.AsSpan(w0 * t, n * t), n, t);
            var logits = OnnxTensor.Of(Assert.Single(OrtTensors.Run(session, [("input_ids", ids)], ["logits"]))).ToArray<float>();
            window0 ??= logits;
            for (int w = 0; w < n; w++)
                for (int p = 0; p < t - 1; p++)
                {
                    var row = logits.AsSpan((w * t + p) * 256, 256);
                    nll += LogSumExp(row) - row[text[(w0 + w) * t + p + 1]];
                    predicted++;
                }
        }
        Assert.Equal(excerpt.GetProperty("predicted_tokens").GetInt64(), predicted);
        double perplexity = Math.Exp(nll / predicted);
        double recorded = excerpt.GetProperty("perplexity").GetDouble();
        Assert.True(Math.Abs(perplexity - recorded) <= 1e-4 * recorded, $"{name}: excerpt perplexity {perplexity:R} in ORT, {recorded:R} recorded");
        var last = reference.GetProperty("excerpt_window0_last_logits").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        AssertClose(last, window0.AsSpan((t - 1) * 256, 256), $"{name}: logits at position 127 of the first window");

        // T is dynamic up to the 256-position context, and the model is causal: a prefix gives the same logits.
        var full = OnnxTensor.Of(OrtTensors.Run(session, [("input_ids", Ids(text.AsSpan(0, 256), 1, 256))], ["logits"])[0]).ToArray<float>();
        var prefix = OnnxTensor.Of(OrtTensors.Run(session, [("input_ids", Ids(text.AsSpan(0, 37), 1, 37))], ["logits"])[0]).ToArray<float>();
        Assert.Equal(256 * 256, full.Length);
        AssertClose([.. full.AsSpan(0, 37 * 256).ToArray().Select(v => (double)v)], prefix, $"{name}: a 37-token prefix");
        AssertClose([.. window0.AsSpan(0, t * 256).ToArray().Select(v => (double)v)], full.AsSpan(0, t * 256), $"{name}: 128 tokens inside a 256-token run");
    }

    [Fact]
    public void HeldOutSplitAndExcerptsReproduceFromTheCorpus()
    {
        var data = RepoFixtures.Figures("text").GetProperty("data");
        byte[] excerpt = File.ReadAllBytes(RepoFixtures.Path("text", "heldout-excerpt.txt"));
        var bounds = data.GetProperty("excerpt").GetProperty("bytes");
        Assert.Equal(bounds[1].GetInt32() - bounds[0].GetInt32(), excerpt.Length);
        Assert.Equal(data.GetProperty("excerpt").GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(excerpt)));
        Assert.Equal((byte)'\n', excerpt[^1]);

        Assert.True(File.Exists(RepoFixtures.MobyDick), $"{RepoFixtures.MobyDick} is missing: run scripts/fetch_data.sh (.ci/run does).");
        byte[] text = File.ReadAllBytes(RepoFixtures.MobyDick);
        Assert.Equal(data.GetProperty("bytes").GetInt32(), text.Length);
        Assert.Equal(data.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(text)));
        // The split rule: held-out starts just past the first newline at or after 90 % of the bytes.
        int cut = Array.IndexOf(text, (byte)'\n', (int)(text.Length * 9L / 10)) + 1;
        Assert.Equal(data.GetProperty("heldout_bytes")[0].GetInt32(), cut);
        Assert.Equal(cut, bounds[0].GetInt32());
        Assert.True(text.AsSpan(cut, excerpt.Length).SequenceEqual(excerpt), "the excerpt is not the start of the held-out text");
        // The calibration excerpt is the end of the training text, from just past a newline 16 KiB before the cut.
        byte[] calib = File.ReadAllBytes(RepoFixtures.Path("text", "calib-excerpt.txt"));
        var calibBounds = data.GetProperty("calibration_excerpt").GetProperty("bytes");
        int calibStart = Array.IndexOf(text, (byte)'\n', cut - 16384) + 1;
        Assert.Equal([calibStart, cut], calibBounds.EnumerateArray().Select(b => b.GetInt32()));
        Assert.True(text.AsSpan(calibStart, cut - calibStart).SequenceEqual(calib), "the calibration excerpt is not the end of the training text");
        // The held-out text is valid UTF-8 on its own (the cut is at a newline).
        Assert.Equal(text.Length - cut, Encoding.UTF8.GetByteCount(new UTF8Encoding(false, true).GetString(text, cut, text.Length - cut)));
    }

    [Theory]
    [MemberData(nameof(HuggingFaceFolders))]
    public void HuggingFaceCheckpointIsWellFormedAndMatchesItsRecord(string name)
    {
        var entry = RepoFixtures.Figures("hf").GetProperty("models").GetProperty(name);
        using var config = JsonDocument.Parse(File.ReadAllText(RepoFixtures.Path("hf", name, "config.json")));
        Assert.Equal(entry.GetProperty("architecture").GetString(), config.RootElement.GetProperty("architectures")[0].GetString());
        Assert.Equal("float32", config.RootElement.GetProperty("torch_dtype").GetString());

        var tensors = ReadSafetensors(RepoFixtures.Path("hf", name, "model.safetensors"));
        var expected = entry.GetProperty("tensors").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, shape) in expected) Assert.Equal(shape, tensors[key].Shape);

        var reference = Npz.Read(RepoFixtures.Path("hf", name, "reference.npz"));
        Assert.Equal(NpyDType.Int64, reference["input_ids"].DType);
        Assert.All(reference.Where(r => r.Key is "logits" or "last_hidden_state" or "pooler_output").Select(r => r.Value),
            a => Assert.Equal(NpyDType.Float32, a.DType));
    }

    [Theory]
    [MemberData(nameof(LanguageModels))]
    public void HuggingFaceCheckpointHoldsTheOnnxModelsWeightsAndReproducesItsReference(string name)
    {
        var tensors = ReadSafetensors(RepoFixtures.Path("hf", name, "model.safetensors"));
        string path = RepoFixtures.Path("text", name + ".onnx");
        var model = OnnxModel.Load(path);
        foreach (var (key, (shape, values)) in tensors)
        {
            // Same name in the graph (Gather tables, norms, GPT-2's Conv1D [in, out] weights), or the exporter's
            // folded transpose of an nn.Linear weight [out, in], renamed "<name>.T" by the script.
            if (model.Graph.TryGetInitializer(key, out var same))
                Assert.True(same.ToArray<float>().AsSpan().SequenceEqual(values), $"{name}: {key} differs from the ONNX initializer");
            else
            {
                var t = model.Graph.GetInitializer(key + ".T");
                Assert.Equal([(long)shape[1], shape[0]], t.Shape);
                var tv = t.ToArray<float>();
                for (int r = 0; r < shape[0]; r++)
                    for (int c = 0; c < shape[1]; c++)
                        Assert.True(values[r * shape[1] + c] == tv[c * shape[0] + r], $"{name}: {key}[{r},{c}] differs from the transposed ONNX initializer");
            }
        }

        var reference = Npz.Read(RepoFixtures.Path("hf", name, "reference.npz"));
        var ids = reference["input_ids"];
        var input = new TensorProto { Name = "input_ids", DataType = (int)OnnxDataType.Int64 };
        input.Dims.AddRange(ids.Shape.Select(d => (long)d));
        input.Int64Data.AddRange(ids.ToInt64Array());
        var logits = OnnxTensor.Of(Assert.Single(OrtTensors.Run(path, [("input_ids", input)], ["logits"]))).ToArray<float>();
        var expected = reference["logits"];
        Assert.Equal([ids.Shape[0], ids.Shape[1], 256], expected.Shape);
        AssertClose([.. expected.AsSpan<float>().ToArray().Select(v => (double)v)], logits, $"{name}: reference.npz logits");
    }

    private static OnnxModel LoadAndCheck(string path, JsonElement entry, string task)
    {
        var model = OnnxModel.Load(path);
        model.Validate();
        Assert.Equal(task, Metadata(model)["whittle.task"]);
        var recorded = entry.GetProperty("onnx").GetProperty("op_types").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var actual = model.Graph.Nodes.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(recorded.OrderBy(p => p.Key, StringComparer.Ordinal), actual.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.True(model.OpsetVersion("") is >= 14 and <= 17, $"{path}: opset {model.OpsetVersion("")}");
        var input = Assert.Single(model.Graph.Inputs);
        Assert.Equal("batch", input.Type.TensorType.Shape.Dim[0].DimParam);
        return model;
    }

    private static Dictionary<string, string> Metadata(OnnxModel model) => model.Proto.MetadataProps.ToDictionary(p => p.Key, p => p.Value);

    private static TensorProto Ids(ReadOnlySpan<byte> bytes, int rows, int t)
    {
        var ids = new TensorProto { Name = "input_ids", DataType = (int)OnnxDataType.Int64 };
        ids.Dims.AddRange([rows, t]);
        foreach (byte b in bytes[..(rows * t)]) ids.Int64Data.Add(b);
        return ids;
    }

    private static double LogSumExp(ReadOnlySpan<float> row)
    {
        double max = double.NegativeInfinity, sum = 0;
        foreach (float v in row) max = Math.Max(max, v);
        foreach (float v in row) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    private static void AssertClose(double[] expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4 + 1e-4 * Math.Abs(expected[i]), $"{what}: element {i} is {actual[i]:R}, expected {expected[i]:R}");
    }

    /// <summary>
    /// A safetensors file read by its specification: u64 little-endian header length, a JSON header of
    /// {name: {dtype, shape, data_offsets}} (plus optional __metadata__), then the data. Checks that the F32 tensors
    /// tile the data exactly, in some order, without gaps or overlaps.
    /// </summary>
    private static Dictionary<string, (int[] Shape, float[] Values)> ReadSafetensors(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(file);
        Assert.InRange(headerLength, 2, file.Length - 8);
        using var header = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        long dataStart = 8 + headerLength;
        var result = new Dictionary<string, (int[], float[])>();
        var ranges = new List<(long Begin, long End)>();
        foreach (var p in header.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            Assert.Equal("F32", p.Value.GetProperty("dtype").GetString());
            int[] shape = [.. p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32())];
            long begin = p.Value.GetProperty("data_offsets")[0].GetInt64(), end = p.Value.GetProperty("data_offsets")[1].GetInt64();
            Assert.Equal(shape.Aggregate(4L, (a, d) => a * d), end - begin);
            var values = new float[(end - begin) / 4];
            for (int i = 0; i < values.Length; i++)
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(file.AsSpan((int)(dataStart + begin + 4 * i), 4));
            result.Add(p.Name, (shape, values));
            ranges.Add((begin, end));
        }
        long at = 0;
        foreach (var (begin, end) in ranges.OrderBy(r => r.Begin))
        {
            Assert.Equal(at, begin);
            at = end;
        }
        Assert.Equal(file.Length - dataStart, at);
        return result;
    }
}
