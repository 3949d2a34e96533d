using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Onnx;

public class OnnxGraphTests
{
    private static OnnxModel Dense(int k = 8, int n = 6) => OnnxModel.FromProto(TestModels.Dense(k, n));

    [Fact]
    public void TopologicalOrderSortsShuffledNodesAndKeepsSortedOnesInPlace()
    {
        var proto = TestModels.Dense(4, 3);
        var sorted = proto.Graph.Node.Select(n => n.Name).ToList();
        var model = OnnxModel.FromProto(proto);
        Assert.Equal(sorted, model.Graph.TopologicalOrder().Select(n => n.Name));

        var shuffled = proto.Clone();
        var nodes = shuffled.Graph.Node.Reverse().ToList();
        shuffled.Graph.Node.Clear();
        shuffled.Graph.Node.AddRange(nodes);
        Assert.Equal(sorted, OnnxModel.FromProto(shuffled).Graph.TopologicalOrder().Select(n => n.Name));
    }

    [Fact]
    public void CycleIsDetected()
    {
        var model = Dense();
        model.Proto.Graph.Node[0].Input[0] = "Z";
        model.Graph.Invalidate();
        var ex = Assert.Throws<OnnxModelException>(() => model.Graph.TopologicalOrder());
        Assert.Contains("cycle through nodes 'matmul' (MatMul), 'add' (Add)", ex.Message);
    }

    [Fact]
    public void ProducersConsumersAndInitializers()
    {
        var g = Dense().Graph;
        Assert.Equal("add", g.Producer("Z")!.Name);
        Assert.Null(g.Producer("X"));
        Assert.Null(g.Producer("W"));
        Assert.Equal(["matmul"], g.Consumers("X").Select(n => n.Name));
        Assert.Equal(["relu"], g.Consumers("Z").Select(n => n.Name));
        Assert.Empty(g.Consumers("Y"));
        Assert.True(g.IsGraphOutput("Y"));
        Assert.True(g.IsGraphInput("X"));
        Assert.Equal(["W", "B"], g.InitializerNames);
        var w = g.GetInitializer("W");
        Assert.Equal([8L, 6L], w.Shape);
        Assert.Equal(OnnxDataType.Float, w.DataType);
        Assert.False(g.TryGetInitializer("X", out _));
        Assert.Throws<KeyNotFoundException>(() => g.GetInitializer("nope"));
    }

