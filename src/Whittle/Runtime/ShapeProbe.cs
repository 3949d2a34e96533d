// Runtime shapes of every value of a model, from one run of ONNX Runtime on an example input.
//
// Contract
//   Every node output of the main graph is tapped (a copy of the model with all of them as graph
//   outputs), one example is run, and each tensor's runtime shape is recorded; graph inputs get the
//   shapes given, initializers their stored dims. Values ORT cannot tap are listed in Untapped with a
//   reason: values inside subgraphs (If/Loop/Scan bodies), outputs that are not tensors (sequences,
//   maps, optionals). Memory: the model's activations for one example, all held at once.

using Microsoft.ML.OnnxRuntime;
using Whittle.Onnx;

namespace Whittle.Runtime;

/// <summary>What <see cref="ShapeProbe"/> feeds the model when only input shapes are given.</summary>
public enum ProbeFill
{
    /// <summary>All zeros (token id 0, mask 0, pixel 0).</summary>
    Zeros,

    /// <summary>All ones (safer for masks and for divisions).</summary>
    Ones,
}

/// <summary>The outcome of <see cref="ShapeProbe"/>: value name → runtime shape, and what could not be tapped.</summary>
public sealed class ShapeProbeResult
{
    internal ShapeProbeResult(Dictionary<string, int[]> shapes, Dictionary<string, OnnxDataType> types, Dictionary<string, string> untapped)
    {
        Shapes = shapes;
        ElementTypes = types;
        Untapped = untapped;
    }

    /// <summary>Runtime shape of every graph input, initializer and tapped node output (treat the arrays as read-only).</summary>
    public IReadOnlyDictionary<string, int[]> Shapes { get; }

    /// <summary>Element type of every value in <see cref="Shapes"/>.</summary>
    public IReadOnlyDictionary<string, OnnxDataType> ElementTypes { get; }

    /// <summary>Values ONNX Runtime could not tap → why (inside a subgraph; not a tensor).</summary>
    public IReadOnlyDictionary<string, string> Untapped { get; }
}

/// <summary>Runs one example through a model with every intermediate value tapped and reports runtime shapes.</summary>
public static class ShapeProbe
{
    /// <summary>Probes with inputs of the given shapes filled with zeros or ones (element types from the model).</summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="inputShapes">A shape for every model input.</param>
    /// <param name="fill">Zeros or ones.</param>
    /// <param name="options">Session settings; <see cref="RuntimeOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">An input shape is missing, unknown or does not fit the model's declared dims.</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime rejects or fails to run the model.</exception>
    public static ShapeProbeResult Run(OnnxModel model, IReadOnlyDictionary<string, int[]> inputShapes, ProbeFill fill = ProbeFill.Zeros, RuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputShapes);
        return Probe(model, session =>
        {
            foreach (var name in inputShapes.Keys)
                if (!session.InputNames.Contains(name))
                    ThrowHelper.Argument(nameof(inputShapes), $"Input '{name}' is not an input of the model; it takes {ValueNames.List(session.InputNames)}.");
            var batch = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            foreach (var name in session.InputNames)
            {
                if (!inputShapes.TryGetValue(name, out var shape))
                    ThrowHelper.Argument(nameof(inputShapes), $"Input '{name}' has no shape; give one for every input: {ValueNames.List(session.InputNames)}.");
                batch[name] = HostTensor.Filled(session.InputSignature(name).Type, shape, fill == ProbeFill.Ones);
            }
            return batch;
        }, options);
    }

    /// <summary>Probes with the given input data.</summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="inputs">A tensor for every model input; not modified.</param>
    /// <param name="options">Session settings; <see cref="RuntimeOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">An input is missing, unknown, or of the wrong type or shape.</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime rejects or fails to run the model.</exception>
    public static ShapeProbeResult Run(OnnxModel model, IReadOnlyDictionary<string, HostTensor> inputs, RuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        return Probe(model, _ => inputs, options);
    }

    private static ShapeProbeResult Probe(OnnxModel model, Func<TappedSession, IReadOnlyDictionary<string, HostTensor>> makeInputs, RuntimeOptions? options)
    {
        options ??= RuntimeOptions.Default;
        options.Validate();
        var graph = model.Proto.Graph;
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var inputNames = graph.Input.Select(i => i.Name).Where(n => !initializers.Contains(n)).ToHashSet(StringComparer.Ordinal);
        var taps = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var o in node.Output)
                if (o.Length > 0 && seen.Add(o)) taps.Add(o);

        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var types = new Dictionary<string, OnnxDataType>(StringComparer.Ordinal);
        var untapped = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer)
        {
            shapes[t.Name] = [.. t.Dims.Select(d => checked((int)d))];
            types[t.Name] = (OnnxDataType)t.DataType;
        }
        foreach (var (name, owner) in ValueNames.InSubgraphs(graph))
            if (!seen.Contains(name) && !initializers.Contains(name) && !inputNames.Contains(name))
                untapped[name] = $"inside a subgraph of node '{owner.Name}' ({owner.OpType})";

        using var session = TappedSession.Open(model.ForRuntime(TappedSession.WithTaps(model, taps)), model.BaseDirectory, options, taps, model.FilePath);
        var inputs = makeInputs(session);
        foreach (var name in session.InputNames)
            if (inputs.TryGetValue(name, out var t))
            {
                shapes[name] = (int[])t.Shape.Clone();
                types[name] = t.ElementType;
            }
        session.Run(inputs, taps, (name, value) =>
        {
            if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
            {
                untapped[name] = $"a {value.OnnxType} value, not a tensor";
                return;
            }
            var info = value.GetTensorTypeAndShape();
            shapes[name] = [.. info.Shape.Select(d => checked((int)d))];
            types[name] = (OnnxDataType)info.ElementDataType;
        });
        return new ShapeProbeResult(shapes, types, untapped);
    }
}
