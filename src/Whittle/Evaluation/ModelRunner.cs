// One model, one fixed list of batches: outputs per batch, or a task loss over all of them.
//
// Ownership
//   The runner owns one ONNX Runtime session (a TappedSession without taps) built from the model's
//   in-memory ModelProto — a candidate model made by editing a proto never touches disk (external data,
//   if any, is read from the model's BaseDirectory). Dispose releases the session. The BatchSet is shared,
//   not copied; outputs are managed copies the caller owns. The model is not modified.

using Whittle.Data;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>
/// Runs one <see cref="OnnxModel"/> over a fixed <see cref="BatchSet"/>: the outputs of a batch
/// (<see cref="Run"/>), of every batch (<see cref="RunAll"/>), or the mean of a <see cref="TaskLoss"/>
/// (<see cref="MeanLoss"/>). Create one per candidate model; dispose it when done.
/// </summary>
public sealed class ModelRunner : IBatchOutputs
{
    private readonly TappedSession _session;

    private ModelRunner(TappedSession session, BatchSet batches, RuntimeOptions options, string? source)
    {
        _session = session;
        Batches = batches;
        Options = options;
        Source = source;
    }

    /// <summary>The batches this runner runs.</summary>
    public BatchSet Batches { get; }

    /// <summary>The session settings.</summary>
    public RuntimeOptions Options { get; }

    /// <summary>The model's file, or null for a model built in memory.</summary>
    public string? Source { get; }

    /// <summary>The model's inputs, in graph order.</summary>
    public IReadOnlyList<string> InputNames => _session.InputNames;

    /// <summary>The model's outputs, in graph order.</summary>
    public IReadOnlyList<string> OutputNames => _session.OutputNames;

    /// <summary>A runner for <paramref name="model"/> over <paramref name="batches"/>, with a session made from the in-memory model.</summary>
    /// <param name="model">The model; not modified, and not needed after this call.</param>
    /// <param name="batches">The batches to run.</param>
    /// <param name="options">Session settings; <see cref="RuntimeOptions.Default"/> when null.</param>
    /// <exception cref="OnnxModelException">ONNX Runtime rejects the model.</exception>
    public static ModelRunner Create(OnnxModel model, BatchSet batches, RuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        options ??= RuntimeOptions.Default;
        options.Validate();
        return new ModelRunner(TappedSession.Open(model.ForRuntime(model.Proto), model.BaseDirectory, options, [], model.FilePath), batches, options, model.FilePath);
    }

    IReadOnlyDictionary<string, HostTensor> IBatchOutputs.Run(int batch) => Run(batch);

    /// <summary>The outputs of batch <paramref name="batch"/> (all of them when <paramref name="outputs"/> is null).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batch"/> is not a batch index.</exception>
    /// <exception cref="ArgumentException">The batch does not fit the model (names the input, expected vs got), or an output is unknown.</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime fails while running.</exception>
    public IReadOnlyDictionary<string, HostTensor> Run(int batch, IReadOnlyList<string>? outputs = null)
    {
        if ((uint)batch >= (uint)Batches.Count) ThrowHelper.ArgumentOutOfRange(nameof(batch), batch, $"a batch index in [0, {Batches.Count})");
        return _session.Run(Batches[batch], outputs);
    }

    /// <summary>One output (the first when <paramref name="output"/> is null) of every batch, in batch order.</summary>
    /// <exception cref="ArgumentException">The output is unknown, or a batch does not fit the model.</exception>
    public IReadOnlyList<HostTensor> RunAll(string? output = null)
    {
        string name = Resolve(output);
        var result = new HostTensor[Batches.Count];
        for (int b = 0; b < result.Length; b++) result[b] = _session.Run(Batches[b], [name])[name];
        return result;
    }

    /// <summary>The summed <paramref name="loss"/> over every batch, and the number of items it is averaged over.</summary>
    /// <exception cref="ArgumentException">The loss was made for another batch set, or its output is unknown.</exception>
    /// <exception cref="InvalidDataException">The output does not have the shape the loss reads.</exception>
    public LossSum Loss(TaskLoss loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (!ReferenceEquals(loss.Batches, Batches))
            ThrowHelper.Argument(nameof(loss), "The loss was made for another batch set; make it from this runner's Batches so labels and reference outputs line up.");
        string name = Resolve(loss.Output);
        var total = new LossSum(0, 0);
        for (int b = 0; b < Batches.Count; b++) total += loss.Measure(b, _session.Run(Batches[b], [name])[name]);
        return total;
    }

    /// <summary>The mean of <paramref name="loss"/> over its items (see <see cref="Loss"/>).</summary>
    public double MeanLoss(TaskLoss loss) => Loss(loss).Mean;

    /// <summary>Runs <paramref name="inputs"/> and drops the outputs without copying them (for timing).</summary>
    internal void RunDiscarding(IReadOnlyDictionary<string, HostTensor> inputs) => _session.Run(inputs, OutputNames, static (_, _) => { });

    /// <summary>Releases the session. Safe to call twice.</summary>
    public void Dispose() => _session.Dispose();

    private string Resolve(string? output)
    {
        if (output is null) return OutputNames[0];
        if (!OutputNames.Contains(output))
            ThrowHelper.Argument(nameof(output), $"'{output}' is not an output of {Source ?? "the model"}; it outputs {string.Join(", ", OutputNames.Select(o => $"'{o}'"))}.");
        return output;
    }
}
