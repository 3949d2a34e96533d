namespace Whittle.Import;

/// <summary>The tensors of a checkpoint by name, read on demand and converted to float32.</summary>
public interface ICheckpointTensors
{
    /// <summary>Where the tensors come from (a file or folder), for messages.</summary>
    string Source { get; }

    /// <summary>Whether there is a tensor of that name.</summary>
    bool Contains(string name);

    /// <summary>The dimensions of the tensor called <paramref name="name"/>.</summary>
    /// <exception cref="CheckpointException">There is none.</exception>
    IReadOnlyList<long> Shape(string name);

    /// <summary>The elements of the tensor called <paramref name="name"/> as float32, row-major.</summary>
    /// <exception cref="CheckpointException">There is none, or it is not floating point.</exception>
    float[] ReadFloat32(string name);
}

/// <summary>Checked reads from an <see cref="ICheckpointTensors"/>.</summary>
internal static class CheckpointTensors
{
    /// <summary>The tensor <paramref name="name"/>, which must have shape <paramref name="shape"/>.</summary>
    public static float[] Read(this ICheckpointTensors tensors, string name, params long[] shape)
    {
        if (!tensors.Contains(name))
            throw new CheckpointException($"{tensors.Source}: tensor '{name}' is missing (expected shape [{string.Join(", ", shape)}]).", tensors.Source, name);
        var actual = tensors.Shape(name);
        if (!actual.SequenceEqual(shape))
            throw new CheckpointException(
                $"{tensors.Source}: tensor '{name}' has shape [{string.Join(", ", actual)}], expected [{string.Join(", ", shape)}] from the configuration.", tensors.Source, name);
        return tensors.ReadFloat32(name);
    }

    /// <summary>The tensor if present (with shape <paramref name="shape"/>), else null.</summary>
    public static float[]? ReadOptional(this ICheckpointTensors tensors, string name, params long[] shape) =>
        tensors.Contains(name) ? tensors.Read(name, shape) : null;

    /// <summary>A PyTorch linear weight [out, in] transposed to [in, out], the layout of <c>MatMul(x, W)</c>.</summary>
    public static float[] Transpose(float[] w, int rows, int cols)
    {
        var t = new float[w.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                t[c * rows + r] = w[r * cols + c];
        return t;
    }
}
