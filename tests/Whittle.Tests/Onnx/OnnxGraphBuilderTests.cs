using Whittle.Onnx;
using Whittle.Tests.Import;
using static Whittle.Onnx.OnnxAttributes;

namespace Whittle.Tests.Onnx;

public class OnnxGraphBuilderTests
{
    [Fact]
    public void BuildsARunnableModelWithSymbolicDimsAndMetadata()
    {
        var b = new OnnxGraphBuilder("affine");
        var x = b.Input("x", OnnxDataType.Float, "batch", 3);
        var y = b.Node("MatMul", [x, b.Weight("W", [1, 2, 3, 4, 5, 6], 3, 2)], "proj");
        var z = b.Node("Add", [y, b.Weight("b", [10, 20], 2)], "bias");
        b.Node("Relu", [z], "out");
        b.Node("Gather", [z, b.Int64Scalar("first", 0)], "first_row", Int("axis", 0));
        b.Output("out", OnnxDataType.Float, "batch", 2);
        b.Output("first_row", OnnxDataType.Float, 2);
        b.Metadata("k", "v");
        var model = b.Build("tests");
        Assert.Equal(("tests", 17L), (model.Proto.ProducerName, model.OpsetVersion("")));
        Assert.Equal("batch", model.Graph.Inputs[0].Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal("v", model.Proto.MetadataProps.Single().Value);

        string dir = Directory.CreateTempSubdirectory("whittle-builder-").FullName;
        try
        {
            string path = Path.Combine(dir, "m.onnx");
            model.Save(path);
            using var options = LanguageModelRunner.Options();
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(path, options);
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(new float[] { 1, 0, -1, 0, 0, -1 }, [2, 3]);
            using var run = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var results = session.Run(run, ["x"], [input], ["out", "first_row"]);
            // [1, 0, −1]·W = [1 − 5, 2 − 6] = [−4, −4] + b = [6, 16]; [0, 0, −1]·W = [−5, −6] + b = [5, 14].
            Assert.Equal([6f, 16f, 5f, 14f], results[0].GetTensorDataAsSpan<float>().ToArray());
            Assert.Equal([6f, 16f], results[1].GetTensorDataAsSpan<float>().ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void RejectsDuplicateAndUndefinedNames()
    {
        var b = new OnnxGraphBuilder("g");
        var x = b.Input("x", OnnxDataType.Float, 2);
        Assert.Contains("already has", Assert.Throws<ArgumentException>(() => b.Scalar("x", 1f)).Message);
        Assert.Contains("reads 'nope'", Assert.Throws<ArgumentException>(() => b.Node("Add", [x, "nope"], "sum")).Message);
        Assert.Contains("not a value", Assert.Throws<ArgumentException>(() => b.Output("missing", OnnxDataType.Float, 2)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new OnnxGraphBuilder("g", opset: 99));
        b.Metadata("k", "1");
        Assert.Throws<ArgumentException>(() => b.Metadata("k", "2"));
    }
}
