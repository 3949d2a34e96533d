using Google.Protobuf;

namespace Whittle.Onnx;

/// <summary>
/// Saves a model: decides which tensors go to the external data file, streams their bytes there
/// (never holding a second copy), and writes both files through temporary files and renames.
/// </summary>
internal static class OnnxModelWriter
{
    /// <summary>Inline data above this (2 GiB less room for the graph's structure) cannot be one protobuf message.</summary>
    private const long InlineLimit = int.MaxValue - (64L << 20);

    public static void Write(OnnxModel model, string path, OnnxSaveOptions options)
    {
        string target = Path.GetFullPath(path);
        if (model.FilePath is { } input && string.Equals(input, target, PathComparison))
            ThrowHelper.Argument(nameof(path), $"Refusing to overwrite the input model '{input}'; choose another output path.");
        if (Directory.Exists(target)) ThrowHelper.Argument(nameof(path), $"'{target}' is a folder; give a file path for the model.");
        string folder = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Output folder '{folder}' does not exist.");
        string dataName = options.ExternalDataFileName ?? Path.GetFileName(target) + ".data";
        if (dataName.Length == 0 || dataName.IndexOfAny(['/', '\\']) >= 0 || dataName is "." or "..")
            ThrowHelper.Argument(nameof(options), $"External data file name '{dataName}' must be a plain file name.");
        string dataPath = Path.Combine(folder, dataName);
        if (string.Equals(dataPath, target, PathComparison))
            ThrowHelper.Argument(nameof(options), $"The external data file '{dataPath}' cannot be the model file itself.");
        IO.FileChecks.RequireReplaceableOutput(target);
        IO.FileChecks.RequireReplaceableOutput(dataPath);

        model.Validate(checkExternalData: false);
        if (model.Staging is { } staging)
        {
            WriteStaged(model, staging, target, options, dataName);
            return;
        }
        var clone = model.Proto.Clone(); // bytes are shared (ByteString is immutable): no copy of the weights
        var tensors = TensorWalker.All(clone).Select(model.Tensor).ToList();
        foreach (var t in tensors)
            if (t.ExternalFilePath is { } source && string.Equals(Path.GetFullPath(source), dataPath, PathComparison))
                ThrowHelper.Argument(nameof(path), $"Saving to '{target}' would overwrite '{dataPath}', the external data the model reads tensor '{t.Name}' from; choose another output path.");

        var external = Place(tensors, options);
        using var tempModel = IO.TemporaryPath.Beside(target, "tmp");
        using var tempData = external.Count > 0 ? IO.TemporaryPath.Beside(dataPath, "tmp") : null;
        if (tempData is not null) WriteExternal(external, tempData.Path, dataName);
        foreach (var t in tensors)
            if (t.External is not null && !external.Contains(t)) Inline(t);
        long inlineBytes = tensors.Where(t => !external.Contains(t)).Sum(InlineSize);
        if (inlineBytes > InlineLimit)
            throw new OnnxModelException(
                $"{target}: {inlineBytes} bytes of inline tensor data exceed protobuf's 2 GB limit; save with external data.", target);
        using (var stream = new FileStream(tempModel.Path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            clone.WriteTo(stream);
        if (tempData is not null)
        {
            File.Move(tempData.Path, dataPath, overwrite: true);
            tempData.Keep();
        }
        File.Move(tempModel.Path, target, overwrite: true);
        tempModel.Keep();
    }

    /// <summary>
    /// Finishes a model whose tensors were written out as it was built: every other tensor of at least the threshold joins
    /// the staged data file (copied from the input's external data, or moved from memory), then the files move into place.
    /// </summary>
    private static void WriteStaged(OnnxModel model, StreamedModelWriter staging, string target, OnnxSaveOptions options, string dataName)
    {
        var clone = model.Proto.Clone();
        // Auto keeps the input's layout: external data when the model was read with it (or needs it), else one file.
        long total = TensorWalker.All(clone).Sum(p => Math.Max(model.Tensor(p).ByteLength, 0));
        bool readExternal = TensorWalker.All(clone).Select(model.Tensor).Any(t => t.External is not null && Path.GetDirectoryName(t.ExternalFilePath) != staging.StagingFolder);
        bool inline = options.ExternalData == OnnxExternalData.Never || (options.ExternalData == OnnxExternalData.Auto && !readExternal && total <= InlineLimit);
        foreach (var p in TensorWalker.All(clone))
        {
            var t = model.Tensor(p);
            if (t.External is not null && Path.GetDirectoryName(t.ExternalFilePath) == staging.StagingFolder) continue; // staged already
            bool large = t.ByteLength >= Math.Max(options.ExternalDataThreshold, 0) && t.DataType != OnnxDataType.String;
            if (t.External is not null || (large && !inline)) staging.Append(t, p);
        }
        if (inline && total > InlineLimit)
            throw new OnnxModelException($"{target}: {total} bytes of inline tensor data exceed protobuf's 2 GB limit; save with external data.", target);
        staging.Commit(clone, inlineAll: inline, target: target, dataFileName: dataName);
    }

    private static StringComparison PathComparison =>
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    /// <summary>The tensors (as readers over the clone) that go to the external data file.</summary>
    private static HashSet<OnnxTensor> Place(List<OnnxTensor> tensors, OnnxSaveOptions options)
    {
        bool Movable(OnnxTensor t) => t.ByteLength >= Math.Max(options.ExternalDataThreshold, 0) && t.DataType != OnnxDataType.String;
        var always = tensors.Where(t => t.External is not null || Movable(t)).ToHashSet();
        switch (options.ExternalData)
        {
            case OnnxExternalData.Always:
                return always;
            case OnnxExternalData.Never:
                return [];
            default:
                var kept = tensors.Where(t => t.External is not null).ToHashSet();
                long inline = tensors.Where(t => t.External is null).Sum(InlineSize);
                return inline > InlineLimit ? always : kept;
        }
    }

    private static long InlineSize(OnnxTensor t) => t.External is not null ? Math.Max(t.ByteLength, 0)
        : t.Proto.HasRawData ? t.Proto.RawData.Length : Math.Max(t.ByteLength, 0);

    private static void WriteExternal(IEnumerable<OnnxTensor> tensors, string tempData, string dataName)
    {
        using var data = new ExternalDataStream(tempData, dataName);
        foreach (var t in tensors) data.Append(t, t.Proto);
    }

    private static void Inline(OnnxTensor t) => ExternalDataStream.Inline(t.Proto, t.ReadBytes());
}
