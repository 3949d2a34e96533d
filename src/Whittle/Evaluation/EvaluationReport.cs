using Whittle.Analysis;

namespace Whittle.Evaluation;

/// <summary>What <see cref="Evaluator.Evaluate"/> measured: a model, optionally its reference, and how they compare.</summary>
/// <param name="Task">The task and why it was chosen.</param>
/// <param name="Data">The data the figures were measured on.</param>
/// <param name="Runtime">How ONNX Runtime ran both models.</param>
/// <param name="Model">The model's figures.</param>
/// <param name="Reference">The reference's figures, or null without a reference.</param>
/// <param name="Comparison">Model against reference, or null without a reference.</param>
/// <param name="Warnings">What the figures should be read with (outputs not compared, MACs unknown, data guesses).</param>
public sealed record EvaluationReport(
    DetectedTask Task,
    DataSummary Data,
    RuntimeSummary Runtime,
    ModelFigures Model,
    ModelFigures? Reference,
    ComparisonFigures? Comparison,
    IReadOnlyList<string> Warnings);

/// <summary>The data of an evaluation.</summary>
/// <param name="Description">Where it came from and how it was read, or null.</param>
/// <param name="Examples">Samples (windows for a language model).</param>
/// <param name="Batches">Batches.</param>
/// <param name="BatchSize">Samples per batch (the last may have fewer).</param>
/// <param name="HasLabels">Whether the samples have labels.</param>
/// <param name="PredictedTokens">Language models: tokens scored (T − 1 per window unless the text protocol scores fewer); otherwise null.</param>
/// <param name="Protocol">Language models on text: how the text was cut and scored (<c>documents, window 128</c>); otherwise null.</param>
/// <param name="Documents">Language models on text: documents scored; otherwise null.</param>
public sealed record DataSummary(string? Description, int Examples, int Batches, int BatchSize, bool HasLabels, long? PredictedTokens,
    string? Protocol = null, int? Documents = null);

/// <summary>How ONNX Runtime ran the models, and how latency was measured.</summary>
/// <param name="ExecutionProvider">The execution provider (CPU).</param>
/// <param name="IntraOpThreads">ORT intra-op threads (0: ORT's choice).</param>
/// <param name="LatencyWarmup">Untimed runs per model and batch size before timing.</param>
/// <param name="LatencyRepeats">Timed runs per model and batch size (model and reference alternate).</param>
public sealed record RuntimeSummary(string ExecutionProvider, int IntraOpThreads, int LatencyWarmup, int LatencyRepeats);

/// <summary>Size, cost, quality and speed of one model.</summary>
/// <param name="Path">The model file, or null for a model in memory.</param>
/// <param name="Parameters">Elements of floating-point and quantized weights (<see cref="ModelStructure.Parameters"/>).</param>
/// <param name="StoredBytes">Bytes of initializer data, inline and external.</param>
/// <param name="MacsPerExample">Multiply-accumulates per example (per window for a language model), over the layers whose shapes are known.</param>
/// <param name="MacsUnknownLayers">MatMul/Gemm/Conv layers whose MACs could not be counted (shapes unknown even after a probe).</param>
/// <param name="Loss">Classifier: mean cross-entropy (needs labels); language model: mean next-token NLL (nats); else null.</param>
/// <param name="Accuracy">Classifier with labels: top-1 accuracy; else null.</param>
/// <param name="Correct">Classifier with labels: correctly classified examples; else null.</param>
/// <param name="Perplexity">Language model: exp(mean NLL); else null.</param>
/// <param name="Latency">ONNX Runtime latency at batch 1 and at the data's batch size.</param>
/// <param name="PerplexityInterval">Language model: a 95 % interval of the perplexity from per-document (else per-window) NLL; else null.</param>
public sealed record ModelFigures(
    string? Path, long Parameters, long StoredBytes, double MacsPerExample, int MacsUnknownLayers,
    double? Loss, double? Accuracy, long? Correct, double? Perplexity,
    IReadOnlyList<LatencyFigure> Latency, PerplexityInterval? PerplexityInterval = null);

/// <summary>Latency of one model at one batch size.</summary>
/// <param name="BatchSize">Samples per run.</param>
/// <param name="MedianMilliseconds">Median wall time of a run.</param>
/// <param name="MinMilliseconds">Fastest run.</param>
/// <param name="MaxMilliseconds">Slowest run.</param>
/// <param name="Runs">Timed runs.</param>
public sealed record LatencyFigure(int BatchSize, double MedianMilliseconds, double MinMilliseconds, double MaxMilliseconds, int Runs);

/// <summary>A model against its reference on the same batches.</summary>
/// <param name="Compared">What agreement and KL average over: examples (classifier), predicted token positions (language model); 0 for generic models.</param>
/// <param name="Agreement">Share of compared items whose top-1 prediction equals the reference's; null for generic models.</param>
/// <param name="MeanKl">Mean KL(reference ‖ model) in nats over the compared items; null for generic models.</param>
/// <param name="MaxKl">Largest KL of one compared item; null for generic models.</param>
/// <param name="Flips">Classifier with labels: correct→incorrect and incorrect→correct counts; else null.</param>
/// <param name="Outputs">Every float output both models have, compared element-wise.</param>
/// <param name="Embedding">Embedding task: the pooled, normalized embeddings compared example by example; else null.</param>
public sealed record ComparisonFigures(long Compared, double? Agreement, double? MeanKl, double? MaxKl, FlipCounts? Flips, IReadOnlyList<OutputComparison> Outputs,
    EmbeddingCosine? Embedding = null);

/// <summary>Per-example cosine of a model's sentence embeddings to the reference's (see <see cref="ModelTask.Embedding"/>).</summary>
/// <param name="Examples">Examples compared.</param>
/// <param name="Mean">Mean cosine.</param>
/// <param name="Percentile5">5th percentile: the worst 5 % of examples are at or below it.</param>
/// <param name="Min">The smallest cosine.</param>
public sealed record EmbeddingCosine(long Examples, double Mean, double Percentile5, double Min);

/// <summary>One output of a model against the same output of its reference.</summary>
/// <param name="Name">The output.</param>
/// <param name="MeanCosine">Mean over examples of the cosine similarity of the flattened per-example outputs.</param>
/// <param name="MinCosine">The smallest per-example cosine.</param>
/// <param name="RelativeError">‖y − y_ref‖_F / ‖y_ref‖_F over all examples.</param>
/// <param name="MaxAbsDifference">The largest element-wise |y − y_ref|.</param>
public sealed record OutputComparison(string Name, double MeanCosine, double MinCosine, double RelativeError, double MaxAbsDifference);

/// <summary>Progress of an evaluation: a stage (<c>quality</c>, <c>size</c>, <c>latency</c>) and how far it is.</summary>
/// <param name="Stage">The stage.</param>
/// <param name="Done">Steps done in the stage.</param>
/// <param name="Total">Steps in the stage.</param>
public sealed record EvaluationProgress(string Stage, int Done, int Total);
