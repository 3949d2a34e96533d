using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Whittle.IO;

namespace Whittle.Fuzz;

/// <summary>
/// The valid inputs every mutation starts from: the repository's fixtures (ONNX models, Hugging Face checkpoints,
/// Fashion-MNIST excerpts) and small files made here (an .npz for the MLP, a llama2.c checkpoint and tokenizer, a
/// tokenizer.json, text), plus a file outside every case folder that no case may read.
/// </summary>
public sealed class Seeds
{
    /// <summary>The text of the file outside the case folders; found in an output, it means a case read outside its folder.</summary>
    public const string OutsideSecret = "whittle-fuzz-outside-secret-4f1d";

    private Seeds(string root, string folder)
    {
        Root = root;
        Folder = folder;
    }

    /// <summary>The repository root.</summary>
    public string Root { get; }

    /// <summary>Where the made seeds live.</summary>
    public string Folder { get; }

    /// <summary>The file outside every case folder (holds <see cref="OutsideSecret"/>).</summary>
    public string Outside => Path.Combine(Folder, "outside.txt");

    /// <summary>The MLP fixture: input 'input' float [N, 784], 10 classes.</summary>
    public string Mlp => Path.Combine(Root, "tests", "Whittle.Tests", "Fixtures", "mlp.onnx");

    /// <summary>The byte-level GPT-2 fixture: 'input_ids' int64 [N, T], vocabulary 256.</summary>
    public string Gpt2 => Path.Combine(Root, "tests", "Whittle.Tests", "Fixtures", "gpt2_tiny.onnx");

    /// <summary>A Hugging Face fixture folder: gpt2, llama or bert.</summary>
    public string Hf(string name) => Path.Combine(Root, "fixtures", "hf", name);

    /// <summary>Eight MLP samples with labels (<c>input</c>, <c>labels</c>).</summary>
    public string MlpData => Path.Combine(Folder, "mlp.npz");

    /// <summary>A byte-level BPE tokenizer.json.</summary>
    public string TokenizerJson => Path.Combine(Folder, "tokenizer.json");

    /// <summary>A small llama2.c checkpoint (dim 16, 2 layers, vocabulary 262: 3 special, 256 bytes, 3 pieces) and its tokenizer.</summary>
    public (string Model, string Tokenizer) Llama2c => (Path.Combine(Folder, "tiny.bin"), Path.Combine(Folder, "tok262.bin"));

    /// <summary>Eight IDX images (28 × 28) and labels, gzip'd.</summary>
    public (string Images, string Labels) Idx => (Path.Combine(Folder, "images-idx3-ubyte.gz"), Path.Combine(Folder, "labels-idx1-ubyte.gz"));

    /// <summary>Finds the repository from <paramref name="start"/> upwards and makes the seeds in <paramref name="folder"/>.</summary>
    public static Seeds Create(string start, string folder)
    {
        string? root = null;
        for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Whittle.slnx"))) { root = d.FullName; break; }
        if (root is null) throw new DirectoryNotFoundException($"No Whittle.slnx above {start}; run the harness from the repository.");
        Directory.CreateDirectory(folder);
        var seeds = new Seeds(root, folder);
        File.WriteAllText(seeds.Outside, OutsideSecret + "\n");
        seeds.WriteMlpData();
        seeds.WriteTokenizerJson();
        seeds.WriteLlama2c();
        seeds.WriteIdx();
        return seeds;
    }

    private void WriteMlpData()
    {
        var rng = new Random(1);
        var x = new float[8 * 784];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
        Npz.Write(MlpData, [new("input", NpyArray.Wrap(x, [8, 784])), new("labels", NpyArray.Wrap(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 }, [8]))]);
    }

    private void WriteTokenizerJson()
    {
        var vocab = new JsonObject();
        string[] pieces = ["h", "i", "Ġ", "hi", "Ġh", "Ġhi", "a", "b", "<|endoftext|>"];
        for (int i = 0; i < pieces.Length; i++) vocab[pieces[i]] = i;
        var json = new JsonObject
        {
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 8, ["content"] = "<|endoftext|>", ["special"] = true }),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("Ġ h", "h i", "Ġh i") },
        };
        File.WriteAllText(TokenizerJson, json.ToJsonString());
    }

    private void WriteLlama2c()
    {
        int dim = 16, hidden = 32, layers = 2, heads = 2, kvHeads = 2, vocab = 262, seq = 16;
        int head = dim / heads;
        var rng = new Random(2);
        using (var f = new BinaryWriter(File.Create(Llama2c.Model)))
        {
            foreach (int v in new[] { dim, hidden, layers, heads, kvHeads, vocab, seq }) f.Write(v);
            long floats = (long)vocab * dim + layers * (dim + 4L * dim * dim + dim + 3L * dim * hidden) + dim + 2L * seq * head / 2;
            for (long i = 0; i < floats; i++) f.Write((float)(rng.NextDouble() - 0.5) * 0.1f);
        }
        using var t = new BinaryWriter(File.Create(Llama2c.Tokenizer));
        t.Write(8);
        for (int i = 0; i < vocab; i++)
        {
            byte[] piece = i switch
            {
                0 => "<unk>"u8.ToArray(),
                1 => "<s>"u8.ToArray(),
                2 => "</s>"u8.ToArray(),
                < 259 => Encoding.ASCII.GetBytes($"<0x{i - 3:X2}>"),
                _ => Encoding.ASCII.GetBytes(new[] { " a", " b", "ab" }[i - 259]),
            };
            t.Write((float)-i);
            t.Write(piece.Length);
            t.Write(piece);
        }
    }

    private void WriteIdx()
    {
        var images = new byte[16 + 8 * 784];
        images[2] = 0x08;
        images[3] = 3;
        BigEndian(images, 4, 8);
        BigEndian(images, 8, 28);
        BigEndian(images, 12, 28);
        new Random(3).NextBytes(images.AsSpan(16));
        var labels = new byte[8 + 8];
        labels[2] = 0x08;
        labels[3] = 1;
        BigEndian(labels, 4, 8);
        for (int i = 0; i < 8; i++) labels[8 + i] = (byte)i;
        File.WriteAllBytes(Idx.Images, Mutate.Gzip(images));
        File.WriteAllBytes(Idx.Labels, Mutate.Gzip(labels));
    }

    internal static void BigEndian(byte[] b, int at, int value)
    {
        b[at] = (byte)(value >> 24);
        b[at + 1] = (byte)(value >> 16);
        b[at + 2] = (byte)(value >> 8);
        b[at + 3] = (byte)value;
    }

    /// <summary>A hard link (the seed's bytes without a copy), else a copy.</summary>
    public static void Link(string source, string target)
    {
        if (HardLink(source, target) != 0) File.Copy(source, target);
    }

    /// <summary>A named pipe at <paramref name="path"/>.</summary>
    public static void Fifo(string path)
    {
        if (MakeFifo(path, 0x1B6) != 0) throw new IOException($"mkfifo {path} failed ({Marshal.GetLastPInvokeError()}).");
    }

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int HardLink(string oldPath, string newPath);

    [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MakeFifo(string path, uint mode);
}
