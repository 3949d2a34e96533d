using System.Text.Json;
using Whittle.Onnx;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Fixtures;

/// <summary>
/// The PyTorch-exported fixtures from <c>scripts/make_structure_fixtures.py</c> load in Whittle, agree
/// with the counts the script recorded in <c>fixtures.json</c>, and run in ONNX Runtime.
/// </summary>
public class FixtureModelsTests
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    public static TheoryData<string> Models => new()
    {
        "resnet_cifar", "resnet_cifar_bn", "vgg_cifar", "mlp", "gpt2_tiny", "llama_tiny",
    };

    private static JsonElement Entry(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture("fixtures.json")));
        return doc.RootElement.GetProperty("models").GetProperty(model).Clone();
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void LoadsAndMatchesRecordedGraphCounts(string name)
    {
        var entry = Entry(name);
        var model = OnnxModel.Load(Fixture(name + ".onnx"));
        model.Validate();
        var onnx = entry.GetProperty("onnx");
        Assert.Equal(onnx.GetProperty("nodes").GetInt32(), model.Graph.Nodes.Count);
        Assert.Equal(onnx.GetProperty("initializers").GetInt32(), model.Graph.InitializerNames.Count);
        var expectedOps = onnx.GetProperty("op_types").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var actualOps = model.Graph.Nodes.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(expectedOps.OrderBy(p => p.Key, StringComparer.Ordinal), actualOps.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(entry.GetProperty("input").GetProperty("name").GetString(), Assert.Single(model.Graph.Inputs).Name);
        Assert.True(new FileInfo(Fixture(name + ".onnx")).Length < 1 << 20, "fixtures stay under 1 MB");

        // Independent layer counts: Conv nodes for nn.Conv2d, Gemm/MatMul with a weight initializer for nn.Linear.
        Assert.Equal(entry.GetProperty("conv_layers").GetInt32(), actualOps.GetValueOrDefault("Conv"));
        int linears = model.Graph.Nodes.Count(n =>
            n.OpType == "Gemm" || (n.OpType == "MatMul" && n.Input.Any(i => model.Graph.TryGetInitializer(i, out _))));
        Assert.Equal(entry.GetProperty("linear_layers").GetInt32(), linears);
    }

    [Fact]
    public void BatchNormIsFoldedInEvalExportAndKeptInTheBnVariant()
    {
        Assert.DoesNotContain(OnnxModel.Load(Fixture("resnet_cifar.onnx")).Graph.Nodes, n => n.OpType == "BatchNormalization");
        Assert.Equal(9, OnnxModel.Load(Fixture("resnet_cifar_bn.onnx")).Graph.Nodes.Count(n => n.OpType == "BatchNormalization"));
        Assert.Equal(0, Entry("resnet_cifar").GetProperty("batchnorm_in_onnx").GetInt32());
        Assert.Equal(9, Entry("resnet_cifar_bn").GetProperty("batchnorm_in_onnx").GetInt32());
    }

    [Fact]
    public void BnVariantComputesTheSameFunctionAsTheFoldedExport()
    {
        var input = FloatInput("input", [2, 3, 32, 32]);
        var folded = Run("resnet_cifar", input)[0];
        var withBn = Run("resnet_cifar_bn", input)[0];
        Assert.Null(OrtTensors.Compare(withBn, folded, rtol: 1e-4, atol: 1e-5));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void RunsInOnnxRuntimeWithADynamicBatch(string name)
    {
        var entry = Entry(name);
        var input = entry.GetProperty("input");
        long[] shape = [.. input.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())];
        shape[0] = 2; // batch axis is dynamic
        string inputName = input.GetProperty("name").GetString()!;
        var value = input.GetProperty("dtype").GetString() == "int64" ? IdsInput(inputName, shape) : FloatInput(inputName, shape);

        var output = Assert.Single(Run(name, value));
        long[] expected = [.. entry.GetProperty("output").GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())];
        expected[0] = 2;
        Assert.Equal(expected, output.Dims);
        var values = OnnxTensor.Of(output).ToArray<float>();
        Assert.All(values, v => Assert.True(float.IsFinite(v), $"{name}: non-finite output {v}"));
        Assert.True(values.Distinct().Count() > 1, $"{name}: output is constant");
    }

    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny")]
    public void LanguageModelsAreCausalAndAcceptOtherSequenceLengths(string name)
    {
        // A shorter sequence is a prefix: logits at positions < 5 do not depend on later tokens.
        var full = Run(name, IdsInput("input_ids", [1, 12]))[0];
        var prefix = Run(name, IdsInput("input_ids", [1, 5]))[0];
        Assert.Equal([1L, 5, 256], prefix.Dims);
        var f = OnnxTensor.Of(full).ToArray<float>();
        var p = OnnxTensor.Of(prefix).ToArray<float>();
        for (int i = 0; i < p.Length; i++)
            Assert.True(Math.Abs(f[i] - p[i]) <= 1e-4f + 1e-4f * Math.Abs(f[i]), $"{name}: logit {i} {p[i]} vs {f[i]}");
    }

    private static List<Whittle.Onnx.Proto.TensorProto> Run(string name, (string, Whittle.Onnx.Proto.TensorProto) input)
    {
        var model = OnnxModel.Load(Fixture(name + ".onnx"));
        return OrtTensors.Run(Fixture(name + ".onnx"), [input], [.. model.Graph.Outputs.Select(o => o.Name)]);
    }

    private static (string, Whittle.Onnx.Proto.TensorProto) FloatInput(string name, long[] shape)
    {
        var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
        for (int i = 0; i < data.Length; i++) data[i] = 0.5f + 0.5f * MathF.Sin(0.37f * i);
        return (name, OnnxTensors.FromArray<float>(name, data, shape, OnnxDataType.Float));
    }

    private static (string, Whittle.Onnx.Proto.TensorProto) IdsInput(string name, long[] shape)
    {
        var data = new long[shape.Aggregate(1L, (a, b) => a * b)];
        for (int i = 0; i < data.Length; i++) data[i] = (i * 37 + 11) % 256;
        var t = new Whittle.Onnx.Proto.TensorProto { Name = name, DataType = (int)OnnxDataType.Int64 };
        t.Dims.AddRange(shape);
        t.Int64Data.AddRange(data);
        return (name, t);
    }
}
