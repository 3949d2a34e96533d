using System.Text;
using Google.Protobuf;
using Whittle.Onnx.Proto;

namespace Whittle.Fuzz;

/// <summary>
/// Structure-aware case generators, one per input kind: each copies (or links) valid seeds into the case folder, changes
/// one thing, and names the command that reads it the way a user would run it.
/// </summary>
public sealed class Generators(Seeds seeds)
{
    /// <summary>Every kind, in report order.</summary>
    public static readonly string[] Kinds = ["onnx", "onnx-external", "safetensors", "hf-config", "hf-tokenizer", "hf-index", "llama2c", "npy", "npz", "idx", "text", "special"];

    /// <summary>A case of <paramref name="kind"/> in <paramref name="folder"/> (created empty by the caller).</summary>
    public FuzzCase Make(string kind, Random rng, string folder) => kind switch
    {
        "onnx" => Onnx(rng, folder),
        "onnx-external" => OnnxExternal(rng, folder),
        "safetensors" => SafeTensors(rng, folder),
        "hf-config" => HfJson(rng, folder, "config.json"),
        "hf-tokenizer" => HfJson(rng, folder, "tokenizer.json"),
        "hf-index" => HfIndex(rng, folder),
        "llama2c" => Llama2c(rng, folder),
        "npy" => Npy(rng, folder),
        "npz" => Npz(rng, folder),
        "idx" => Idx(rng, folder),
        "text" => Text(rng, folder),
        "special" => Special(rng, folder),
        _ => throw new ArgumentException($"Unknown kind '{kind}'; expected one of {string.Join(", ", Kinds)}."),
    };

    // ---------------------------------------------------------------- ONNX

