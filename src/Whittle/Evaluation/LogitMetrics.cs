// Quality metrics on logits and outputs, one example (one row) at a time.
//
// Contract
//   Inputs are float32 spans: a row of C logits (unnormalized log-probabilities), or one example's flattened
//   output. Everything is computed in float64: log-softmax as z − max − log Σ exp(z − max), so no exp
//   overflows and the largest term is exactly exp(0) = 1. Identical inputs give exactly 0 for KL and
//   relative error and 1 for cosine. NaN inputs propagate to NaN results (ArgMax skips NaN).
//   Means over examples or tokens are the caller's: sum the per-row values, divide by the count.

namespace Whittle.Evaluation;

/// <summary>Top-1 changes between a reference model and a model, counted over examples with labels.</summary>
/// <param name="CorrectToIncorrect">Examples the reference classifies correctly and the model does not.</param>
/// <param name="IncorrectToCorrect">Examples the reference gets wrong and the model gets right.</param>
public readonly record struct FlipCounts(long CorrectToIncorrect, long IncorrectToCorrect)
{
    /// <summary>Component-wise sum.</summary>
    public static FlipCounts operator +(FlipCounts a, FlipCounts b) =>
        new(a.CorrectToIncorrect + b.CorrectToIncorrect, a.IncorrectToCorrect + b.IncorrectToCorrect);
}

