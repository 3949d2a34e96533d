using System.Buffers.Binary;
using System.Collections.Frozen;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Whittle.IO;

namespace Whittle.Import;

/// <summary>The dimensions of a Llama-architecture model (<c>LlamaForCausalLM</c>, untied <c>lm_head</c>).</summary>
/// <param name="Dim">Hidden size.</param>
/// <param name="Layers">Decoder layers.</param>
/// <param name="Heads">Attention (query) heads; must divide <paramref name="Dim"/>.</param>
/// <param name="KvHeads">Key/value heads; must divide <paramref name="Heads"/>.</param>
/// <param name="Ffn">Intermediate size of the gated MLP.</param>
/// <param name="Vocab">Vocabulary size.</param>
public sealed record SyntheticLlamaShape(int Dim, int Layers, int Heads, int KvHeads, int Ffn, int Vocab)
{
    /// <summary>A 134M-parameter Llama: dim 768, 12 layers, 12 heads (no grouping), FFN 2048, vocab 32000.</summary>
    public static SyntheticLlamaShape Llama134M { get; } = new(768, 12, 12, 12, 2048, 32000);

    /// <summary>TinyLlama 1.1B: dim 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000.</summary>
    public static SyntheticLlamaShape TinyLlama1B { get; } = new(2048, 22, 32, 4, 5632, 32000);

    /// <summary>Llama 2 7B: dim 4096, 32 layers, 32 heads, 32 KV heads, FFN 11008, vocab 32000.</summary>
    public static SyntheticLlamaShape Llama2_7B { get; } = new(4096, 32, 32, 32, 11008, 32000);

    /// <summary>The presets by their command-line names: <c>llama-134m</c>, <c>tinyllama-1.1b</c>, <c>llama2-7b</c>.</summary>
    public static IReadOnlyDictionary<string, SyntheticLlamaShape> Presets { get; } = new Dictionary<string, SyntheticLlamaShape>
    {
        ["llama-134m"] = Llama134M,
        ["tinyllama-1.1b"] = TinyLlama1B,
        ["llama2-7b"] = Llama2_7B,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>Size of one attention head (<see cref="Dim"/> / <see cref="Heads"/>).</summary>
    public int HeadDim => Dim / Heads;

    /// <summary>Every tensor of the checkpoint in file order, with Hugging Face's names and [out, in] shapes.</summary>
    public IReadOnlyList<(string Name, long[] Shape, bool IsNorm)> Tensors()
    {
        long d = Dim, kv = (long)KvHeads * HeadDim, f = Ffn;
        var list = new List<(string, long[], bool)> { ("model.embed_tokens.weight", [Vocab, d], false) };
        for (int i = 0; i < Layers; i++)
        {
            string p = $"model.layers.{i}.";
            list.Add((p + "self_attn.q_proj.weight", [d, d], false));
            list.Add((p + "self_attn.k_proj.weight", [kv, d], false));
            list.Add((p + "self_attn.v_proj.weight", [kv, d], false));
            list.Add((p + "self_attn.o_proj.weight", [d, d], false));
            list.Add((p + "mlp.gate_proj.weight", [f, d], false));
            list.Add((p + "mlp.up_proj.weight", [f, d], false));
            list.Add((p + "mlp.down_proj.weight", [d, f], false));
            list.Add((p + "input_layernorm.weight", [d], true));
            list.Add((p + "post_attention_layernorm.weight", [d], true));
        }
        list.Add(("model.norm.weight", [d], true));
        list.Add(("lm_head.weight", [Vocab, d], false));
        return list;
    }

    /// <summary>Number of parameters (elements of all tensors).</summary>
    public long ParameterCount => Tensors().Sum(t => t.Shape.Aggregate(1L, (a, x) => a * x));

    /// <summary>Throws unless every dimension is positive, heads divide the hidden size into an even head size, and KV heads divide heads.</summary>
    /// <exception cref="ArgumentException">A dimension is invalid.</exception>
    public void Validate()
    {
        foreach (var (name, value) in new[] { (nameof(Dim), Dim), (nameof(Layers), Layers), (nameof(Heads), Heads), (nameof(KvHeads), KvHeads), (nameof(Ffn), Ffn), (nameof(Vocab), Vocab) })
            if (value < 1) ThrowHelper.ArgumentOutOfRange(name, value, "a positive size");
        if (Dim % Heads != 0 || HeadDim % 2 != 0)
            ThrowHelper.Argument(nameof(Heads), $"{Heads} heads do not split dim {Dim} into an even head size (RoPE rotates pairs).");
        if (Heads % KvHeads != 0)
            ThrowHelper.Argument(nameof(KvHeads), $"{KvHeads} KV heads do not divide {Heads} query heads.");
    }
}

/// <summary>How far <see cref="SyntheticCheckpoint.Write"/> has got: reported after each tensor.</summary>
/// <param name="Tensor">The tensor just written.</param>
/// <param name="Index">Its position (0-based).</param>
/// <param name="Count">Number of tensors.</param>
/// <param name="BytesWritten">Tensor bytes written so far.</param>
/// <param name="TotalBytes">Tensor bytes in all.</param>
public sealed record SyntheticCheckpointProgress(string Tensor, int Index, int Count, long BytesWritten, long TotalBytes);

/// <summary>What <see cref="SyntheticCheckpoint.Write"/> wrote.</summary>
/// <param name="ConfigPath">The <c>config.json</c>.</param>
/// <param name="WeightsPath">The <c>model.safetensors</c>.</param>
/// <param name="WeightsBytes">Size of the weights file.</param>
/// <param name="Parameters">Number of parameters.</param>
public sealed record SyntheticCheckpointFiles(string ConfigPath, string WeightsPath, long WeightsBytes, long Parameters);

/// <summary>
/// Writes Hugging Face Llama checkpoints with random weights and real shapes (bf16 safetensors plus <c>config.json</c>),
/// for memory and time benchmarks that must not download anything. Matrices hold seeded, approximately normal values
/// (mean 0, std 0.02, the scale of a freshly initialized Llama); RMSNorm weights are 1.
/// </summary>
/// <remarks>
/// Deterministic: the same shape and seed give the same bytes, on any machine and thread count (each 64 Ki-element
/// chunk of each tensor has its own generator seeded from the seed, tensor index and chunk index). Streamed: the
/// weights go to the file through one reused 8 MiB buffer, so memory stays small whatever the model's size.
/// </remarks>
public static class SyntheticCheckpoint
{
    /// <summary>Standard deviation of the matrix weights.</summary>
    public const float WeightStd = 0.02f;

