// Evaluation of a model, and of its reference, by the same entry point on the same batches in the same run.
//
// Contract
//   1. Quality: one pass over the batches; each batch runs through the model and the reference, and is
//      scored and dropped (memory: one batch of outputs per model). Classifier rows are examples; a
//      language model's rows are the positions 0..T−2 of every window, predicting ids 1..T−1, or the
//      positions the text protocol scores (BatchSet.Targets; perplexity = exp(mean NLL over the scored
//      tokens), with a 95 % interval from per-document NLL). Every float32 output both models have is
//      compared element-wise (cosine per example, relative error, max |difference|).
//   2. Size: parameters, stored bytes, MACs per example (ModelCost; shapes probed on the first example).
//   3. Latency: batch 1 (the first example) and the first batch, model and reference alternating
//      (LatencyMeter), after warm-up; median of the timed runs.
//   Deterministic figures for a fixed RuntimeOptions (except latency).
//
// Whole or by segments (EvaluationOptions.Execution)
//   Whole: one ONNX Runtime session per model, both open side by side. Segments: each model runs one segment (a
//   transformer block, a residual stretch) at a time over every batch, its outputs kept for scoring (StreamedOutputs),
//   and shapes for the size figures are probed the same way; memory is one segment's weights plus boundary values, so
//   models larger than memory are evaluated. The figures are the same either way (up to ORT's float rounding when a
//   fused pattern spans a segment boundary); latency, which needs the whole model in one session, is not measured.
//   Auto picks segments when the two models' weights together exceed WholeModelLimitBytes.

using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Data;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>Options of <see cref="Evaluator.Evaluate"/>. Immutable.</summary>
public sealed record EvaluationOptions
{
    /// <summary>The task; null detects it (<see cref="DetectedTask.Detect"/>).</summary>
    public ModelTask? Task { get; init; }

    /// <summary>ONNX Runtime settings for both models; default <see cref="RuntimeOptions.Default"/> (one intra-op thread per core).</summary>
    public RuntimeOptions Runtime { get; init; } = RuntimeOptions.Default;

    /// <summary>Untimed runs per model and batch size before timing; default 2.</summary>
    public int LatencyWarmup { get; init; } = 2;

    /// <summary>Timed runs per model and batch size; default 10; 0 skips latency.</summary>
    public int LatencyRepeats { get; init; } = 10;

    /// <summary>Whether the models run whole or segment by segment; default <see cref="ModelExecution.Auto"/>.</summary>
    public ModelExecution Execution { get; init; } = ModelExecution.Auto;

    /// <summary>With <see cref="ModelExecution.Auto"/>, the most weight bytes (model and reference together) run whole; default 2 GiB.</summary>
    public long WholeModelLimitBytes { get; init; } = 2L << 30;

    /// <summary>Segment mode: boundary values and outputs held in memory before the rest goes to a temporary file; default 1 GiB.</summary>
    public long BoundaryCacheBytes { get; init; } = 1L << 30;

    /// <summary>Where segment mode spills; default the system's temporary folder.</summary>
    public string? SpillDirectory { get; init; }
}

/// <summary>How <see cref="Evaluator"/> runs the models.</summary>
public enum ModelExecution
{
    /// <summary>Whole when both fit <see cref="EvaluationOptions.WholeModelLimitBytes"/>, else segments.</summary>
    Auto,

    /// <summary>One session per model.</summary>
    Whole,

    /// <summary>One segment at a time (see the header of <c>Evaluator.cs</c>).</summary>
    Segments,
}

