namespace Whittle.Runtime;

/// <summary>
/// How ONNX Runtime sessions are configured. Immutable; the defaults give reproducible results: CPU execution
/// provider, sequential execution, one inter-op thread, all graph optimizations, one intra-op thread per core the
/// process may run on. With a fixed <see cref="IntraOpThreads"/> the CPU kernels are deterministic run to run (their
/// reductions split work over output elements, never over the summed axis, so a row's result does not depend on the
/// other rows of a batch in the common kernels — MatMul, Gemm, Conv); use 1 thread for the same bits on every machine.
/// </summary>
public sealed record RuntimeOptions
{
    /// <summary>The default options: one intra-op thread per core.</summary>
    public static RuntimeOptions Default { get; } = new();

    /// <summary>Intra-op threads (ORT's thread pool); ≥ 1, default one per core the process may run on
    /// (<see cref="Environment.ProcessorCount"/>). 0 lets ORT pick (one per physical core).</summary>
    public int IntraOpThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>Whether ORT's worker threads spin while waiting for work (faster, but burns CPU others might use); default false.</summary>
    public bool AllowSpinning { get; init; }

    /// <summary>ORT's graph optimization level; default all.</summary>
    public Microsoft.ML.OnnxRuntime.GraphOptimizationLevel OptimizationLevel { get; init; } =
        Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL;

    internal void Validate()
    {
        if (IntraOpThreads < 0) ThrowHelper.ArgumentOutOfRange(nameof(IntraOpThreads), IntraOpThreads, "0 (ORT's choice) or a positive thread count");
    }
}
