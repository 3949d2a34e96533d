using Whittle.Data;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;
using static Whittle.Tests.Onnx.TestModels;

namespace Whittle.Tests.Runtime;

public class ShapeProbeTests
{
    [Fact]
    public void Mlp_shapes()
    {
        var probe = ShapeProbe.Run(RuntimeModels.Mlp([6, 5, 4]), new Dictionary<string, int[]> { ["X"] = [7, 6] });
        Assert.Equal([7, 6], probe.Shapes["X"]);
        Assert.Equal([6, 5], probe.Shapes["W0"]);
        Assert.Equal([5], probe.Shapes["B0"]);
        Assert.Equal([7, 5], probe.Shapes["mm0"]);
        Assert.Equal([7, 5], probe.Shapes["h1"]);
        Assert.Equal([7, 4], probe.Shapes["y"]);
        Assert.Equal(OnnxDataType.Float, probe.ElementTypes["h1"]);
        Assert.Empty(probe.Untapped);
    }

    [Fact]
    public void Conv_shapes_with_ones_and_with_data()
    {
        var model = RuntimeModels.Conv();
        var probe = ShapeProbe.Run(model, new Dictionary<string, int[]> { ["X"] = [2, 3, 8, 8] }, ProbeFill.Ones);
        Assert.Equal([2, 8, 8, 8], probe.Shapes["c1"]);
        Assert.Equal([2, 8, 4, 4], probe.Shapes["p1"]);
        Assert.Equal([2, 16, 4, 4], probe.Shapes["r2"]);
        Assert.Equal([2, 256], probe.Shapes["f"]);
        Assert.Equal([2, 10], probe.Shapes["logits"]);
        Assert.Equal([16, 8, 3, 3], probe.Shapes["K2"]);
        var withData = ShapeProbe.Run(model, new InputBatch("X", RuntimeModels.RandomFloats(4, 1, 3, 8, 8)));
        Assert.Equal([1, 16, 4, 4], withData.Shapes["c2"]);
    }

    [Fact]
    public void Subgraph_values_are_reported_untapped()
    {
        var g = new GraphProto { Name = "if" };
        g.Input.Add(Tensor("X", OnnxDataType.Float, null, 2));
        g.Input.Add(Tensor("cond", OnnxDataType.Bool));
        g.Output.Add(Tensor("Y", OnnxDataType.Float, null, 2));
        GraphProto Branch(string op, string name)
        {
            var b = new GraphProto { Name = name };
            b.Node.Add(Node(op, name + "_op", ["X"], [name + "_out"]));
            b.Output.Add(Tensor(name + "_out", OnnxDataType.Float, null, 2));
            return b;
        }
        var node = Node("If", "branch", ["cond"], ["Y"]);
        node.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = Branch("Relu", "then") });
        node.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = Branch("Neg", "else") });
        g.Node.Add(node);
        var model = OnnxModel.FromProto(Model(g));
        var probe = ShapeProbe.Run(model, new Dictionary<string, int[]> { ["X"] = [3, 2], ["cond"] = [] });
        Assert.Equal([3, 2], probe.Shapes["Y"]);
        Assert.Contains("then_out", probe.Untapped.Keys);
        Assert.Contains("'branch'", probe.Untapped["then_out"]);
        var ex = Assert.Throws<ArgumentException>(() => TappedSession.Create(model, ["else_out"]));
        Assert.Contains("subgraph", ex.Message);
    }

    [Fact]
    public void Missing_input_shape_is_named()
    {
        var ex = Assert.Throws<ArgumentException>(() => ShapeProbe.Run(RuntimeModels.Mlp([6, 5]), new Dictionary<string, int[]>()));
        Assert.Contains("'X'", ex.Message);
    }
}