/// <summary>Evaluates a model (quality, size, cost, speed) and compares it with a reference.</summary>
public static class Evaluator
{
    /// <summary>
    /// Evaluates <paramref name="model"/> on <paramref name="data"/>, and <paramref name="reference"/> (when given) on the
    /// same batches in the same run: quality in one pass scored batch by batch, then parameters, bytes and MACs, then
    /// latency with model and reference alternating (the contract at the top of <c>Evaluator.cs</c> has the details).
    /// </summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="reference">The model to compare with (usually the original), or null.</param>
    /// <param name="data">The batches (and labels) to evaluate on.</param>
    /// <param name="options">Task, runtime and latency settings; defaults when null.</param>
    /// <param name="progress">Told after every batch and timed round; may be null.</param>
    /// <param name="cancellationToken">Checked between batches and rounds.</param>
    /// <exception cref="ArgumentException">A batch does not fit a model (names the input, expected vs got).</exception>
    /// <exception cref="InvalidDataException">An output has the wrong shape for the task, outputs differ between the models, or a label is not a class.</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime rejects or fails to run a model.</exception>
    public static EvaluationReport Evaluate(OnnxModel model, OnnxModel? reference, BatchSet data, EvaluationOptions? options = null,
        IProgress<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        options ??= new EvaluationOptions();
        if (options.LatencyWarmup < 0) ThrowHelper.ArgumentOutOfRange(nameof(options), options.LatencyWarmup, "LatencyWarmup ≥ 0");
        if (options.LatencyRepeats < 0) ThrowHelper.ArgumentOutOfRange(nameof(options), options.LatencyRepeats, "LatencyRepeats ≥ 0");
        var task = DetectedTask.Detect(model, options.Task);
        var warnings = new List<string>();
        if (task.Task is ModelTask.Generic or ModelTask.Embedding && data.Labels is not null)
            warnings.Add($"labels are not used: the model is evaluated as {(task.Task == ModelTask.Generic ? "a generic model" : "a sentence encoder")}.");
        if (task.Task == ModelTask.Embedding && reference is null)
            warnings.Add("an embedding model is scored against a reference: without one, only size and latency are reported.");

        bool streamed = Streamed(model, reference, options);
        using var clock = streamed ? new StageClock() : null;
        var context = clock is null ? null : new StreamContext(data, Segmentation.Whole, options.Runtime,
            new SpillBudget(options.BoundaryCacheBytes, options.SpillDirectory), clock, new Garbage(), null, cancellationToken);
        using var m = Outputs(model, "model", data, context, options, progress);
        using var r = reference is null ? null : Outputs(reference, "reference", data, context, options, progress);
        string output = task.Output;
        foreach (var runner in new[] { m, r })
            if (runner is not null && task.Task != ModelTask.Generic && !runner.OutputNames.Contains(output))
                throw new InvalidDataException(
                    $"{runner.Source ?? "the model"} has no output '{output}' (the logits of the {DetectedTask.Name(task.Task)}); it outputs {string.Join(", ", runner.OutputNames.Select(o => $"'{o}'"))}.");
        string? ids = task.Task == ModelTask.LanguageModel ? TokenIds(data[0]) : null;

        var score = new TopOneScore();
        var units = new UnitNll();
        var embeddings = new EmbeddingScore();
        OutputComparer? comparer = null;
        for (int b = 0, window = 0; b < data.Count; window += data[b].BatchSize, b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var mo = m.Run(b);
            var ro = r?.Run(b);
            if (ro is not null)
            {
                if (comparer is null)
                {
                    var (compared, skipped) = OutputComparer.Select(mo, ro);
                    warnings.AddRange(skipped);
                    comparer = new OutputComparer(compared);
                }
                comparer.Add(mo, ro);
            }
            string what = LogitShapes.Describe(output);
            try
            {
                if (task.Task == ModelTask.Classifier) AddClassifier(score, b, data[b].BatchSize, mo[output], ro?[output], data.Labels?[b], what);
                else if (task.Task == ModelTask.LanguageModel)
                    AddLanguageModel(score, units, b, window, data[b][ids!], data.Targets?[b], mo[output], ro?[output], what, ids!);
                else if (task.Task == ModelTask.Embedding && ro is not null)
                    embeddings.Add(mo[output], ro[output], data[b].TryGetValue("attention_mask", out var mask) ? mask : null, $"output '{output}'");
            }
            catch (InvalidDataException ex) when (data[b].Source is { } source)
            {
                // A label that is not a class, or logits of the wrong shape: say which data it was.
                throw new InvalidDataException($"{source}: {ex.Message}", ex);
            }
            progress?.Report(new EvaluationProgress("quality", b + 1, data.Count));
        }

        var example = data.FirstExample();
        var modelCost = Cost(model, example, context, options);
        var referenceCost = reference is null ? null : Cost(reference, example, context, options);
        progress?.Report(new EvaluationProgress("size", 1, 1));

        List<LatencyFigure[]> latency = [];
        if (m is ModelRunner wm && (r is null || r is ModelRunner)) latency = MeasureLatency(r is ModelRunner wr ? [wm, wr] : [wm], data[0], example, options, progress, cancellationToken);
        else if (options.LatencyRepeats > 0)
            warnings.Add($"latency is not measured: the models ran segment by segment (their weights, {(OnnxModelSummary.Of(model).InitializerBytes + (reference is null ? 0 : OnnxModelSummary.Of(reference).InitializerBytes)) / (double)(1L << 30):F1} GiB together, are over the {options.WholeModelLimitBytes / (double)(1L << 30):F1} GiB limit for running whole); run them whole to time them.");
        foreach (var c in new[] { modelCost, referenceCost })
            if (c is { UnknownLayers: > 0 })
                warnings.Add($"MACs of {c.UnknownLayers} layer(s) are unknown (shapes missing even after a probe); the MAC count leaves them out.");

        ModelFigures Figures(ModelCost cost, bool isReference, string? path, IReadOnlyList<LatencyFigure> times)
        {
            var q = score.Quality(isReference);
            return task.Task switch
            {
                ModelTask.Classifier => new ModelFigures(path, cost.Parameters, cost.StoredBytes, cost.MacsPerExample, cost.UnknownLayers,
                    q?.MeanNll, q is { } c ? (double)c.Correct / score.Targets : null, q?.Correct, null, times),
                ModelTask.LanguageModel => new ModelFigures(path, cost.Parameters, cost.StoredBytes, cost.MacsPerExample, cost.UnknownLayers,
                    q?.MeanNll, null, null, q is { } l ? Math.Exp(l.MeanNll) : null, times, units.Interval(isReference)),
                _ => new ModelFigures(path, cost.Parameters, cost.StoredBytes, cost.MacsPerExample, cost.UnknownLayers, null, null, null, null, times),
            };
        }

        ComparisonFigures? comparison = null;
        if (r is not null)
        {
            var (agreement, meanKl, maxKl, flips) = score.Comparison();
            comparison = task.Task is ModelTask.Generic or ModelTask.Embedding
                ? new ComparisonFigures(0, null, null, null, null, comparer!.Results(), embeddings.Result())
                : new ComparisonFigures(score.Rows, agreement, meanKl, maxKl, task.Task == ModelTask.Classifier ? flips : null, comparer!.Results());
        }
        bool lm = task.Task == ModelTask.LanguageModel;
        var summary = new DataSummary(data.Description, data.Examples, data.Count, data[0].BatchSize, data.Labels is not null,
            lm ? score.Rows : null, lm ? data.Windowing?.ToString() : null, lm ? units.Documents : null);
        var runtime = new RuntimeSummary("CPU", options.Runtime.IntraOpThreads, options.LatencyWarmup, options.LatencyRepeats);
        return new EvaluationReport(task, summary, runtime,
            Figures(modelCost, false, model.FilePath, latency.Select(l => l[0]).ToList()),
            referenceCost is null ? null : Figures(referenceCost, true, reference!.FilePath, latency.Select(l => l[1]).ToList()),
            comparison, warnings);
    }

