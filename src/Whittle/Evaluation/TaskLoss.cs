// Task losses: what a compression method measures, many times, on calibration data.
//
// Contract
//   A TaskLoss is bound to one BatchSet; ModelRunner.Loss runs a model over that set, hands each batch's
//   output to Measure, and sums. Measure returns the batch's summed loss (nats) and how many items it
//   averaged over (samples, predicted tokens, or rows), so the mean does not depend on the batching.
//   KlToReference runs the reference once when created and keeps its outputs (float32, all batches:
//   memory = the reference's output size over the whole set), so each candidate costs one pass.

using Whittle.Data;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>A loss summed over a set of items (samples, tokens or rows) and how many there were.</summary>
/// <param name="Sum">The summed loss.</param>
/// <param name="Count">The number of items.</param>
public readonly record struct LossSum(double Sum, long Count)
{
    /// <summary>The mean loss per item (NaN when there are none).</summary>
    public double Mean => Count == 0 ? double.NaN : Sum / Count;

    /// <summary>Sums both parts.</summary>
    public static LossSum operator +(LossSum a, LossSum b) => new(a.Sum + b.Sum, a.Count + b.Count);
}

/// <summary>
/// A task loss on a fixed <see cref="BatchSet"/>: cross-entropy with labels, next-token cross-entropy, or KL divergence
/// from a reference model's outputs. Measure it with <see cref="ModelRunner.Loss"/> or <see cref="ModelRunner.MeanLoss"/>.
/// </summary>
public abstract class TaskLoss
{
    private protected TaskLoss(BatchSet batches, string? output)
    {
        Batches = batches;
        Output = output;
    }

    /// <summary>The batches this loss is defined on; a runner must run these very batches.</summary>
    public BatchSet Batches { get; }

    /// <summary>The output the loss reads, or null for the model's first output.</summary>
    public string? Output { get; }

    private protected string What => LogitShapes.Describe(Output);

    /// <summary>What the loss is, for reports: <c>cross-entropy</c>, <c>next-token cross-entropy</c>, <c>KL(reference ‖ model)</c>.</summary>
    public abstract string Name { get; }

    /// <summary>The summed loss of batch <paramref name="batch"/> given the model's <paramref name="output"/> on it.</summary>
    /// <exception cref="InvalidDataException">The output does not have the shape the loss reads, or a label is not a class.</exception>
    public abstract LossSum Measure(int batch, HostTensor output);

    /// <summary>
    /// Mean cross-entropy (natural log) of the labels under softmax of float32 logits <c>[N, C]</c>, per sample.
    /// </summary>
    /// <exception cref="ArgumentException">The batches have no labels.</exception>
    public static TaskLoss CrossEntropy(BatchSet batches, string? output = null)
    {
        ArgumentNullException.ThrowIfNull(batches);
        if (batches.Labels is null) ThrowHelper.Argument(nameof(batches), $"Cross-entropy needs labels, and {batches.Description ?? "the batches"} has none.");
        return new CrossEntropyLoss(batches, output);
    }

    /// <summary>
    /// Mean next-token cross-entropy of a language model, per predicted token: logits <c>[N, T, V]</c> at positions
    /// 0..T−2 predict ids 1..T−1 of <paramref name="inputIds"/> (int64 <c>[N, T]</c>), or the batches' <see cref="BatchSet.Targets"/>
    /// where the text protocol scores only some positions.
    /// </summary>
    /// <exception cref="ArgumentException">A batch has no <paramref name="inputIds"/> tensor.</exception>
    public static TaskLoss NextToken(BatchSet batches, string inputIds = "input_ids", string? output = null)
    {
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(inputIds);
        foreach (var b in batches)
            if (!b.ContainsKey(inputIds))
                ThrowHelper.Argument(nameof(inputIds), $"{b.Source ?? "a batch"} has no '{inputIds}' tensor for next-token targets; it has {string.Join(", ", b.Names.Select(n => $"'{n}'"))}.");
        return new NextTokenLoss(batches, inputIds, output);
    }

