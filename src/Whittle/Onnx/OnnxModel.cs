using Google.Protobuf;
using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>
/// An ONNX model: the parsed <see cref="ModelProto"/>, the file it came from (external data is found
/// relative to its folder and read lazily) and an editable <see cref="Graph"/>. Everything Whittle does
/// not touch, unknown fields included, is written back as it was read.
/// </summary>
public sealed class OnnxModel
{
    /// <summary>Oldest IR version Whittle reads (the first with opset imports).</summary>
    public const long MinIrVersion = 3;

    /// <summary>Newest IR version Whittle reads.</summary>
    public const long MaxIrVersion = 11;

    /// <summary>Newest opset of the default domain (<c>ai.onnx</c>) Whittle reads.</summary>
    public const long MaxDefaultOpset = 25;

    /// <summary>Newest opset of <c>ai.onnx.ml</c> Whittle reads.</summary>
    public const long MaxMlOpset = 5;

    private OnnxModel(ModelProto proto, string? filePath, string? baseDirectory)
    {
        Proto = proto;
        FilePath = filePath;
        BaseDirectory = baseDirectory;
        Graph = new OnnxGraph(this);
    }

    /// <summary>The model message (shared: edits to it are edits to the model).</summary>
    public ModelProto Proto { get; }

    /// <summary>The full path of the file the model was loaded from, or null for a model built in memory.</summary>
    public string? FilePath { get; }

    /// <summary>The folder where external data locations are resolved, or null.</summary>
    public string? BaseDirectory { get; }

    /// <summary>The main graph, for reading and editing.</summary>
    public OnnxGraph Graph { get; }

    /// <summary>
    /// Where tensors written out while the model is built live (<see cref="StreamedModelWriter"/>: a compression run moves
    /// each block's new weights there as it goes), or null. Tensors naming its data file are read from its staging
    /// folder, every other external tensor from <see cref="BaseDirectory"/>; <see cref="Save"/> finishes the writer.
    /// </summary>
    public StreamedModelWriter? Staging { get; private set; }

    /// <summary>A copy to edit: the message deep-copied (tensor bytes shared, they are immutable), the same folders.</summary>
    public OnnxModel Clone() => new(Proto.Clone(), FilePath, BaseDirectory) { Staging = Staging };

    /// <summary>Moves this model's large inline tensors to <paramref name="writer"/> from now on (see <see cref="Staging"/>).</summary>
    /// <exception cref="InvalidOperationException">The model is already staged elsewhere.</exception>
    public void StageTo(StreamedModelWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (Staging is not null && !ReferenceEquals(Staging, writer))
            throw new InvalidOperationException($"The model is already written to the staging folder {Staging.StagingFolder}.");
        Staging = writer;
    }

    /// <summary>Copies this model's staged tensors to <paramref name="writer"/>, which becomes its <see cref="Staging"/> (for a copy
    /// that must be saved apart from the model it was cloned from).</summary>
    public void Restage(StreamedModelWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        foreach (var t in TensorWalker.All(Proto).Where(IsStaged).ToList())
            writer.Append(Tensor(t), t);
        Staging = writer;
    }

    /// <summary>Moves every inline initializer of at least <paramref name="minBytes"/> to <see cref="Staging"/>; returns the bytes moved.</summary>
    public long Offload(long minBytes)
    {
        if (Staging is null) return 0;
        long moved = 0;
        foreach (var t in Proto.Graph.Initializer)
        {
            if (ExternalDataInfo.IsExternal(t) || t.DataType == (int)OnnxDataType.String) continue;
            long bytes = t.HasRawData ? t.RawData.Length : OnnxTensor.Of(t).ByteLength;
            if (bytes < Math.Max(minBytes, Staging.Threshold)) continue;
            Staging.Add(t);
            moved += bytes;
        }
        return moved;
    }

    /// <summary>
    /// <paramref name="proto"/> (this model or part of it) as ONNX Runtime can load it with <see cref="BaseDirectory"/> as the
    /// folder of external data: tensors in <see cref="Staging"/> are read back inline (a shallow copy; the messages of the
    /// model are not changed).
    /// </summary>
    public ModelProto ForRuntime(ModelProto proto)
    {
        ArgumentNullException.ThrowIfNull(proto);
        if (Staging is null || !proto.Graph.Initializer.Any(IsStaged)) return proto;
        var graph = new GraphProto(proto.Graph);
        graph.Initializer.Clear();
        foreach (var t in proto.Graph.Initializer)
        {
            if (!IsStaged(t)) { graph.Initializer.Add(t); continue; }
            var inline = t.Clone();
            ExternalDataStream.Inline(inline, Tensor(t).ReadBytes());
            graph.Initializer.Add(inline);
        }
        return new ModelProto(proto) { Graph = graph };
    }

    private bool IsStaged(TensorProto t) =>
        Staging is not null && ExternalDataInfo.IsExternal(t) && t.ExternalData.Any(e => e.Key == "location" && e.Value == Staging.DataFileName);