    [Fact]
    public void SubgraphReadsCountAsConsumers()
    {
        var proto = TestModels.Dense(4, 3);
        var branch = new GraphProto { Name = "then" };
        branch.Node.Add(TestModels.Node("Identity", "inner", ["B"], ["t"]));
        branch.Output.Add(TestModels.Tensor("t", OnnxDataType.Float, 3));
        var cond = new NodeProto { OpType = "If", Name = "if" };
        cond.Input.Add("X");
        cond.Output.Add("picked");
        cond.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = branch });
        proto.Graph.Node.Insert(0, cond);
        var g = OnnxModel.FromProto(proto).Graph;
        Assert.Equal(["if", "add"], g.Consumers("B").Select(n => n.Name));
    }

    [Fact]
    public void UniqueNamesAvoidEveryNameAndEachOther()
    {
        var g = Dense().Graph;
        Assert.Equal("fresh", g.UniqueName("fresh"));
        Assert.Equal("fresh_1", g.UniqueName("fresh"));
        Assert.Equal("W_1", g.UniqueName("W"));
        Assert.Equal("matmul_1", g.UniqueName("matmul"));
        Assert.Equal("XW_1", g.UniqueName("XW"));
    }

    [Fact]
    public void ReplaceNodeBySubgraphComputesTheSameInOnnxRuntime()
    {
        // W = U·V exactly (rank 3), so MatMul(X, W) = MatMul(MatMul(X, U), V) up to rounding.
        const int k = 16, n = 12, r = 3;
        var u = RandomMatrix.Gaussian<float>(k, r, seed: 11);
        var v = RandomMatrix.Gaussian<float>(r, n, seed: 12);
        var w = new Matrix<float>(k, n);
        Blas.Gemm(1f, u, v, 0f, w);
        var proto = TestModels.Dense(k, n);
        proto.Graph.Initializer[0] = OnnxTensors.FromMatrix("W", w, OnnxDataType.Float);
        using var dir = new TempFolder();
        var x = TestModels.Input("X", 5, k);
        string original = TestModels.Write(proto, dir.Path, "original.onnx");
        var expected = OrtTensors.Run(original, [("X", x)], ["Y"])[0];

        var model = OnnxModel.Load(original);
        var g = model.Graph;
        var matmul = g.Producer("XW")!;
        string uName = g.UniqueName("W_u"), vName = g.UniqueName("W_v"), mid = g.UniqueName("XW_low");
        g.ReplaceNode(matmul,
            [TestModels.Node("MatMul", g.UniqueName("matmul_u"), ["X", uName], [mid]), TestModels.Node("MatMul", g.UniqueName("matmul_v"), [mid, vName], ["XW"])],
            [OnnxTensors.FromMatrix(uName, u, OnnxDataType.Float), OnnxTensors.FromMatrix(vName, v, OnnxDataType.Float)]);
        Assert.Equal(1, g.RemoveUnusedInitializers()); // W
        Assert.Equal(["B", "W_u", "W_v"], g.InitializerNames);
        g.SetValueInfo(mid, OnnxDataType.Float, [null, r]);
        Assert.Equal(["matmul_u", "matmul_v", "add", "relu"], g.Nodes.Select(nd => nd.Name));

        string edited = dir.File("edited.onnx");
        model.Save(edited);
        var actual = OrtTensors.Run(edited, [("X", x)], ["Y"])[0];
        Assert.Null(OrtTensors.Compare(expected, actual, rtol: 1e-4, atol: 1e-5));
        var reloaded = OnnxModel.Load(edited);
        Assert.Equal(4, reloaded.Graph.Nodes.Count);
        Assert.Equal(2, reloaded.Proto.Graph.ValueInfo.Single(vi => vi.Name == mid).Type.TensorType.Shape.Dim.Count);
    }

    [Fact]
    public void ReplacementIsSortedEvenWhenGivenOutOfOrder()
    {
        var model = Dense();
        var g = model.Graph;
        g.ReplaceNode(g.Producer("Z")!,
            [TestModels.Node("Identity", "second", ["tmp"], ["Z"]), TestModels.Node("Add", "first", ["XW", "B"], ["tmp"])]);
        Assert.Equal(["matmul", "first", "second", "relu"], g.Nodes.Select(nd => nd.Name));
    }

    [Fact]
    public void InvalidReplacementsLeaveTheGraphUnchanged()
    {
        var model = Dense();
        var g = model.Graph;
        var before = model.Proto.Clone();
        var add = g.Producer("Z")!;
        Assert.Contains("does not produce 'Z'", Assert.Throws<ArgumentException>(() =>
            g.ReplaceNode(add, [TestModels.Node("Identity", "i", ["XW"], ["other"])])).Message);
        Assert.Contains("already defines", Assert.Throws<ArgumentException>(() =>
            g.ReplaceNode(add, [TestModels.Node("Add", "a", ["XW", "B"], ["Z"]), TestModels.Node("Identity", "i", ["Z"], ["Y"])])).Message);
        Assert.Contains("reads 'ghost'", Assert.Throws<ArgumentException>(() =>
            g.ReplaceNode(add, [TestModels.Node("Add", "a", ["XW", "ghost"], ["Z"])])).Message);
        Assert.Contains("cycle", Assert.Throws<ArgumentException>(() =>
            g.ReplaceNode(add, [TestModels.Node("Add", "a", ["XW", "Y"], ["Z"])])).Message);
        Assert.Contains("collides", Assert.Throws<ArgumentException>(() =>
            g.ReplaceNode(add, [TestModels.Node("Add", "a", ["XW", "B"], ["Z"])], [OnnxTensors.FromArray<float>("W", [1f], [1], OnnxDataType.Float)])).Message);
        Assert.Equal(before, model.Proto);
    }

    [Fact]
    public void DeadNodesAndUnusedInitializersAreRemoved()
    {
        var model = Dense();
        var g = model.Graph;
        g.AddInitializer(OnnxTensors.FromArray<float>("C", [2f], [1], OnnxDataType.Float));
        g.AddInitializer(OnnxTensors.FromArray<float>("unused", [2f], [1], OnnxDataType.Float));
        model.Proto.Graph.Node.Add(TestModels.Node("Mul", "dead_mul", ["Z", "C"], ["dead1"]));
        model.Proto.Graph.Node.Add(TestModels.Node("Neg", "dead_neg", ["dead1"], ["dead2"]));
        g.Invalidate();
        g.SetValueInfo("dead2", OnnxDataType.Float, [null, 6]);
        Assert.Equal(2, g.RemoveDeadNodes());
        Assert.DoesNotContain(model.Proto.Graph.ValueInfo, v => v.Name == "dead2");
        Assert.Equal(2, g.RemoveUnusedInitializers());
        Assert.Equal(["W", "B"], g.InitializerNames);
        Assert.Equal(3, g.Nodes.Count);
    }

    [Fact]
    public void InitializersAddReplaceRemove()
    {
        var model = Dense(4, 3);
        var g = model.Graph;
        Assert.Throws<ArgumentException>(() => g.AddInitializer(OnnxTensors.FromArray<float>("X", [1f], [1], OnnxDataType.Float)));
        g.ReplaceInitializer(OnnxTensors.FromArray<float>("B", [1f, 2f, 3f], [3], OnnxDataType.Float));
        Assert.Equal([1f, 2f, 3f], g.GetInitializer("B").ToArray<float>());
        Assert.Equal(["W", "B"], g.InitializerNames);
        // IR < 4 models list initializers among the graph inputs too: removal drops both.
        model.Proto.Graph.Input.Add(TestModels.Tensor("B", OnnxDataType.Float, 3));
        Assert.True(g.RemoveInitializer("B"));
        Assert.DoesNotContain(model.Proto.Graph.Input, v => v.Name == "B");
        Assert.False(g.RemoveInitializer("B"));
    }

    [Fact]
    public void EnsureOpsetAddsMissingDomainsAndRefusesDowngrades()
    {
        var model = Dense();
        model.Graph.EnsureOpset("com.microsoft", 1);
        Assert.Equal(1, model.OpsetVersion("com.microsoft"));
        model.Graph.EnsureOpset("ai.onnx", 13);
        Assert.Equal(17, model.OpsetVersion(""));
        Assert.Equal(2, model.Proto.OpsetImport.Count);
        Assert.Throws<InvalidOperationException>(() => model.Graph.EnsureOpset("", 21));
    }

    [Fact]
    public void SetValueInfoUpdatesGraphOutputs()
    {
        var model = Dense();
        model.Graph.SetValueInfo("Y", OnnxDataType.Float16, [2, 6]);
        var t = model.Proto.Graph.Output.Single().Type.TensorType;
        Assert.Equal((int)OnnxDataType.Float16, t.ElemType);
        Assert.Equal([2L, 6L], t.Shape.Dim.Select(d => d.DimValue));
        Assert.Empty(model.Proto.Graph.ValueInfo);
        Assert.True(model.Graph.RemoveValueInfo("Y") is false);
    }
}
