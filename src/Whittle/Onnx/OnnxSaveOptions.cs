namespace Whittle.Onnx;

/// <summary>Where <see cref="OnnxModel.Save"/> puts tensor data.</summary>
public enum OnnxExternalData
{
    /// <summary>
    /// Tensors stay where they were (inline, or external when read from external data); if the inline
    /// data would pass protobuf's 2 GB limit, every tensor of at least the threshold goes external.
    /// </summary>
    Auto,

    /// <summary>Every tensor of at least the threshold goes to the external data file.</summary>
    Always,

    /// <summary>All data inline (fails for models over 2 GB).</summary>
    Never,
}

/// <summary>How <see cref="OnnxModel.Save"/> writes a model.</summary>
public sealed record OnnxSaveOptions
{
    /// <summary>Where tensor data goes; <see cref="OnnxExternalData.Auto"/> by default.</summary>
    public OnnxExternalData ExternalData { get; init; } = OnnxExternalData.Auto;

    /// <summary>Smallest tensor (in bytes) moved to external data; smaller ones stay inline. 1024 by default.</summary>
    public long ExternalDataThreshold { get; init; } = 1024;

    /// <summary>Name of the external data file, in the model's folder; <c>&lt;model file name&gt;.data</c> by default.</summary>
    public string? ExternalDataFileName { get; init; }
}
