// The loss a rank search measures on the calibration data, and its gradient with respect to the logits (for the exact
// first-order term at a layer that writes the logits).
//
//   cross-entropy             a classifier whose calibration data carry labels: f = mean_i CE(z_i, y_i),
//                             ∂f/∂z_i = (softmax(z_i) − e_{y_i}) / N.
//   next-token cross-entropy  a language model: f = mean over positions 0..T−2 of CE(z_{n,p}, id_{n,p+1}),
//                             ∂f/∂z_{n,p} = (softmax(z_{n,p}) − e_{id_{n,p+1}}) / (N·(T − 1)), zero at the last position.
//   KL(reference ‖ model)     anything else (or a classifier without labels): f = mean over rows of KL(p_r ‖ softmax(z_r))
//                             with p_r the original model's softmax, ∂f/∂z_r = (softmax(z_r) − p_r) / rows.
// The means are over the whole calibration set, so gradients are divided by the total count of items.

using Whittle.Compression;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Onnx;
using Whittle.Calibration;
using Whittle.Runtime;

namespace Whittle.Methods;

/// <summary>Which loss a <see cref="CalibrationObjective"/> measures.</summary>
internal enum ObjectiveKind
{
    CrossEntropy,
    NextToken,
    KlToOriginal,
}

/// <summary>A task loss on the calibration batches, measured on candidate models, with the gradient of its mean w.r.t. the logits.</summary>
internal sealed class CalibrationObjective
{
    private readonly CompressionRun _run;
    private readonly string? _tokenIds;
    private readonly IReadOnlyList<HostTensor>? _reference;

    private CalibrationObjective(CompressionRun run, ObjectiveKind kind, TaskLoss loss, DetectedTask task, string? tokenIds, IReadOnlyList<HostTensor>? reference)
    {
        _run = run;
        Kind = kind;
        Loss = loss;
        Task = task;
        _tokenIds = tokenIds;
        _reference = reference;
    }

    /// <summary>Which loss.</summary>
    public ObjectiveKind Kind { get; }

    /// <summary>The loss, bound to the calibration batches.</summary>
    public TaskLoss Loss { get; }

    /// <summary>The model's task and the output holding its logits.</summary>
    public DetectedTask Task { get; }

    /// <summary>The output the loss reads.</summary>
    public string Output => Task.Output;

    /// <summary>
    /// The size of this loss, for tolerances given in proportion to it: the original loss <paramref name="original"/>
    /// for the cross-entropies; for KL to the original, which starts at 0, the mean entropy (nats) of the original's output
    /// distributions — the cross-entropy the KL adds to.
    /// </summary>
    public double Scale(double original)
    {
        if (Kind != ObjectiveKind.KlToOriginal || _reference is null) return Math.Abs(original);
        double sum = 0;
        long rows = 0;
        foreach (var t in _reference)
        {
            var z = t.AsFloats();
            int c = t.Shape[^1];
            for (int at = 0; at + c <= z.Length; at += c, rows++)
            {
                var row = z.AsSpan(at, c);
                double max = double.NegativeInfinity, total = 0, weighted = 0;
                foreach (var v in row) max = Math.Max(max, v);
                foreach (var v in row)
                {
                    double e = Math.Exp(v - max);
                    total += e;
                    weighted += e * (v - max);
                }
                sum += Math.Log(total) - weighted / total; // H = log Σe − Σ p·(z − max)
            }
        }
        return rows == 0 ? 0 : sum / rows;
    }

    /// <summary>Forward passes over the calibration set so far (one per measured model).</summary>
    public int Passes { get; private set; }

    /// <summary>
    /// The objective for <paramref name="run"/>: cross-entropy when the task is a classifier and the calibration data
    /// have labels, next-token cross-entropy for a language model, KL to the original model otherwise.
    /// </summary>
    /// <param name="run">The run (original model, calibration data).</param>
    /// <param name="task">The task, or null to detect it.</param>
    /// <param name="warnings">Receives what the caller should tell the user.</param>
    /// <param name="divergence">KL to the original whatever the task (the task's own loss otherwise).</param>
    public static CalibrationObjective Create(CompressionRun run, ModelTask? task, List<string> warnings, bool divergence = false)
    {
        var detected = DetectedTask.Detect(run.Original, task);
        var batches = run.Calibration;
        switch (detected.Task)
        {
            case ModelTask.Classifier when batches.Labels is not null && !divergence:
                return new CalibrationObjective(run, ObjectiveKind.CrossEntropy, TaskLoss.CrossEntropy(batches, detected.Output), detected, null, null);
            case ModelTask.LanguageModel when !divergence:
            {
                string ids = TokenIds(batches[0]);
                return new CalibrationObjective(run, ObjectiveKind.NextToken, TaskLoss.NextToken(batches, ids, detected.Output), detected, ids, null);
            }
            default:
            {
                if (detected.Task == ModelTask.Classifier && !divergence)
                    warnings.Add("The calibration data have no labels: ranks are chosen on KL(original ‖ compressed) instead of cross-entropy (give --calib-labels).");
                // The original's logits of every batch, kept for the KL of every candidate.
                var outputs = new OutputCapture(detected.Output);
                run.Survey(run.Original, step =>
                {
                    if (step.Segment.Produced.Contains(detected.Output)) step.Calibrate(outputs);
                });
                var reference = outputs.Finish();
                var loss = TaskLoss.KlToReference(batches, reference, detected.Output);
                return new CalibrationObjective(run, ObjectiveKind.KlToOriginal, loss, detected, null, reference) { Passes = 1 };
            }
        }
    }

