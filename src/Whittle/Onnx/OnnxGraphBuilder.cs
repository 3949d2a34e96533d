using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>A dimension of a graph input or output: a fixed size, or a symbolic name (<c>batch</c>, <c>sequence</c>) for a dynamic one.</summary>
/// <param name="Size">The size, or null for a symbolic dimension.</param>
/// <param name="Symbol">The symbol of a dynamic dimension, or null.</param>
public readonly record struct OnnxDim(long? Size, string? Symbol)
{
    /// <summary>A fixed dimension.</summary>
    public static implicit operator OnnxDim(long size) => new(size, null);

    /// <summary>A symbolic (dynamic) dimension.</summary>
    public static implicit operator OnnxDim(string symbol) => new(null, symbol);
}

/// <summary>Node attributes for <see cref="OnnxGraphBuilder.Node(string, IReadOnlyList{string}, string, AttributeProto[])"/>.</summary>
public static class OnnxAttributes
{
    /// <summary>An integer attribute.</summary>
    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>A list-of-integers attribute.</summary>
    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    /// <summary>A float attribute.</summary>
    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    /// <summary>A string attribute.</summary>
    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(value) };

    /// <summary>A tensor attribute (e.g. <c>Constant</c>'s <c>value</c>).</summary>
    public static AttributeProto Tensor(string name, TensorProto value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };
}

/// <summary>
/// Builds an ONNX graph in code: typed inputs and outputs with symbolic dimensions, initializers from float
/// arrays, nodes with unique names (a node's single output takes the node's name), metadata, one default-domain
/// opset. Importers build whole models with it; compression passes build replacement subgraphs.
/// </summary>
/// <remarks>Names are checked for uniqueness as they are added; <see cref="Build"/> runs <see cref="OnnxModel.Validate"/>.</remarks>
public sealed class OnnxGraphBuilder
{
    private readonly GraphProto _graph;
    private readonly HashSet<string> _names = [];
    private readonly List<(string Key, string Value)> _metadata = [];
    private readonly StreamedModelWriter? _weights;

    /// <summary>Starts an empty graph.</summary>
    /// <param name="graphName">The graph's name.</param>
    /// <param name="opset">The <c>ai.onnx</c> opset the nodes follow.</param>
    /// <param name="irVersion">The IR version of the model (8 goes with opsets up to 17, 9 with 19, 10 with 21).</param>
    /// <param name="weights">Where initializers go as they are added (so a model of any size is built holding one tensor at a
    /// time), or null to keep them in memory.</param>
    /// <param name="matrixStorage">How <see cref="Weight"/> stores tensors of two or more axes: <see cref="OnnxDataType.Float"/>, or
    /// <see cref="OnnxDataType.Float16"/> / <see cref="OnnxDataType.BFloat16"/> behind a <c>Cast</c> to float (half the disk; ONNX
    /// Runtime folds the Cast when it loads the model, so the products run in float32 at the same speed).</param>
    public OnnxGraphBuilder(string graphName, long opset = 17, long irVersion = 8, StreamedModelWriter? weights = null,
        OnnxDataType matrixStorage = OnnxDataType.Float)
    {
        _weights = weights;
        if (matrixStorage is not (OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16))
            ThrowHelper.ArgumentOutOfRange(nameof(matrixStorage), matrixStorage, "Float, Float16 or BFloat16");
        MatrixStorage = matrixStorage;
        ArgumentException.ThrowIfNullOrEmpty(graphName);
        if (opset < 1 || opset > OnnxModel.MaxDefaultOpset) ThrowHelper.ArgumentOutOfRange(nameof(opset), opset, $"an opset from 1 to {OnnxModel.MaxDefaultOpset}");
        if (irVersion < OnnxModel.MinIrVersion || irVersion > OnnxModel.MaxIrVersion)
            ThrowHelper.ArgumentOutOfRange(nameof(irVersion), irVersion, $"an IR version from {OnnxModel.MinIrVersion} to {OnnxModel.MaxIrVersion}");
        _graph = new GraphProto { Name = graphName };
        Opset = opset;
        IrVersion = irVersion;
    }

    /// <summary>The default-domain opset.</summary>
    public long Opset { get; }

    /// <summary>The IR version.</summary>
    public long IrVersion { get; }

    /// <summary>The element type <see cref="Weight"/> stores tensors of two or more axes in (see the constructor).</summary>
    public OnnxDataType MatrixStorage { get; }

    /// <summary>The graph built so far (shared: later calls keep adding to it).</summary>
    public GraphProto Graph => _graph;

    /// <summary>Whether a value, node or initializer of that name exists.</summary>
    public bool Contains(string name) => _names.Contains(name);

    /// <summary>Adds a graph input.</summary>
    /// <returns><paramref name="name"/>.</returns>
    public string Input(string name, OnnxDataType type, params OnnxDim[] dims)
    {
        Claim(name);
        _graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Declares <paramref name="value"/> (a value already defined) a graph output.</summary>
    public void Output(string value, OnnxDataType type, params OnnxDim[] dims)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        if (!_names.Contains(value)) ThrowHelper.Argument(nameof(value), $"Output '{value}' is not a value of the graph.");
        _graph.Output.Add(ValueInfo(value, type, dims));
    }

