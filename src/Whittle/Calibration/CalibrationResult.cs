using Whittle.LinearAlgebra;

namespace Whittle.Calibration;

/// <summary>The statistics collected for one tapped value; a statistic not requested is null.</summary>
public sealed class TapStatistics
{
    internal TapStatistics(TapRequest request, int features, long rows)
    {
        Request = request;
        Features = features;
        Rows = rows;
    }

    /// <summary>The request.</summary>
    public TapRequest Request { get; }

    /// <summary>The tapped value's name.</summary>
    public string Name => Request.Name;

    /// <summary>h, features per row (0 if no batch was seen).</summary>
    public int Features { get; }

    /// <summary>T, rows seen (samples × positions).</summary>
    public long Rows { get; }

    /// <summary><c>XᵀX</c> (h × h, float64, exactly symmetric).</summary>
    public Matrix<double>? Gram { get; internal init; }

    /// <summary>Per-feature <c>Σ_t x_tj²</c> (float64).</summary>
    public double[]? SumOfSquares { get; internal init; }

    /// <summary>Per-feature RMS <c>a_j = sqrt(Σ_t x_tj² / T)</c>.</summary>
    public double[]? Rms { get; internal init; }

    /// <summary>The TSQR factor R (min(T, h) × h) with <c>RᵀR = ZᵀZ</c>.</summary>
    public Matrix<double>? R { get; internal init; }

    /// <summary>The row sketch <c>S·Z</c> (s × h).</summary>
    public Matrix<double>? Sketch { get; internal init; }

    /// <summary>Last-token hidden states, one row per sequence (sequences × w).</summary>
    public Matrix<float>? HiddenStates { get; internal init; }
}

/// <summary>Everything one calibration pass collected.</summary>
public sealed class CalibrationResult
{
    internal CalibrationResult(IReadOnlyDictionary<string, TapStatistics> taps, int batches, long samples, TimeSpan elapsed)
    {
        Taps = taps;
        Batches = batches;
        Samples = samples;
        Elapsed = elapsed;
    }

    /// <summary>Tap name → statistics.</summary>
    public IReadOnlyDictionary<string, TapStatistics> Taps { get; }

    /// <summary>Statistics of the tap <paramref name="name"/>.</summary>
    public TapStatistics this[string name] => Taps[name];

    /// <summary>Batches run.</summary>
    public int Batches { get; }

    /// <summary>Samples run (first-axis entries of the first model input).</summary>
    public long Samples { get; }

    /// <summary>Wall time of the pass.</summary>
    public TimeSpan Elapsed { get; }
}
