using Whittle.Analysis;
using Whittle.Data;
using Whittle.Import;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;
using Whittle.Tests.Fixtures;
using Whittle.Tests.Import;
using Whittle.Tests.Methods;
using Xunit.Abstractions;

namespace Whittle.Tests.Analysis;

/// <summary>
/// <see cref="Segmentation.Find"/> on transformers built in code, the trained Fashion-MNIST fixtures and the real
/// stories260K: where the cuts fall, and that the layout is a partition whose segments, run one after another in their
/// own ONNX Runtime sessions, compute what the whole model computes.
/// </summary>
public class SegmentationTests(ITestOutputHelper output)
{
    // ------------------------------------------------------------------ transformers

    public static TheoryData<Family> Families => new() { Family.Llama, Family.Gpt2, Family.Bert };

    [Theory]
    [MemberData(nameof(Families))]
    public void TransformersAreCutAtEveryBlockInputAndAfterTheLastBlock(Family family)
    {
        const int blocks = 3;
        var model = TransformerGraphs.Build(family, blocks, d: 16, heads: 2, seed: 2);
        var structure = ModelStructure.Analyze(model);
        var segmentation = Segmentation.Find(model, structure);

        Assert.Equal("transformer blocks", segmentation.Rule);
        Assert.Equal(["embedding", "block 0", "block 1", "block 2", "head"], segmentation.Names);
        Assert.Equal(blocks + 2, segmentation.Count);
        // The values TransformerGraphs writes between blocks: the embedding (after its LayerNorm for BERT), then each block's output.
        string embedding = family == Family.Bert ? "embed_ln_out" : "embed_out";
        // BERT is post-LayerNorm: block l + 1 reads block l's LayerNorm output, but the last block ends at its residual Add
        // (its LayerNorm runs in the head segment).
        string After(int l) => family == Family.Bert && l < blocks - 1 ? $"b{l}.ln2_out" : $"b{l}.mlp_residual_out";
        Assert.Equal([embedding, After(0), After(1), After(2)], segmentation.Boundaries);
        Assert.Equal([.. structure.Blocks.Select(b => b.Input), structure.Blocks[^1].Output], segmentation.Boundaries);

        var layout = segmentation.Layout(model);
        // Every site of block l runs in segment l + 1, the head in the last.
        foreach (var site in structure.LinearSites)
        {
            int expected = site.Name == "lm_head" ? blocks + 1 : int.Parse(site.Name[1..site.Name.IndexOf('.')], System.Globalization.CultureInfo.InvariantCulture) + 1;
            Assert.Equal(expected, layout.SegmentOf(site.Name));
        }
        Assert.Equal(0, layout.SegmentOf("embed"));
        if (family == Family.Bert)
        {
            // The additive attention mask is computed once, before the first boundary, and carried to every block.
            Assert.Equal(0, layout.SegmentOf("mask_4d"));
            for (int l = 1; l <= blocks; l++) Assert.Contains("mask_4d_out", layout.Segments[l].Inputs);
            Assert.True(layout.ReadAfter("mask_4d_out", blocks - 1));  // block 2 (segment 3) reads it
            Assert.False(layout.ReadAfter("mask_4d_out", blocks));     // the head does not
        }

        var batch = TransformerGraphs.Batches(1, 2, 5, mask: family == Family.Bert, seed: 4)[0];
        CheckLayout(model, segmentation, batch);
    }