    private const int ChunkElements = 1 << 16;
    private const int ChunksPerBuffer = 64; // 4 Mi elements, 8 MiB of bf16 per write
    private const ushort BFloat16One = 0x3F80;

    /// <summary>
    /// Writes <c>config.json</c> and <c>model.safetensors</c> (bf16) for <paramref name="shape"/> into <paramref name="directory"/>
    /// (created if missing; files already there are replaced). Each file is written atomically: into a temporary file
    /// beside it, then renamed, and the temporary file is removed on failure or cancellation.
    /// </summary>
    /// <param name="directory">The checkpoint folder.</param>
    /// <param name="shape">The model's dimensions.</param>
    /// <param name="seed">Seed of the weights.</param>
    /// <param name="progress">Told after each tensor.</param>
    /// <param name="cancellationToken">Checked between writes of the buffer.</param>
    /// <exception cref="ArgumentException">The shape is invalid (see <see cref="SyntheticLlamaShape.Validate"/>).</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the weights file is not left behind half-written.</exception>
    public static SyntheticCheckpointFiles Write(string directory, SyntheticLlamaShape shape, int seed,
        IProgress<SyntheticCheckpointProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();
        string dir = Directory.CreateDirectory(directory).FullName;
        string weights = Path.Combine(dir, HfCheckpoint.WeightsFile), config = Path.Combine(dir, "config.json");

        var tensors = shape.Tensors();
        var layout = new List<(string, SafeTensorsDType, IReadOnlyList<long>, long, long)>(tensors.Count);
        long offset = 0;
        foreach (var (name, dims, _) in tensors)
        {
            long bytes = dims.Aggregate(2L, (a, x) => a * x);
            layout.Add((name, SafeTensorsDType.BF16, dims, offset, offset + bytes));
            offset += bytes;
        }
        long total = offset;
        var header = Encoding.UTF8.GetBytes(SafeTensorsFile.HeaderJson(layout, new Dictionary<string, string> { ["format"] = "pt" }));
        int padded = (header.Length + 7) / 8 * 8;

        AtomicFile.Write(weights, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
            stream.Write(prefix);
            stream.Write(header);
            for (int i = header.Length; i < padded; i++) stream.WriteByte((byte)' '); // the format's padding: spaces to a multiple of 8
            var buffer = new ushort[ChunkElements * ChunksPerBuffer];
            long written = 0;
            for (int t = 0; t < tensors.Count; t++)
            {
                var (name, dims, isNorm) = tensors[t];
                long count = dims.Aggregate(1L, (a, x) => a * x);
                for (long start = 0; start < count; start += buffer.Length)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    int n = (int)Math.Min(buffer.Length, count - start);
                    if (isNorm) buffer.AsSpan(0, n).Fill(BFloat16One);
                    else FillNormal(buffer, n, seed, t, start / ChunkElements);
                    stream.Write(MemoryMarshal.AsBytes(buffer.AsSpan(0, n))); // bf16 little-endian, as the reader takes it
                }
                written += 2 * count;
                progress?.Report(new SyntheticCheckpointProgress(name, t, tensors.Count, written, total));
            }
        });
        AtomicFile.WriteAllText(config, ConfigJson(shape));
        return new SyntheticCheckpointFiles(config, weights, new FileInfo(weights).Length, shape.ParameterCount);
    }

    /// <summary>The <c>config.json</c> of a <c>LlamaForCausalLM</c> of <paramref name="shape"/>.</summary>
    public static string ConfigJson(SyntheticLlamaShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = shape.Dim,
            ["intermediate_size"] = shape.Ffn,
            ["num_hidden_layers"] = shape.Layers,
            ["num_attention_heads"] = shape.Heads,
            ["num_key_value_heads"] = shape.KvHeads,
            ["vocab_size"] = shape.Vocab,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["max_position_embeddings"] = 2048,
            ["tie_word_embeddings"] = false,
            ["attention_bias"] = false,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["torch_dtype"] = "bfloat16",
        };
        return config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>
    /// Writes a <c>.npy</c> int64 array [<paramref name="sequences"/>, <paramref name="length"/>] of seeded, uniformly
    /// random token ids in [0, <paramref name="vocab"/>) to <paramref name="path"/>, atomically: calibration input for
    /// a model whose single input is <c>input_ids</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive, or the array would exceed 2³¹ − 1 elements.</exception>
    public static void WriteTokenIds(string path, int sequences, int length, int vocab, int seed)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (sequences < 1) ThrowHelper.ArgumentOutOfRange(nameof(sequences), sequences, "a positive number of sequences");
        if (length < 1) ThrowHelper.ArgumentOutOfRange(nameof(length), length, "a positive sequence length");
        if (vocab < 1) ThrowHelper.ArgumentOutOfRange(nameof(vocab), vocab, "a positive vocabulary size");
        if ((long)sequences * length > Array.MaxLength) ThrowHelper.ArgumentOutOfRange(nameof(sequences), (long)sequences * length, $"at most {Array.MaxLength} token ids in all");
        var ids = new long[sequences * length];
        // A stream apart from every weight chunk's: the weights use three mixing rounds, this one two with its own constant.
        var rng = new Xoshiro256(Mix(Mix((ulong)(uint)seed) ^ 0x746F6B656E730000UL));
        for (int i = 0; i < ids.Length; i++) ids[i] = (long)Math.BigMul(rng.Next(), (ulong)vocab, out _); // high word: uniform in [0, vocab)
        Npy.Write(path, NpyArray.FromInt64(ids, [sequences, length]));
    }

    /// <summary>Fills buffer[..n] with bf16 weights of tensor <paramref name="tensor"/> starting at chunk <paramref name="firstChunk"/>, chunks in parallel.</summary>
    private static void FillNormal(ushort[] buffer, int n, int seed, int tensor, long firstChunk)
    {
        int chunks = (n + ChunkElements - 1) / ChunkElements;
        Parallel.For(0, chunks, c =>
        {
            int begin = c * ChunkElements, end = Math.Min(n, begin + ChunkElements);
            var rng = new Xoshiro256(Mix(Mix(Mix((ulong)(uint)seed) ^ (ulong)tensor) ^ (ulong)(firstChunk + c)));
            var span = buffer.AsSpan(begin, end - begin);
            for (int i = 0; i < span.Length; i++) span[i] = SafeTensorData.ToBFloat16(NextNormal(ref rng));
        });
    }

    // Irwin–Hall: the sum of four 16-bit uniforms from one 64-bit draw is close to normal (bounded at ±3.46σ), and far
    // cheaper than Box–Muller. Four uniforms on {0..65535} have mean 131070 and variance (65536² − 1) / 3.
    private static readonly float NormalScale = (float)(WeightStd / Math.Sqrt((65536.0 * 65536.0 - 1) / 3));

    private static float NextNormal(ref Xoshiro256 rng)
    {
        ulong r = rng.Next();
        int s = (int)(r & 0xFFFF) + (int)((r >> 16) & 0xFFFF) + (int)((r >> 32) & 0xFFFF) + (int)(r >> 48);
        return (s - 131070) * NormalScale;
    }

    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>SplitMix64's step: a well-mixed 64-bit value from any input (used to derive independent seeds).</summary>
    private static ulong Mix(ulong x)
    {
        x += Golden;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    /// <summary>xoshiro256** (Blackman and Vigna), state seeded by SplitMix64 as its authors recommend.</summary>
    private struct Xoshiro256
    {
        private ulong _s0, _s1, _s2, _s3;

        public Xoshiro256(ulong seed)
        {
            _s0 = Mix(seed);
            _s1 = Mix(seed + Golden);
            _s2 = Mix(seed + unchecked(2 * Golden));
            _s3 = Mix(seed + unchecked(3 * Golden));
        }

        public ulong Next()
        {
            ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
            ulong t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = ulong.RotateLeft(_s3, 45);
            return result;
        }
    }
}
