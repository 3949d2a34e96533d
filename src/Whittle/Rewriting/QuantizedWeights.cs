// Graph edits of weight-only quantization, in forms ONNX Runtime runs on CPU:
//   linear  MatMul(x, W) / Gemm(x, W, C)  →  com.microsoft MatMulNBits(x, B, scales, zero_points) [+ Add C]
//           B: uint8 [N, blocks, blob] (each output's K weights in blocks, codes packed low bits first), scales float
//           [N · blocks], zero points uint8 [N · ⌈blocks · bits / 8⌉] (packed like the codes).
//   conv    Conv(x, W)  →  Conv(x, DequantizeLinear(W_q uint8, scale [Cout], zero point [Cout], axis 0))
//           (int8 per output channel; ONNX Runtime dequantizes the kernel once per run).
//   input   an activation-aware scaling (AWQ) divides the input by s: folded into the scale (and shift) of the norm that
//           writes it when only the quantized layers read it, else a Mul node in front of them.

using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Quantization;

namespace Whittle.Rewriting;

/// <summary>Rewrites a linear site as <c>MatMulNBits</c>, a convolution with an int8 kernel, and scales inputs (see the file header).</summary>
public static class QuantizedWeights
{
    /// <summary>ONNX Runtime's contrib domain, where <c>MatMulNBits</c> lives.</summary>
    public const string ContribDomain = "com.microsoft";

