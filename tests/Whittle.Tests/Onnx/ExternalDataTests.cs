using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Onnx;

public class ExternalDataTests
{
    [Fact]
    public void RoundTripThroughExternalDataKeepsEveryByteAndRunsTheSame()
    {
        using var dir = new TempFolder();
        var proto = TestModels.Dense(64, 32);
        proto.Graph.Initializer.Add(OnnxTensors.FromArray<float>("tiny", [1f], [1], OnnxDataType.Float)); // below the threshold: stays inline
        proto.Graph.Node.Add(TestModels.Node("Add", "tiny_add", ["Y", "tiny"], ["Y2"]));
        proto.Graph.Output.Add(TestModels.Tensor("Y2", OnnxDataType.Float, null, 32));
        string source = TestModels.Write(proto, dir.Path, "source.onnx");

        string external = dir.File("external.onnx");
        OnnxModel.Load(source).Save(external, new OnnxSaveOptions { ExternalData = OnnxExternalData.Always });
        Assert.Equal(["external.onnx", "external.onnx.data", "source.onnx"], dir.Entries());
        var model = OnnxModel.Load(external);
        var w = model.Graph.GetInitializer("W");
        Assert.NotNull(w.External);
        Assert.Equal("external.onnx.data", w.External!.Location);
        Assert.Equal(0, w.External.Offset % 64);
        Assert.Null(model.Graph.GetInitializer("tiny").External);
        Assert.True(new FileInfo(external).Length < 1024);
        Assert.Equal(proto.Graph.Initializer[0].RawData.ToByteArray(), w.ReadBytes());
        var slice = new byte[16];
        w.ReadBytes(100, slice);
        Assert.Equal(proto.Graph.Initializer[0].RawData.Span.Slice(100, 16).ToArray(), slice);

        // Auto keeps external tensors external, in a new side file beside the new model.
        string again = dir.File("again.onnx");
        model.Save(again);
        Assert.NotNull(OnnxModel.Load(again).Graph.GetInitializer("W").External);
        Assert.True(File.Exists(again + ".data"));

        // Back inline: protobuf-equal to the source.
        string inline = dir.File("inline.onnx");
        OnnxModel.Load(again).Save(inline, new OnnxSaveOptions { ExternalData = OnnxExternalData.Never });
        Assert.Equal(proto, ModelProto.Parser.ParseFrom(File.ReadAllBytes(inline)));

        var x = TestModels.Input("X", 3, 64);
        var expected = OrtTensors.Run(source, [("X", x)], ["Y2"])[0];
        Assert.Null(OrtTensors.Compare(expected, OrtTensors.Run(external, [("X", x)], ["Y2"])[0], rtol: 0, atol: 0));
        Assert.Null(OrtTensors.Compare(expected, OrtTensors.Run(again, [("X", x)], ["Y2"])[0], rtol: 0, atol: 0));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void TypedFieldTensorsMoveToExternalDataAsRawBytes()
    {
        using var dir = new TempFolder();
        var proto = TestModels.Dense(32, 16);
        var w = proto.Graph.Initializer[0];
        var values = OnnxTensor.Of(w).ToArray<float>();
        w.ClearRawData();
        w.FloatData.Add(values);
        string source = TestModels.Write(proto, dir.Path, "typed.onnx");
        string external = dir.File("out.onnx");
        OnnxModel.Load(source).Save(external, new OnnxSaveOptions { ExternalData = OnnxExternalData.Always, ExternalDataFileName = "weights.bin" });
        var back = OnnxModel.Load(external).Graph.GetInitializer("W");
        Assert.Equal("weights.bin", back.External!.Location);
        Assert.Equal(values, back.ToArray<float>());
    }

    [Fact]
    public void OverwritingTheInputsExternalDataIsRefused()
    {
        using var dir = new TempFolder();
        string source = TestModels.Write(TestModels.Dense(32, 16), dir.Path, "a.onnx");
        OnnxModel.Load(source).Save(dir.File("b.onnx"), new OnnxSaveOptions { ExternalData = OnnxExternalData.Always, ExternalDataFileName = "shared.data" });
        var model = OnnxModel.Load(dir.File("b.onnx"));
        var ex = Assert.Throws<ArgumentException>(() => model.Save(dir.File("c.onnx"), new OnnxSaveOptions { ExternalDataFileName = "shared.data" }));
        Assert.Contains("would overwrite", ex.Message);
        Assert.Equal(["a.onnx", "b.onnx", "shared.data"], dir.Entries());
    }

    [Fact]
    public void ExternalDataOfAnInMemoryModelResolvesAgainstItsBaseDirectory()
    {
        using var dir = new TempFolder();
        string source = TestModels.Write(TestModels.Dense(32, 16), dir.Path, "a.onnx");
        OnnxModel.Load(source).Save(dir.File("b.onnx"), new OnnxSaveOptions { ExternalData = OnnxExternalData.Always });
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(dir.File("b.onnx")));
        Assert.Throws<OnnxModelException>(() => OnnxModel.FromProto(proto));
        var model = OnnxModel.FromProto(proto, dir.Path);
        Assert.Equal(32 * 16, model.Graph.GetInitializer("W").ToArray<float>().Length);
    }
}
