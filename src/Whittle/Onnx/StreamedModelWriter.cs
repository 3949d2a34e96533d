using Google.Protobuf;
using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>
/// Writes a model to disk as it is produced: each large tensor goes to the external data file the moment it is added,
/// so a model of any size is written holding one tensor at a time; the model file is written last, by
/// <see cref="Commit"/>. Until then both live in a hidden staging folder beside the target (the base directory of the
/// model being built); <see cref="Commit"/> moves them into place, and disposing without a commit deletes the folder,
/// so an interrupted run leaves nothing behind.
/// </summary>
public sealed class StreamedModelWriter : IDisposable
{
    private readonly ExternalDataStream _data;
    private readonly CancellationToken _cancellationToken;
    private bool _done;

    /// <summary>Starts writing the model <paramref name="target"/> (its folder must exist).</summary>
    /// <param name="target">The model file; its external data becomes <c>&lt;name&gt;.data</c> beside it.</param>
    /// <param name="threshold">Smallest tensor (bytes) moved to the data file; smaller ones stay inline. Default 1024.</param>
    /// <param name="cancellationToken">Checked before each tensor is written: a cancelled writer throws, and whoever disposes it
    /// (a <c>using</c>) removes what it wrote.</param>
    /// <exception cref="DirectoryNotFoundException">The target's folder does not exist.</exception>
    /// <exception cref="ArgumentException">The target is a folder.</exception>
    public StreamedModelWriter(string target, long threshold = 1024, CancellationToken cancellationToken = default)
    {
        _cancellationToken = cancellationToken;
        ArgumentNullException.ThrowIfNull(target);
        Target = Path.GetFullPath(target);
        if (Directory.Exists(Target)) ThrowHelper.Argument(nameof(target), $"'{Target}' is a folder; give a file path for the model.");
        IO.FileChecks.RequireReplaceableOutput(Target);
        IO.FileChecks.RequireReplaceableOutput(Target + ".data");
        string folder = Path.GetDirectoryName(Target)!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Output folder '{folder}' does not exist.");
        Threshold = Math.Max(threshold, 0);
        // The folder's name carries the process id, so a later run removes it if this process is killed outright.
        IO.TemporaryPath.RemoveStale(Target, "partial");
        StagingFolder = Path.Combine(folder, $".{Path.GetFileName(Target)}.{Environment.ProcessId}.{Guid.NewGuid():N}.partial");
        Directory.CreateDirectory(StagingFolder);
        try
        {
            _data = new ExternalDataStream(Path.Combine(StagingFolder, DataFileName), DataFileName);
        }
        catch
        {
            Directory.Delete(StagingFolder, recursive: true);
            throw;
        }
        // A process that exits without unwinding (Ctrl-C past the command line's grace period, SIGTERM) still removes the folder.
        string staging = StagingFolder;
        _exit = IO.ExitCleanup.Register(() => Directory.Delete(staging, recursive: true));
    }

    private readonly IDisposable _exit;

    /// <summary>The model file being written.</summary>
    public string Target { get; }

    /// <summary>The external data file's name (beside <see cref="Target"/>).</summary>
    public string DataFileName => Path.GetFileName(Target) + ".data";

    /// <summary>Where the files are until <see cref="Commit"/>: the base directory of the model being built.</summary>
    public string StagingFolder { get; }

    /// <summary>Smallest tensor (bytes) moved to the data file.</summary>
    public long Threshold { get; }

    /// <summary>Bytes written to the data file so far.</summary>
    public long ExternalBytes => _data.Length;