    /// <summary>
    /// Replaces the product of <paramref name="site"/> by <c>MatMulNBits</c> over <paramref name="w"/> (out × in, already
    /// scaled where the input is) reading <paramref name="input"/>. Returns the bytes of the new tensors.
    /// </summary>
    /// <exception cref="NotSupportedException">A Gemm with transA, α ≠ 1 or β ≠ 1, or a weight that is the left operand.</exception>
    public static long ReplaceLinear(OnnxModel model, LinearSite site, Matrix<float> w, QuantizationFormat format, string input)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(format);
        if (Unsupported(model, site) is { } why) throw new NotSupportedException($"Site '{site.Name}': {why}.");
        if (w.Rows != site.OutFeatures || w.Cols != site.InFeatures)
            ThrowHelper.ShapeMismatch(nameof(w), $"Site '{site.Name}': the weight", $"{site.OutFeatures}×{site.InFeatures}", $"{w.Rows}×{w.Cols}");
        Finite(w.AsSpan(), site.Weight.Initializer, site.Name, model.FilePath);
        var graph = model.Graph;
        graph.EnsureOpset(ContribDomain, 1);
        var node = SiteWeights.SiteNode(model, site);
        int n = w.Rows, k = w.Cols, blocks = format.Blocks(k), zeroBytes = format.ZeroPointBytes(k);
        var packed = new byte[(long)n * blocks * format.BlobSize];
        var scales = new float[(long)n * blocks];
        var zeroPoints = new byte[(long)n * zeroBytes];
        var codes = new byte[blocks * format.BlockSize];
        var zeros = new byte[blocks];
        for (int o = 0; o < n; o++)
        {
            BlockQuantizer.Quantize(w.Row(o), format, codes, scales.AsSpan(o * blocks, blocks), zeros);
            BlockQuantizer.Pack(codes, format.Bits, packed.AsSpan(o * blocks * format.BlobSize, blocks * format.BlobSize));
            BlockQuantizer.Pack(zeros, format.Bits, zeroPoints.AsSpan(o * zeroBytes, zeroBytes));
        }
        string b = graph.UniqueName($"{site.Name}.q{format.Bits}"), s = graph.UniqueName($"{site.Name}.scales"), z = graph.UniqueName($"{site.Name}.zero_points");
        TensorProto[] tensors =
        [
            OnnxTensors.FromBytes(b, OnnxDataType.UInt8, [n, blocks, format.BlobSize], packed),
            OnnxTensors.FromArray<float>(s, scales, [scales.Length], OnnxDataType.Float),
            OnnxTensors.FromBytes(z, OnnxDataType.UInt8, [zeroPoints.Length], zeroPoints),
        ];
        string? addend = site.OpType == "Gemm" && node.Input.Count > 2 && node.Input[2].Length > 0 ? node.Input[2] : null;
        string product = addend is null ? site.ProductOutput : graph.UniqueName($"{site.Name}.product");
        var nodes = new List<NodeProto>
        {
            new()
            {
                OpType = "MatMulNBits", Domain = ContribDomain, Name = graph.UniqueName($"{site.Name}/MatMulNBits"),
                Input = { input, b, s, z }, Output = { product },
                Attribute =
                {
                    OnnxAttributes.Int("K", k), OnnxAttributes.Int("N", n), OnnxAttributes.Int("bits", format.Bits),
                    OnnxAttributes.Int("block_size", format.BlockSize),
                },
            },
        };
        if (addend is not null)
            nodes.Add(new NodeProto { OpType = "Add", Name = graph.UniqueName($"{site.Name}/bias"), Input = { product, addend }, Output = { site.ProductOutput } });
        graph.ReplaceNode(node, nodes, tensors);
        return packed.LongLength + scales.LongLength * sizeof(float) + zeroPoints.LongLength;
    }

    /// <summary>A NaN or infinity would quantize to a meaningless code (and spoil its block's scale): refused, naming the tensor.</summary>
    private static void Finite(ReadOnlySpan<float> values, string tensor, string site, string? file)
    {
        int bad = IndexOfNonFinite(values);
        if (bad >= 0)
            throw new OnnxModelException($"{OnnxModelException.Describe(file)}: weight '{tensor}' of layer '{site}' holds {values[bad]} at element {bad}; "
                + "quantization needs finite weights.", file, tensor);
    }

    private static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>Why <paramref name="site"/> cannot become <c>MatMulNBits</c>, or null.</summary>
    public static string? Unsupported(OnnxModel model, LinearSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        if (site.WeightIsLeftOperand) return "its weight is the left operand (W·x); MatMulNBits multiplies x·W";
        if (site.Weight.Path.Contains("DequantizeLinear")) return $"its weight '{site.Weight.Initializer}' is quantized already";
        if (SiteWeights.ComputeType(model, site) != OnnxDataType.Float) return "it computes in a type other than float32";
        if (site.OpType != "Gemm") return null;
        var node = SiteWeights.SiteNode(model, site);
        if (GraphQuery.Int(node, "transA", 0) != 0) return "Gemm with transA = 1";
        if (GraphQuery.Float(node, "alpha", 1f) != 1f || GraphQuery.Float(node, "beta", 1f) != 1f) return "Gemm with α or β other than 1";
        return null;
    }

    /// <summary>
    /// Replaces the kernel of <paramref name="site"/> (group 1 or grouped, read directly) by uint8 codes per output channel
    /// behind <c>DequantizeLinear</c>. Returns the bytes of the new tensors.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model's default opset is older than 13 (per-axis DequantizeLinear).</exception>
    public static long ReplaceConv(OnnxModel model, ConvSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        var graph = model.Graph;
        var node = graph.Nodes.FirstOrDefault(n => n.OpType == "Conv" && GraphQuery.NameOf(n) == site.Name)
            ?? throw new ArgumentException($"Conv '{site.Name}' is not in the graph.", nameof(site));
        var kernel = model.Tensor(GraphQuery.ConstantTensor(graph, site.Weight.Initializer)
            ?? throw new ArgumentException($"Conv '{site.Name}': its kernel '{site.Weight.Initializer}' is not a constant.", nameof(site)));
        var values = kernel.ToArray<float>();
        Finite(values, site.Weight.Initializer, site.Name, model.FilePath);
        int rows = site.OutChannels, cols = checked((int)(values.Length / rows));
        var channel = new QuantizationFormat(8, cols); // one block per output channel
        var codes = new byte[values.Length];
        var scales = new float[rows];
        var zeros = new byte[rows];
        for (int o = 0; o < rows; o++)
            BlockQuantizer.Quantize(values.AsSpan(o * cols, cols), channel, codes.AsSpan(o * cols, cols), scales.AsSpan(o, 1), zeros.AsSpan(o, 1));
        string q = graph.UniqueName($"{site.Name}.weight_q8"), s = graph.UniqueName($"{site.Name}.weight_scale"), z = graph.UniqueName($"{site.Name}.weight_zero_point");
        string dequantized = graph.UniqueName($"{site.Name}.weight_dequantized");
        TensorProto[] tensors =
        [
            OnnxTensors.FromBytes(q, OnnxDataType.UInt8, [.. kernel.Shape], codes),
            OnnxTensors.FromArray<float>(s, scales, [rows], OnnxDataType.Float),
            OnnxTensors.FromBytes(z, OnnxDataType.UInt8, [rows], zeros),
        ];
        var copy = node.Clone();
        copy.Name = graph.UniqueName(site.Name);
        copy.Input[1] = dequantized;
        var dq = new NodeProto
        {
            OpType = "DequantizeLinear", Name = graph.UniqueName($"{site.Name}/DequantizeLinear"),
            Input = { q, s, z }, Output = { dequantized }, Attribute = { OnnxAttributes.Int("axis", 0) },
        };
        graph.ReplaceNode(node, [dq, copy], tensors);
        return codes.LongLength + scales.LongLength * sizeof(float) + zeros.LongLength;
    }

    /// <summary>
    /// Makes the layers <paramref name="readers"/> read <paramref name="input"/> divided by <paramref name="scales"/> (one per
    /// feature, the last axis): folded into the norm that writes it where <paramref name="canEditProducer"/> allows and
    /// nothing else reads it, else a new <c>Mul</c>. Returns the value the readers should read and how it was done.
    /// </summary>
    public static (string Value, string How) ScaleInput(OnnxModel model, string input, ReadOnlySpan<float> scales, IReadOnlyCollection<string> readers, Func<NodeProto, bool> canEditProducer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(readers);
        ArgumentNullException.ThrowIfNull(canEditProducer);
        var graph = model.Graph;
        var inverse = new float[scales.Length];
        for (int i = 0; i < inverse.Length; i++) inverse[i] = 1f / scales[i];
        // Nodes that read only the input's shape (an export's Shape before a reshape) do not see the scaling.
        bool onlyReaders = !graph.IsGraphOutput(input)
            && graph.Consumers(input).All(c => readers.Contains(GraphQuery.NameOf(c)) || c.OpType is "Shape" or "Size");
        if (onlyReaders && graph.Producer(input) is { } producer && canEditProducer(producer) && FoldInto(model, producer, inverse))
            return (input, $"folded into '{GraphQuery.NameOf(producer)}'");
        string factor = graph.UniqueName($"{input}.awq_inverse_scale"), scaled = graph.UniqueName($"{input}.awq_scaled");
        var mul = new NodeProto { OpType = "Mul", Name = graph.UniqueName($"{input}/awq_scale"), Input = { input, factor }, Output = { scaled } };
        graph.Proto.Node.Add(mul);
        graph.AddInitializer(OnnxTensors.FromArray<float>(factor, inverse, [inverse.Length], OnnxDataType.Float));
        graph.Invalidate();
        return (scaled, "a Mul in front of the layers");
    }

    /// <summary>Divides the per-feature constants of a norm's last step by s: <c>Mul(x, γ)</c>, <c>Add(Mul(x, γ), β)</c> or <c>LayerNormalization</c>.</summary>
    private static bool FoldInto(OnnxModel model, NodeProto producer, float[] inverse)
    {
        var graph = model.Graph;
        List<(string Name, NodeProto Node, int Slot)> constants = [];
        switch (producer.OpType)
        {
            case "LayerNormalization" or "SimplifiedLayerNormalization" or "RMSNormalization":
                for (int i = 1; i < producer.Input.Count; i++)
                    if (producer.Input[i].Length > 0) constants.Add((producer.Input[i], producer, i));
                if (GraphQuery.Int(producer, "axis", -1) != -1) return false;
                break;
            case "Mul" when PerFeature(graph, producer, inverse.Length) is { } slot:
                constants.Add((producer.Input[slot], producer, slot));
                break;
            case "Add" when PerFeature(graph, producer, inverse.Length) is { } slot
                            && graph.Producer(producer.Input[1 - slot]) is { OpType: "Mul" } mul
                            && graph.Consumers(mul.Output[0]).Count == 1 && !graph.IsGraphOutput(mul.Output[0])
                            && PerFeature(graph, mul, inverse.Length) is { } mulSlot:
                constants.Add((producer.Input[slot], producer, slot));
                constants.Add((mul.Input[mulSlot], mul, mulSlot));
                break;
            default:
                return false;
        }
        foreach (var (name, _, _) in constants)
            if (GraphQuery.ConstantTensor(graph, name) is not { } t || t.DataType != (int)OnnxDataType.Float || t.Dims.Aggregate(1L, (a, d) => a * d) != inverse.Length)
                return false;
        foreach (var (name, node, slot) in constants)
        {
            var t = GraphQuery.ConstantTensor(graph, name)!;
            var values = model.Tensor(t).ToArray<float>();
            System.Numerics.Tensors.TensorPrimitives.Multiply(values, inverse, values);
            // A new tensor: the constant may be read elsewhere (a shared norm weight).
            string scaled = graph.UniqueName($"{name}.awq");
            graph.AddInitializer(OnnxTensors.FromArray<float>(scaled, values, [.. t.Dims], OnnxDataType.Float));
            node.Input[slot] = scaled;
        }
        graph.Invalidate();
        return true;
    }

    /// <summary>The input slot of a binary node that is a float constant with one value per feature, the other operand not constant.</summary>
    private static int? PerFeature(OnnxGraph graph, NodeProto node, int features)
    {
        if (node.Input.Count != 2) return null;
        for (int slot = 0; slot < 2; slot++)
            if (GraphQuery.ConstantTensor(graph, node.Input[slot]) is { } t && GraphQuery.ConstantTensor(graph, node.Input[1 - slot]) is null
                && t.Dims.Count >= 1 && t.Dims[^1] == features && t.Dims.Aggregate(1L, (a, d) => a * d) == features)
                return slot;
        return null;
    }
}
