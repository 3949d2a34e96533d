// The tensor shapes a structure analysis reads, for one choice of input shapes.
//
// Contract
//   Input shapes are the caller's where given, else the declared dims with the unresolved ones
//   chosen: axis 0 is the batch (batchSize), any other symbolic or unknown axis the sequence length.
//   A symbolic dimension takes the same value everywhere its name appears. The shapes of the other
//   values come from the graph (value_info) when it records every node output; otherwise from one
//   ShapeProbe run of ONNX Runtime on inputs of those shapes filled with ones (zeros if ones fail).
//   If ONNX Runtime cannot run the model either, the graph's shapes are used and ProbeFailure says
//   why (MACs of layers whose shapes stay unknown are then reported unknown).

using System.Text.Json.Serialization;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;

namespace Whittle.Analysis;

/// <summary>Where the shapes of intermediate values came from.</summary>
public enum ShapeOrigin
{
    /// <summary>The graph's own records (<c>value_info</c>, inputs, outputs, initializers).</summary>
    Graph,

    /// <summary>One ONNX Runtime run on inputs of the chosen shapes (<see cref="ShapeProbe"/>).</summary>
    Probe,
}

/// <summary>A model input at the shape an analysis uses.</summary>
/// <param name="Name">The input's name.</param>
/// <param name="Shape">The dims used.</param>
/// <param name="Given">True when the caller gave the shape; false when it comes from the declared dims.</param>
/// <param name="Assumed">How each unresolved declared dim was chosen, e.g. <c>axis 1 'sequence' = 128 (sequence length)</c>; empty when none was.</param>
public sealed record AnalysisInput(string Name, IReadOnlyList<int> Shape, bool Given, IReadOnlyList<string> Assumed);

/// <summary>The shapes of every value of a model for chosen input shapes, and how they were found.</summary>
/// <param name="Inputs">Every model input (not initializers) with its shape.</param>
/// <param name="Origin">Where the shapes of intermediate values came from.</param>
/// <param name="ProbeFill">The fill of the probe inputs when <paramref name="Origin"/> is <see cref="ShapeOrigin.Probe"/>, else null.</param>
/// <param name="ProbeFailure">Why ONNX Runtime could not be used when a probe was needed but failed, else null.</param>
public sealed record AnalysisShapes(IReadOnlyList<AnalysisInput> Inputs, ShapeOrigin Origin, ProbeFill? ProbeFill, string? ProbeFailure)
{
    /// <summary>Value name → shape, for <see cref="ModelStructure.Analyze"/> (treat the arrays as read-only).</summary>
    [JsonIgnore]
    public IReadOnlyDictionary<string, int[]> Values { get; init; } = new Dictionary<string, int[]>();

    /// <summary>The most elements one input of the shape probe may have (2^28: 1 GiB of float32).</summary>
    public const long MaxProbeElements = 1L << 28;

    /// <summary>The default sequence length for symbolic non-batch dims.</summary>
    public const int DefaultSequenceLength = 128;

