// Streaming scores of a classifier or a language model, and of its reference, batch by batch.
//
// Both tasks reduce to rows of logits with a target each: a classifier's rows are its examples (targets
// the labels, when there are any); a language model's rows are the positions 0..T−2 of every window
// (targets the next token ids, or the text protocol's targets). Per row: the model's (and the reference's) cross-entropy and top-1
// correctness, and, with a reference, top-1 agreement and KL(reference ‖ model). Sums in float64.

namespace Whittle.Evaluation;

/// <summary>Cross-entropy, top-1 and comparison sums over rows of logits (see the file header).</summary>
internal sealed class TopOneScore
{
    private long _rows, _targets, _agree;
    private long _correct, _referenceCorrect;
    private double _nll, _referenceNll, _kl, _klMax;
    private FlipCounts _flips;

    /// <summary>Adds one row of logits.</summary>
    /// <param name="row">The model's logits.</param>
    /// <param name="referenceRow">The reference's logits for the same row; empty without a reference.</param>
    /// <param name="target">The row's target class, or null (no labels).</param>
    /// <param name="batch">The batch index, for messages.</param>
    /// <param name="sample">The sample index in the batch, for messages.</param>
    /// <param name="what">The output, for messages (<c>output 'logits'</c>).</param>
    /// <returns>The model's and the reference's cross-entropy of the row (NaN without a target; the reference's NaN without a reference).</returns>
    public (double Nll, double ReferenceNll) Add(ReadOnlySpan<float> row, ReadOnlySpan<float> referenceRow, long? target, int batch, int sample, string what)
    {
        double nll = double.NaN, referenceNll = double.NaN;
        bool hasReference = !referenceRow.IsEmpty;
        int predicted = LogitMetrics.ArgMax(row);
        int referencePredicted = -1;
        if (hasReference)
        {
            referencePredicted = LogitMetrics.ArgMax(referenceRow);
            if (predicted == referencePredicted) _agree++;
            double kl = LogitMetrics.KlDivergence(referenceRow, row);
            _kl += kl;
            if (kl > _klMax || double.IsNaN(kl)) _klMax = kl;
        }
        if (target is { } t)
        {
            LogitShapes.Label(t, row.Length, batch, sample, what);
            bool ok = predicted == t;
            if (ok) _correct++;
            nll = LogitMetrics.CrossEntropy(row, t);
            _nll += nll;
            if (hasReference)
            {
                bool refOk = referencePredicted == t;
                if (refOk) _referenceCorrect++;
                referenceNll = LogitMetrics.CrossEntropy(referenceRow, t);
                _referenceNll += referenceNll;
                _flips += new FlipCounts(refOk && !ok ? 1 : 0, !refOk && ok ? 1 : 0);
            }
            _targets++;
        }
        _rows++;
        return (nll, referenceNll);
    }

    /// <summary>Rows seen.</summary>
    public long Rows => _rows;

    /// <summary>Rows with targets.</summary>
    public long Targets => _targets;

    /// <summary>The model's (or the reference's) mean cross-entropy and correct count; null without targets.</summary>
    public (double MeanNll, long Correct)? Quality(bool reference) =>
        _targets == 0 ? null : (reference ? _referenceNll / _targets : _nll / _targets, reference ? _referenceCorrect : _correct);

    /// <summary>Agreement share, mean and max KL, and flips (null without targets).</summary>
    public (double Agreement, double MeanKl, double MaxKl, FlipCounts? Flips) Comparison() =>
        (_rows == 0 ? double.NaN : (double)_agree / _rows, _rows == 0 ? double.NaN : _kl / _rows, _klMax, _targets == 0 ? null : _flips);
}
