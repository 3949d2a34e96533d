using System.Text.Json;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Text;

namespace Whittle.Import;

/// <summary>What an import produced.</summary>
/// <param name="Model">The ONNX model: in memory (save it with <see cref="OnnxModel.Save"/>), or, when imported through a
/// <see cref="StreamedModelWriter"/>, with its weights in the writer's staging folder (finish with <see cref="StreamedModelWriter.Commit"/>).</param>
/// <param name="Architecture">The architecture imported (<c>LlamaForCausalLM</c>, <c>GPT2LMHeadModel</c>, <c>BertModel</c>, …).</param>
/// <param name="Task">The task recorded in the metadata (<see cref="TokenizerMetadata.LanguageModelTask"/> or <see cref="TokenizerMetadata.EncoderTask"/>).</param>
/// <param name="Tokenizer">The tokenizer stored with it, or null when the folder has none Whittle reads.</param>
/// <param name="Notes">Things worth telling the user (ignored settings, missing tokenizer).</param>
public sealed record ImportResult(OnnxModel Model, string Architecture, string Task, TokenizerSource? Tokenizer, IReadOnlyList<string> Notes);

/// <summary>How an import stores the checkpoint's matrices.</summary>
public enum WeightStorage
{
    /// <summary>In the checkpoint's own type when every matrix is float16 or every one bfloat16 (behind a <c>Cast</c> to float), else float32.</summary>
    Checkpoint,

    /// <summary>float32.</summary>
    Float32,

    /// <summary>float16 behind a <c>Cast</c> to float (values rounded to nearest even; beyond ±65504 they become infinite).</summary>
    Float16,

    /// <summary>bfloat16 behind a <c>Cast</c> to float (values rounded to nearest even).</summary>
    BFloat16,
}

/// <summary>
/// Imports Hugging Face checkpoints (<c>config.json</c> + safetensors) into ONNX: <c>LlamaForCausalLM</c> and the
/// same-shaped <c>MistralForCausalLM</c> and <c>Qwen2ForCausalLM</c> (<see cref="LlamaGraph"/>), <c>GPT2LMHeadModel</c>
/// (<see cref="Gpt2Graph"/>) and <c>BertModel</c> (<see cref="BertGraph"/>). The tokenizer (<c>tokenizer.json</c>, else
/// <c>tokenizer.model</c>) travels in the model's metadata.
/// </summary>
public static class HfImporter
{
    /// <summary>Imports the checkpoint in <paramref name="directory"/>.</summary>
    /// <param name="directory">The checkpoint folder.</param>
    /// <param name="weights">Where the weights go, tensor by tensor as they are read (peak memory about the largest tensor, not
    /// the model), or null to build the model in memory.</param>
    /// <param name="storage">How matrices are stored; 16-bit storage halves the disk a model takes and costs ONNX Runtime nothing at
    /// run time (it folds the Cast when it loads the model).</param>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    /// <exception cref="CheckpointException">The checkpoint is malformed, or uses an architecture or setting Whittle does not import.</exception>
    /// <exception cref="IO.SafeTensorsException">A weight file is malformed.</exception>
    public static ImportResult Import(string directory, StreamedModelWriter? weights = null, WeightStorage storage = WeightStorage.Checkpoint)
    {
        using var checkpoint = HfCheckpoint.Open(directory);
        var matrices = MatrixType(checkpoint, storage);
        var config = new HfConfig(checkpoint.Config, Path.Combine(checkpoint.Directory, "config.json"));
        var notes = new List<string>();
        string architecture = config.Architecture();
        OnnxGraphBuilder builder;
        string task = TokenizerMetadata.LanguageModelTask;
        switch (architecture)
        {
            case "LlamaForCausalLM" or "MistralForCausalLM" or "Qwen2ForCausalLM":
                builder = LlamaGraph.Build(LlamaSpec(config, architecture, notes, checkpoint), checkpoint, weights, matrices);
                break;
            case "GPT2LMHeadModel":
                builder = Gpt2Graph.Build(Gpt2Spec(config), checkpoint, weights, matrices);
                break;
            case "BertModel":
                task = TokenizerMetadata.EncoderTask;
                builder = BertGraph.Build(BertSpec(config, checkpoint), checkpoint, weights, matrices);
                break;
            default:
                throw new CheckpointException(
                    $"{config.Path}: architecture '{architecture}' is not imported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel, BertModel).", config.Path);
        }
        var tokenizer = FindTokenizer(checkpoint.Directory);
        if (tokenizer is null) notes.Add("no tokenizer.json or tokenizer.model in the folder: the model carries no tokenizer");
        else
        {
            // Fail now, not at evaluation, if it cannot be read; messages name the file.
            tokenizer.Create(Path.Combine(checkpoint.Directory, tokenizer.Kind == TokenizerSource.HfJsonKind ? "tokenizer.json" : "tokenizer.model"));
            TokenizerMetadata.Write(builder, task, tokenizer);
        }
        if (tokenizer is null) builder.Metadata(TokenizerMetadata.TaskKey, task);
        builder.Metadata("whittle.source", "huggingface:" + architecture);
        return new ImportResult(builder.Build(), architecture, task, tokenizer, notes);
    }

