using Whittle.IO;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>
/// Model inputs from NumPy files: a <c>.npz</c> archive (one array per input) or a single <c>.npy</c> array (one input).
/// Each array holds all samples stacked along axis 0.
/// </summary>
/// <remarks>
/// <para>Matching: when any array name (the <c>.npz</c> entry name, without <c>.npy</c>) is a model input name, arrays are
/// matched <see cref="InputMatching.ByName"/> and every array must name an input; otherwise the i-th array feeds the
/// i-th input, <see cref="InputMatching.ByOrder"/> (<c>np.savez(f, x)</c> stores <c>arr_0</c>). A <c>.npy</c> file's
/// array is named after the file (without extension), so it usually matches by order.</para>
/// <para>Element types: float inputs take float32 arrays as they are, and float64 and float16 arrays converted to float32
/// (NumPy's default is float64; a float64 value beyond the float32 range is an error, not ∞). Integer or bool arrays for a
/// float input are an error (scale pixel data to floats first). int64 inputs take any integer or bool array
/// (int8–int64, uint8, uint16, bool), widened to int64; a floating-point array for an int64 input is an error.</para>
/// </remarks>
public static class NpyInputs
{
    /// <summary>
    /// Reads the <c>.npz</c> or <c>.npy</c> file at <paramref name="path"/>, pairs its arrays with
    /// <paramref name="inputs"/>, converts them and validates them (see the remarks on <see cref="NpyInputs"/>).
    /// </summary>
    /// <param name="path">A <c>.npz</c> archive, or any other file as a single <c>.npy</c> array.</param>
    /// <param name="inputs">The model's inputs; null to read the arrays without a model (floating-point arrays become
    /// float32, integer and bool arrays int64, names kept).</param>
    /// <exception cref="InputDataException">A 0-d array, an array that matches no input, a missing input, an element type
    /// the input cannot take, or a shape that contradicts a fixed dimension of the input.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid .npy/.npz file.</exception>
    public static InputDataset Load(string path, IReadOnlyList<ModelInput>? inputs = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Pair(path, ReadArrays(path), inputs);
    }