    /// <summary>
    /// Mean KL(softmax(reference) ‖ softmax(model)) over every row of the output's last axis (samples, or every token
    /// position). Runs <paramref name="reference"/> over its batches now and keeps the outputs.
    /// </summary>
    /// <exception cref="ArgumentException">The output is not one of the reference's.</exception>
    /// <exception cref="InvalidDataException">The reference's output is not float32 with a class axis.</exception>
    public static TaskLoss KlToReference(ModelRunner reference, string? output = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var outputs = reference.RunAll(output);
        foreach (var o in outputs)
            if (o.ElementType != OnnxDataType.Float || o.Rank == 0 || o.Shape[^1] < 1)
                throw new InvalidDataException($"The reference's {LogitShapes.Describe(output ?? reference.OutputNames[0])} is {o}; KL needs float32 logits with a class axis last.");
        return new KlLoss(reference.Batches, output, outputs);
    }

    /// <summary>KL(reference ‖ model) against reference logits already computed, one tensor per batch of <paramref name="batches"/>.</summary>
    /// <exception cref="InvalidDataException">A reference tensor is not float32 logits with a class axis last, or the counts differ.</exception>
    public static TaskLoss KlToReference(BatchSet batches, IReadOnlyList<HostTensor> reference, string? output = null)
    {
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(reference);
        if (reference.Count != batches.Count) throw new InvalidDataException($"{reference.Count} reference outputs for {batches.Count} batches.");
        foreach (var o in reference)
            if (o.ElementType != OnnxDataType.Float || o.Rank == 0 || o.Shape[^1] < 1)
                throw new InvalidDataException($"The reference's {LogitShapes.Describe(output ?? "output")} is {o}; KL needs float32 logits with a class axis last.");
        return new KlLoss(batches, output, reference);
    }

    private sealed class CrossEntropyLoss(BatchSet batches, string? output) : TaskLoss(batches, output)
    {
        public override string Name => "cross-entropy";

        public override LossSum Measure(int batch, HostTensor output)
        {
            var labels = Batches.Labels![batch].AsInt64();
            int c = LogitShapes.Classes(output, labels.Length, What);
            var logits = output.AsFloats();
            double sum = 0;
            for (int i = 0; i < labels.Length; i++)
            {
                LogitShapes.Label(labels[i], c, batch, i, What);
                sum += LogitMetrics.CrossEntropy(logits.AsSpan(i * c, c), labels[i]);
            }
            return new LossSum(sum, labels.Length);
        }
    }

    private sealed class NextTokenLoss(BatchSet batches, string inputIds, string? output) : TaskLoss(batches, output)
    {
        public override string Name => "next-token cross-entropy";

        public override LossSum Measure(int batch, HostTensor output)
        {
            var ids = Batches[batch][inputIds];
            var (t, v) = LogitShapes.Tokens(output, ids, What, inputIds);
            var logits = output.AsFloats();
            var targets = (Batches.Targets?[batch] ?? TokenTargets.NextTokens(ids)).Ids.AsInt64();
            double sum = 0;
            long count = 0;
            for (int n = 0; n < ids.Rows; n++)
                for (int p = 0; p < t - 1; p++)
                {
                    long target = targets[n * t + p];
                    if (target == TokenTargets.Unscored) continue;
                    LogitShapes.Label(target, v, batch, n, What);
                    sum += LogitMetrics.CrossEntropy(logits.AsSpan((n * t + p) * v, v), target);
                    count++;
                }
            return new LossSum(sum, count);
        }
    }

    private sealed class KlLoss(BatchSet batches, string? output, IReadOnlyList<HostTensor> reference) : TaskLoss(batches, output)
    {
        public override string Name => "KL(reference ‖ model)";

        public override LossSum Measure(int batch, HostTensor output)
        {
            var r = reference[batch];
            LogitShapes.Same(output, r, What);
            int c = r.Shape[^1];
            var p = r.AsFloats();
            var q = output.AsFloats();
            double sum = 0;
            int rows = p.Length / c;
            for (int i = 0; i < rows; i++) sum += LogitMetrics.KlDivergence(p.AsSpan(i * c, c), q.AsSpan(i * c, c));
            return new LossSum(sum, rows);
        }
    }
}