    /// <summary>Whether the models run segment by segment.</summary>
    private static bool Streamed(OnnxModel model, OnnxModel? reference, EvaluationOptions options) => options.Execution switch
    {
        ModelExecution.Whole => false,
        ModelExecution.Segments => true,
        _ => RuntimeWeightBytes(model) + (reference is null ? 0 : RuntimeWeightBytes(reference)) > options.WholeModelLimitBytes,
    };

    /// <summary>
    /// The bytes of weights ONNX Runtime holds for <paramref name="model"/>: the stored bytes, 16-bit matrices behind a Cast to
    /// float counted in float32 (ORT folds the Cast when it loads the model).
    /// </summary>
    private static long RuntimeWeightBytes(OnnxModel model)
    {
        long widened = 0;
        foreach (var t in model.Proto.Graph.Initializer)
            if (t.DataType is (int)OnnxDataType.Float16 or (int)OnnxDataType.BFloat16
                && model.Graph.Consumers(t.Name) is [{ OpType: "Cast" } cast] && GraphQuery.StoredInitializer(model.Graph, cast.Output[0]) == t.Name)
                widened += model.Tensor(t).ByteLength;
        return OnnxModelSummary.Of(model).InitializerBytes + widened;
    }

    /// <summary>A whole-model runner, or (with a stream context) the model's outputs computed segment by segment.</summary>
    private static IBatchOutputs Outputs(OnnxModel model, string which, BatchSet data, StreamContext? context, EvaluationOptions options,
        IProgress<EvaluationProgress>? progress)
    {
        if (context is null) return ModelRunner.Create(model, data, options.Runtime);
        int segments = StreamedOutputs.Segments(model).Count;
        return StreamedOutputs.Run(model, data, context with
        {
            Progress = (s, done) => progress?.Report(new EvaluationProgress($"{which} segments", s * data.Count + done, segments * data.Count)),
        });
    }

