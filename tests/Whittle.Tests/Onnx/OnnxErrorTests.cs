using Google.Protobuf;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Onnx;

/// <summary>Every way a model can be unreadable gives an <see cref="OnnxModelException"/> naming the file (and tensor), and nothing is written.</summary>
public class OnnxErrorTests
{
    private static OnnxModelException LoadFails(string path)
    {
        var ex = Assert.Throws<OnnxModelException>(() => OnnxModel.Load(path));
        Assert.Contains(path, ex.Message);
        return ex;
    }

    [Fact]
    public void TruncatedFileNamesTheFile()
    {
        using var dir = new TempFolder();
        var bytes = TestModels.Dense(8, 4).ToByteArray();
        string path = dir.File("truncated.onnx");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var ex = LoadFails(path);
        Assert.Contains("truncated or corrupt", ex.Message);
        Assert.Equal(path, ex.FilePath);
    }

    [Fact]
    public void CorruptFileNamesTheFile()
    {
        using var dir = new TempFolder();
        string path = dir.File("corrupt.onnx");
        var bytes = TestModels.Dense(8, 4).ToByteArray();
        new Random(3).NextBytes(bytes.AsSpan(0, 64));
        bytes[0] = 0xFF; // an invalid wire type in the first tag
        File.WriteAllBytes(path, bytes);
        LoadFails(path);
    }

    [Fact]
    public void TextFileIsNotAModel()
    {
        using var dir = new TempFolder();
        string path = dir.File("notes.onnx");
        File.WriteAllText(path, "this is not a model\n");
        LoadFails(path);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(99)]
    public void UnsupportedIrVersion(long irVersion)
    {
        using var dir = new TempFolder();
        var m = TestModels.Dense(4, 2);
        m.IrVersion = irVersion;
        var ex = LoadFails(TestModels.Write(m, dir.Path));
        Assert.Contains($"IR version {irVersion} is not supported", ex.Message);
    }

    [Fact]
    public void UnsupportedOpset()
    {
        using var dir = new TempFolder();
        var m = TestModels.Dense(4, 2);
        m.OpsetImport[0].Version = 1000;
        var ex = LoadFails(TestModels.Write(m, dir.Path));
        Assert.Contains("opset ai.onnx version 1000 is not supported", ex.Message);
    }

    [Fact]
    public void DanglingInputNamesNodeAndValue()
    {
        using var dir = new TempFolder();
        var m = TestModels.Dense(4, 2);
        m.Graph.Node[1].Input[1] = "Bias_missing";
        var ex = LoadFails(TestModels.Write(m, dir.Path));
        Assert.Contains("node 'add' (Add) reads 'Bias_missing'", ex.Message);
        Assert.Equal("Bias_missing", ex.TensorName);
    }

    [Fact]
    public void DanglingInputInsideASubgraph()
    {
        using var dir = new TempFolder();
        var m = TestModels.Dense(4, 2);
        var branch = new GraphProto { Name = "then" };
        branch.Node.Add(TestModels.Node("Identity", "inner", ["nowhere"], ["t"]));
        branch.Output.Add(TestModels.Tensor("t", OnnxDataType.Float, 2));
        var cond = new NodeProto { OpType = "If", Name = "if" };
        cond.Input.Add("X");
        cond.Output.Add("unused");
        cond.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = branch });
        cond.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = branch.Clone() });
        m.Graph.Node.Add(cond);
        var ex = LoadFails(TestModels.Write(m, dir.Path));
        Assert.Contains("reads 'nowhere'", ex.Message);
        Assert.Contains("subgraph 'then'", ex.Message);
    }

    [Fact]
    public void CycleNamesTheNodes()
    {
        using var dir = new TempFolder();
        var m = TestModels.Dense(4, 2);
        m.Graph.Node[0].Input[0] = "Y"; // MatMul reads Relu's output: matmul → add → relu → matmul
        var ex = LoadFails(TestModels.Write(m, dir.Path));
        Assert.Contains("cycle", ex.Message);
        Assert.Contains("'matmul' (MatMul)", ex.Message);
    }

    [Fact]
    public void MissingExternalDataNamesFileAndTensor()
    {
        using var dir = new TempFolder();
        string path = SaveExternal(dir);
        File.Delete(path + ".data");
        var ex = LoadFails(path);
        Assert.Contains("missing", ex.Message);
        Assert.Contains("'W'", ex.Message);
        Assert.Equal("W", ex.TensorName);
        Assert.Equal(path + ".data", ex.FilePath);
    }

    [Fact]
    public void ShortExternalDataNamesFileAndTensor()
    {
        using var dir = new TempFolder();
        string path = SaveExternal(dir);
        using (var f = new FileStream(path + ".data", FileMode.Open)) f.SetLength(f.Length - 1);
        var ex = LoadFails(path);
        Assert.Contains("is short", ex.Message);
        Assert.Contains("tensor 'W'", ex.Message);
        Assert.Contains(path + ".data", ex.Message);
    }

    [Fact]
    public void ExternalDataOutsideTheModelFolderIsRefused()
    {
        using var dir = new TempFolder();
        var m = TestModels.Dense(32, 16);
        var w = m.Graph.Initializer[0];
        w.ClearRawData();
        w.DataLocation = TensorProto.Types.DataLocation.External;
        w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "../secret.bin" });
        var ex = LoadFails(TestModels.Write(m, dir.Path));
        Assert.Contains("not a path inside the model's folder", ex.Message);
    }

    [Fact]
    public void RefusesToOverwriteTheInputAndWritesNothing()
    {
        using var dir = new TempFolder();
        string path = TestModels.Write(TestModels.Dense(4, 2), dir.Path);
        var before = File.ReadAllBytes(path);
        var model = OnnxModel.Load(path);
        var ex = Assert.Throws<ArgumentException>(() => model.Save(path));
        Assert.Contains("overwrite the input model", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["model.onnx"], dir.Entries());
    }

    [Fact]
    public void InvalidEditsAreNotWritten()
    {
        using var dir = new TempFolder();
        var model = OnnxModel.Load(TestModels.Write(TestModels.Dense(4, 2), dir.Path));
        model.Proto.Graph.Node[2].Input[0] = "gone";
        model.Graph.Invalidate();
        Assert.Throws<OnnxModelException>(() => model.Save(dir.File("out.onnx")));
        Assert.Equal(["model.onnx"], dir.Entries());
    }

    [Fact]
    public void UnreadableExternalDataLeavesNoFiles()
    {
        using var dir = new TempFolder();
        string path = SaveExternal(dir);
        var model = OnnxModel.Load(path);
        File.Delete(path + ".data");
        Assert.Throws<OnnxModelException>(() => model.Save(dir.File("out.onnx"), new OnnxSaveOptions { ExternalData = OnnxExternalData.Never }));
        Assert.Throws<OnnxModelException>(() => model.Save(dir.File("out2.onnx")));
        Assert.Equal(["model.onnx"], dir.Entries());
    }

    [Fact]
    public void MissingFileIsFileNotFound()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => OnnxModel.Load("/nonexistent/model.onnx"));
        Assert.Contains("/nonexistent/model.onnx", ex.Message);
    }

    private static string SaveExternal(TempFolder dir)
    {
        string source = TestModels.Write(TestModels.Dense(32, 16), dir.Path, "source.onnx");
        string path = dir.File("model.onnx");
        OnnxModel.Load(source).Save(path, new OnnxSaveOptions { ExternalData = OnnxExternalData.Always });
        File.Delete(source);
        return path;
    }
}
