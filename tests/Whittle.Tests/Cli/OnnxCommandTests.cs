using System.CommandLine;
using System.Text.Json.Nodes;
using Whittle.Cli.Commands;
using Whittle.Onnx;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Cli;

public class OnnxCommandTests
{
    private static int Invoke(params string[] args)
    {
        var root = new RootCommand { ConvertCommand.Create(), InspectCommand.Create() };
        return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    [Fact]
    public void ConvertWritesExternalDataAndInspectReportsTheModel()
    {
        using var dir = new TempFolder();
        var proto = TestModels.Dense(64, 32);
        string source = TestModels.Write(proto, dir.Path, "in.onnx");
        string converted = dir.File("out.onnx");

        Assert.Equal(0, Invoke("convert", "--model", source, "--out", converted, "--external-data"));
        Assert.True(File.Exists(converted + ".data"));
        Assert.NotNull(OnnxModel.Load(converted).Graph.GetInitializer("W").External);

        string json = dir.File("summary.json");
        Assert.Equal(0, Invoke("inspect", "--model", converted, "--json", json));
        var s = JsonNode.Parse(File.ReadAllText(json))!["summary"]!;
        Assert.Equal("X", s["inputs"]![0]!["name"]!.GetValue<string>());
        Assert.Equal("float[N,64]", s["inputs"]![0]!["type"]!.GetValue<string>());
        Assert.Equal("float[N,32]", s["outputs"]![0]!["type"]!.GetValue<string>());
        Assert.Equal(17, s["opsets"]![0]!["version"]!.GetValue<long>());
        Assert.Equal(1, s["nodesByOp"]!["MatMul"]!.GetValue<int>());
        Assert.Equal(3, s["nodeCount"]!.GetValue<int>());
        Assert.Equal(2, s["initializerCount"]!.GetValue<int>());
        Assert.Equal(1, s["externalInitializerCount"]!.GetValue<int>());
        Assert.Equal(64 * 32 + 32, s["parameterCount"]!.GetValue<long>());
        Assert.Equal(4 * (64 * 32 + 32), s["initializerBytes"]!.GetValue<long>());

        // Converted again without --external-data: external tensors stay external, bytes unchanged.
        string back = dir.File("back.onnx");
        Assert.Equal(0, Invoke("convert", "--model", converted, "--out", back));
        Assert.Equal(0, Invoke("inspect", "--model", back));
        var reread = OnnxModel.Load(back);
        Assert.Equal(proto.Graph.Initializer[0].RawData.ToByteArray(), reread.Graph.GetInitializer("W").ReadBytes());
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void ConvertRefusesToOverwriteItsInput()
    {
        using var dir = new TempFolder();
        string source = TestModels.Write(TestModels.Dense(4, 2), dir.Path, "in.onnx");
        var before = File.ReadAllBytes(source);
        Assert.Throws<ArgumentException>(() => Invoke("convert", "--model", source, "--out", source));
        Assert.Equal(before, File.ReadAllBytes(source));
    }
}