    private static ModelCost Cost(OnnxModel model, InputBatch example, StreamContext? context, EvaluationOptions options)
    {
        if (context is null) return ModelCost.Measure(model, example, options.Runtime);
        // The same probe as ModelCost.Measure (one example, the model's fixed batch if it has one), run segment by segment.
        var declared = ModelInput.FromModel(model);
        int batch = declared.Select(i => i.Shape is [{ Value: { } b and > 0 and <= int.MaxValue }, ..] ? (int)b : 1).DefaultIfEmpty(1).Max();
        var probe = batch == 1 ? example : example.SelectRows([.. Enumerable.Repeat(0, batch)]);
        return ModelCost.FromShapes(model, StreamedOutputs.ProbeShapes(model, probe, context), batch);
    }

    private static void AddClassifier(TopOneScore score, int batch, int batchSize, HostTensor logits, HostTensor? reference, HostTensor? labels, string what)
    {
        int c = LogitShapes.Classes(logits, batchSize, what);
        if (reference is not null) LogitShapes.Same(logits, reference, what);
        var y = logits.AsFloats();
        var yr = reference?.AsFloats();
        var l = labels?.AsInt64();
        for (int i = 0; i < batchSize; i++)
            score.Add(y.AsSpan(i * c, c), yr is null ? default : yr.AsSpan(i * c, c), l?[i], batch, i, what);
    }

    private static void AddLanguageModel(TopOneScore score, UnitNll units, int batch, int firstWindow, HostTensor ids, TokenTargets? targets,
        HostTensor logits, HostTensor? reference, string what, string idsName)
    {
        var (t, v) = LogitShapes.Tokens(logits, ids, what, idsName);
        if (reference is not null) LogitShapes.Same(logits, reference, what);
        var y = logits.AsFloats();
        var yr = reference?.AsFloats();
        targets ??= TokenTargets.NextTokens(ids);
        var next = targets.Ids.AsInt64();
        var documents = targets.Documents.AsInt64();
        for (int n = 0; n < ids.Rows; n++)
            for (int p = 0; p < t - 1; p++)
            {
                int at = n * t + p;
                if (next[at] == TokenTargets.Unscored) continue;
                var (nll, referenceNll) = score.Add(y.AsSpan(at * v, v), yr is null ? default : yr.AsSpan(at * v, v), next[at], batch, n, what);
                units.Add(documents[at], firstWindow + n, nll, referenceNll);
            }
    }

    /// <summary>The batch's token-id tensor: <c>input_ids</c>, else its only int64 <c>[N, T]</c> tensor that is not a mask.</summary>
    private static string TokenIds(InputBatch batch)
    {
        if (batch.TryGetValue("input_ids", out var named) && named.ElementType == OnnxDataType.Int64) return "input_ids";
        var candidates = batch.Where(p => p.Value.ElementType == OnnxDataType.Int64 && p.Value.Rank == 2
            && !p.Key.Contains("mask", StringComparison.OrdinalIgnoreCase)).Select(p => p.Key).ToList();
        if (candidates.Count == 1) return candidates[0];
        throw new InvalidDataException(
            $"{batch.Source ?? "The data"}: a language model reads int64 token ids [N,T] ('input_ids'), but the batch has {batch}.");
    }

    /// <summary>Per batch size (1, then the first batch's), the figure of each runner.</summary>
    private static List<LatencyFigure[]> MeasureLatency(IReadOnlyList<ModelRunner> runners, InputBatch first, InputBatch example,
        EvaluationOptions options, IProgress<EvaluationProgress>? progress, CancellationToken cancellationToken)
    {
        var result = new List<LatencyFigure[]>();
        if (options.LatencyRepeats == 0) return result;
        var batches = first.BatchSize > 1 ? new[] { example, first } : [example];
        int done = 0, total = batches.Length * options.LatencyRepeats;
        foreach (var batch in batches)
            result.Add(LatencyMeter.Measure(runners, batch, batch.BatchSize, options.LatencyWarmup, options.LatencyRepeats,
                () => progress?.Report(new EvaluationProgress("latency", ++done, total)), cancellationToken));
        return result;
    }
}
