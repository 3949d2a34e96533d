namespace Whittle.Onnx;

/// <summary>
/// An ONNX model (or its external data) that Whittle cannot read or write: truncated or corrupt,
/// an unsupported IR or opset version, a graph that is not a DAG or reads undefined values,
/// or external data that is missing or short. The message names the file and, where one is at
/// fault, the tensor or node. (An <see cref="IOException"/>: <see cref="InvalidDataException"/> is sealed.)
/// </summary>
public sealed class OnnxModelException : IOException
{
    /// <summary>Creates the exception.</summary>
    public OnnxModelException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The model or data file at fault, where known.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor at fault, where one is.</summary>
    public string? TensorName { get; }

    internal static string Describe(string? filePath) => filePath ?? "<in-memory model>";
}