    /// <summary>Records the type and shape of an intermediate value (<c>value_info</c>).</summary>
    public void ValueShape(string value, OnnxDataType type, params OnnxDim[] dims) => _graph.ValueInfo.Add(ValueInfo(value, type, dims));

    /// <summary>
    /// A float32 value <paramref name="name"/> holding <paramref name="values"/> (copied) of shape <paramref name="shape"/>: an
    /// initializer, or, for two or more axes under a 16-bit <see cref="MatrixStorage"/>, a <c>Cast</c> to float of an initializer
    /// <c>name.float16</c> / <c>name.bfloat16</c> holding the values rounded to that type.
    /// </summary>
    /// <returns><paramref name="name"/>.</returns>
    public string Weight(string name, ReadOnlySpan<float> values, params long[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (shape.Length < 2 || MatrixStorage == OnnxDataType.Float)
        {
            Claim(name);
            Add(OnnxTensors.FromArray(name, values, shape, OnnxDataType.Float));
            return name;
        }
        string stored = name + "." + OnnxDataTypes.Name(MatrixStorage).ToLowerInvariant();
        Claim(stored);
        Add(OnnxTensors.FromArray(stored, values, shape, MatrixStorage));
        return Node("Cast", [stored], name, OnnxAttributes.Int("to", (long)OnnxDataType.Float));
    }

    private void Add(TensorProto tensor) => _graph.Initializer.Add(_weights?.Add(tensor) ?? tensor);

    /// <summary>Adds an initializer (its name must be unused).</summary>
    /// <returns>The tensor's name.</returns>
    public string Initializer(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        Claim(tensor.Name);
        _graph.Initializer.Add(_weights is not null && !ExternalDataInfo.IsExternal(tensor) ? _weights.Add(tensor) : tensor);
        return tensor.Name;
    }

    /// <summary>Adds a float32 scalar initializer.</summary>
    public string Scalar(string name, float value) => Weight(name, [value]);

    /// <summary>Adds a 1-D int64 initializer (shapes, axes, split sizes).</summary>
    public string Int64s(string name, params long[] values)
    {
        Claim(name);
        var t = new TensorProto { Name = name, DataType = (int)OnnxDataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.Add(values);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds an int64 scalar initializer.</summary>
    public string Int64Scalar(string name, long value)
    {
        Claim(name);
        var t = new TensorProto { Name = name, DataType = (int)OnnxDataType.Int64 };
        t.Int64Data.Add(value);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a node with one output, named like the node.</summary>
    /// <param name="opType">The operator (default domain).</param>
    /// <param name="inputs">Input values; an empty string skips an optional input.</param>
    /// <param name="name">The node's name, which is also its output's name.</param>
    /// <param name="attributes">Attributes (see <see cref="OnnxAttributes"/>).</param>
    /// <returns>The output's name.</returns>
    public string Node(string opType, IReadOnlyList<string> inputs, string name, params AttributeProto[] attributes) =>
        Node(opType, inputs, name, [name], attributes)[0];

    /// <summary>Adds a node with the given outputs.</summary>
    /// <returns><paramref name="outputs"/>.</returns>
    public IReadOnlyList<string> Node(string opType, IReadOnlyList<string> inputs, string name, IReadOnlyList<string> outputs, params AttributeProto[] attributes)
    {
        ArgumentException.ThrowIfNullOrEmpty(opType);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outputs);
        foreach (var i in inputs)
            if (i.Length > 0 && !_names.Contains(i)) ThrowHelper.Argument(nameof(inputs), $"Node '{name}' ({opType}) reads '{i}', which the graph does not define yet.");
        if (!outputs.Contains(name)) Claim(name);
        foreach (var o in outputs) Claim(o);
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        node.Attribute.Add(attributes);
        _graph.Node.Add(node);
        return outputs;
    }

    /// <summary>Adds a <c>metadata_props</c> entry to the model.</summary>
    public void Metadata(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (_metadata.Any(m => m.Key == key)) ThrowHelper.Argument(nameof(key), $"Metadata key '{key}' is already set.");
        _metadata.Add((key, value));
    }

    /// <summary>
    /// The model: this graph, the opset import, metadata, checked by <see cref="OnnxModel.Validate"/>. With a weight writer
    /// its external data is in the writer's staging folder until <see cref="StreamedModelWriter.Commit"/>.
    /// </summary>
    /// <param name="producer">The producer name recorded in the model.</param>
    /// <exception cref="OnnxModelException">The graph is inconsistent.</exception>
    public OnnxModel Build(string producer = "whittle")
    {
        var model = new ModelProto { IrVersion = IrVersion, ProducerName = producer, Graph = _graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (k, v) in _metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        return OnnxModel.FromProto(model, _weights?.StagingFolder);
    }

    private void Claim(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_names.Add(name)) ThrowHelper.Argument(nameof(name), $"The graph already has a value, node or initializer named '{name}'.");
    }

    private static ValueInfoProto ValueInfo(string name, OnnxDataType type, OnnxDim[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d.Size is { } s ? new TensorShapeProto.Types.Dimension { DimValue = s } : new TensorShapeProto.Types.Dimension { DimParam = d.Symbol ?? "" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