/// <summary>Pure metric functions on logits and outputs (see the file header for the numerical contract).</summary>
public static class LogitMetrics
{
    /// <summary><c>log Σ exp(z_i)</c>, computed stably in float64 (−∞ for an empty row).</summary>
    public static double LogSumExp(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) return double.NegativeInfinity;
        double max = double.NegativeInfinity;
        foreach (float z in logits)
        {
            if (float.IsNaN(z)) return double.NaN;
            if (z > max) max = z;
        }
        if (double.IsInfinity(max)) return max;
        double sum = 0;
        foreach (float z in logits) sum += Math.Exp(z - max);
        return max + Math.Log(sum);
    }

    /// <summary>The index of the largest logit; the first one on ties, NaNs skipped (0 when every logit is NaN).</summary>
    /// <exception cref="ArgumentException">The row is empty.</exception>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) ThrowHelper.Argument(nameof(logits), "ArgMax of an empty row; a row needs at least one class.");
        int best = 0;
        float max = float.NaN;
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] > max || (float.IsNaN(max) && !float.IsNaN(logits[i])))
            {
                max = logits[i];
                best = i;
            }
        return best;
    }

    /// <summary>
    /// Cross-entropy (negative log-likelihood, natural log) of class <paramref name="target"/> under softmax(logits):
    /// <c>log Σ exp(z) − z_target</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="target"/> is not a class index of the row.</exception>
    public static double CrossEntropy(ReadOnlySpan<float> logits, long target)
    {
        if ((ulong)target >= (ulong)logits.Length) ThrowHelper.ArgumentOutOfRange(nameof(target), target, $"a class index in [0, {logits.Length})");
        return LogSumExp(logits) - logits[(int)target];
    }

    /// <summary>
    /// KL(p ‖ q) = Σ p_i (log p_i − log q_i) with p = softmax(<paramref name="reference"/>) and q = softmax(<paramref name="model"/>),
    /// in nats. Terms with p_i = 0 (underflowed) contribute 0; a class the model gives probability 0 but the reference
    /// does not makes it +∞.
    /// </summary>
    /// <exception cref="ArgumentException">The rows differ in length.</exception>
    public static double KlDivergence(ReadOnlySpan<float> reference, ReadOnlySpan<float> model)
    {
        if (reference.Length != model.Length)
            ThrowHelper.Argument(nameof(model), $"KL of rows of {reference.Length} and {model.Length} classes; the rows must have the same classes.");
        double lseP = LogSumExp(reference), lseQ = LogSumExp(model);
        double kl = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double logP = reference[i] - lseP;
            double p = Math.Exp(logP);
            if (p == 0) continue;
            kl += p * (logP - (model[i] - lseQ));
        }
        return kl;
    }

    /// <summary>
    /// Cosine similarity a·b / (‖a‖ ‖b‖) in float64. Two zero vectors are identical (1); one zero vector against a
    /// nonzero one gives 0.
    /// </summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static double CosineSimilarity(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) ThrowHelper.Argument(nameof(b), $"Cosine of vectors of {a.Length} and {b.Length} elements; they must be the same length.");
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double x = a[i], y = b[i];
            dot += x * y;
            aa += x * x;
            bb += y * y;
        }
        if (aa == 0 && bb == 0) return 1;
        if (aa == 0 || bb == 0) return 0;
        return dot / (Math.Sqrt(aa) * Math.Sqrt(bb));
    }

    /// <summary>‖a − b‖² in float64.</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static double SquaredDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) ThrowHelper.Argument(nameof(b), $"Distance of vectors of {a.Length} and {b.Length} elements; they must be the same length.");
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            s += d * d;
        }
        return s;
    }

    /// <summary>‖a‖² in float64.</summary>
    public static double SquaredNorm(ReadOnlySpan<float> a)
    {
        double s = 0;
        foreach (float x in a) s += (double)x * x;
        return s;
    }

    /// <summary>
    /// Relative error ‖y − y_ref‖ / ‖y_ref‖ (Frobenius over the span). 0 when both are zero; +∞ when only the
    /// reference is zero.
    /// </summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static double RelativeError(ReadOnlySpan<float> y, ReadOnlySpan<float> reference) =>
        RelativeError(SquaredDistance(y, reference), SquaredNorm(reference));

    /// <summary>Relative error from accumulated sums: √(‖y − y_ref‖² / ‖y_ref‖²), with the conventions of the span overload.</summary>
    public static double RelativeError(double squaredDistance, double referenceSquaredNorm) =>
        squaredDistance == 0 ? 0 : referenceSquaredNorm == 0 ? double.PositiveInfinity : Math.Sqrt(squaredDistance / referenceSquaredNorm);

    /// <summary>The largest |a_i − b_i| (0 for empty spans; NaN if any difference is NaN).</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static double MaxAbsDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) ThrowHelper.Argument(nameof(b), $"Difference of vectors of {a.Length} and {b.Length} elements; they must be the same length.");
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = Math.Abs((double)a[i] - b[i]);
            if (double.IsNaN(d)) return double.NaN;
            if (d > max) max = d;
        }
        return max;
    }

    /// <summary>The number of positions where two top-1 predictions agree.</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static int Agreements(ReadOnlySpan<int> reference, ReadOnlySpan<int> model)
    {
        if (reference.Length != model.Length) ThrowHelper.Argument(nameof(model), $"{reference.Length} reference predictions but {model.Length} model predictions.");
        int n = 0;
        for (int i = 0; i < reference.Length; i++)
            if (reference[i] == model[i]) n++;
        return n;
    }

    /// <summary>Top-1 flips between <paramref name="reference"/> and <paramref name="model"/> predictions against <paramref name="labels"/>.</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static FlipCounts Flips(ReadOnlySpan<int> reference, ReadOnlySpan<int> model, ReadOnlySpan<long> labels)
    {
        if (reference.Length != model.Length || model.Length != labels.Length)
            ThrowHelper.Argument(nameof(labels), $"{reference.Length} reference predictions, {model.Length} model predictions and {labels.Length} labels; they must match.");
        long lost = 0, gained = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            bool r = reference[i] == labels[i], m = model[i] == labels[i];
            if (r && !m) lost++;
            else if (!r && m) gained++;
        }
        return new FlipCounts(lost, gained);
    }

    /// <summary>Perplexity exp(mean NLL) from a sum of token NLLs (nats) and the number of predicted tokens.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is not positive.</exception>
    public static double Perplexity(double nllSum, long tokens)
    {
        if (tokens <= 0) ThrowHelper.ArgumentOutOfRange(nameof(tokens), tokens, "at least one predicted token");
        return Math.Exp(nllSum / tokens);
    }
}
