namespace Whittle.Import;

/// <summary>A checkpoint that cannot be imported: a missing or malformed file, a tensor missing or of the wrong shape, an unsupported setting.</summary>
public sealed class CheckpointException : IOException
{
    /// <summary>Creates the exception.</summary>
    public CheckpointException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file at fault, where known.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor at fault, where one is.</summary>
    public string? TensorName { get; }
}
