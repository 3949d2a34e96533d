using Google.Protobuf;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Onnx;

public class RoundTripTests
{
    /// <summary>Field 999 as a varint, then field 1000 as bytes: fields no ONNX version has.</summary>
    private static byte[] UnknownFields()
    {
        using var ms = new MemoryStream();
        var o = new CodedOutputStream(ms);
        o.WriteTag(999, WireFormat.WireType.Varint);
        o.WriteInt64(42);
        o.WriteTag(1000, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFromUtf8("from a newer ONNX"));
        o.Flush();
        return ms.ToArray();
    }

    [Fact]
    public void UnknownFieldsSurviveAtEveryLevelByteForByte()
    {
        var proto = TestModels.Dense(8, 4);
        var node = NodeProto.Parser.ParseFrom([.. proto.Graph.Node[0].ToByteArray(), .. UnknownFields()]);
        proto.Graph.Node[0] = node;
        var tensor = TensorProto.Parser.ParseFrom([.. proto.Graph.Initializer[1].ToByteArray(), .. UnknownFields()]);
        proto.Graph.Initializer[1] = tensor;
        byte[] original = [.. proto.ToByteArray(), .. UnknownFields()];

        using var dir = new TempFolder();
        string source = dir.File("in.onnx");
        File.WriteAllBytes(source, original);
        var model = OnnxModel.Load(source);
        string saved = dir.File("out.onnx");
        model.Save(saved);
        Assert.Equal(original, File.ReadAllBytes(saved));

        // Edits elsewhere keep them too.
        model.Graph.ReplaceInitializer(OnnxTensors.FromArray<float>("W", new float[32], [8, 4], OnnxDataType.Float));
        string edited = dir.File("edited.onnx");
        model.Save(edited);
        var reread = ModelProto.Parser.ParseFrom(File.ReadAllBytes(edited));
        Assert.Equal(node, reread.Graph.Node[0]);
        Assert.Equal(tensor, reread.Graph.Initializer[1]);
        Assert.EndsWith(Convert.ToHexString(UnknownFields()), Convert.ToHexString(File.ReadAllBytes(edited)));
    }

    [Fact]
    public void ExplicitDefaultsArePreserved()
    {
        // proto2 presence: a field set to its default value is written back, as onnx writes it.
        var proto = TestModels.Dense(4, 2);
        proto.DocString = "";
        proto.ModelVersion = 0;
        proto.Graph.Node[0].Domain = "";
        using var dir = new TempFolder();
        string source = TestModels.Write(proto, dir.Path, "in.onnx");
        OnnxModel.Load(source).Save(dir.File("out.onnx"));
        Assert.Equal(File.ReadAllBytes(source), File.ReadAllBytes(dir.File("out.onnx")));
    }
}