    /// <summary>The mean loss of <paramref name="model"/> over the calibration set (one pass, segment by segment).</summary>
    public double Measure(OnnxModel model)
    {
        Passes++;
        return _run.Loss(model, Loss).Mean;
    }

    /// <summary>Counts a forward pass made outside <see cref="Measure"/> (a tapped gradient pass).</summary>
    public void CountPass() => Passes++;

    /// <summary>
    /// The summed-loss gradient of batch <paramref name="batch"/> with respect to its logits (float64, the logits' layout) and
    /// the number of items it sums over; the gradient of the mean over the set is the sum over batches divided by the total count.
    /// </summary>
    public (double[] Gradient, long Count) LogitGradient(int batch, HostTensor logits)
    {
        var z = logits.AsFloats();
        int classes = logits.Shape[^1];
        int rows = z.Length / classes;
        var g = new double[z.Length];
        long count;
        switch (Kind)
        {
            case ObjectiveKind.CrossEntropy:
            {
                var labels = _run.Calibration.Labels![batch].AsInt64();
                for (int i = 0; i < rows; i++) SoftmaxMinus(z, g, i, classes, labels[i]);
                count = rows;
                break;
            }
            case ObjectiveKind.NextToken:
            {
                var ids = _run.Calibration[batch][_tokenIds!].AsInt64();
                int n = _run.Calibration[batch][_tokenIds!].Rows, t = ids.Length / n;
                for (int s = 0; s < n; s++)
                    for (int p = 0; p < t - 1; p++) SoftmaxMinus(z, g, s * t + p, classes, ids[s * t + p + 1]);
                count = (long)n * (t - 1);
                break;
            }
            default:
            {
                var p = _reference![batch].AsFloats();
                var pr = new double[classes];
                for (int i = 0; i < rows; i++)
                {
                    Softmax(z.AsSpan(i * classes, classes), g.AsSpan(i * classes, classes));
                    Softmax(p.AsSpan(i * classes, classes), pr);
                    for (int k = 0; k < classes; k++) g[i * classes + k] -= pr[k];
                }
                count = rows;
                break;
            }
        }
        return (g, count);
    }

    /// <summary>Copies of one output, batch by batch.</summary>
    private sealed class OutputCapture(string output) : IBatchStatistic<IReadOnlyList<HostTensor>>
    {
        private readonly List<HostTensor> _outputs = [];

        public IReadOnlyCollection<string> Reads { get; } = [output];

        public void AddBatch(StatisticBatch batch) => _outputs.Add(HostTensor.Float(batch[output].Span.ToArray(), batch[output].Shape));

        public IReadOnlyList<HostTensor> Finish() => _outputs;
    }

    // g[row] = softmax(z[row]) − e_target.
    private static void SoftmaxMinus(float[] z, double[] g, int row, int classes, long target)
    {
        Softmax(z.AsSpan(row * classes, classes), g.AsSpan(row * classes, classes));
        g[row * classes + target] -= 1;
    }

    private static void Softmax(ReadOnlySpan<float> logits, Span<double> into)
    {
        double lse = LogitMetrics.LogSumExp(logits);
        for (int k = 0; k < logits.Length; k++) into[k] = Math.Exp(logits[k] - lse);
    }

    /// <summary>The batch's token ids: <c>input_ids</c>, else its only int64 <c>[N, T]</c> tensor that is not a mask.</summary>
    private static string TokenIds(InputBatch batch)
    {
        if (batch.TryGetValue("input_ids", out var named) && named.ElementType == OnnxDataType.Int64) return "input_ids";
        var candidates = batch.Where(p => p.Value.ElementType == OnnxDataType.Int64 && p.Value.Rank == 2
            && !p.Key.Contains("mask", StringComparison.OrdinalIgnoreCase)).Select(p => p.Key).ToList();
        if (candidates.Count == 1) return candidates[0];
        throw new InvalidDataException($"{batch.Source ?? "The data"}: a language model reads int64 token ids [N,T] ('input_ids'), but the batch has {batch}.");
    }
}
