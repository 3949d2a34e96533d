namespace Whittle.Evaluation;

/// <summary>
/// A confidence interval for perplexity, from per-unit NLL sums (documents, or windows when the text is one document):
/// the mean NLL per token μ = ΣS/ΣN is a ratio estimator, its standard error the cluster-robust one,
/// se² = D/(D−1) · Σ(S_d − μ·N_d)² / (ΣN)², and the interval exp(μ ± z·se).
/// </summary>
/// <param name="Low">The lower bound of perplexity.</param>
/// <param name="High">The upper bound.</param>
/// <param name="Level">The confidence level (0.95).</param>
/// <param name="Units">What the sums were taken over: <c>documents</c> or <c>windows</c>.</param>
/// <param name="Count">How many units (D).</param>
public sealed record PerplexityInterval(double Low, double High, double Level, string Units, int Count)
{
    /// <summary>z of the two-sided 95 % normal interval.</summary>
    private const double Z95 = 1.959963984540054;

    /// <summary>The 95 % interval over units with NLL sums <paramref name="sums"/> and token counts <paramref name="counts"/>; null under two units.</summary>
    public static PerplexityInterval? Of(IReadOnlyList<double> sums, IReadOnlyList<long> counts, string units)
    {
        ArgumentNullException.ThrowIfNull(sums);
        ArgumentNullException.ThrowIfNull(counts);
        int d = sums.Count;
        if (d < 2 || counts.Count != d) return null;
        double total = sums.Sum();
        double tokens = counts.Sum();
        double mu = total / tokens;
        double squares = 0;
        for (int i = 0; i < d; i++)
        {
            double r = sums[i] - mu * counts[i];
            squares += r * r;
        }
        double se = Math.Sqrt(d / (d - 1.0) * squares) / tokens;
        return new PerplexityInterval(Math.Exp(mu - Z95 * se), Math.Exp(mu + Z95 * se), 0.95, units, d);
    }
}

/// <summary>NLL sums of a language model and its reference per document and per window, for <see cref="PerplexityInterval"/>.</summary>
internal sealed class UnitNll
{
    private readonly SortedDictionary<long, (double Model, double Reference, long Tokens)> _documents = [];
    private readonly SortedDictionary<long, (double Model, double Reference, long Tokens)> _windows = [];

    /// <summary>Adds one scored token of <paramref name="document"/> (−1: unknown) in window <paramref name="window"/>.</summary>
    public void Add(long document, long window, double nll, double referenceNll)
    {
        if (document >= 0) Add(_documents, document, nll, referenceNll);
        Add(_windows, window, nll, referenceNll);
    }

    /// <summary>Documents seen, or null when documents are unknown.</summary>
    public int? Documents => _documents.Count == 0 ? null : _documents.Count;

    /// <summary>The interval of the model's (or the reference's) perplexity: over documents when there are two or more, else over windows.</summary>
    public PerplexityInterval? Interval(bool reference)
    {
        var (units, name) = _documents.Count >= 2 ? (_documents, "documents") : (_windows, "windows");
        var values = units.Values;
        return PerplexityInterval.Of([.. values.Select(v => reference ? v.Reference : v.Model)], [.. values.Select(v => v.Tokens)], name);
    }

    private static void Add(SortedDictionary<long, (double Model, double Reference, long Tokens)> sums, long key, double nll, double referenceNll)
    {
        var s = sums.GetValueOrDefault(key);
        sums[key] = (s.Model + nll, s.Reference + referenceNll, s.Tokens + 1);
    }
}
