// An ONNX Runtime session over an in-memory copy of a model whose graph also outputs chosen
// intermediate values ("taps").
//
// Ownership
//   TappedSession owns its InferenceSession and SessionOptions and disposes both in Dispose. Every
//   OrtValue and RunOptions made by Run is disposed before Run returns, on success or failure; input
//   OrtValues pin the caller's arrays (no copy) only for the duration of the call. The HostTensors that
//   Run returns are fresh managed copies owned by the caller. The caller's OnnxModel is never modified:
//   taps are added to a clone of its ModelProto.
//
// Threading
//   One Run at a time per session (ORT allows concurrent Run, but the dispose-on-return contract and the
//   reproducibility of timings are simpler this way); Run takes a lock.

using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Runtime;

/// <summary>
/// An ONNX Runtime inference session over a copy of a model with extra graph outputs for the values to tap.
/// Create with <see cref="Create"/>; run named inputs with <see cref="Run(IReadOnlyDictionary{string, HostTensor}, IReadOnlyList{string}?)"/>;
/// dispose when done (releases the native session).
/// </summary>
/// <remarks>
/// The session owns all native objects it creates and releases them in <see cref="Dispose"/>; each run's
/// <c>OrtValue</c>s and <c>RunOptions</c> are released before the run returns. Returned tensors are managed
/// copies that the caller owns. The source <see cref="OnnxModel"/> is not modified.
/// </remarks>
public sealed class TappedSession : IDisposable
{
    private readonly SessionOptions _options;
    private readonly InferenceSession _session;
    private readonly Dictionary<string, NodeMetadata> _inputs;
    private readonly HashSet<string> _outputs;
    private readonly Lock _gate = new();
    private bool _disposed;

    private readonly string _source;

    private TappedSession(SessionOptions options, InferenceSession session, IReadOnlyList<string> taps, string source)
    {
        _options = options;
        _source = source;
        _session = session;
        _inputs = new Dictionary<string, NodeMetadata>(session.InputMetadata, StringComparer.Ordinal);
        InputNames = [.. session.InputNames];
        OutputNames = [.. session.OutputNames];
        _outputs = [.. OutputNames];
        Taps = taps;
    }

    /// <summary>The model's inputs, in graph order.</summary>
    public IReadOnlyList<string> InputNames { get; }

    /// <summary>Every value <see cref="Run(IReadOnlyDictionary{string, HostTensor}, IReadOnlyList{string}?)"/> can return: the model's outputs, then the taps that were not outputs already.</summary>
    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>The tapped values, in the order asked for (duplicates removed).</summary>
    public IReadOnlyList<string> Taps { get; }

    /// <summary>
    /// Builds a session for <paramref name="model"/> that also outputs <paramref name="taps"/>: any value of the
    /// main graph (graph input, node output or initializer). A tap with a declared type (value_info) keeps it; one
    /// without gets an untyped graph output whose type ONNX Runtime infers.
    /// </summary>
    /// <param name="model">The model; not modified. External data is read from its <see cref="OnnxModel.BaseDirectory"/>.</param>
    /// <param name="taps">Names of the values to tap; may be empty.</param>
    /// <param name="options">Session settings; <see cref="RuntimeOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">A tap is not a value of the main graph (the message lists close matches).</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime rejects the model.</exception>
    public static TappedSession Create(OnnxModel model, IEnumerable<string> taps, RuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(taps);
        options ??= RuntimeOptions.Default;
        options.Validate();
        var tapList = taps.Distinct(StringComparer.Ordinal).ToList();
        var proto = WithTaps(model, tapList);
        return Open(model.ForRuntime(proto), model.BaseDirectory, options, tapList, model.FilePath);
    }

