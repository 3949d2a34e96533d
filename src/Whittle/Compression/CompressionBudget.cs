using System.Globalization;

namespace Whittle.Compression;

/// <summary>What a <see cref="CompressionBudget"/> constrains.</summary>
public enum BudgetKind
{
    /// <summary>No budget: the method decides from its own options (CURing's block count, lossless low-rank's loss test).</summary>
    MethodDefault,

    /// <summary>Keep at most this fraction of the original MACs per example (of the compressible layers or the whole model: <see cref="CompressionBudget.Scope"/>).</summary>
    KeepMacs,

    /// <summary>Keep at most this fraction of the original parameters (of the compressible layers or the whole model: <see cref="CompressionBudget.Scope"/>).</summary>
    KeepParameters,

    /// <summary>One global error tolerance (the ID's relative <c>|r_{k+1,k+1}|/|r_11|</c>, an SVD's relative truncation error).</summary>
    Tolerance,

    /// <summary>
    /// Keep at most this fraction of the original's ONNX Runtime latency, measured on this machine (batch 1, the first
    /// calibration example, compressed and original alternating; medians). Always of the whole model.
    /// </summary>
    KeepLatency,
}

/// <summary>What a size budget's fraction is of.</summary>
public enum BudgetScope
{
    /// <summary>The parameters (or MACs) of the layers the method may touch: embedding tables, norms and layers it leaves alone do not count.</summary>
    Compressible,

    /// <summary>The whole model's parameters (or MACs).</summary>
    Model,
}

/// <summary>
/// The size or error a compression run must meet. Immutable; create with <see cref="KeepMacs"/>,
/// <see cref="KeepParameters"/>, <see cref="Tolerance"/> or use <see cref="MethodDefault"/>.
/// </summary>
/// <param name="Kind">What is constrained.</param>
/// <param name="Value">The fraction kept (0, 1] or the tolerance (&gt; 0); NaN for <see cref="BudgetKind.MethodDefault"/>.</param>
public sealed record CompressionBudget(BudgetKind Kind, double Value)
{
    /// <summary>
    /// What a <see cref="BudgetKind.KeepMacs"/> or <see cref="BudgetKind.KeepParameters"/> fraction is of: by default the
    /// compressible part (keep 0.8 removes a fifth of what the method can remove from), else the whole model.
    /// </summary>
    public BudgetScope Scope { get; init; } = BudgetScope.Compressible;

    /// <summary>The method's own choice.</summary>
    public static CompressionBudget MethodDefault { get; } = new(BudgetKind.MethodDefault, double.NaN);

    /// <summary>Keep at most <paramref name="fraction"/> of the MACs per example.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not in (0, 1].</exception>
    public static CompressionBudget KeepMacs(double fraction) => new(BudgetKind.KeepMacs, Fraction(fraction));

    /// <summary>Keep at most <paramref name="fraction"/> of the parameters.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not in (0, 1].</exception>
    public static CompressionBudget KeepParameters(double fraction) => new(BudgetKind.KeepParameters, Fraction(fraction));

    /// <summary>Keep at most <paramref name="fraction"/> of the original's measured batch-1 latency.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not in (0, 1].</exception>
    public static CompressionBudget KeepLatency(double fraction) => new(BudgetKind.KeepLatency, Fraction(fraction)) { Scope = BudgetScope.Model };

    /// <summary>One global tolerance <paramref name="epsilon"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The tolerance is not positive and finite.</exception>
    public static CompressionBudget Tolerance(double epsilon)
    {
        if (!(epsilon > 0) || !double.IsFinite(epsilon)) ThrowHelper.ArgumentOutOfRange(nameof(epsilon), epsilon, "a positive, finite tolerance");
        return new(BudgetKind.Tolerance, epsilon);
    }

    /// <summary>A short label for file names and tables: <c>macs-0.5</c>, <c>params-0.8</c>, <c>tol-0.01</c>, <c>latency-0.8</c>, <c>default</c>.</summary>
    public string Label => Kind switch
    {
        BudgetKind.KeepMacs => "macs-" + Format(Value),
        BudgetKind.KeepParameters => "params-" + Format(Value),
        BudgetKind.Tolerance => "tol-" + Format(Value),
        BudgetKind.KeepLatency => "latency-" + Format(Value),
        _ => "default",
    };

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        BudgetKind.KeepMacs => $"keep {Format(Value)} of {Of}MACs",
        BudgetKind.KeepParameters => $"keep {Format(Value)} of {Of}parameters",
        BudgetKind.Tolerance => $"tolerance {Format(Value)}",
        BudgetKind.KeepLatency => $"keep {Format(Value)} of the measured latency",
        _ => "method default",
    };

    private string Of => Scope == BudgetScope.Compressible ? "compressible " : "the model's ";

    private static string Format(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);

    private static double Fraction(double fraction)
    {
        if (!(fraction > 0 && fraction <= 1)) ThrowHelper.ArgumentOutOfRange(nameof(fraction), fraction, "a fraction in (0, 1]");
        return fraction;
    }
}