    [Fact]
    public void Stories260KIsCutIntoItsFiveBlocksAndRunsSegmentBySegment()
    {
        var model = Llama2cImporter.Import(SharedModels.Stories260K("stories260K.bin"), SharedModels.Stories260K("tok512.bin"));
        var structure = ModelStructure.Analyze(model);
        var segmentation = Segmentation.Find(model, structure);
        output.WriteLine(string.Join(" | ", segmentation.Boundaries));
        Assert.Equal("transformer blocks", segmentation.Rule);
        Assert.Equal(["embedding", "block 0", "block 1", "block 2", "block 3", "block 4", "head"], segmentation.Names);
        Assert.Equal([.. structure.Blocks.Select(b => b.Input), structure.Blocks[^1].Output], segmentation.Boundaries);
        Assert.Equal("embed_tokens", segmentation.Boundaries[0]);
        var layout = segmentation.Layout(model);
        foreach (var site in structure.LinearSites.SkipLast(1))
            Assert.Equal(int.Parse(site.Name.Split('.')[1], System.Globalization.CultureInfo.InvariantCulture) + 1, layout.SegmentOf(site.Name));
        Assert.Equal(6, layout.SegmentOf(structure.LinearSites[^1].Name)); // the tied classifier

        var rng = new Random(3);
        var ids = new long[2 * 9];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.Next(512);
        CheckLayout(model, segmentation, new Dictionary<string, HostTensor> { ["input_ids"] = HostTensor.Int64(ids, 2, 9) });
    }

    // ------------------------------------------------------------------ trained CNN / MLP fixtures

    private static (OnnxModel Model, InputBatch Batch) Fixture(string name)
    {
        var model = OnnxModel.Load(RepoFixtures.Path("fashion-mnist", name + ".onnx"));
        var data = ModelData.Load(model, new DataSource(RepoFixtures.Path("fashion-mnist", "calib-images-idx3-ubyte.gz"),
            RepoFixtures.Path("fashion-mnist", "calib-labels-idx1-ubyte.gz")));
        return (model, data.Batches(6)[0]);
    }

    [Theory]
    [InlineData("mlp")]
    [InlineData("vgg")]
    public void ChainsThatRunThroughTheWholeModelLeaveItOneSegment(string name)
    {
        var (model, batch) = Fixture(name);
        var structure = ModelStructure.Analyze(model);
        var segmentation = Segmentation.Find(model, structure);
        Assert.Equal("whole model", segmentation.Rule);
        Assert.Equal(1, segmentation.Count);
        Assert.Empty(segmentation.Boundaries);
        Assert.Same(Segmentation.Whole, segmentation);

        // Why: between any two weight sites the activation flows through one value, but every such value lies inside a
        // prunable chain (its producer and consumer layers must stay together).
        Assert.NotEmpty(structure.Chains);
        var order = model.Graph.TopologicalOrder().Select(GraphQuery.NameOf).ToList();
        var sites = structure.LinearSites.Select(s => s.Name).Concat(structure.ConvSites.Select(s => s.Name)).Select(n => order.IndexOf(n)).Order().ToList();
        for (int i = 0; i + 1 < sites.Count; i++)
            Assert.Contains(structure.Chains, c =>
            {
                var ends = c.Producers.Concat(c.Consumers).Select(n => order.IndexOf(n)).ToList();
                return ends.Min() <= sites[i] && ends.Max() >= sites[i + 1];
            });
        CheckLayout(model, segmentation, batch);
    }

