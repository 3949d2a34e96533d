using Whittle.Analysis;
using Whittle.Data;
using Whittle.Runtime;
using Whittle.Calibration;

namespace Whittle.Compression;

/// <summary>
/// A compression method: one short class per method of METHODS.md (and per baseline), all run by the same harness,
/// <see cref="CompressionRun"/>. A method declares the budgets it takes and keeps its algorithm; the run gives it the
/// structure, calibration statistics segment by segment, copies of the model, timings and reports. Implementations never
/// modify the original model; each result is a new model. Run one with <see cref="Compressor.Compress"/>.
/// </summary>
public interface ICompressionMethod
{
    /// <summary>The method's name as the CLI spells it (<c>id</c>, <c>magnitude</c>, <c>curing</c>, <c>lowrank</c>, <c>svd</c>, …).</summary>
    string Name { get; }

    /// <summary>The budget kinds the method takes (checked by the harness before anything runs).</summary>
    BudgetKinds Budgets { get; }

    /// <summary>
    /// Compresses <see cref="CompressionRun.Original"/> once per budget. Work the budgets share (calibration, decompositions of
    /// every layer) is done once where the calibration mode allows.
    /// </summary>
    /// <param name="run">The harness: model, structure, calibration passes, results.</param>
    /// <param name="budgets">One or more budgets, each of a kind in <see cref="Budgets"/>.</param>
    /// <returns>One result per budget, in the order given (<see cref="CompressionRun.Result"/>).</returns>
    /// <exception cref="ArgumentException">A model the method cannot act on (the message says why).</exception>
    IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets);
}

/// <summary>The budget kinds a method takes.</summary>
[Flags]
public enum BudgetKinds
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary><see cref="CompressionBudget.MethodDefault"/>: the method's own options decide the size.</summary>
    MethodDefault = 1,

    /// <summary><see cref="BudgetKind.KeepMacs"/>.</summary>
    KeepMacs = 2,

    /// <summary><see cref="BudgetKind.KeepParameters"/>.</summary>
    KeepParameters = 4,

    /// <summary><see cref="BudgetKind.Tolerance"/>.</summary>
    Tolerance = 8,

    /// <summary><see cref="BudgetKind.KeepLatency"/>.</summary>
    KeepLatency = 16,
}

/// <summary>Where the activations that calibrate segment ℓ come from.</summary>
public enum CalibrationMode
{
    /// <summary>
    /// The model as compressed so far: segment ℓ is calibrated on the outputs of the compressed segments 0…ℓ−1, and
    /// corrects what they changed (GPTQ, SVD-LLM v2, SliceGPT). The default.
    /// </summary>
    Sequential,

    /// <summary>The original model: every segment is calibrated on the original's activations (each site compressed independently).</summary>
    Parallel,
}

/// <summary>What a method works on. Immutable.</summary>
/// <param name="Model">The original model; never modified.</param>
/// <param name="Calibration">Calibration batches (labels beside them where the data has them), run as often as a method needs.</param>
public sealed record CompressionJob(Onnx.OnnxModel Model, BatchSet Calibration)
{
    /// <summary>The model's structure when already analysed (shapes from a probe); null lets the harness probe it.</summary>
    public ModelStructure? Structure { get; init; }

    /// <summary>Seed of every random choice (sketches, randomized SVD); the same seed gives the same model.</summary>
    public int Seed { get; init; }

    /// <summary>ONNX Runtime settings for calibration and measured losses.</summary>
    public RuntimeOptions Runtime { get; init; } = RuntimeOptions.Default;

    /// <summary>Where segment ℓ's calibration activations come from; default <see cref="CalibrationMode.Sequential"/>.</summary>
    public CalibrationMode Mode { get; init; } = CalibrationMode.Sequential;

    /// <summary>Bytes of boundary activations kept in memory; beyond them they are spilled to a temporary file. Default 1 GiB.</summary>
    public long BoundaryCacheBytes { get; init; } = 1L << 30;

    /// <summary>Where spill files go; null: the system's temporary folder.</summary>
    public string? SpillDirectory { get; init; }

    /// <summary>
    /// Where each result's weights are written as its segments are compressed (a hidden staging folder per result, so the
    /// compressed model is never whole in memory); saving the result moves the files into place, a failed run removes them.
    /// Null keeps the results in memory. Give the output's folder, and saving is a rename.
    /// </summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Told when a stage starts and as it advances; may be null.</summary>
    public IProgress<CompressionProgress>? Progress { get; init; }
}

/// <summary>Progress of a compression run.</summary>
/// <param name="Stage">The stage (<see cref="Stages"/>).</param>
/// <param name="Done">Units done in this stage.</param>
/// <param name="Total">Units in this stage, when known.</param>
/// <param name="Detail">What is being worked on (a segment, a site), or null.</param>
public sealed record CompressionProgress(string Stage, int Done, int? Total, string? Detail = null);

/// <summary>The names of the stages reports time.</summary>
public static class Stages
{
    /// <summary>Probing the model's shapes and structure, and measuring its size.</summary>
    public const string Analysis = "analysis";

    /// <summary>Calibration passes through ONNX Runtime.</summary>
    public const string Calibration = StreamContext.CalibrationStage;

    /// <summary>Matrix decompositions and rank/width selection.</summary>
    public const string Decomposition = "decomposition";

    /// <summary>Losses measured on candidate models (rank search, greedy schedule), output errors.</summary>
    public const string Measurement = "measurement";

    /// <summary>Editing the ONNX graph.</summary>
    public const string Rewrite = "rewrite";

    /// <summary>Writing the model file.</summary>
    public const string Writing = "writing";
}

/// <summary>A compressed model and what was done to get it.</summary>
/// <param name="Model">The compressed model (in memory; the caller saves it).</param>
/// <param name="Report">What changed, sizes and timings.</param>
public sealed record CompressionResult(Onnx.OnnxModel Model, CompressionReport Report);
