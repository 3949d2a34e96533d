using System.Globalization;
using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>A graph input or output: name, element type and shape as text (e.g. <c>float[N,3,224,224]</c>).</summary>
/// <param name="Name">The value's name.</param>
/// <param name="Type">Element type and shape; <c>?</c> for an unknown dimension, the parameter name for a symbolic one.</param>
public sealed record OnnxValueSummary(string Name, string Type);

/// <summary>An imported opset.</summary>
/// <param name="Domain">The domain (<c>ai.onnx</c> for the default one).</param>
/// <param name="Version">The version.</param>
public sealed record OnnxOpsetSummary(string Domain, long Version);

/// <summary>What <c>whittle inspect</c> reports about a model (main graph; subgraphs are not counted).</summary>
/// <param name="Path">The model file.</param>
/// <param name="IrVersion">The IR version.</param>
/// <param name="Producer">Producer name and version.</param>
/// <param name="Inputs">Graph inputs that are not initializers.</param>
/// <param name="Outputs">Graph outputs.</param>
/// <param name="Opsets">Imported opsets.</param>
/// <param name="NodeCount">Number of nodes.</param>
/// <param name="NodesByOp">Node counts by operator (<c>domain:op</c> outside the default domain), most frequent first.</param>
/// <param name="InitializerCount">Number of initializers.</param>
/// <param name="InitializerBytes">Bytes of initializer data (inline and external).</param>
/// <param name="ExternalInitializerCount">Initializers whose data is in external files.</param>
/// <param name="ParameterCount">Elements of all initializers.</param>
public sealed record OnnxModelSummary(
    string? Path, long IrVersion, string Producer,
    IReadOnlyList<OnnxValueSummary> Inputs, IReadOnlyList<OnnxValueSummary> Outputs, IReadOnlyList<OnnxOpsetSummary> Opsets,
    int NodeCount, IReadOnlyDictionary<string, int> NodesByOp,
    int InitializerCount, long InitializerBytes, int ExternalInitializerCount, long ParameterCount)
{
    /// <summary>Summarizes <paramref name="model"/> (reads no external data).</summary>
    public static OnnxModelSummary Of(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Proto.Graph;
        var initializers = graph.Initializer.Select(model.Tensor).ToList();
        var names = initializers.Select(t => t.Name).ToHashSet();
        var byOp = graph.Node
            .GroupBy(n => OnnxModel.NormalizeDomain(n.Domain) is "" ? n.OpType : $"{n.Domain}:{n.OpType}")
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count());
        return new OnnxModelSummary(
            model.FilePath,
            model.Proto.IrVersion,
            $"{model.Proto.ProducerName} {model.Proto.ProducerVersion}".Trim(),
            [.. graph.Input.Where(v => !names.Contains(v.Name)).Select(Describe)],
            [.. graph.Output.Select(Describe)],
            [.. model.Proto.OpsetImport.Select(o => new OnnxOpsetSummary(OnnxModel.NormalizeDomain(o.Domain) is "" ? "ai.onnx" : o.Domain, o.Version))],
            graph.Node.Count,
            byOp,
            initializers.Count,
            initializers.Sum(t => t.DataType == OnnxDataType.String ? t.Proto.StringData.Sum(s => (long)s.Length) : Math.Max(t.ByteLength, 0)),
            initializers.Count(t => t.External is not null),
            initializers.Sum(t => t.ElementCount));
    }

    private static OnnxValueSummary Describe(ValueInfoProto v) => new(v.Name, DescribeType(v.Type));

    private static string DescribeType(TypeProto? type) => type?.ValueCase switch
    {
        TypeProto.ValueOneofCase.TensorType => OnnxDataTypes.Name((OnnxDataType)type.TensorType.ElemType) + DescribeShape(type.TensorType.Shape),
        TypeProto.ValueOneofCase.SequenceType => $"sequence<{DescribeType(type.SequenceType.ElemType)}>",
        TypeProto.ValueOneofCase.OptionalType => $"optional<{DescribeType(type.OptionalType.ElemType)}>",
        TypeProto.ValueOneofCase.MapType => $"map<{OnnxDataTypes.Name((OnnxDataType)type.MapType.KeyType)}, {DescribeType(type.MapType.ValueType)}>",
        TypeProto.ValueOneofCase.SparseTensorType => "sparse " + OnnxDataTypes.Name((OnnxDataType)type.SparseTensorType.ElemType) + DescribeShape(type.SparseTensorType.Shape),
        null => "?",
        _ => type.ValueCase.ToString(),
    };

    private static string DescribeShape(TensorShapeProto? shape) => shape is null
        ? ""
        : "[" + string.Join(",", shape.Dim.Select(d => d.ValueCase switch
        {
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => d.DimValue.ToString(CultureInfo.InvariantCulture),
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => d.DimParam,
            _ => "?",
        })) + "]";
}