    /// <summary>Every array of the <c>.npz</c> archive (in archive order) or the single <c>.npy</c> array, by name.</summary>
    internal static List<(string Name, NpyArray Array)> ReadArrays(string path)
    {
        var arrays = new List<(string Name, NpyArray Array)>();
        if (path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
        {
            using var npz = NpzArchive.Open(path);
            foreach (var name in npz.Names) arrays.Add((name, npz.Read(name)));
        }
        else
        {
            arrays.Add((Path.GetFileNameWithoutExtension(path), Npy.Read(path)));
        }
        return arrays;
    }

    /// <summary>Pairs arrays read from <paramref name="path"/> with <paramref name="inputs"/> (see <see cref="Load"/>).</summary>
    internal static InputDataset Pair(string path, List<(string Name, NpyArray Array)> arrays, IReadOnlyList<ModelInput>? inputs)
    {
        if (arrays.Count == 0) throw new InputDataException($"{path}: the archive holds no arrays.", path);

        var matching = InputMatching.AsGiven;
        if (inputs is not null)
            matching = arrays.Any(a => inputs.Any(i => i.Name == a.Name)) ? InputMatching.ByName : InputMatching.ByOrder;

        var pairs = new List<KeyValuePair<string, HostTensor>>();
        var arrayNames = new List<string>();
        for (int k = 0; k < arrays.Count; k++)
        {
            var (name, array) = arrays[k];
            ModelInput? input = null;
            if (matching == InputMatching.ByName) input = inputs!.FirstOrDefault(i => i.Name == name);
            else if (matching == InputMatching.ByOrder)
            {
                if (k >= inputs!.Count)
                    throw new InputDataException(
                        $"{path}: extra array '{name}' ({array.DType}{HostTensor.FormatShape(array.Shape)}): no array name is a model input name, so arrays were matched by order, and the model has only {inputs.Count} input(s): {InputValidator.List(inputs)}.",
                        path, name);
                input = inputs[k];
            }
            if (inputs is not null && input is null)
                throw new InputDataException(
                    $"{path}: extra array '{name}' ({array.DType}{HostTensor.FormatShape(array.Shape)}) matches no model input (arrays matched by name); the model's inputs are {InputValidator.List(inputs)}.",
                    path, name);
            pairs.Add(new(input?.Name ?? name, Convert(path, name, array, input)));
            arrayNames.Add(name);
        }
        InputBatch samples;
        try
        {
            samples = new InputBatch(pairs, path);
        }
        catch (ArgumentException e)
        {
            throw new InputDataException(e.Message.Split(" (Parameter")[0], path, inner: e);
        }
        var dataset = new InputDataset(samples, path, matching, arrayNames);
        return inputs is null ? dataset : dataset.Bind(inputs);
    }

    /// <summary>Converts one array to the element type <paramref name="input"/> requires (or the natural one without a model).</summary>
    internal static HostTensor Convert(string path, string name, NpyArray array, ModelInput? input)
    {
        if (array.Rank == 0)
            throw new InputDataException($"{path}: array '{name}' is 0-dimensional; an input array needs a sample axis (axis 0).", path, name);
        bool isFloat = array.DType is NpyDType.Float16 or NpyDType.Float32 or NpyDType.Float64;
        var required = input?.RequiredElementType(path) ?? (isFloat ? OnnxDataType.Float : OnnxDataType.Int64);
        int[] shape = [.. array.Shape];
        string what = input is null ? "" : $" but model input '{input.Name}' is {input}";
        if (required == OnnxDataType.Float)
        {
            if (!isFloat)
                throw new InputDataException(
                    $"{path}: array '{name}' is {array.DType}{what}: expected a floating-point array (float32; float64 and float16 are converted). Scale integer data to floats first.",
                    path, name);
            var data = array.DType switch
            {
                NpyDType.Float32 => COrder<float>(array),
                NpyDType.Float16 => [.. COrder<Half>(array).Select(h => (float)h)],
                _ => COrder<double>(array).Select((d, i) =>
                {
                    float f = (float)d;
                    if (float.IsInfinity(f) && !double.IsInfinity(d))
                        throw new InputDataException($"{path}: array '{name}' element {i} is {d:R}, beyond the float32 range of model input '{input?.Name ?? name}'.", path, name);
                    return f;
                }).ToArray(),
            };
            return HostTensor.Float(data, shape);
        }
        if (isFloat)
            throw new InputDataException(
                $"{path}: array '{name}' is {array.DType}{what}: expected an integer array (int64; other integer and bool arrays are converted).",
                path, name);
        long[] longs = array.DType switch
        {
            NpyDType.Int64 => COrder<long>(array),
            NpyDType.Int32 => [.. COrder<int>(array).Select(v => (long)v)],
            NpyDType.Int16 => [.. COrder<short>(array).Select(v => (long)v)],
            NpyDType.Int8 => [.. COrder<sbyte>(array).Select(v => (long)v)],
            NpyDType.UInt8 => [.. COrder<byte>(array).Select(v => (long)v)],
            NpyDType.UInt16 => [.. COrder<ushort>(array).Select(v => (long)v)],
            NpyDType.Bool => [.. COrder<bool>(array).Select(v => v ? 1L : 0L)],
            _ => throw new InputDataException($"{path}: array '{name}' has unsupported element type {array.DType}.", path, name),
        };
        return HostTensor.Int64(longs, shape);
    }

    /// <summary>The elements in C order (a copy), whatever the array's memory order.</summary>
    private static T[] COrder<T>(NpyArray array) where T : unmanaged
    {
        var span = array.AsSpan<T>();
        if (!array.FortranOrder || array.Rank < 2) return span.ToArray();
        int rank = array.Rank;
        var shape = array.Shape;
        var strides = new long[rank];
        strides[0] = 1;
        for (int d = 1; d < rank; d++) strides[d] = strides[d - 1] * shape[d - 1];
        var result = new T[span.Length];
        var index = new int[rank];
        for (int i = 0; i < result.Length; i++)
        {
            long offset = 0;
            for (int d = 0; d < rank; d++) offset += index[d] * strides[d];
            result[i] = span[(int)offset];
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++index[d] < shape[d]) break;
                index[d] = 0;
            }
        }
        return result;
    }
}
