using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Whittle.Import;

/// <summary>The header of a llama2.c checkpoint (seven int32 values).</summary>
/// <param name="Dim">Model width.</param>
/// <param name="HiddenDim">MLP width.</param>
/// <param name="Layers">Number of blocks.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads.</param>
/// <param name="Vocab">Vocabulary size (the header stores it negative when the classifier is not shared).</param>
/// <param name="SeqLen">Maximum sequence length (the RoPE tables' length).</param>
/// <param name="SharedClassifier">Whether the classifier is the token embedding.</param>
public sealed record Llama2cConfig(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int Vocab, int SeqLen, bool SharedClassifier)
{
    /// <summary>Head size: <see cref="Dim"/> / <see cref="Heads"/>.</summary>
    public int HeadDim => Dim / Heads;
}

/// <summary>
/// A llama2.c checkpoint (Karpathy's <c>run.c</c> format): the <see cref="Llama2cConfig"/> header, then float32
/// tensors in order — token embedding, attention RMSNorm weights, wq, wk, wv, wo, FFN RMSNorm weights, w1 (gate),
/// w2 (down), w3 (up), final RMSNorm, the RoPE tables (skipped), and the classifier when not shared. Each per-layer
/// tensor holds all layers, weights in PyTorch's [out, in] layout. Exposed under Hugging Face Llama names.
/// </summary>
public sealed class Llama2cCheckpoint : ICheckpointTensors
{
    private readonly Dictionary<string, (long Offset, long[] Shape)> _tensors = [];

    private Llama2cCheckpoint(string path, Llama2cConfig config)
    {
        Source = path;
        Config = config;
    }

    /// <inheritdoc/>
    public string Source { get; }

    /// <summary>The header.</summary>
    public Llama2cConfig Config { get; }