    /// <summary>The element type matrices are stored in under <paramref name="storage"/>.</summary>
    private static OnnxDataType MatrixType(HfCheckpoint checkpoint, WeightStorage storage)
    {
        switch (storage)
        {
            case WeightStorage.Float32: return OnnxDataType.Float;
            case WeightStorage.Float16: return OnnxDataType.Float16;
            case WeightStorage.BFloat16: return OnnxDataType.BFloat16;
        }
        var types = checkpoint.TensorNames.Where(n => checkpoint.Shape(n).Count >= 2).Select(checkpoint.DType).Distinct().ToList();
        return types is [SafeTensorsDType.BF16] ? OnnxDataType.BFloat16 : types is [SafeTensorsDType.F16] ? OnnxDataType.Float16 : OnnxDataType.Float;
    }

    /// <summary>The tokenizer of a checkpoint folder: <c>tokenizer.json</c>, else <c>tokenizer.model</c>, else null.</summary>
    public static TokenizerSource? FindTokenizer(string directory)
    {
        string json = Path.Combine(directory, "tokenizer.json"), sp = Path.Combine(directory, "tokenizer.model");
        return File.Exists(json) ? TokenizerSource.FromHfJsonFile(json) : File.Exists(sp) ? TokenizerSource.FromSentencePieceFile(sp) : null;
    }

    private static LlamaSpec LlamaSpec(HfConfig c, string architecture, List<string> notes, HfCheckpoint checkpoint)
    {
        int d = c.Int("hidden_size"), h = c.Int("num_attention_heads");
        int hd = c.OptionalInt("head_dim") ?? d / h;
        // Sizes the graph and the RoPE tables are built from: checked against the first query projection before allocating.
        const string q = "model.layers.0.self_attn.q_proj.weight";
        if (checkpoint.Contains(q) && checkpoint.Shape(q) is [var rows, _] && rows != (long)h * hd)
            throw new CheckpointException($"{c.Path}: num_attention_heads {h} × head_dim {hd} = {(long)h * hd}, but {q} has {rows} rows; "
                + "the config does not describe these weights.", c.Path);
        bool qwen = architecture == "Qwen2ForCausalLM";
        if (c.OptionalBool("mlp_bias") == true) throw c.Unsupported("mlp_bias = true");
        if (c.OptionalInt("sliding_window") is { } window && c.OptionalBool("use_sliding_window") != false)
            notes.Add($"sliding_window {window} is not applied: attention is full causal (the same for sequences up to {window} tokens)");
        double theta = c.OptionalDouble("rope_theta") ?? 10000.0;
        if (theta <= 0) throw c.Invalid("rope_theta", c.Root.GetProperty("rope_theta"), "a positive number");
        var inv = RopeFrequencies(c, hd, theta);
        return new LlamaSpec(d, c.Int("intermediate_size"), c.Int("num_hidden_layers"), h, c.OptionalInt("num_key_value_heads") ?? h, c.Int("vocab_size"), hd,
            (float)(c.OptionalDouble("rms_norm_eps") ?? 1e-6), inv, RopeStyle.HalfRotation,
            AttentionBias: c.OptionalBool("attention_bias") ?? qwen, TiedEmbeddings: c.OptionalBool("tie_word_embeddings") ?? false,
            Activation: c.OptionalString("hidden_act") ?? "silu");
    }

    /// <summary>RoPE inverse frequencies with <c>rope_scaling</c> applied: none/default, <c>linear</c> or <c>llama3</c>.</summary>
    private static float[] RopeFrequencies(HfConfig c, int hd, double theta)
    {
        var inv = TransformerGraph.InverseFrequencies(hd, theta);
        if (!c.Root.TryGetProperty("rope_scaling", out var s) || s.ValueKind == JsonValueKind.Null) return inv;
        if (s.ValueKind != JsonValueKind.Object) throw c.Invalid("rope_scaling", s, "an object such as {\"rope_type\": \"linear\", \"factor\": 2}");
        var scaling = new HfConfig(s, c.Path, "rope_scaling.");
        string type = scaling.OptionalString("rope_type") ?? scaling.OptionalString("type") ?? "";
        double Positive(string key, double? fallback = null) => scaling.OptionalDouble(key) is { } v
            ? v > 0 && double.IsFinite(v) ? v : throw c.Invalid($"rope_scaling.{key}", s.GetProperty(key), "a positive number")
            : fallback ?? throw new CheckpointException($"{c.Path}: \"rope_scaling.{key}\" (a positive number) is missing.", c.Path);
        double factor = Positive("factor", 1.0);
        switch (type)
        {
            case "default":
                return inv;
            case "linear":
                return [.. inv.Select(f => (float)(f / factor))];
            case "llama3":
                double low = Positive("low_freq_factor"), high = Positive("high_freq_factor");
                double original = Positive("original_max_position_embeddings");
                if (high <= low) throw c.Invalid("rope_scaling.high_freq_factor", s.GetProperty("high_freq_factor"), $"a number above low_freq_factor ({low})");
                double lowWavelen = original / low, highWavelen = original / high;
                return [.. inv.Select(f =>
                {
                    double wavelen = 2 * Math.PI / f;
                    if (wavelen < highWavelen) return f;
                    if (wavelen > lowWavelen) return (float)(f / factor);
                    double smooth = (original / wavelen - low) / (high - low);
                    return (float)((1 - smooth) * f / factor + smooth * f);
                })];
            default:
                throw c.Unsupported($"rope_scaling type '{type}' (supported: default, linear, llama3)");
        }
    }