    /// <summary>
    /// Runs one batch and returns the requested outputs as managed tensors (copies the caller owns).
    /// </summary>
    /// <param name="inputs">A tensor for every model input (extra names are an error); not modified.</param>
    /// <param name="outputs">Which of <see cref="OutputNames"/> to return; all of them when null.</param>
    /// <returns>Output name → tensor, in the order of <paramref name="outputs"/>.</returns>
    /// <exception cref="ArgumentException">An input is missing, unknown, or of the wrong element type or shape (the message names it, with expected and actual), or an output is unknown.</exception>
    /// <exception cref="NotSupportedException">An output's element type has no <see cref="HostTensor"/> form, or it is not a tensor.</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime fails while running.</exception>
    public IReadOnlyDictionary<string, HostTensor> Run(IReadOnlyDictionary<string, HostTensor> inputs, IReadOnlyList<string>? outputs = null)
    {
        var result = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        Run(inputs, outputs ?? OutputNames, (name, value) => result[name] = ToHost(name, value));
        return result;
    }

    /// <summary>Runs one batch and shows each requested output to <paramref name="visit"/> while its native memory is alive.</summary>
    /// <remarks><paramref name="visit"/> must not keep the <see cref="OrtValue"/>: it is disposed when the call returns.</remarks>
    internal void Run(IReadOnlyDictionary<string, HostTensor> inputs, IReadOnlyList<string> outputs, Action<string, OrtValue> visit)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outputs);
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckInputs(inputs);
        foreach (var o in outputs)
            if (!_outputs.Contains(o))
                ThrowHelper.Argument(nameof(outputs), $"'{o}' is not an output of this session; it outputs {ValueNames.List(OutputNames)}. Tap it when creating the session.");
        var names = new List<string>(InputNames.Count);
        var values = new List<OrtValue>(InputNames.Count);
        lock (_gate)
        {
            try
            {
                foreach (var name in InputNames)
                {
                    names.Add(name);
                    values.Add(ToOrtValue(inputs[name]));
                }
                using var runOptions = new RunOptions();
                IDisposableReadOnlyCollection<OrtValue> results;
                try
                {
                    results = _session.Run(runOptions, names, values, outputs);
                }
                catch (OnnxRuntimeException ex)
                {
                    // The data may be what is wrong (a token id past a table, a window longer than the positions): name it too.
                    string data = inputs is IDescribedInputs { Source: { } from } ? $" on inputs from {from}" : "";
                    throw new OnnxModelException($"{_source}: ONNX Runtime failed to run the model{data}: {ex.Message}", null, null, ex);
                }
                using (results)
                    for (int i = 0; i < outputs.Count; i++) visit(outputs[i], results[i]);
            }
            finally
            {
                foreach (var v in values) v.Dispose();
            }
        }
    }

    /// <summary>Releases the native session and its options. Safe to call twice.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _session.Dispose();
        _options.Dispose();
    }

    /// <summary>Element type and dimensions (−1 where symbolic) the session declares for an input.</summary>
    internal (OnnxDataType Type, int[] Dims) InputSignature(string name)
    {
        var meta = _inputs[name];
        return ((OnnxDataType)meta.ElementDataType, meta.Dimensions);
    }

    /// <summary>A session over <paramref name="proto"/> (taps already added); <paramref name="source"/> is the model's file, for messages.</summary>
    internal static TappedSession Open(ModelProto proto, string? baseDirectory, RuntimeOptions options, IReadOnlyList<string> taps, string? source = null)
    {
        string what = Onnx.OnnxModelException.Describe(source);
        var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = options.OptimizationLevel,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        try
        {
            sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", options.AllowSpinning ? "1" : "0");
            if (baseDirectory is not null)
                sessionOptions.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", baseDirectory);
            InferenceSession session;
            try
            {
                session = new InferenceSession(proto.ToByteArray(), sessionOptions);
            }
            catch (OnnxRuntimeException ex)
            {
                throw new OnnxModelException($"{what}: ONNX Runtime could not load the model{(taps.Count > 0 ? $" with {taps.Count} tapped value(s)" : "")}: {ex.Message}", source, null, ex);
            }
            return new TappedSession(sessionOptions, session, taps, what);
        }
        catch
        {
            sessionOptions.Dispose();
            throw;
        }
    }

    /// <summary>A clone of the model's proto whose graph outputs also include <paramref name="taps"/>.</summary>
    internal static ModelProto WithTaps(OnnxModel model, IReadOnlyList<string> taps)
    {
        var proto = model.Proto.Clone();
        var graph = proto.Graph;
        var outputs = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var declared = new Dictionary<string, ValueInfoProto>(StringComparer.Ordinal);
        foreach (var v in graph.Input.Concat(graph.ValueInfo)) declared.TryAdd(v.Name, v);
        var known = ValueNames.MainGraph(graph);
        foreach (var tap in taps)
        {
            ArgumentNullException.ThrowIfNull(tap, nameof(taps));
            if (!known.Contains(tap)) ValueNames.ThrowUnknown(graph, known, tap, nameof(taps));
            if (!outputs.Add(tap)) continue;
            graph.Output.Add(declared.TryGetValue(tap, out var info) && info.Type?.TensorType is not null
                ? info.Clone()
                : new ValueInfoProto { Name = tap });
        }
        return proto;
    }

    private void CheckInputs(IReadOnlyDictionary<string, HostTensor> inputs)
    {
        foreach (var name in inputs.Keys)
            if (!_inputs.ContainsKey(name))
                ThrowHelper.Argument(nameof(inputs), $"Input '{name}' is not an input of the model; it takes {ValueNames.List(InputNames)}.");
        foreach (var name in InputNames)
        {
            if (!inputs.TryGetValue(name, out var t) || t is null)
                ThrowHelper.Argument(nameof(inputs), $"{_source}: input '{name}' is missing; the model takes {ValueNames.List(InputNames)}.");
            var (type, dims) = InputSignature(name);
            if (t.ElementType != type)
                ThrowHelper.Argument(nameof(inputs),
                    $"{_source}: input '{name}': expected element type {OnnxDataTypes.Name(type)}, got {OnnxDataTypes.Name(t.ElementType)}.");
            bool fits = dims.Length == t.Shape.Length;
            for (int i = 0; fits && i < dims.Length; i++) fits = dims[i] < 0 || dims[i] == t.Shape[i];
            if (!fits)
                ThrowHelper.Argument(nameof(inputs),
                    $"{_source}: input '{name}': expected shape [{string.Join(",", dims.Select(d => d < 0 ? "?" : d.ToString()))}], got {HostTensor.FormatShape(t.Shape)}.");
        }
    }

    private static OrtValue ToOrtValue(HostTensor t)
    {
        long[] shape = [.. t.Shape.Select(d => (long)d)];
        return t.Data switch
        {
            float[] a => OrtValue.CreateTensorValueFromMemory(a, shape),
            double[] a => OrtValue.CreateTensorValueFromMemory(a, shape),
            long[] a => OrtValue.CreateTensorValueFromMemory(a, shape),
            int[] a => OrtValue.CreateTensorValueFromMemory(a, shape),
            bool[] a => OrtValue.CreateTensorValueFromMemory(a, shape),
            byte[] a => OrtValue.CreateTensorValueFromMemory(a, shape),
            sbyte[] a => OrtValue.CreateTensorValueFromMemory(a, shape),
            _ => throw new NotSupportedException($"HostTensor data of type {t.Data.GetType().Name} is not supported."),
        };
    }

    /// <summary>A managed copy of a tensor output.</summary>
    internal static HostTensor ToHost(string name, OrtValue value)
    {
        if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
            throw new NotSupportedException($"Output '{name}' is a {value.OnnxType}, not a tensor.");
        var info = value.GetTensorTypeAndShape();
        var type = (OnnxDataType)info.ElementDataType;
        int[] shape = [.. info.Shape.Select(d => checked((int)d))];
        Array data = info.ElementDataType switch
        {
            TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
            TensorElementType.Double => value.GetTensorDataAsSpan<double>().ToArray(),
            TensorElementType.Int64 => value.GetTensorDataAsSpan<long>().ToArray(),
            TensorElementType.Int32 => value.GetTensorDataAsSpan<int>().ToArray(),
            TensorElementType.Bool => value.GetTensorDataAsSpan<bool>().ToArray(),
            TensorElementType.UInt8 => value.GetTensorDataAsSpan<byte>().ToArray(),
            TensorElementType.Int8 => value.GetTensorDataAsSpan<sbyte>().ToArray(),
            _ => throw new NotSupportedException(
                $"Output '{name}' has element type {OnnxDataTypes.Name(type)}, which has no HostTensor form; use float, double, int64, int32, bool, uint8 or int8."),
        };
        return HostTensor.Wrap(type, data, shape);
    }
}
