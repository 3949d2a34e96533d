using System.Text.Json;
using Whittle.Analysis;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Analysis;

public class StructureTests
{
    private const int S = 3, D = 8, H = 2, Hd = 4;

    /// <summary>GPT-2 style attention: one fused c_attn (D → 3D) split into Q, K, V.</summary>
    private static GraphBuilder FusedQkv()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 1, S, D);
        var n = b.Shape(b.Node("LayerNormalization", "ln", [x, b.Weight("ln.w", D), b.Weight("ln.b", D)], ("axis", -1L)), 1, S, D);
        var qkv = b.Linear("c_attn", n, D, 3 * D, [1, S]);
        var split = b.NodeMulti("Split", "split", [qkv, b.Ints("sizes", D, D, D)], ["q", "k", "v"], ("axis", 2L));
        string Heads(string v, string perm)
        {
            var r = b.Node("Reshape", v + "_heads", [v, b.Ints(v + "_shape", 0, 0, H, Hd)]);
            return b.Node("Transpose", v + "_t", [r], ("perm", perm == "k" ? new long[] { 0, 2, 3, 1 } : new long[] { 0, 2, 1, 3 }));
        }
        var scores = b.Node("MatMul", "scores", [Heads("q", "q"), Heads("k", "k")]);
        var probs = b.Node("Softmax", "softmax", [scores], ("axis", -1L));
        var ctx = b.Node("MatMul", "context", [probs, Heads("v", "v")]);
        var merged = b.Node("Reshape", "merge", [b.Node("Transpose", "ctx_t", [ctx], ("perm", new long[] { 0, 2, 1, 3 })), b.Ints("mshape", 0, 0, D)]);
        var o = b.Linear("c_proj", merged, D, D, [1, S]);
        var h = b.Shape(b.Node("Add", "residual", [x, o]), 1, S, D);
        b.Output(h);
        return b;
    }

    [Fact]
    public void FusedQkv_IsRecognised()
    {
        var b = FusedQkv();
        var s = ModelStructure.Analyze(b.Build(), b.Shapes);
        var a = Assert.Single(s.Blocks).Attention!;
        Assert.Equal(("c_attn", (string?)null, "c_proj"), (a.FusedQkv, a.Q, a.Output));
        Assert.Equal((H, H, Hd), (a.Heads, a.KvHeads, a.HeadSize));
        Assert.Equal(["x", "residual_out"], s.HiddenStates);
    }

    [Fact]
    public void Structure_SerializesToJson()
    {
        var b = FusedQkv();
        var s = ModelStructure.Analyze(b.Build(), b.Shapes);
        string json = JsonSerializer.Serialize(s);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(2, doc.RootElement.GetProperty("LinearSites").GetArrayLength());
        Assert.Equal("c_attn", doc.RootElement.GetProperty("Blocks")[0].GetProperty("Attention").GetProperty("FusedQkv").GetString());
    }

    [Fact]
    public void DequantizedWeight_RecordsPathAndScales()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", 1, 6);
        var q = new TensorProto { Name = "wq", DataType = (int)OnnxDataType.Int8 };
        q.Dims.Add([10, 6]);
        q.RawData = Google.Protobuf.ByteString.CopyFrom(new byte[60]);
        b.Initializer(q);
        var scale = b.Weight("wq.scale", 10);
        var zp = new TensorProto { Name = "wq.zp", DataType = (int)OnnxDataType.Int8, RawData = Google.Protobuf.ByteString.CopyFrom(new byte[10]) };
        zp.Dims.Add(10);
        b.Initializer(zp);
        var dq = b.NodeMulti("DequantizeLinear", "dq", ["wq", scale, "wq.zp"], ["wdq"], ("axis", 0L));
        var wt = b.Node("Transpose", "wt", ["wdq"], ("perm", new long[] { 1, 0 }));
        var h = b.Node("MatMul", "fc1", [x, wt]);
        var r = b.Node("Relu", "relu", [h]);
        var y = b.Linear("fc2", r, 10, 3, [1]);
        b.Output(y);
        var s = ModelStructure.Analyze(b.Build(), b.Shapes);
        var fc1 = s.LinearSites.Single(l => l.Name == "fc1");
        Assert.Equal(["DequantizeLinear", "Transpose"], fc1.Weight.Path);
        Assert.Equal(("wq", WeightLayout.OutIn, 10, 6), (fc1.Weight.Initializer, fc1.Layout, fc1.OutFeatures, fc1.InFeatures));
        var chain = Assert.Single(s.Chains);
        Assert.Contains(new SliceTarget("wq", 0, SliceRole.ProducerWeight, "fc1", 1), chain.SliceTogether);
        Assert.Contains(new SliceTarget("wq.scale", 0, SliceRole.QuantizationParameter, "fc1", 1), chain.SliceTogether);
        Assert.Contains(new SliceTarget("wq.zp", 0, SliceRole.QuantizationParameter, "fc1", 1), chain.SliceTogether);
    }

    [Fact]
    public void CollectShapes_ResolvesSymbolicDims_AndTakesLeadingUnknownAsBatch()
    {
        var g = new GraphProto { Name = "g" };
        static ValueInfoProto Info(string name, params object[] dims)
        {
            var shape = new TensorShapeProto();
            foreach (var d in dims)
                shape.Dim.Add(d is long v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = (string)d });
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } };
        }
        g.Input.Add(Info("x", "batch", "seq", 8L));
        g.ValueInfo.Add(Info("y", "batch", "other", 8L));
        g.Output.Add(Info("x", "batch", "seq", 8L));
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Version = 17 });
        var shapes = GraphShapes.Collect(OnnxModel.FromProto(m).Graph, new Dictionary<string, int> { ["seq"] = 5 }, batchSize: 2);
        Assert.Equal([2, 5, 8], shapes["x"]);
        Assert.False(shapes.ContainsKey("y"));
    }
}
