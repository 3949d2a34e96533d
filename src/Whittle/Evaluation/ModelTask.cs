using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Evaluation;

/// <summary>What a model does, which decides how it is scored.</summary>
public enum ModelTask
{
    /// <summary>Logits <c>[N, classes]</c>: cross-entropy, accuracy, agreement, KL, flips.</summary>
    Classifier,

    /// <summary>Token ids <c>[N, T]</c> → next-token logits <c>[N, T, vocabulary]</c>: perplexity, agreement, KL.</summary>
    LanguageModel,

    /// <summary>Anything else (encoders): outputs compared with the reference's (cosine, relative error).</summary>
    Generic,

    /// <summary>
    /// A sentence encoder: hidden states <c>[N, T, D]</c> mean-pooled over the attention mask and L2-normalized, compared
    /// with the reference's embedding example by example (cosine: mean, 5th percentile, minimum). Chosen, never guessed.
    /// </summary>
    Embedding,
}

/// <summary>The task of a model and why it was chosen.</summary>
/// <param name="Task">The task.</param>
/// <param name="Output">The output that holds the logits (classifier, language model); the first output otherwise.</param>
/// <param name="Reason">Where the task came from: the metadata, a heuristic, or the caller.</param>
public sealed record DetectedTask(ModelTask Task, string Output, string Reason)
{
    /// <summary>The metadata key that declares the task (<c>classifier</c>, <c>language-model</c>, <c>generic</c> or <c>embedding</c>).</summary>
    public const string MetadataKey = Text.TokenizerMetadata.TaskKey;

    /// <summary>The name of a task on the command line, in JSON and in metadata: <c>classifier</c>, <c>language-model</c>, <c>generic</c>, <c>embedding</c>.</summary>
    public static string Name(ModelTask task) => task switch
    {
        ModelTask.Classifier => "classifier",
        ModelTask.LanguageModel => "language-model",
        ModelTask.Embedding => "embedding",
        _ => "generic",
    };

    /// <summary>The task named <paramref name="name"/> (see <see cref="Name"/>), or null.</summary>
    public static ModelTask? Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "classifier" => ModelTask.Classifier,
        "language-model" => ModelTask.LanguageModel,
        "generic" or "encoder" => ModelTask.Generic,
        "embedding" or "sentence-embedding" => ModelTask.Embedding,
        _ => null,
    };

    /// <summary>
    /// The task of <paramref name="model"/>: <paramref name="requested"/> when given; else the metadata's
    /// <see cref="MetadataKey"/>; else a guess from the declared inputs and outputs (the reason says so and how to
    /// override it) — an int64 input <c>[N, T]</c> and a float output <c>[N, T, V]</c> make a language model unless the
    /// output holds hidden states (named so, or not as wide as the vocabulary the token ids index), a single float output
    /// <c>[N, C]</c> a classifier unless it is named as an encoder's output, anything else is generic.
    /// </summary>
    /// <exception cref="InvalidDataException">The metadata names an unknown task.</exception>
    public static DetectedTask Detect(OnnxModel model, ModelTask? requested = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Proto.Graph;
        var outputs = graph.Output;
        if (outputs.Count == 0) throw new InvalidDataException($"{model.FilePath ?? "model"}: the graph has no outputs.");
        string first = outputs[0].Name;
        var lmOutput = outputs.FirstOrDefault(o => IsFloat(o) && Rank(o) == 3)?.Name;
        var classifierOutput = outputs.FirstOrDefault(o => IsFloat(o) && Rank(o) == 2)?.Name;
        DetectedTask For(ModelTask task, string reason) => new(task, task switch
        {
            ModelTask.LanguageModel => lmOutput ?? first,
            ModelTask.Classifier => classifierOutput ?? first,
            ModelTask.Embedding => outputs.FirstOrDefault(o => IsFloat(o) && Rank(o) is 2 or 3)?.Name ?? first,
            _ => first,
        }, reason);

        if (requested is { } r) return For(r, "requested");
        if (model.Proto.MetadataProps.FirstOrDefault(p => p.Key == MetadataKey) is { } declared)
            return Parse(declared.Value) is { } t
                ? For(t, $"metadata {MetadataKey} = {declared.Value}")
                : throw new InvalidDataException(
                    $"{model.FilePath ?? "model"}: metadata {MetadataKey} = '{declared.Value}' is not a task; expected classifier, language-model, generic or embedding (or choose one explicitly).");

        const string Override = "--task classifier|language-model|generic|embedding to choose";
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var inputs = graph.Input.Where(i => !initializers.ContainsKey(i.Name)).ToList();
        var tokenInput = inputs.FirstOrDefault(i => i.Type?.TensorType is { ElemType: (int)OnnxDataType.Int64 } && Rank(i) == 2);
        if (tokenInput is not null && lmOutput is not null)
        {
            // Logits end in the vocabulary: the rows of the table the token ids index. Hidden states end in the model width.
            long? vocabulary = graph.Node.Where(n => n.OpType == "Gather" && n.Input.Count == 2 && n.Input[1] == tokenInput.Name
                    && initializers.TryGetValue(n.Input[0], out var t) && t.Dims.Count == 2)
                .Select(n => (long?)initializers[n.Input[0]].Dims[0]).FirstOrDefault();
            long? last = LastDim(outputs.First(o => o.Name == lmOutput));
            if (IsHiddenState(lmOutput) || (vocabulary is { } v && last is { } l && l != v))
                return For(ModelTask.Generic, $"guessed: float output '{lmOutput}' holds hidden states"
                    + (vocabulary is { } vv && last is { } ll && ll != vv ? $" ({ll} wide, not the {vv}-token vocabulary)" : "")
                    + $", so an encoder; {Override}");
            return For(ModelTask.LanguageModel, $"guessed: int64 [N,T] input '{tokenInput.Name}' and float [N,T,V] output '{lmOutput}'; {Override}");
        }
        if (outputs.Count == 1 && classifierOutput is not null && !IsHiddenState(classifierOutput))
            return For(ModelTask.Classifier, $"guessed: one float [N,C] output '{classifierOutput}'; {Override}");
        return For(ModelTask.Generic, $"guessed: neither a language model nor a classifier; {Override}");
    }

    // Hugging Face's names for an encoder's outputs: last_hidden_state, hidden_states, pooler_output, sentence_embedding.
    private static bool IsHiddenState(string output) =>
        output.Contains("hidden", StringComparison.OrdinalIgnoreCase) || output.Contains("pooler", StringComparison.OrdinalIgnoreCase)
        || output.Contains("embedding", StringComparison.OrdinalIgnoreCase);

    private static long? LastDim(ValueInfoProto v) =>
        v.Type?.TensorType?.Shape is { Dim.Count: > 0 } s && s.Dim[^1].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? s.Dim[^1].DimValue : null;

    private static bool IsFloat(ValueInfoProto v) => v.Type?.TensorType is { ElemType: (int)OnnxDataType.Float };

    private static int Rank(ValueInfoProto v) => v.Type?.TensorType?.Shape is { } s ? s.Dim.Count : -1;
}
