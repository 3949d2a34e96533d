using Whittle.Decompositions;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>Which axis of a tapped tensor holds the features; every other axis becomes rows.</summary>
public enum FeatureAxis
{
    /// <summary>The last axis: <c>[..., h]</c> → rows = product of the other dims (MatMul / Gemm inputs, token activations).</summary>
    Last,

    /// <summary>Axis 1 of an NCHW tensor: <c>[N, C, H, W…]</c> → (N·H·W…) × C rows (conv activations, one row per pixel).</summary>
    Channel,
}

/// <summary>A seeded streaming row sketch request (see <see cref="StreamingRowSketch"/>).</summary>
/// <param name="Rows">s ≥ 1, sketch rows.</param>
/// <param name="Kind">Gaussian (default) or CountSketch.</param>
/// <param name="Seed">Seed of S.</param>
public sealed record SketchRequest(int Rows, SketchKind Kind = SketchKind.Gaussian, int Seed = 0);

/// <summary>
/// Block-boundary hidden-state request (see <see cref="LastTokenAccumulator"/>): the tapped tensor is b × L × w
/// (or b × w, one vector per sequence already). The last real token comes from <see cref="MaskInput"/> (the last
/// nonzero position per row of a b × L mask), else <see cref="LengthsInput"/> (length − 1), else position L − 1.
/// </summary>
public sealed record LastTokenRequest
{
    /// <summary>Name of a b × L attention mask in each batch (model input or extra batch tensor), or null.</summary>
    public string? MaskInput { get; init; }

    /// <summary>Name of a length-b tensor of sequence lengths in each batch, or null.</summary>
    public string? LengthsInput { get; init; }
}

/// <summary>One tapped value and the statistics wanted from it.</summary>
/// <param name="Name">A value of the model's main graph (float32).</param>
public sealed record TapRequest(string Name)
{
    /// <summary>Where the features are; default the last axis.</summary>
    public FeatureAxis Axis { get; init; } = FeatureAxis.Last;

    /// <summary>Accumulate <c>XᵀX</c> (<see cref="GramAccumulator"/>).</summary>
    public bool Gram { get; init; }

    /// <summary>How the Gram's per-batch products are formed; default float64.</summary>
    public GramPrecision GramPrecision { get; init; } = GramPrecision.Float64;

    /// <summary>Accumulate per-feature RMS (<see cref="FeatureRmsAccumulator"/>).</summary>
    public bool Rms { get; init; }

    /// <summary>Accumulate the TSQR factor R with <c>RᵀR = ZᵀZ</c> (<see cref="TsqrAccumulator{T}"/>, float64).</summary>
    public bool RFactor { get; init; }

    /// <summary>Accumulate a row sketch <c>S·Z</c>, or null.</summary>
    public SketchRequest? Sketch { get; init; }

    /// <summary>Collect last-token hidden states, or null.</summary>
    public LastTokenRequest? LastToken { get; init; }
}

/// <summary>What to collect in one calibration pass. Immutable.</summary>
/// <param name="Taps">The tapped values (names distinct).</param>
public sealed record CalibrationRequest(IReadOnlyList<TapRequest> Taps)
{
    /// <summary>ONNX Runtime settings; default <see cref="RuntimeOptions.Default"/>.</summary>
    public RuntimeOptions Runtime { get; init; } = RuntimeOptions.Default;

    /// <summary>
    /// Compute each batch's statistics on a worker thread while ONNX Runtime runs the next batch (default true). The
    /// results are identical either way; overlap hides the statistics' time when cores are free, at the cost of
    /// holding the captured rows of one batch per tap while the next runs.
    /// </summary>
    public bool OverlapStatistics { get; init; } = true;

    /// <summary>Stop after this many batches (null: all).</summary>
    public int? MaxBatches { get; init; }

    /// <summary>The number of batches, for progress reports when the batch source cannot say (null: unknown).</summary>
    public int? ExpectedBatches { get; init; }
}

/// <summary>Progress after each calibration batch.</summary>
/// <param name="Batches">Batches done.</param>
/// <param name="TotalBatches">Batches expected, when known.</param>
/// <param name="Samples">Samples (first-axis entries of the first input) done.</param>
/// <param name="Elapsed">Wall time so far.</param>
public sealed record CalibrationProgress(int Batches, int? TotalBatches, long Samples, TimeSpan Elapsed);