    private static Gpt2Spec Gpt2Spec(HfConfig c)
    {
        if (c.OptionalBool("scale_attn_by_inverse_layer_idx") == true) throw c.Unsupported("scale_attn_by_inverse_layer_idx = true");
        if (c.OptionalBool("scale_attn_weights") == false) throw c.Unsupported("scale_attn_weights = false");
        int d = c.Int("n_embd");
        return new Gpt2Spec(d, c.OptionalInt("n_inner") ?? 4 * d, c.Int("n_layer"), c.Int("n_head"), c.Int("vocab_size"), c.Int("n_positions"),
            (float)(c.OptionalDouble("layer_norm_epsilon") ?? 1e-5), c.OptionalString("activation_function") ?? "gelu_new");
    }

    private static BertSpec BertSpec(HfConfig c, HfCheckpoint checkpoint)
    {
        if ((c.OptionalString("position_embedding_type") ?? "absolute") != "absolute") throw c.Unsupported($"position_embedding_type '{c.OptionalString("position_embedding_type")}'");
        bool pooler = checkpoint.Contains("pooler.dense.weight") || checkpoint.Contains("bert.pooler.dense.weight");
        return new BertSpec(c.Int("hidden_size"), c.Int("intermediate_size"), c.Int("num_hidden_layers"), c.Int("num_attention_heads"), c.Int("vocab_size"),
            c.Int("max_position_embeddings"), c.OptionalInt("type_vocab_size") ?? 2, (float)(c.OptionalDouble("layer_norm_eps") ?? 1e-12),
            c.OptionalString("hidden_act") ?? "gelu", pooler);
    }
}

/// <summary>Typed reads from <c>config.json</c>, with messages naming the file and key.</summary>
internal sealed class HfConfig(JsonElement root, string path, string prefix = "")
{
    /// <summary>A key whose value is not what it should be.</summary>
    public CheckpointException Invalid(string key, JsonElement value, string expected) =>
        new($"{path}: \"{key}\" is {value}; expected {expected}.", path);

    public JsonElement Root => root;

    public string Path => path;

    /// <summary>The first entry of <c>architectures</c>, else one inferred from <c>model_type</c>.</summary>
    public string Architecture()
    {
        if (root.TryGetProperty("architectures", out var a) && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0 && a[0].ValueKind == JsonValueKind.String && a[0].GetString() is { } arch)
            return arch switch
            {
                "GPT2Model" => "GPT2LMHeadModel",
                _ when arch.StartsWith("Bert", StringComparison.Ordinal) => "BertModel",
                _ => arch,
            };
        return OptionalString("model_type") switch
        {
            "llama" => "LlamaForCausalLM",
            "mistral" => "MistralForCausalLM",
            "qwen2" => "Qwen2ForCausalLM",
            "gpt2" => "GPT2LMHeadModel",
            "bert" => "BertModel",
            var t => throw new CheckpointException($"{path}: no \"architectures\" and model_type '{t}' is not one Whittle imports.", path),
        };
    }

    /// <summary>A size or count: a positive integer.</summary>
    public int Int(string key) => OptionalInt(key) ?? throw new CheckpointException($"{path}: \"{prefix}{key}\" (a positive integer) is missing.", path);

    /// <summary>A size or count (a positive integer), or null when absent.</summary>
    public int? OptionalInt(string key) => root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null
        ? v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i > 0 ? i : throw new CheckpointException($"{path}: \"{prefix}{key}\" is {v}, expected a positive integer.", path)
        : null;

    /// <summary>A finite number, or null when absent.</summary>
    public double? OptionalDouble(string key) => root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null
        ? v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) ? v.GetDouble() : throw new CheckpointException($"{path}: \"{prefix}{key}\" is {v}, expected a number.", path)
        : null;

    public bool? OptionalBool(string key) => root.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    public string? OptionalString(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public CheckpointException Unsupported(string what) => new($"{path}: {what} is not supported by the importer.", path);
}