    /// <summary>
    /// Reads and checks a model: the protobuf must parse, the IR and opset versions be supported, every
    /// value a node reads be defined, the graph be acyclic, and external data files exist and be long
    /// enough. External tensor data itself is read only when asked for.
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="OnnxModelException">The model is truncated, corrupt, unsupported or inconsistent.</exception>
    public static OnnxModel Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        IO.FileChecks.RequireRegularFile(full, "ONNX model");
        long length = new FileInfo(full).Length;
        if (length > int.MaxValue)
            throw new OnnxModelException($"{full}: the file is {length} bytes, over protobuf's 2 GB limit; large models keep their weights in external data files.", full);
        ModelProto proto;
        try
        {
            using var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            proto = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new OnnxModelException($"{full}: not a valid ONNX model (truncated or corrupt protobuf): {ex.Message}", full, null, ex);
        }
        var model = new OnnxModel(proto, full, Path.GetDirectoryName(full));
        model.Validate();
        return model;
    }

    /// <summary>Wraps a model built in memory, after the checks of <see cref="Load"/>.</summary>
    /// <param name="proto">The model; shared, not copied.</param>
    /// <param name="baseDirectory">Where its external data lives, if it has any.</param>
    public static OnnxModel FromProto(ModelProto proto, string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(proto);
        var model = new OnnxModel(proto, null, baseDirectory is null ? null : Path.GetFullPath(baseDirectory));
        model.Validate();
        return model;
    }

    /// <summary>Read access to the data of any tensor of this model (initializer or attribute).</summary>
    public OnnxTensor Tensor(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new OnnxTensor(tensor, FilePath, IsStaged(tensor) ? Staging!.StagingFolder : BaseDirectory);
    }

    /// <summary>The opset version imported for <paramref name="domain"/> (<c>""</c> and <c>"ai.onnx"</c> are the same), or null.</summary>
    public long? OpsetVersion(string domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        string d = NormalizeDomain(domain);
        foreach (var o in Proto.OpsetImport)
            if (NormalizeDomain(o.Domain) == d) return o.Version;
        return null;
    }

    /// <summary>Runs the checks of <see cref="Load"/> again, after edits.</summary>
    /// <param name="checkExternalData">Also check that external data files exist and are long enough.</param>
    /// <exception cref="OnnxModelException">The first problem found.</exception>
    public void Validate(bool checkExternalData = true)
    {
        string file = OnnxModelException.Describe(FilePath);
        if (!Proto.HasIrVersion || Proto.IrVersion < MinIrVersion || Proto.IrVersion > MaxIrVersion)
            throw new OnnxModelException(
                $"{file}: IR version {(Proto.HasIrVersion ? Proto.IrVersion.ToString() : "(none)")} is not supported; Whittle reads IR versions {MinIrVersion} to {MaxIrVersion}.", FilePath);
        if (Proto.Graph is null) throw new OnnxModelException($"{file}: the model has no graph.", FilePath);
        bool hasDefault = false;
        foreach (var o in Proto.OpsetImport)
        {
            string d = NormalizeDomain(o.Domain);
            long max = d == "" ? MaxDefaultOpset : d == "ai.onnx.ml" ? MaxMlOpset : long.MaxValue;
            if (o.Version < 1 || o.Version > max)
                throw new OnnxModelException(
                    $"{file}: opset {(d == "" ? "ai.onnx" : d)} version {o.Version} is not supported; Whittle reads versions 1 to {max}.", FilePath);
            hasDefault |= d == "";
        }
        if (!hasDefault && Proto.Graph.Node.Any(n => NormalizeDomain(n.Domain) == ""))
            throw new OnnxModelException($"{file}: the graph uses ONNX operators but imports no opset of the default domain.", FilePath);
        if (Proto.Graph.Output.Count == 0) throw new OnnxModelException($"{file}: the graph has no outputs.", FilePath);
        var inputs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in Proto.Graph.Input)
            if (!inputs.Add(i.Name)) throw new OnnxModelException($"{file}: graph input '{i.Name}' is declared twice.", FilePath, i.Name);
        foreach (var n in Proto.Graph.Node)
            if (string.IsNullOrEmpty(n.OpType)) throw new OnnxModelException($"{file}: node '{n.Name}' has no op_type.", FilePath, n.Name);
        Graph.Check();
        foreach (var t in TensorWalker.All(Proto))
        {
            // Every tensor's data must fit its type and shape: ONNX Runtime refuses models where it does not.
            if (!ExternalDataInfo.IsExternal(t)) Tensor(t).CheckInlineData();
            else if (checkExternalData) Tensor(t).CheckExternalData();
        }
    }

    /// <summary>
    /// Writes the model atomically (temporary files in the target folder, then renames): never the file it
    /// was loaded from. External data goes to one side file, <c>&lt;name&gt;.data</c> by default.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="path"/> is the input model, or the side file is one the model reads from.</exception>
    /// <exception cref="OnnxModelException">The model fails <see cref="Validate"/>, its external data cannot be read, or it exceeds 2 GB with external data off.</exception>
    public void Save(string path, OnnxSaveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        OnnxModelWriter.Write(this, path, options ?? new OnnxSaveOptions());
    }

    internal static string NormalizeDomain(string domain) => domain == "ai.onnx" ? "" : domain;
}