    /// <summary>Chooses input shapes and finds the shapes of every value (see the file's contract).</summary>
    /// <param name="model">The model; not modified.</param>
    /// <param name="given">Shapes for some or all inputs, or null.</param>
    /// <param name="sequenceLength">The value of symbolic or unknown dims other than axis 0.</param>
    /// <param name="batchSize">The value of a symbolic or unknown axis 0.</param>
    /// <param name="options">Session settings of the probe; <see cref="RuntimeOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">A given shape names no input, or does not fit the input's declared dims; an input declares no shape and none is given.</exception>
    public static AnalysisShapes Resolve(OnnxModel model, IReadOnlyDictionary<string, int[]>? given = null,
        int sequenceLength = DefaultSequenceLength, int batchSize = 1, RuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (sequenceLength < 1) ThrowHelper.ArgumentOutOfRange(nameof(sequenceLength), sequenceLength, "a positive sequence length");
        if (batchSize < 1) ThrowHelper.ArgumentOutOfRange(nameof(batchSize), batchSize, "a positive batch size");
        given ??= new Dictionary<string, int[]>();
        var graph = model.Graph;
        var inputs = graph.Inputs.Where(i => !graph.TryGetInitializer(i.Name, out _)).ToList();
        foreach (var name in given.Keys)
            if (!inputs.Any(i => i.Name == name))
                ThrowHelper.Argument(nameof(given), $"'{name}' is not an input of the model; its inputs are {string.Join(", ", inputs.Select(i => $"'{i.Name}'"))}.");

        var dimensions = new Dictionary<string, int>(StringComparer.Ordinal);
        var chosen = new List<AnalysisInput>();
        foreach (var input in inputs)
        {
            var declared = input.Type?.TensorType?.Shape;
            if (given.TryGetValue(input.Name, out var shape))
            {
                CheckFits(input.Name, declared, shape);
                for (int a = 0; declared is not null && a < declared.Dim.Count; a++)
                    if (declared.Dim[a].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam)
                        dimensions.TryAdd(declared.Dim[a].DimParam, shape[a]);
                chosen.Add(new AnalysisInput(input.Name, [.. shape], true, []));
                continue;
            }
            if (declared is null)
                ThrowHelper.Argument(nameof(given), $"Input '{input.Name}' declares no shape; give its shape.");
            var dims = new int[declared.Dim.Count];
            var assumed = new List<string>();
            for (int a = 0; a < dims.Length; a++)
            {
                var d = declared.Dim[a];
                if (d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue > 0)
                {
                    if (d.DimValue > int.MaxValue)
                        ThrowHelper.Argument(nameof(model), $"{OnnxModelException.Describe(model.FilePath)}: input '{input.Name}' declares {d.DimValue} at axis {a}; "
                            + $"dims over {int.MaxValue} are not supported.");
                    dims[a] = (int)d.DimValue;
                    continue;
                }
                string param = d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam ? d.DimParam : "";
                bool batch = a == 0;
                // A decoder export's cache length (past_sequence_length): analysed with an empty cache, as text feeds it.
                bool past = param.StartsWith("past", StringComparison.OrdinalIgnoreCase);
                if (param.Length > 0 && dimensions.TryGetValue(param, out int known)) dims[a] = known;
                else if (past)
                {
                    dims[a] = 0;
                    dimensions[param] = 0;
                }
                else
                {
                    dims[a] = batch ? batchSize : sequenceLength;
                    if (param.Length > 0) dimensions[param] = dims[a];
                }
                assumed.Add($"axis {a}{(param.Length > 0 ? $" '{param}'" : "")} = {dims[a]} ({(batch ? "batch" : past ? "empty cache" : "sequence length")})");
            }
            chosen.Add(new AnalysisInput(input.Name, dims, false, assumed));
        }

        var shapes = GraphShapes.Collect(graph, dimensions, batchSize);
        foreach (var i in chosen) shapes[i.Name] = [.. i.Shape];
        if (graph.Nodes.SelectMany(n => n.Output).All(o => o.Length == 0 || shapes.ContainsKey(o)))
            return new AnalysisShapes(chosen, ShapeOrigin.Graph, null, null) { Values = shapes };

        var inputShapes = chosen.ToDictionary(i => i.Name, i => i.Shape.ToArray(), StringComparer.Ordinal);
        // The probe feeds real tensors of these shapes: a declared dim of 2^30 would ask for gigabytes before ONNX Runtime runs.
        if (chosen.FirstOrDefault(i => i.Shape.Aggregate(1.0, (a, d) => a * Math.Max(d, 1)) > MaxProbeElements) is { } huge)
            return new AnalysisShapes(chosen, ShapeOrigin.Graph, null,
                $"input '{huge.Name}' would be [{string.Join(",", huge.Shape)}], over {MaxProbeElements:N0} elements: no ONNX Runtime probe (give --input-shape)") { Values = shapes };
        string? failure = null;
        foreach (var fill in new[] { Runtime.ProbeFill.Ones, Runtime.ProbeFill.Zeros })
        {
            try
            {
                var probe = ShapeProbe.Run(model, inputShapes, fill, options);
                var values = new Dictionary<string, int[]>(shapes, StringComparer.Ordinal);
                foreach (var (name, s) in probe.Shapes) values[name] = s;
                return new AnalysisShapes(chosen, ShapeOrigin.Probe, fill, null) { Values = values };
            }
            catch (Exception ex) when (ex is OnnxModelException or NotSupportedException)
            {
                failure ??= ex.Message; // the first failure (ones) is the informative one
            }
        }
        return new AnalysisShapes(chosen, ShapeOrigin.Graph, null, failure) { Values = shapes };
    }

    private static void CheckFits(string name, TensorShapeProto? declared, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        // 0 is a size: an empty key/value cache of an exported decoder.
        if (shape.Any(d => d < 0)) ThrowHelper.Argument(nameof(shape), $"Input '{name}': shape [{string.Join(",", shape)}] has a negative dimension.");
        if (declared is null) return;
        bool fits = declared.Dim.Count == shape.Length;
        for (int a = 0; fits && a < shape.Length; a++)
            fits = declared.Dim[a].ValueCase != TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue || declared.Dim[a].DimValue <= 0
                || declared.Dim[a].DimValue == shape[a];
        if (!fits)
            ThrowHelper.Argument(nameof(shape), $"Input '{name}': expected shape [{string.Join(",", declared.Dim.Select(Describe))}], got [{string.Join(",", shape)}].");
    }

    private static string Describe(TensorShapeProto.Types.Dimension d) => d.ValueCase switch
    {
        TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => d.DimValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => d.DimParam,
        _ => "?",
    };
}
