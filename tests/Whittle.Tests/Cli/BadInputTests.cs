using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Whittle.Cli;
using Whittle.IO;
using Whittle.Onnx.Proto;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Cli;

/// <summary>
/// One regression test per class of bad input that once crashed, hung, exhausted memory, escaped its folder, left files
/// behind, was accepted though invalid, or was refused without naming the file (issue 19). Each runs the command line
/// in process, as the fuzz harness (<c>tools/Whittle.Fuzz</c>) does.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Mlp => Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("mlp.onnx");

    /// <summary>Runs whittle; an exception escaping is a crash and fails the test.</summary>
    private static (int Exit, string Err) Run(params string[] args)
    {
        var err = new StringWriter();
        var silent = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings { Out = new Spectre.Console.AnsiConsoleOutput(TextWriter.Null) });
        int exit = WhittleCli.Run(args, silent, err, TextWriter.Null);
        return (exit, err.ToString());
    }

    private static void Refused(string expected, params string[] args)
    {
        var (exit, err) = Run(args);
        Assert.True(exit == 1, $"exit {exit}: {err}");
        Assert.Contains(expected, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    /// <summary>A copy of the Llama fixture checkpoint with a tokenizer.json, for import hf.</summary>
    private string Checkpoint()
    {
        string dir = Directory.CreateDirectory(_dir.File("ckpt")).FullName;
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Whittle.Tests.Fixtures.RepoFixtures.Path("hf", "llama", f), Path.Combine(dir, f));
        var vocab = new JsonObject { ["h"] = 0, ["i"] = 1, ["hi"] = 2 };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), new JsonObject
        {
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("h i") },
        }.ToJsonString());
        return dir;
    }

    private static void EditJson(string path, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    [Fact]
    public void InvalidUtf8InJsonAndSizesTheWeightsContradict_AreErrorsNotCrashes()
    {
        // Found by the long fuzz run: bit flips inside a safetensors header string (System.Text.Json threw
        // InvalidOperationException when the name was read), and a config head_dim of 2^30 (RoPE tables of 2 GB).
        string ckpt = Checkpoint(), output = _dir.File("out.onnx");
        string[] import = ["import", "hf", "--model", ckpt, "--out", output];
        string weights = Path.Combine(ckpt, "model.safetensors"), config = Path.Combine(ckpt, "config.json");
        byte[] original = File.ReadAllBytes(weights);
        byte[] flipped = (byte[])original.Clone();
        int quote = Array.IndexOf(flipped, (byte)'"', 8); // the first key of the JSON header
        flipped[quote + 2] = 0xC3;                        // a UTF-8 lead byte followed by an ASCII letter
        File.WriteAllBytes(weights, flipped);
        Refused("model.safetensors: the header is not UTF-8 text", import);
        File.WriteAllBytes(weights, original);

        EditJson(config, j => j["head_dim"] = 1 << 30);
        var clock = Stopwatch.StartNew();
        Refused("does not describe these weights", import);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"refused after {clock.Elapsed}");
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void AHugeDeclaredInputDim_SkipsTheShapeProbe_InsteadOfRunningOutOfMemory()
    {
        // Found by the long fuzz run: inspect fed ONNX Runtime a probe tensor of the declared [2^30, …] shape.
        var model = Whittle.Onnx.OnnxModel.Load(Mlp);
        var dims = model.Graph.Proto.Input[0].Type.TensorType.Shape.Dim;
        dims[0] = new TensorShapeProto.Types.Dimension { DimValue = 1 << 30 };
        string path = _dir.File("huge-input.onnx");
        model.Save(path);
        var clock = Stopwatch.StartNew();
        var (exit, err) = Run("inspect", "--model", path);
        Assert.True(exit == 0, $"exit {exit}: {err}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
    }

    [Fact]
    public void WrongJsonTypesInACheckpointAreErrorsNamingFileAndKey()
    {
        string ckpt = Checkpoint(), output = _dir.File("out.onnx");
        string[] import = ["import", "hf", "--model", ckpt, "--out", output];
        string tokenizer = Path.Combine(ckpt, "tokenizer.json"), config = Path.Combine(ckpt, "config.json");
        string original = File.ReadAllText(tokenizer);

        EditJson(tokenizer, j => j["model"]!["vocab"]!["i"] = new JsonArray(1));
        Refused("tokenizer.json: model.vocab[\"i\"] is [1]; expected a token id", import);
        File.WriteAllText(tokenizer, original);
        EditJson(tokenizer, j => j["model"]!["merges"] = new JsonArray(1, 2, 3));
        Refused("tokenizer.json: model.merges[0] is 1", import);
        File.WriteAllText(tokenizer, original);

        string configText = File.ReadAllText(config);
        EditJson(config, j => j["rope_scaling"] = "linear");
        Refused("config.json: \"rope_scaling\" is linear; expected an object", import);
        EditJson(config, j => j["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 0 });
        Refused("\"rope_scaling.factor\" is 0; expected a positive number", import);
        File.WriteAllText(config, configText);
        EditJson(config, j => j["num_attention_heads"] = -1);
        Refused("config.json: \"num_attention_heads\" is -1, expected a positive integer", import);
        File.WriteAllText(config, configText);

        // A shard index whose value is a number, and safetensors offsets given as strings.
        string shard = Path.Combine(ckpt, "model-00001-of-00001.safetensors");
        File.Move(Path.Combine(ckpt, "model.safetensors"), shard);
        File.WriteAllText(Path.Combine(ckpt, "model.safetensors.index.json"), "{\"weight_map\": {\"lm_head.weight\": 7}}");
        Refused("model.safetensors.index.json: weight_map[\"lm_head.weight\"] is 7; expected a shard file name", import);
        File.Delete(Path.Combine(ckpt, "model.safetensors.index.json"));
        var bytes = File.ReadAllBytes(shard);
        int headerLength = (int)BitConverter.ToInt64(bytes, 0);
        string header = Encoding.UTF8.GetString(bytes, 8, headerLength);
        var h = JsonNode.Parse(header)!.AsObject();
        string first = h.First(p => p.Key != "__metadata__").Key;
        h[first]!["data_offsets"] = new JsonArray("0", "4");
        var newHeader = Encoding.UTF8.GetBytes(h.ToJsonString());
        File.WriteAllBytes(Path.Combine(ckpt, "model.safetensors"), [.. BitConverter.GetBytes((long)newHeader.Length), .. newHeader, .. bytes.AsSpan(8 + headerLength)]);
        File.Delete(shard);
        Refused($"tensor '{first}': data_offsets", import);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void HeadersThatClaimTooMuchAreRefusedBeforeAllocating()
    {
        // A llama2.c header with 2^31 − 1 layers: refused from the file length, not after allocating for each layer.
        string bin = _dir.File("huge.bin");
        using (var f = new BinaryWriter(File.Create(bin)))
        {
            foreach (int v in new[] { 16, 32, int.MaxValue, 2, 2, 32, 16 }) f.Write(v);
            f.Write(new byte[4096]);
        }
        var clock = Stopwatch.StartNew();
        Refused("huge.bin: 4124 bytes, but the header", "import", "llama2c", "--model", bin, "--out", _dir.File("o.onnx"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");

        // vocab_size = −2^31 (found by fuzzing): "negative: unshared classifier", but it has no int32 magnitude.
        string min = _dir.File("min.bin");
        using (var f = new BinaryWriter(File.Create(min)))
        {
            foreach (int v in new[] { 16, 32, 1, 2, 2, int.MinValue, 16 }) f.Write(v);
            f.Write(new byte[64]);
        }
        Refused("min.bin: header dim=16", "import", "llama2c", "--model", min, "--out", _dir.File("o.onnx"));

        // IDX: a gzip file whose header declares a million images but holds a few bytes.
        var idx = new byte[16 + 784];
        idx[2] = 8;
        idx[3] = 3;
        Seeds(idx, 4, 1_000_000);
        Seeds(idx, 8, 28);
        Seeds(idx, 12, 28);
        string images = _dir.File("images-idx3-ubyte.gz");
        using (var o = File.Create(images))
        using (var gz = new System.IO.Compression.GZipStream(o, System.IO.Compression.CompressionLevel.Fastest)) gz.Write(idx);
        Refused("but the gzip data inflates to 800 bytes", "eval", "--model", Mlp, "--data", images, "--repeats", "0");

        // An initializer that claims 3 GB with 16 real bytes.
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Mlp));
        var t = proto.Graph.Initializer[0];
        t.Dims.Clear();
        t.Dims.Add(750_000_000);
        t.RawData = ByteString.CopyFrom(new byte[16]);
        string model = _dir.File("claims.onnx");
        File.WriteAllBytes(model, proto.ToByteArray());
        Refused($"claims.onnx: tensor '{t.Name}' holds 16 bytes of data, but shape [750000000]", "inspect", "--model", model);

        // A language model that fixes its sequence at 2^30 tokens: text is not padded to it.
        var gpt2 = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("gpt2_tiny.onnx")));
        gpt2.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue = 1 << 30;
        string longSeq = _dir.File("long.onnx");
        File.WriteAllBytes(longSeq, gpt2.ToByteArray());
        Refused("a fixed sequence length of 1073741824 is not a window of text", "eval", "--model", longSeq, "--text-string", "hello", "--repeats", "0");
    }

    private static void Seeds(byte[] b, int at, int value) => System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(at), value);

    [Fact]
    public async Task PipesAreRefusedInsteadOfBlocking()
    {
        string pipe = _dir.File("model.onnx");
        using (var mk = Process.Start("mkfifo", pipe)) await mk.WaitForExitAsync();
        var (exit, err) = await Task.Run(() => Run("inspect", "--model", pipe)).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, exit);
        Assert.Contains("model.onnx: the ONNX model is a named pipe, not a regular file", err);
    }

    [Fact]
    public void ExternalDataAndOutputsStayInsideTheirFolder()
    {
        // External data reached through a link to a file outside the model's folder.
        string secret = _dir.File("secret.txt");
        File.WriteAllText(secret, new string('s', 4096));
        string folder = Directory.CreateDirectory(_dir.File("model")).FullName;
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Mlp));
        var t = proto.Graph.Initializer.First(x => x.RawData.Length > 0 && x.RawData.Length <= 4096);
        t.RawData = ByteString.Empty;
        t.DataLocation = TensorProto.Types.DataLocation.External;
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
        File.CreateSymbolicLink(Path.Combine(folder, "weights.bin"), secret);
        string model = Path.Combine(folder, "model.onnx");
        File.WriteAllBytes(model, proto.ToByteArray());
        Refused("outside the model's folder (through a symbolic link)", "convert", "--model", model, "--out", _dir.File("copy.onnx"));
        Assert.False(File.Exists(_dir.File("copy.onnx")));

        // --out that is a link: refused, the link and its target untouched.
        string link = _dir.File("link.onnx");
        File.CreateSymbolicLink(link, secret);
        Refused("link.onnx: the output path is a symbolic link", "convert", "--model", Mlp, "--out", link);
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Equal(new string('s', 4096), File.ReadAllText(secret));
    }

    [Fact]
    public void StaleTemporaryFilesOfKilledRunsAreRemovedByTheNextWrite()
    {
        // What a SIGKILLed convert leaves: a hidden temporary file named with its (now dead) process id.
        string output = _dir.File("out.onnx");
        var dead = Process.Start("true")!;
        dead.WaitForExit();
        string stale = _dir.File($".out.onnx.{dead.Id}.{Guid.NewGuid():N}.tmp");
        File.WriteAllText(stale, "half a model");
        string foreign = _dir.File($".out.onnx.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp"); // a live process's: kept
        File.WriteAllText(foreign, "in progress");
        var (exit, err) = Run("convert", "--model", Mlp, "--out", output);
        Assert.True(exit == 0, err);
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(foreign));
        Assert.Equal(new[] { Path.GetFileName(foreign), "out.onnx" }.Order(StringComparer.Ordinal), _dir.Entries());

        // A write that fails half-way leaves nothing.
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(_dir.File("x.bin"), s =>
        {
            s.Write(new byte[100]);
            throw new InvalidOperationException("disk full");
        }));
        Assert.DoesNotContain(_dir.Entries(), e => e.StartsWith(".x.bin", StringComparison.Ordinal));
    }

    [Fact]
    public void InvalidModelsAndDataAreRefusedNotAccepted()
    {
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Mlp));
        string Write(string name, Action<ModelProto> edit)
        {
            var p = proto.Clone();
            edit(p);
            string path = _dir.File(name);
            File.WriteAllBytes(path, p.ToByteArray());
            return path;
        }
        var first = proto.Graph.Initializer[0];
        Refused($"short.onnx: tensor '{first.Name}' holds 8 bytes of data", "convert", "--model",
            Write("short.onnx", p => p.Graph.Initializer[0].RawData = ByteString.CopyFrom(new byte[8])), "--out", _dir.File("o1.onnx"));
        Refused("no-outputs.onnx: the graph has no outputs", "inspect", "--model", Write("no-outputs.onnx", p => p.Graph.Output.Clear()));
        Refused("twice.onnx: graph input 'input' is declared twice", "inspect", "--model", Write("twice.onnx", p => p.Graph.Input.Add(p.Graph.Input[0].Clone())));

        // .npy with trailing data; .npz with a wrong CRC; negative token ids; NaN in the data (a warning, not an error).
        string npy = _dir.File("x.npy");
        using (var ms = new MemoryStream())
        {
            Npy.Write(ms, NpyArray.Wrap(new float[2 * 784], [2, 784]));
            File.WriteAllBytes(npy, [.. ms.ToArray(), 1, 2, 3]);
        }
        Refused("x.npy: trailing bytes after the array data", "eval", "--model", Mlp, "--data", npy, "--repeats", "0");

        string npz = _dir.File("x.npz");
        Npz.Write(npz, [new("input", NpyArray.Wrap(new float[2 * 784], [2, 784]))]);
        var zip = File.ReadAllBytes(npz);
        int central = zip.AsSpan().LastIndexOf("PK\u0001\u0002"u8);
        zip[central + 16] ^= 0xFF; // the central directory's CRC-32
        File.WriteAllBytes(npz, zip);
        Refused("x.npz (array 'input'): the zip entry's CRC-32", "eval", "--model", Mlp, "--data", npz, "--repeats", "0");

        string ids = _dir.File("ids.npz");
        Npz.Write(ids, [new("input_ids", NpyArray.Wrap(new long[] { 1, 2, -5, 3 }, [1, 4]))]);
        Refused("'input_ids' holds token id -5", "eval", "--model", Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("gpt2_tiny.onnx"), "--data", ids, "--repeats", "0");

        // Windows longer than the model's 64 positions: ONNX Runtime's refusal names the text as well as the model.
        string text = _dir.File("long.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("hello there ", 300)));
        Refused($"ONNX Runtime failed to run the model on inputs from {text}", "eval", "--model", Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("gpt2_tiny.onnx"), "--text", text, "--repeats", "0");

        var nan = new float[2 * 784];
        nan[5] = float.NaN;
        Npz.Write(npz, [new("input", NpyArray.Wrap(nan, [2, 784]))]);
        var data = Whittle.Data.ModelData.Load(Whittle.Onnx.OnnxModel.Load(Mlp), new Whittle.Data.DataSource(npz));
        Assert.Contains(data.Warnings, w => w.Contains("'input' holds 1 NaN or infinite value(s) (the first at element 5)", StringComparison.Ordinal));
    }

    [Fact]
    public void MessagesNameTheFileAndReadLikeTheCommandLine()
    {
        // ONNX Runtime's own refusal, with the model it was about.
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Mlp));
        proto.Graph.Node[0].OpType = "NoSuchOp";
        string model = _dir.File("unknown-op.onnx");
        File.WriteAllBytes(model, proto.ToByteArray());
        var data = _dir.File("d.npz");
        Npz.Write(data, [new("input", NpyArray.Wrap(new float[784], [1, 784]))]);
        Refused("unknown-op.onnx: ONNX Runtime could not load the model", "eval", "--model", Mlp, "--reference", model, "--data", data, "--repeats", "0");

        // A label that is not a class names the data it came from.
        string labels = _dir.File("labels.npy");
        Npy.Write(labels, NpyArray.Wrap(new long[] { 99 }, [1]));
        Refused($"{data}, batch 0 (selected samples 0–0): Label 99 of sample 0", "eval", "--model", Mlp, "--data", data, "--labels", labels, "--repeats", "0");

        // A llama2.c tokenizer's error names the tokenizer file.
        string bin = _dir.File("m.bin"), tok = _dir.File("tok.bin");
        File.Copy(Whittle.Tests.Import.SharedModels.Stories260K("stories260K.bin"), bin);
        File.WriteAllBytes(tok, [8, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F]);
        var (exit, err) = Run("import", "llama2c", "--model", bin, "--tokenizer", tok, "--out", _dir.File("s.onnx"));
        Assert.Equal(1, exit);
        Assert.Contains(tok, err);

        // A parse error: one line in words and a pointer to the help, no .NET type names, no help dump.
        (exit, err) = Run("eval", "--model", Mlp, "--count", "abc");
        Assert.Equal(1, exit);
        Assert.Contains("for option '--count': expected an integer", err);
        Assert.DoesNotContain("System.", err);
        Assert.Contains("See 'whittle eval --help'.", err);
        Assert.Equal(2, err.TrimEnd().Split('\n').Length);
    }
}
