using System.Globalization;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>One dimension of a declared model input: a fixed size, a symbolic name (<c>batch</c>), or unknown.</summary>
/// <param name="Value">The fixed size, or null when the dimension is symbolic or unknown.</param>
/// <param name="Symbol">The symbolic name (ONNX <c>dim_param</c>), or null.</param>
public readonly record struct ModelDim(long? Value, string? Symbol)
{
    /// <summary>True when the model fixes the size of this dimension.</summary>
    public bool IsFixed => Value is not null;

    /// <summary>The size, the symbol, or <c>?</c>.</summary>
    public override string ToString() => Value?.ToString(CultureInfo.InvariantCulture) ?? Symbol ?? "?";
}

/// <summary>A graph input that data must feed (not an initializer): its name, element type and declared shape.</summary>
/// <param name="Name">The input's name.</param>
/// <param name="ElementType">The declared element type.</param>
/// <param name="Shape">The declared dimensions, or null when the model declares no shape (any rank is accepted).</param>
public sealed record ModelInput(string Name, OnnxDataType ElementType, IReadOnlyList<ModelDim>? Shape)
{
    /// <summary>
    /// The inputs of <paramref name="model"/> that data must feed, in declaration order: graph inputs that are
    /// not also initializers (older exporters list every weight as a graph input too).
    /// </summary>
    /// <exception cref="InputDataException">An input that is not a tensor (a sequence, a map, an optional).</exception>
    public static IReadOnlyList<ModelInput> FromModel(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var initializers = model.Graph.InitializerNames.ToHashSet(StringComparer.Ordinal);
        var inputs = new List<ModelInput>();
        foreach (var v in model.Graph.Inputs)
        {
            if (initializers.Contains(v.Name)) continue;
            if (v.Type?.ValueCase != TypeProto.ValueOneofCase.TensorType)
                throw new InputDataException($"{model.FilePath ?? "model"}: input '{v.Name}' is not a tensor ({v.Type?.ValueCase.ToString() ?? "no type"}); Whittle feeds tensor inputs only.",
                    model.FilePath, v.Name);
            var t = v.Type.TensorType;
            IReadOnlyList<ModelDim>? shape = t.Shape is null ? null : [.. t.Shape.Dim.Select(d => d.ValueCase switch
            {
                TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => new ModelDim(d.DimValue, null),
                TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => new ModelDim(null, d.DimParam),
                _ => new ModelDim(null, null),
            })];
            inputs.Add(new ModelInput(v.Name, (OnnxDataType)t.ElemType, shape));
        }
        return inputs;
    }

    /// <summary>The element type data must have for this input: <see cref="OnnxDataType.Float"/> (float32) or <see cref="OnnxDataType.Int64"/>.</summary>
    /// <exception cref="InputDataException">The input is neither <c>float</c> nor <c>int64</c>.</exception>
    public OnnxDataType RequiredElementType(string? source = null) => ElementType switch
    {
        OnnxDataType.Float or OnnxDataType.Int64 => ElementType,
        _ => throw new InputDataException(
            $"{source ?? "data"}: model input '{Name}' has element type {OnnxDataTypes.Name(ElementType)}; Whittle feeds float and int64 inputs only.",
            source, Name),
    };

    /// <summary>The declared type and shape, as <c>float[batch,3,32,32]</c>.</summary>
    public override string ToString() =>
        OnnxDataTypes.Name(ElementType) + (Shape is null ? "[any shape]" : "[" + string.Join(",", Shape) + "]");
}

/// <summary>Checks <see cref="InputBatch"/>es against a model's declared inputs.</summary>
public static class InputValidator
{
    /// <summary>
    /// Checks that <paramref name="batch"/> feeds exactly <paramref name="inputs"/>: no missing input, no extra
    /// array, the element type each input requires (float → float32, int64 → int64), the declared rank, every
    /// fixed dimension, and the same size wherever two dimensions share a symbol (<c>batch</c>, <c>seq</c>).
    /// </summary>
    /// <exception cref="InputDataException">The first problem found, naming <see cref="InputBatch.Source"/>, the
    /// array and input, and what was expected against what was found.</exception>
    public static void Validate(IReadOnlyList<ModelInput> inputs, InputBatch batch)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(batch);
        string source = batch.Source ?? "data";
        var declared = inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in batch.Names)
            if (!declared.Contains(name))
                throw new InputDataException(
                    $"{source}: extra array '{name}' ({batch[name]}) matches no model input; the model's inputs are {List(inputs)}.",
                    batch.Source, name);
        var symbols = new Dictionary<string, (int Size, string Input, int Axis)>(StringComparer.Ordinal);
        foreach (var input in inputs)
        {
            if (!batch.TryGetValue(input.Name, out var tensor))
                throw new InputDataException(
                    $"{source}: missing input '{input.Name}' ({input}); the data has {string.Join(", ", batch.Names.Select(n => $"'{n}'"))}.",
                    batch.Source, input.Name);
            var required = input.RequiredElementType(batch.Source);
            if (tensor.ElementType != required)
                throw new InputDataException(
                    $"{source}: array '{input.Name}' is {HostTensor.TypeName(tensor.ElementType)} but model input '{input.Name}' is {input}: expected {HostTensor.TypeName(required)}.",
                    batch.Source, input.Name);
            if (input.Shape is null) continue;
            if (tensor.Rank != input.Shape.Count)
                throw new InputDataException(
                    $"{source}: array '{input.Name}' has shape {HostTensor.FormatShape(tensor.Shape)} (rank {tensor.Rank}) but model input '{input.Name}' is {input} (rank {input.Shape.Count}).",
                    batch.Source, input.Name);
            for (int axis = 0; axis < tensor.Rank; axis++)
            {
                var dim = input.Shape[axis];
                int size = tensor.Shape[axis];
                if (dim.Value is { } fixedSize && fixedSize != size)
                    throw new InputDataException(
                        $"{source}: array '{input.Name}' has shape {HostTensor.FormatShape(tensor.Shape)} but model input '{input.Name}' is {input}: dimension {axis} must be {fixedSize}, got {size}.",
                        batch.Source, input.Name);
                if (dim.Symbol is { Length: > 0 } symbol)
                {
                    if (symbols.TryGetValue(symbol, out var seen) && seen.Size != size)
                        throw new InputDataException(
                            $"{source}: dimension '{symbol}' is {seen.Size} in '{seen.Input}' (axis {seen.Axis}) but {size} in '{input.Name}' (axis {axis}, shape {HostTensor.FormatShape(tensor.Shape)}).",
                            batch.Source, input.Name);
                    symbols[symbol] = (size, input.Name, axis);
                }
            }
        }
    }

    internal static string List(IReadOnlyList<ModelInput> inputs) =>
        inputs.Count == 0 ? "(none)" : string.Join(", ", inputs.Select(i => $"'{i.Name}' {i}"));
}