    [Fact]
    public void ResNetIsCutAtResidualJoinsOutsideEveryChainWithAWeightSiteInEverySegment()
    {
        var (model, batch) = Fixture("resnet");
        var structure = ModelStructure.Analyze(model);
        var segmentation = Segmentation.Find(model, structure);
        output.WriteLine($"{segmentation.Rule}: {string.Join(" | ", segmentation.Boundaries)}");
        Assert.Equal("single-value cuts", segmentation.Rule);
        // After the stem's convolution (its channels feed the first skip connection, so no chain holds it), then at the
        // residual join of each of the three stages.
        Assert.Equal(["/stem/stem.0/Conv_output_0", "/stages/stages.0/Add_output_0", "/stages/stages.1/Add_output_0", "/stages/stages.2/Add_output_0"],
            segmentation.Boundaries);
        Assert.Equal(["segment 0", "segment 1", "segment 2", "segment 3", "segment 4"], segmentation.Names);

        var layout = segmentation.Layout(model);
        var graph = model.Graph;
        foreach (var join in segmentation.Boundaries.Skip(1).Select(b => graph.Producer(b)!))
        {
            Assert.Equal("Add", join.OpType);
            Assert.All(join.Input, i => Assert.NotNull(graph.Producer(i))); // two activations: a skip connection
        }
        // Everything flows through each boundary: at that point of the graph's order it is the only value still to be read.
        var order = graph.TopologicalOrder();
        foreach (var boundary in segmentation.Boundaries)
        {
            int at = order.ToList().FindIndex(n => n.Output.Contains(boundary));
            var live = order.Take(at + 1).SelectMany(n => n.Output)
                .Where(v => order.Skip(at + 1).Any(n => n.Input.Contains(v)) || graph.IsGraphOutput(v)).ToList();
            Assert.Equal([boundary], live);
        }
        foreach (var segment in layout.Segments)
            Assert.True(structure.LinearSites.Any(s => layout.SegmentOf(s.Name) == segment.Index) || structure.ConvSites.Any(s => layout.SegmentOf(s.Name) == segment.Index),
                $"{segment.Name} holds no weight site");
        Assert.NotEmpty(structure.Chains);
        foreach (var chain in structure.Chains)
        {
            var segments = chain.Producers.Concat(chain.Consumers).Select(layout.SegmentOf).Distinct().ToList();
            Assert.True(segments.Count == 1, $"chain {chain.Id} crosses a boundary: segments {string.Join(", ", segments)}");
        }
        CheckLayout(model, segmentation, batch);
    }

    // ------------------------------------------------------------------ given boundaries

    [Fact]
    public void GivenBoundariesMustBeActivationsInGraphOrder()
    {
        var model = TransformerGraphs.Build(Family.Llama, 3, d: 16, heads: 2, seed: 2);
        string[] inOrder = ["b0.mlp_residual_out", "b1.mlp_residual_out"];
        var given = Segmentation.Of(model, inOrder);
        Assert.Equal("given", given.Rule);
        Assert.Equal(["segment 0", "segment 1", "segment 2"], given.Names);
        Assert.Equal(inOrder, given.Boundaries);
        CheckLayout(model, given, TransformerGraphs.Batches(1, 2, 4, mask: false, seed: 1)[0]);

        var e = Assert.Throws<ArgumentException>(() => Segmentation.Of(model, ["b1.mlp_residual_out", "b0.mlp_residual_out"]));
        Assert.Contains("do not cut the graph in order", e.Message);
        Assert.Contains("b0.mlp_residual_out", e.Message);
        Assert.Contains("not a value computed from the graph's inputs", Assert.Throws<ArgumentException>(() => Segmentation.Of(model, ["wte"])).Message);
        Assert.Contains("not a value computed from the graph's inputs", Assert.Throws<ArgumentException>(() => Segmentation.Of(model, ["no such value"])).Message);
        // A value computed from initializers alone cannot join two segments.
        var g = new GraphBuilder();
        var x = g.Input("x", 2, 3);
        var c = g.Node("Neg", "neg", [g.Weight("w", 2, 3)]);
        g.Output(g.Shape(g.Node("Add", "add", [x, c]), 2, 3));
        Assert.Contains("is a constant", Assert.Throws<ArgumentException>(() => Segmentation.Of(g.Build(), [c])).Message);
    }

    // ------------------------------------------------------------------ layout checks

