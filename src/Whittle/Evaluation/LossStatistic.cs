using Whittle.Calibration;

namespace Whittle.Evaluation;

/// <summary>A task loss summed over calibration batches, as a calibration statistic (the loss a rank search measures).</summary>
/// <param name="loss">The loss (bound to the batches the pass runs).</param>
/// <param name="output">The model output it reads.</param>
public sealed class LossStatistic(TaskLoss loss, string output) : IBatchStatistic<LossSum>
{
    private LossSum _sum = new(0, 0);

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Reads { get; } = [output];

    /// <inheritdoc/>
    public void AddBatch(StatisticBatch batch)
    {
        _sum += loss.Measure(batch.Index, batch[output].AsHostTensor());
    }

    /// <inheritdoc/>
    public LossSum Finish() => _sum;
}
