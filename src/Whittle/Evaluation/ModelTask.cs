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
}

/// <summary>The task of a model and why it was chosen.</summary>
/// <param name="Task">The task.</param>
/// <param name="Output">The output that holds the logits (classifier, language model); the first output otherwise.</param>
/// <param name="Reason">Where the task came from: the metadata, a heuristic, or the caller.</param>
public sealed record DetectedTask(ModelTask Task, string Output, string Reason)
{
    /// <summary>The metadata key that declares the task (<c>classifier</c>, <c>language-model</c> or <c>generic</c>).</summary>
    public const string MetadataKey = Text.TokenizerMetadata.TaskKey;

    /// <summary>The name of a task on the command line, in JSON and in metadata: <c>classifier</c>, <c>language-model</c>, <c>generic</c>.</summary>
    public static string Name(ModelTask task) => task switch
    {
        ModelTask.Classifier => "classifier",
        ModelTask.LanguageModel => "language-model",
        _ => "generic",
    };

    /// <summary>The task named <paramref name="name"/> (see <see cref="Name"/>), or null.</summary>
    public static ModelTask? Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "classifier" => ModelTask.Classifier,
        "language-model" => ModelTask.LanguageModel,
        "generic" or "encoder" => ModelTask.Generic,
        _ => null,
    };

    /// <summary>
    /// The task of <paramref name="model"/>: <paramref name="requested"/> when given; else the metadata's
    /// <see cref="MetadataKey"/>; else heuristics on the declared inputs and outputs — an int64 input <c>[N, T]</c>
    /// (preferably <c>input_ids</c>) and a float output <c>[N, T, V]</c> make a language model, a single float output
    /// <c>[N, C]</c> a classifier, anything else is generic.
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
            _ => first,
        }, reason);

        if (requested is { } r) return For(r, "requested");
        if (model.Proto.MetadataProps.FirstOrDefault(p => p.Key == MetadataKey) is { } declared)
            return Parse(declared.Value) is { } t
                ? For(t, $"metadata {MetadataKey} = {declared.Value}")
                : throw new InvalidDataException(
                    $"{model.FilePath ?? "model"}: metadata {MetadataKey} = '{declared.Value}' is not a task; expected classifier, language-model or generic (or choose one explicitly).");

        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
        bool tokenInput = inputs.Any(i => i.Type?.TensorType is { ElemType: (int)OnnxDataType.Int64 } && Rank(i) == 2);
        if (tokenInput && lmOutput is not null)
            return For(ModelTask.LanguageModel, $"heuristic: int64 [N,T] input and float [N,T,V] output '{lmOutput}'");
        if (outputs.Count == 1 && classifierOutput is not null)
            return For(ModelTask.Classifier, $"heuristic: one float [N,C] output '{classifierOutput}'");
        return For(ModelTask.Generic, "heuristic: neither a language model nor a classifier");
    }

    private static bool IsFloat(ValueInfoProto v) => v.Type?.TensorType is { ElemType: (int)OnnxDataType.Float };

    private static int Rank(ValueInfoProto v) => v.Type?.TensorType?.Shape is { } s ? s.Dim.Count : -1;
}