    /// <summary>Reads and checks the header of <paramref name="path"/>: values positive and consistent, file length exactly what they
    /// imply. Tensors are read from the file when asked for, one at a time.</summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="CheckpointException">The header or the length is wrong.</exception>
    public static Llama2cCheckpoint Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        IO.FileChecks.RequireRegularFile(full, "llama2.c checkpoint");
        long length = new FileInfo(full).Length;
        if (length < 28) throw new CheckpointException($"{full}: {length} bytes, too short for a llama2.c header (7 int32 values).", full);
        var header = new byte[28];
        using (var stream = File.OpenRead(full)) stream.ReadExactly(header);
        var h = MemoryMarshal.Cast<byte, int>(header).ToArray();
        if (!BitConverter.IsLittleEndian) for (int i = 0; i < 7; i++) h[i] = BinaryPrimitives.ReverseEndianness(h[i]);
        // int.MinValue has no magnitude in int32: refused with the other impossible headers, before Math.Abs.
        if (h[0] <= 0 || h[1] <= 0 || h[2] <= 0 || h[3] <= 0 || h[4] <= 0 || h[5] is 0 or int.MinValue || h[6] <= 0 || h[0] % h[3] != 0 || h[3] % h[4] != 0)
            throw new CheckpointException(
                $"{full}: header dim={h[0]} hidden_dim={h[1]} n_layers={h[2]} n_heads={h[3]} n_kv_heads={h[4]} vocab_size={h[5]} seq_len={h[6]} is not a llama2.c checkpoint "
                + "(all positive, vocab_size negative only for an unshared classifier, dim divisible by n_heads, n_heads by n_kv_heads).", full);
        var config = new Llama2cConfig(h[0], h[1], h[2], h[3], h[4], Math.Abs(h[5]), h[6], h[5] > 0);
        // The length the header implies, checked against the file before any per-layer bookkeeping (a header claiming
        // 2^31 layers must not allocate for them).
        long? expected = ImpliedLength(config);
        if (expected != length)
            throw new CheckpointException($"{full}: {length} bytes, but the header ({config}) implies {(expected is { } e ? e.ToString(System.Globalization.CultureInfo.InvariantCulture) : "more than any file can hold")}: "
                + "a different format or a truncated file.", full);
        var ckpt = new Llama2cCheckpoint(full, config);
        ckpt.Layout();
        return ckpt;
    }

    /// <summary>The file length <paramref name="c"/> implies, or null when it overflows.</summary>
    private static long? ImpliedLength(Llama2cConfig c)
    {
        try
        {
            checked
            {
                long d = c.Dim, f = c.HiddenDim, hd = c.HeadDim, q = c.Heads * hd, kv = c.KvHeads * hd, v = c.Vocab;
                long perLayer = d + q * d + 2 * kv * d + d * q + d + 3 * f * d;
                long floats = v * d + c.Layers * perLayer + d + c.SeqLen * hd + (c.SharedClassifier ? 0 : v * d);
                return 28 + 4 * floats;
            }
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>Registers every tensor at its offset; returns the file length the header implies.</summary>
    private long Layout()
    {
        var c = Config;
        long d = c.Dim, f = c.HiddenDim, hd = c.HeadDim, q = c.Heads * hd, kv = c.KvHeads * hd, v = c.Vocab;
        long offset = 28;
        void Add(string name, params long[] shape)
        {
            _tensors[name] = (offset, shape);
            offset += 4 * shape.Aggregate(1L, (a, x) => a * x);
        }
        void PerLayer(string module, params long[] shape)
        {
            for (int i = 0; i < c.Layers; i++) Add($"model.layers.{i}.{module}.weight", shape);
        }
        Add("model.embed_tokens.weight", v, d);
        PerLayer("input_layernorm", d);
        PerLayer("self_attn.q_proj", q, d);
        PerLayer("self_attn.k_proj", kv, d);
        PerLayer("self_attn.v_proj", kv, d);
        PerLayer("self_attn.o_proj", d, q);
        PerLayer("post_attention_layernorm", d);
        PerLayer("mlp.gate_proj", f, d);
        PerLayer("mlp.down_proj", d, f);
        PerLayer("mlp.up_proj", f, d);
        Add("model.norm.weight", d);
        offset += 4L * c.SeqLen * hd; // freq_cis_real and freq_cis_imag, [seq_len, head_size / 2] each: recomputed in the graph
        if (!c.SharedClassifier) Add("lm_head.weight", v, d);
        return offset;
    }

    /// <inheritdoc/>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <inheritdoc/>
    public IReadOnlyList<long> Shape(string name) => Entry(name).Shape;

    /// <inheritdoc/>
    public float[] ReadFloat32(string name)
    {
        var (offset, shape) = Entry(name);
        long count = shape.Aggregate(1L, (a, x) => a * x);
        if (count > Array.MaxLength) throw new CheckpointException($"{Source}: tensor '{name}' has {count} elements, more than one array can hold.", Source, name);
        var values = new float[count];
        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        using var file = File.OpenHandle(Source, FileMode.Open, FileAccess.Read, FileShare.Read);
        for (int done = 0; done < bytes.Length;)
        {
            int n = RandomAccess.Read(file, bytes[done..], offset + done);
            if (n == 0) throw new CheckpointException($"{Source}: the file ended while reading tensor '{name}' (truncated since it was opened?).", Source, name);
            done += n;
        }
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("llama2.c checkpoints are read on little-endian machines only.");
        return values;
    }

    private (long Offset, long[] Shape) Entry(string name) => _tensors.TryGetValue(name, out var e) ? e
        : throw new CheckpointException($"{Source}: a llama2.c checkpoint has no tensor '{name}'.", Source, name);

    /// <summary>The graph shape: llama2.c's RMSNorm epsilon 1e-5, RoPE θ = 10000 with interleaved pairs.</summary>
    public LlamaSpec Spec()
    {
        var c = Config;
        var inv = new float[c.HeadDim / 2];
        // run.c: freq = 1.0f / powf(10000.0f, head_dim / (float)head_size) for head_dim = 0, 2, 4, …
        for (int i = 0; i < inv.Length; i++) inv[i] = 1.0f / MathF.Pow(10000.0f, 2 * i / (float)c.HeadDim);
        return new LlamaSpec(c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.Vocab, c.HeadDim, 1e-5f, inv, RopeStyle.InterleavedPairs,
            TiedEmbeddings: c.SharedClassifier);
    }
}