    /// <summary>Moves the data of <paramref name="tensor"/> (inline) to the data file when it is at least <see cref="Threshold"/> bytes.</summary>
    /// <returns>The same message, now pointing at the data file (or unchanged when small).</returns>
    public TensorProto Add(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_done, this);
        _cancellationToken.ThrowIfCancellationRequested();
        if (ExternalDataInfo.IsExternal(tensor))
            ThrowHelper.Argument(nameof(tensor), $"Tensor '{tensor.Name}' is external already; copy it with Add(OnnxTensor).");
        var source = OnnxTensor.Of(tensor);
        if (source.ByteLength < Threshold || source.DataType == OnnxDataType.String) return tensor;
        _data.Append(source, tensor);
        return tensor;
    }

    /// <summary>A copy of <paramref name="source"/>'s message whose data (wherever it is now) is in the data file.</summary>
    public TensorProto Add(OnnxTensor source)
    {
        ArgumentNullException.ThrowIfNull(source);
        ObjectDisposedException.ThrowIf(_done, this);
        _cancellationToken.ThrowIfCancellationRequested();
        var copy = source.Proto.Clone();
        if (source.ByteLength < Threshold || source.DataType == OnnxDataType.String)
        {
            if (source.External is not null) ExternalDataStream.Inline(copy, source.ReadBytes());
            return copy;
        }
        _data.Append(source, copy);
        return copy;
    }

    /// <summary>Appends <paramref name="source"/>'s bytes (wherever they are now) and points <paramref name="target"/> at them.</summary>
    internal void Append(OnnxTensor source, TensorProto target)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        _cancellationToken.ThrowIfCancellationRequested();
        _data.Append(source, target);
    }

    /// <summary>
    /// Writes the model file and moves both files into place (data first, then the model), replacing what was there.
    /// With <paramref name="inlineAll"/> the tensors are read back into the model file and no data file is written (for
    /// models well under protobuf's 2 GB limit).
    /// </summary>
    /// <param name="proto">The model; its external tensors must all be in this writer's data file.</param>
    /// <param name="inlineAll">Whether to keep every tensor inline instead.</param>
    /// <param name="target">Where the model goes, when not <see cref="Target"/>.</param>
    /// <param name="dataFileName">The data file's name beside it; default <c>&lt;model file name&gt;.data</c>.</param>
    /// <returns>The written model, loaded from its file.</returns>
    /// <exception cref="ArgumentException">A tensor keeps its data somewhere else.</exception>
    /// <exception cref="OnnxModelException">The model fails validation.</exception>
    public OnnxModel Commit(ModelProto proto, bool inlineAll = false, string? target = null, string? dataFileName = null)
    {
        ArgumentNullException.ThrowIfNull(proto);
        ObjectDisposedException.ThrowIf(_done, this);
        string final = target is null ? Target : Path.GetFullPath(target);
        string finalData = dataFileName ?? Path.GetFileName(final) + ".data";
        IO.FileChecks.RequireReplaceableOutput(final);
        IO.FileChecks.RequireReplaceableOutput(Path.Combine(Path.GetDirectoryName(final)!, finalData));
        if (finalData.Length == 0 || finalData.IndexOfAny(['/', '\\']) >= 0 || finalData is "." or "..")
            ThrowHelper.Argument(nameof(dataFileName), $"External data file name '{finalData}' must be a plain file name.");
        _data.Flush();
        _data.Dispose();
        var model = OnnxModel.FromProto(proto, StagingFolder);
        var tensors = TensorWalker.All(proto).Select(model.Tensor).Where(t => t.External is not null).ToList();
        foreach (var t in tensors)
            if (t.External!.Location != DataFileName)
                ThrowHelper.Argument(nameof(proto), $"Tensor '{t.Name}' keeps its data in '{t.External.Location}', not in {DataFileName} of this writer.");
        string data = Path.Combine(StagingFolder, DataFileName), file = Path.Combine(StagingFolder, ".model.onnx");
        if (inlineAll)
        {
            foreach (var t in tensors) ExternalDataStream.Inline(t.Proto, t.ReadBytes());
            File.Delete(data);
        }
        else if (finalData != DataFileName)
        {
            foreach (var t in tensors)
            {
                var info = t.External!;
                t.Proto.ExternalData.Clear();
                t.Proto.ExternalData.Add(new ExternalDataInfo(finalData, info.Offset, info.Length).ToEntries());
            }
        }
        using (var stream = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
        {
            proto.WriteTo(stream);
            stream.Flush(flushToDisk: true);
        }
        string folder = Path.GetDirectoryName(final)!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Output folder '{folder}' does not exist.");
        if (File.Exists(data)) File.Move(data, Path.Combine(folder, finalData), overwrite: true); // a rename on the same file system
        else File.Delete(Path.Combine(folder, finalData)); // a data file of an earlier model there would be stale
        File.Move(file, final, overwrite: true);
        Dispose();
        return OnnxModel.Load(final);
    }

    /// <summary>Deletes the staging folder (and whatever is left in it). Safe to call twice.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        _exit.Dispose();
        _data.Dispose();
        try
        {
            if (Directory.Exists(StagingFolder)) Directory.Delete(StagingFolder, recursive: true);
        }
        catch (IOException)
        {
            // Keep the original exception; a stray hidden folder is the lesser problem.
        }
    }
}