    private FuzzCase Onnx(Random rng, string folder)
    {
        bool gpt2 = rng.Next(3) == 0;
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(gpt2 ? seeds.Gpt2 : seeds.Mlp));
        string model = Path.Combine(folder, "model.onnx");
        string what;
        if (rng.Next(6) == 0)
        {
            var (bytes, w) = Mutate.Bytes(rng, proto.ToByteArray(), 256);
            File.WriteAllBytes(model, bytes);
            what = "bytes: " + w;
        }
        else
        {
            what = MutateGraph(rng, proto, folder);
            File.WriteAllBytes(model, proto.ToByteArray());
        }
        return ModelCommand(rng, folder, model, gpt2, "onnx", what);
    }

    private FuzzCase OnnxExternal(Random rng, string folder)
    {
        // The MLP with every weight in model.onnx.data, then one external-data entry changed.
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(seeds.Mlp));
        string model = Path.Combine(folder, "model.onnx");
        using (var data = File.Create(model + ".data"))
        {
            foreach (var t in proto.Graph.Initializer)
            {
                var raw = t.RawData.ToByteArray();
                long offset = data.Position;
                data.Write(raw);
                t.RawData = ByteString.Empty;
                t.DataLocation = TensorProto.Types.DataLocation.External;
                t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "model.onnx.data" });
                t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = raw.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            }
        }
        var tensor = proto.Graph.Initializer[rng.Next(proto.Graph.Initializer.Count)];
        string what;
        switch (rng.Next(6))
        {
            case 0:
            {
                // Where the data is: escaping paths, a link out of the folder, a pipe, a folder, a missing file.
                string location = rng.Next(7) switch
                {
                    0 => Path.GetRelativePath(folder, seeds.Outside),
                    1 => seeds.Outside,
                    2 => Link(folder, "link.data", seeds.Outside),
                    3 => Pipe(folder, "pipe.data"),
                    4 => Directory.CreateDirectory(Path.Combine(folder, "dir.data")).Name,
                    5 => "missing.data",
                    _ => "",
                };
                Entry(tensor, "location", location);
                what = $"{tensor.Name}: location '{location}'";
                break;
            }
            case 1:
            {
                string offset = rng.Next(3) == 0 ? "abc" : Mutate.Edge(rng).ToString(System.Globalization.CultureInfo.InvariantCulture);
                Entry(tensor, "offset", offset);
                what = $"{tensor.Name}: offset {offset}";
                break;
            }
            case 2:
            {
                string length = rng.Next(3) == 0 ? "-" : Mutate.Edge(rng).ToString(System.Globalization.CultureInfo.InvariantCulture);
                Entry(tensor, "length", length);
                what = $"{tensor.Name}: length {length}";
                break;
            }
            case 3:
                tensor.ExternalData.Clear();
                what = $"{tensor.Name}: no external_data entries";
                break;
            case 4:
            {
                var data = File.ReadAllBytes(model + ".data");
                int cut = rng.Next(data.Length);
                File.WriteAllBytes(model + ".data", data[..cut]);
                what = $"data file cut to {cut} of {data.Length} bytes";
                break;
            }
            default:
                tensor.Dims[rng.Next(tensor.Dims.Count)] = Mutate.Edge(rng);
                what = $"{tensor.Name}: dims [{string.Join(",", tensor.Dims)}]";
                break;
        }
        File.WriteAllBytes(model, proto.ToByteArray());
        return ModelCommand(rng, folder, model, gpt2: false, "onnx-external", what);
    }

    private static void Entry(TensorProto tensor, string key, string value)
    {
        var e = tensor.ExternalData.FirstOrDefault(x => x.Key == key);
        if (e is null) tensor.ExternalData.Add(new StringStringEntryProto { Key = key, Value = value });
        else e.Value = value;
    }

    /// <summary>One change to a model's graph or initializers.</summary>
    private static string MutateGraph(Random rng, ModelProto proto, string folder)
    {
        var g = proto.Graph;
        var t = g.Initializer.Count > 0 ? g.Initializer[rng.Next(g.Initializer.Count)] : null;
        switch (rng.Next(12))
        {
            case 0 when t is not null:
                if (t.Dims.Count == 0 || rng.Next(4) == 0) t.Dims.Add(Mutate.Edge(rng));
                else t.Dims[rng.Next(t.Dims.Count)] = Mutate.Edge(rng);
                return $"{t.Name}: dims [{string.Join(",", t.Dims)}]";
            case 1 when t is not null:
                int[] types = [0, 2, 6, 7, 8, 9, 10, 11, 16, 99, -1];
                t.DataType = types[rng.Next(types.Length)];
                return $"{t.Name}: data_type {t.DataType}";
            case 2 when t is not null:
            {
                var raw = t.RawData.ToByteArray();
                int cut = raw.Length == 0 ? 0 : rng.Next(raw.Length);
                t.RawData = ByteString.CopyFrom(raw, 0, cut);
                return $"{t.Name}: raw_data cut to {cut} of {raw.Length} bytes";
            }
            case 3 when t is not null:
                t.RawData = ByteString.Empty;
                t.FloatData.Add(1f);
                t.FloatData.Add(2f);
                return $"{t.Name}: 2 float_data values instead of raw_data";
            case 4:
                g.Output.Clear();
                return "no graph outputs";
            case 5 when g.Input.Count > 0:
                g.Input.Add(g.Input[0].Clone());
                return $"input '{g.Input[0].Name}' twice";
            case 6 when g.Node.Count > 0:
            {
                var n = g.Node[rng.Next(g.Node.Count)];
                if (n.Input.Count > 0) n.Input[rng.Next(n.Input.Count)] = "missing_value";
                return $"node '{n.Name}' reads a value nothing produces";
            }
            case 7 when g.Node.Count > 0:
            {
                var n = g.Node[rng.Next(g.Node.Count)];
                n.OpType = rng.Next(2) == 0 ? "NoSuchOp" : "";
                return $"node '{n.Name}' op_type '{n.OpType}'";
            }
            case 8:
                proto.OpsetImport.Clear();
                return "no opset_import";
            case 9:
                proto.IrVersion = rng.Next(2) == 0 ? 0 : 999;
                return $"ir_version {proto.IrVersion}";
            case 10 when g.Input.Count > 0 && g.Input[0].Type?.TensorType?.Shape is { } shape && shape.Dim.Count > 0:
            {
                var d = shape.Dim[rng.Next(shape.Dim.Count)];
                d.DimValue = Mutate.Edge(rng);
                return $"input dim = {d.DimValue}";
            }
            default:
                if (g.Node.Count > 0) g.Node.RemoveAt(rng.Next(g.Node.Count));
                return "a node removed";
        }
    }

    /// <summary>inspect, convert, eval or quantize (round to nearest, no data) of <paramref name="model"/>.</summary>
    private FuzzCase ModelCommand(Random rng, string folder, string model, bool gpt2, string kind, string what)
    {
        string name = Path.GetFileName(model);
        switch (rng.Next(4))
        {
            case 3:
            {
                string output = Path.Combine(folder, "out.onnx");
                return new FuzzCase(kind, what, ["quantize", "--model", model, "--weights", rng.Next(2) == 0 ? "int4" : "int8", "--out", output], folder, [output], [name]);
            }
            case 0:
                return new FuzzCase(kind, what, ["inspect", "--model", model], folder, [], [name]);
            case 1:
            {
                string output = Path.Combine(folder, "out.onnx");
                return new FuzzCase(kind, what, ["convert", "--model", model, "--out", output], folder, [output], [name]);
            }
            default:
                string[] data = gpt2 ? ["--text-string", "hello there, hello again"] : ["--data", seeds.MlpData];
                return new FuzzCase(kind, what, ["eval", "--model", model, .. data, "--repeats", "0", "--count", "4"], folder, [], [name]);
        }
    }

    // ---------------------------------------------------------------- Hugging Face

    /// <summary>A checkpoint folder: a fixture's files linked in, plus the tokenizer.json seed.</summary>
    private string Checkpoint(Random rng, string folder, out string fixture)
    {
        fixture = new[] { "gpt2", "llama", "bert" }[rng.Next(3)];
        string dir = Directory.CreateDirectory(Path.Combine(folder, "ckpt")).FullName;
        foreach (var f in new[] { "config.json", "model.safetensors" }) Seeds.Link(Path.Combine(seeds.Hf(fixture), f), Path.Combine(dir, f));
        Seeds.Link(seeds.TokenizerJson, Path.Combine(dir, "tokenizer.json"));
        return dir;
    }

    private FuzzCase ImportHf(string kind, string what, string folder, string dir, string blame)
    {
        string output = Path.Combine(folder, "out.onnx");
        // A missing tensor or an unsupported setting is the checkpoint folder's fault as a whole: naming the folder will do.
        return new FuzzCase(kind, what, ["import", "hf", "--model", dir, "--out", output], folder, [output], [blame, "ckpt"]);
    }

    private FuzzCase HfJson(Random rng, string folder, string file)
    {
        string dir = Checkpoint(rng, folder, out string fixture);
        string path = Path.Combine(dir, file);
        var (text, what) = Mutate.Json(rng, File.ReadAllText(path));
        File.Delete(path);
        File.WriteAllText(path, text);
        return ImportHf(file == "config.json" ? "hf-config" : "hf-tokenizer", $"{fixture} {file}: {what}", folder, dir, file);
    }

    private FuzzCase HfIndex(Random rng, string folder)
    {
        string dir = Checkpoint(rng, folder, out string fixture);
        // The single shard named through an index, then the index changed.
        string shard = Path.Combine(dir, "model-00001-of-00001.safetensors");
        File.Move(Path.Combine(dir, "model.safetensors"), shard);
        List<string> names;
        using (var file = Whittle.IO.SafeTensorsFile.Open(shard)) names = [.. file.Tensors.Select(t => t.Name)];
        var map = new System.Text.Json.Nodes.JsonObject();
        foreach (var n in names) map[n] = "model-00001-of-00001.safetensors";
        var index = new System.Text.Json.Nodes.JsonObject { ["metadata"] = new System.Text.Json.Nodes.JsonObject { ["total_size"] = 1 }, ["weight_map"] = map };
        var (text, what) = Mutate.Json(rng, index.ToJsonString());
        if (rng.Next(6) == 0) (text, what) = (index.ToJsonString().Replace("model-00001-of-00001.safetensors", "../../outside.safetensors", StringComparison.Ordinal), "shards outside the folder");
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), text);
        return ImportHf("hf-index", $"{fixture} index: {what}", folder, dir, "model.safetensors.index.json");
    }

    private FuzzCase SafeTensors(Random rng, string folder)
    {
        string dir = Checkpoint(rng, folder, out string fixture);
        string path = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.Delete(path);
        long headerLength = BitConverter.ToInt64(bytes, 0);
        string what;
        switch (rng.Next(3))
        {
            case 0:
            {
                string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
                var (text, w) = Mutate.Json(rng, header);
                var h = Encoding.UTF8.GetBytes(text);
                bytes = [.. BitConverter.GetBytes((long)h.Length), .. h, .. bytes.AsSpan(8 + (int)headerLength)];
                what = "header: " + w;
                break;
            }
            case 1:
            {
                long value = Mutate.Edge(rng);
                BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), value);
                what = $"header length {value}";
                break;
            }
            default:
                (bytes, what) = Mutate.Bytes(rng, bytes, 0);
                break;
        }
        File.WriteAllBytes(path, bytes);
        return ImportHf("safetensors", $"{fixture}: {what}", folder, dir, "model.safetensors");
    }

    // ---------------------------------------------------------------- llama2.c

    private FuzzCase Llama2c(Random rng, string folder)
    {
        string model = Path.Combine(folder, "model.bin"), tokenizer = Path.Combine(folder, "tok.bin");
        Seeds.Link(seeds.Llama2c.Model, model);
        Seeds.Link(seeds.Llama2c.Tokenizer, tokenizer);
        string target = rng.Next(3) == 0 ? tokenizer : model;
        var (bytes, what) = Mutate.Bytes(rng, File.ReadAllBytes(target), target == model ? 28 : 64);
        File.Delete(target);
        File.WriteAllBytes(target, bytes);
        string output = Path.Combine(folder, "out.onnx");
        return new FuzzCase("llama2c", $"{Path.GetFileName(target)}: {what}", ["import", "llama2c", "--model", model, "--tokenizer", tokenizer, "--out", output],
            folder, [output], [Path.GetFileName(target)]);
    }

    // ---------------------------------------------------------------- arrays, images, text

    private FuzzCase Eval(string kind, string what, string folder, string model, string[] data, string blame) =>
        new(kind, what, ["eval", "--model", model, .. data, "--repeats", "0", "--count", "4"], folder, [], [blame]);

    private FuzzCase Npy(Random rng, string folder)
    {
        string path = Path.Combine(folder, "input.npy");
        var x = new float[4 * 784];
        using (var ms = new MemoryStream())
        {
            Whittle.IO.Npy.Write(ms, Whittle.IO.NpyArray.Wrap(x, [4, 784]));
            var bytes = ms.ToArray();
            int headerLength = BitConverter.ToUInt16(bytes, 8);
            string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
            string what;
            if (rng.Next(2) == 0)
            {
                string[] descr = ["'<f4'", "'<f8'", "'|u1'", "'<i8'", "'>f4'", "'<U3'", "'|O'", "'<c8'", "'|b1'", "'<f2'", "'x'"];
                string[] shapes = ["(0, 784)", "(-1, 784)", "(1099511627776, 784)", "(4,)", "(4, 28, 28)", "(2147483647, 2147483647)", "()", "(4, 784, 0)", "('a',)"];
                string edited = rng.Next(3) switch
                {
                    0 => header.Replace("'<f4'", descr[rng.Next(descr.Length)], StringComparison.Ordinal),
                    1 => header.Replace("(4, 784)", shapes[rng.Next(shapes.Length)], StringComparison.Ordinal),
                    _ => header.Replace("False", "True", StringComparison.Ordinal),
                };
                var h = Encoding.ASCII.GetBytes(edited.TrimEnd('\n', ' ').PadRight((edited.Length + 63) / 64 * 64 - 1) + "\n");
                bytes = [.. bytes.AsSpan(0, 8), .. BitConverter.GetBytes((ushort)h.Length), .. h, .. bytes.AsSpan(10 + headerLength)];
                what = "header: " + edited.Trim();
            }
            else
            {
                (bytes, what) = Mutate.Bytes(rng, bytes, 12);
            }
            File.WriteAllBytes(path, bytes);
            return Eval("npy", what, folder, seeds.Mlp, ["--data", path], "input.npy");
        }
    }

    private FuzzCase Npz(Random rng, string folder)
    {
        string path = Path.Combine(folder, "data.npz");
        var bytes = File.ReadAllBytes(seeds.MlpData);
        string what;
        switch (rng.Next(3))
        {
            case 0:
            {
                // A member that inflates far past what its header declares.
                var head = new MemoryStream();
                Whittle.IO.Npy.Write(head, Whittle.IO.NpyArray.Wrap(new float[4 * 784], [4, 784]));
                using (var zip = new System.IO.Compression.ZipArchive(File.Create(path), System.IO.Compression.ZipArchiveMode.Create))
                {
                    using var s = zip.CreateEntry("input.npy", System.IO.Compression.CompressionLevel.Fastest).Open();
                    s.Write(head.ToArray());
                    var zeros = new byte[1 << 20];
                    for (int i = 0; i < 256; i++) s.Write(zeros);
                }
                return Eval("npz", "member inflating 256 MiB past its header", folder, seeds.Mlp, ["--data", path], "data.npz");
            }
            case 1:
            {
                // A CRC or size field in a local header changed (PK\x03\x04: CRC at 14, sizes at 18 and 22).
                int at = new[] { 14, 18, 22 }[rng.Next(3)];
                BitConverter.TryWriteBytes(bytes.AsSpan(at), unchecked((int)Mutate.Edge(rng)));
                what = $"local header field at {at} changed";
                break;
            }
            default:
                (bytes, what) = Mutate.Bytes(rng, bytes, 64);
                break;
        }
        File.WriteAllBytes(path, bytes);
        return Eval("npz", what, folder, seeds.Mlp, ["--data", path], "data.npz");
    }

    private FuzzCase Idx(Random rng, string folder)
    {
        string images = Path.Combine(folder, "images-idx3-ubyte.gz"), labels = Path.Combine(folder, "labels-idx1-ubyte.gz");
        Seeds.Link(seeds.Idx.Labels, labels);
        using var gz = new System.IO.Compression.GZipStream(File.OpenRead(seeds.Idx.Images), System.IO.Compression.CompressionMode.Decompress);
        using var raw = new MemoryStream();
        gz.CopyTo(raw);
        var bytes = raw.ToArray();
        string what;
        switch (rng.Next(3))
        {
            case 0:
            {
                int at = new[] { 4, 8, 12 }[rng.Next(3)];
                int value = unchecked((int)Mutate.Edge(rng));
                Seeds.BigEndian(bytes, at, value);
                what = $"dimension at {at} = {value}";
                File.WriteAllBytes(images, Mutate.Gzip(bytes));
                break;
            }
            case 1:
            {
                // Header says 1,000,000 images; the file inflates to 512 MiB of zeros.
                Seeds.BigEndian(bytes, 4, 1_000_000);
                File.WriteAllBytes(images, Mutate.GzipBomb(bytes[..16], 512L << 20));
                what = "1,000,000 images declared, 512 MiB inflated";
                break;
            }
            default:
                (bytes, what) = Mutate.Bytes(rng, Mutate.Gzip(bytes), 0);
                File.WriteAllBytes(images, bytes);
                what = "gzip " + what;
                break;
        }
        return Eval("idx", what, folder, seeds.Mlp, ["--data", images, "--labels", labels], "images-idx3-ubyte.gz");
    }

    private FuzzCase Text(Random rng, string folder)
    {
        bool jsonl = rng.Next(4) == 0;
        string path = Path.Combine(folder, jsonl ? "text.jsonl" : "text.txt");
        byte[] bytes;
        string what;
        switch (rng.Next(5))
        {
            case 0:
                bytes = new byte[rng.Next(0, 1 << 16)];
                rng.NextBytes(bytes);
                what = $"{bytes.Length} random bytes";
                break;
            case 1:
                bytes = [];
                what = "empty";
                break;
            case 2:
                bytes = Encoding.UTF8.GetBytes(new string('\0', rng.Next(1, 5000)));
                what = "NUL characters";
                break;
            case 3:
                bytes = Encoding.UTF8.GetBytes(jsonl ? "{\"text\": \"ok\"}\n{\"text\": 5}\n[1,2]\n" : string.Concat(Enumerable.Repeat("<|endoftext|>\n\n", 200)));
                what = jsonl ? "jsonl with a number and an array" : "separators only";
                break;
            default:
                bytes = [0xC3, 0x28, 0xA0, 0xA1, 0xE2, 0x28, 0xA1, 0xF0, 0x28, 0x8C, 0xBC, .. Encoding.UTF8.GetBytes(" hello ")];
                what = "invalid UTF-8";
                break;
        }
        File.WriteAllBytes(path, bytes);
        string[] extra = rng.Next(3) switch
        {
            0 => ["--doc-separator", "<|endoftext|>"],
            1 => ["--protocol", "stride", "--window", rng.Next(2, 40).ToString(System.Globalization.CultureInfo.InvariantCulture), "--stride", rng.Next(1, 8).ToString(System.Globalization.CultureInfo.InvariantCulture)],
            _ => [],
        };
        if (jsonl && extra.Length == 2) extra = [];
        return Eval("text", what, folder, seeds.Gpt2, ["--text", path, .. extra], Path.GetFileName(path));
    }

    // ---------------------------------------------------------------- special files

    private FuzzCase Special(Random rng, string folder)
    {
        string output = Path.Combine(folder, "out.onnx");
        switch (rng.Next(7))
        {
            case 0:
                return new FuzzCase("special", "a pipe as the model", ["inspect", "--model", Pipe(folder, "model.onnx")], folder, [], ["model.onnx"]);
            case 1:
                return Eval("special", "a pipe as the data", folder, seeds.Mlp, ["--data", Pipe(folder, "data.npz")], "data.npz");
            case 2:
                return new FuzzCase("special", "a pipe as the reference", ["eval", "--model", seeds.Mlp, "--reference", Pipe(folder, "ref.onnx"), "--data", seeds.MlpData, "--repeats", "0"], folder, [], ["ref.onnx"]);
            case 3:
            {
                string model = Path.Combine(folder, "model.bin");
                Seeds.Link(seeds.Llama2c.Model, model);
                return new FuzzCase("special", "a pipe as the tokenizer", ["import", "llama2c", "--model", model, "--tokenizer", Pipe(folder, "tok.bin"), "--out", output], folder, [output], ["tok.bin"]);
            }
            case 4:
            {
                string link = Link(folder, "link-out.onnx", seeds.Outside);
                return new FuzzCase("special", "--out is a link to a file outside", ["convert", "--model", seeds.Mlp, "--out", Path.Combine(folder, link)], folder, [], ["link-out.onnx"]);
            }
            case 5:
                return new FuzzCase("special", "--out is a pipe", ["convert", "--model", seeds.Mlp, "--out", Pipe(folder, "link-pipe-out.onnx")], folder, [], ["link-pipe-out.onnx"]);
            default:
                return new FuzzCase("special", "a folder as the model", ["inspect", "--model", Directory.CreateDirectory(Path.Combine(folder, "model.onnx")).FullName], folder, [], ["model.onnx"]);
        }
    }

    private static string Pipe(string folder, string name)
    {
        string path = Path.Combine(folder, name);
        Seeds.Fifo(path);
        return path;
    }

    private static string Link(string folder, string name, string target)
    {
        File.CreateSymbolicLink(Path.Combine(folder, name), target);
        return name;
    }
}