    /// <summary>
    /// The layout of <paramref name="segmentation"/> on <paramref name="model"/> is a partition of the nodes that read the
    /// graph's inputs (constant nodes copied where read), each boundary b_k is produced in segment k, each segment reads only
    /// the graph's inputs and earlier segments' values, and running the segments one after another reproduces the outputs.
    /// </summary>
    private void CheckLayout(OnnxModel model, Segmentation segmentation, IReadOnlyDictionary<string, HostTensor> inputs)
    {
        var layout = segmentation.Layout(model);
        var graph = model.Graph;
        Assert.Equal(segmentation.Count, layout.Segments.Count);
        Assert.Equal(Enumerable.Range(0, segmentation.Count), layout.Segments.Select(s => s.Index));
        Assert.Equal(segmentation.Names, layout.Segments.Select(s => s.Name));

        // Non-constant nodes: those reading, directly or not, a graph input.
        var live = graph.Inputs.Select(i => i.Name).Where(n => !graph.TryGetInitializer(n, out _)).ToHashSet(StringComparer.Ordinal);
        var nonConstant = new List<NodeProto>();
        foreach (var node in graph.TopologicalOrder())
            if (graph.Reads(node).Any(live.Contains))
            {
                nonConstant.Add(node);
                foreach (var o in node.Output) if (o.Length > 0) live.Add(o);
            }
        var all = graph.Nodes.ToHashSet(ReferenceEqualityComparer.Instance);
        foreach (var segment in layout.Segments) Assert.All(segment.Nodes, n => Assert.Contains(n, all));
        foreach (var node in nonConstant)
        {
            int count = layout.Segments.Count(s => s.Nodes.Contains(node, ReferenceEqualityComparer.Instance));
            Assert.True(count == 1, $"node '{node.Name}' ({node.OpType}) is in {count} segments");
        }
        int total = layout.Segments.Sum(s => s.Nodes.Count(n => live.Overlaps(n.Output)));
        Assert.Equal(nonConstant.Count, total);

        for (int k = 0; k < segmentation.Boundaries.Count; k++)
        {
            Assert.Contains(segmentation.Boundaries[k], layout.Segments[k].Produced);
            Assert.Contains(segmentation.Boundaries[k], layout.Segments[k + 1].Inputs);
        }
        var declared = graph.Inputs.ToDictionary(i => i.Name, StringComparer.Ordinal);
        foreach (var segment in layout.Segments)
            foreach (var input in segment.Inputs)
                Assert.True(declared.ContainsKey(input) || layout.Segments.Take(segment.Index).Any(s => s.Produced.Contains(input)),
                    $"{segment.Name} reads '{input}', neither a graph input nor produced earlier");

        // Run the segments in order, each in its own session fed from earlier outputs.
        var values = new Dictionary<string, HostTensor>(inputs, StringComparer.Ordinal);
        var outputs = graph.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var segment in layout.Segments)
        {
            var later = layout.Segments.Skip(segment.Index + 1).SelectMany(s => s.Inputs).ToHashSet(StringComparer.Ordinal);
            var wanted = segment.Produced.Where(v => later.Contains(v) || outputs.Contains(v)).Order(StringComparer.Ordinal).ToList();
            Assert.NotEmpty(wanted);
            var typed = segment.Inputs.Select(n => declared.TryGetValue(n, out var info) ? info : Symbolic(n, values[n])).ToList();
            var proto = SubModel.Extract(model, segment.Nodes, typed, wanted);
            using var session = TappedSession.Create(OnnxModel.FromProto(proto, model.BaseDirectory), []);
            foreach (var (name, value) in session.Run(segment.Inputs.ToDictionary(n => n, n => values[n], StringComparer.Ordinal)))
                values[name] = value;
        }
        using var whole = TappedSession.Create(model, []);
        foreach (var (name, expected) in whole.Run(inputs))
        {
            Assert.True(values.ContainsKey(name), $"no segment produced the output '{name}'");
            var actual = values[name];
            Assert.Equal(expected.Shape, actual.Shape);
            double error = 0, norm = 0;
            var a = actual.AsFloats();
            var e = expected.AsFloats();
            for (int i = 0; i < e.Length; i++)
            {
                error += (double)(a[i] - e[i]) * (a[i] - e[i]);
                norm += (double)e[i] * e[i];
            }
            double relative = Math.Sqrt(error / norm);
            output.WriteLine($"{segmentation.Count} segment(s), output '{name}': relative difference {relative:E2}");
            Assert.True(relative <= 1e-5, $"output '{name}': segment by segment differs from the whole model by {relative:E3} (relative)");
        }
    }

    private static ValueInfoProto Symbolic(string name, HostTensor value)
    {
        var shape = new TensorShapeProto();
        for (int d = 0; d < value.Rank; d++) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = $"{name}_d{d}" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)value.ElementType, Shape = shape } } };
    }
}
