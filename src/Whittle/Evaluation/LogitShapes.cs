using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>
/// Checks that outputs have the shapes a task reads, with messages that say what was expected. <c>what</c> names the
/// output in messages: <c>output 'logits'</c>.
/// </summary>
internal static class LogitShapes
{
    /// <summary>How messages name an output: <c>output 'logits'</c>, or <c>the first output</c> when the name is not known.</summary>
    public static string Describe(string? output) => output is null ? "the first output" : $"output '{output}'";

    /// <summary>The class count of classifier logits: float32 <c>[batchSize, C]</c>.</summary>
    public static int Classes(HostTensor logits, int batchSize, string what)
    {
        if (logits.ElementType != OnnxDataType.Float || logits.Rank != 2 || logits.Shape[0] != batchSize || logits.Shape[1] < 1)
            throw new InvalidDataException(
                $"The model's {what} is {logits} for a batch of {batchSize}; a classifier's logits are float32[{batchSize},classes]. Evaluate the model as another task.");
        return logits.Shape[1];
    }

    /// <summary>Window length and vocabulary of language-model logits: float32 <c>[b, T, V]</c> for ids int64 <c>[b, T]</c>, T ≥ 2.</summary>
    public static (int Length, int Vocabulary) Tokens(HostTensor logits, HostTensor ids, string what, string idsName)
    {
        if (ids.ElementType != OnnxDataType.Int64 || ids.Rank != 2 || ids.Shape[1] < 2)
            throw new InvalidDataException($"Input '{idsName}' is {ids}; a language model's token ids are int64[batch,tokens] with at least 2 tokens.");
        if (logits.ElementType != OnnxDataType.Float || logits.Rank != 3 || logits.Shape[0] != ids.Shape[0] || logits.Shape[1] != ids.Shape[1] || logits.Shape[2] < 1)
            throw new InvalidDataException(
                $"The model's {what} is {logits} for ids {ids}; a language model's logits are float32[{ids.Shape[0]},{ids.Shape[1]},vocabulary]. Evaluate the model as another task.");
        return (ids.Shape[1], logits.Shape[2]);
    }

    /// <summary>Checks that a model's and its reference's outputs have the same type and shape.</summary>
    public static void Same(HostTensor model, HostTensor reference, string what)
    {
        if (model.ElementType != reference.ElementType || !model.Shape.AsSpan().SequenceEqual(reference.Shape))
            throw new InvalidDataException($"The model's {what} is {model} but the reference's is {reference}; they must match to be compared.");
    }

    /// <summary>Checks that <paramref name="label"/> is a class index of a <paramref name="classes"/>-class output.</summary>
    public static void Label(long label, int classes, int batch, int sample, string what)
    {
        if ((ulong)label >= (ulong)classes)
            throw new InvalidDataException($"Label {label} of sample {sample} in batch {batch} is not a class of {what}, which has {classes} (0–{classes - 1}).");
    }
}
