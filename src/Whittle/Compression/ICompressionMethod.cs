using Whittle.Analysis;
using Whittle.Data;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Compression;

/// <summary>
/// A compression method: one short class per method of METHODS.md (and per baseline), all run by the same harness.
/// Implementations never modify <see cref="CompressionJob.Model"/>; each result is a new model.
/// </summary>
public interface ICompressionMethod
{
    /// <summary>The method's name as the CLI spells it (<c>id</c>, <c>magnitude</c>, <c>curing</c>, <c>lowrank</c>, <c>svd</c>, …).</summary>
    string Name { get; }

    /// <summary>
    /// Compresses <see cref="CompressionJob.Model"/> once per budget. Work the budgets share (calibration, decompositions
    /// of every layer) is done once.
    /// </summary>
    /// <param name="job">The model, its calibration data and the run's settings.</param>
    /// <param name="budgets">One or more budgets; a method without budgets accepts only <see cref="CompressionBudget.MethodDefault"/>.</param>
    /// <param name="cancellationToken">Checked between stages and layers.</param>
    /// <returns>One result per budget, in the order given.</returns>
    /// <exception cref="ArgumentException">A budget the method does not support, or a model it cannot act on (the message says why).</exception>
    IReadOnlyList<CompressionResult> Compress(CompressionJob job, IReadOnlyList<CompressionBudget> budgets, CancellationToken cancellationToken = default);
}

/// <summary>What a method works on. Immutable.</summary>
/// <param name="Model">The original model; never modified.</param>
/// <param name="Calibration">Calibration batches (labels beside them where the data has them), run as often as a method needs.</param>
public sealed record CompressionJob(OnnxModel Model, BatchSet Calibration)
{
    /// <summary>The model's structure when already analysed (shapes from a probe); null lets the method analyse it.</summary>
    public ModelStructure? Structure { get; init; }

    /// <summary>Seed of every random choice (sketches, randomized SVD); the same seed gives the same model.</summary>
    public int Seed { get; init; }

    /// <summary>ONNX Runtime settings for calibration and measured losses.</summary>
    public RuntimeOptions Runtime { get; init; } = RuntimeOptions.Default;

    /// <summary>Told when a stage starts and as it advances; may be null.</summary>
    public IProgress<CompressionProgress>? Progress { get; init; }
}

/// <summary>Progress of a compression run.</summary>
/// <param name="Stage">The stage (<see cref="Stages"/>).</param>
/// <param name="Done">Units done in this stage.</param>
/// <param name="Total">Units in this stage, when known.</param>
/// <param name="Detail">What is being worked on (a site, a batch), or null.</param>
public sealed record CompressionProgress(string Stage, int Done, int? Total, string? Detail = null);

/// <summary>The names of the stages reports time.</summary>
public static class Stages
{
    /// <summary>Calibration passes through ONNX Runtime.</summary>
    public const string Calibration = "calibration";

    /// <summary>Matrix decompositions and rank/width selection.</summary>
    public const string Decomposition = "decomposition";

    /// <summary>Losses measured on candidate models (rank search, greedy schedule).</summary>
    public const string Measurement = "measurement";

    /// <summary>Editing the ONNX graph.</summary>
    public const string Rewrite = "rewrite";

    /// <summary>Writing the model file.</summary>
    public const string Writing = "writing";
}

/// <summary>A compressed model and what was done to get it.</summary>
/// <param name="Model">The compressed model (in memory; the caller saves it).</param>
/// <param name="Report">What changed, sizes and timings.</param>
public sealed record CompressionResult(OnnxModel Model, CompressionReport Report);
