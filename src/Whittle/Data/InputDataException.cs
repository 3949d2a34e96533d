namespace Whittle.Data;

/// <summary>
/// Input data that cannot be read or does not fit the model: a malformed IDX file, an array that matches
/// no model input, a missing input, a wrong element type or a shape that contradicts a fixed dimension.
/// The message names the file, the array or input at fault, and what was expected against what was found.
/// (An <see cref="IOException"/>, like <see cref="Whittle.Onnx.OnnxModelException"/>.)
/// </summary>
public sealed class InputDataException : IOException
{
    /// <summary>Creates the exception.</summary>
    public InputDataException(string message, string? filePath = null, string? inputName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        InputName = inputName;
    }

    /// <summary>The data file at fault, where known.</summary>
    public string? FilePath { get; }

    /// <summary>The array or model input at fault, where one is.</summary>
    public string? InputName { get; }
}
