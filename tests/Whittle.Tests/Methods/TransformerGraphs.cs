using Whittle.Data;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;

namespace Whittle.Tests.Methods;

/// <summary>The three transformer families CURing must handle.</summary>
public enum Family
{
    /// <summary>Pre-RMSNorm (exported Pow/ReduceMean/Sqrt/Div/Mul form), separate bias-free Q/K/V/O, SiLU-gated MLP.</summary>
    Llama,

    /// <summary>Pre-LayerNorm, one fused Q/K/V MatMul split in three, biases, plain ReLU MLP.</summary>
    Gpt2,

    /// <summary>Post-LayerNorm encoder with an attention_mask input (additive mask), separate Q/K/V/O with biases, plain MLP.</summary>
    Bert,
}

/// <summary>
/// Runnable transformer graphs with random (seeded) weights and symbolic batch and sequence axes, built in code:
/// token ids → Gather → L blocks → final norm → logits. Every weight is Gaussian / sqrt(fan-in).
/// </summary>
internal sealed class TransformerGraphs
{
    private readonly GraphProto _g = new() { Name = "transformer" };
    private int _seed;

    private TransformerGraphs(int seed) => _seed = seed;

    public const int Vocab = 40;

    /// <summary>
    /// A model of <paramref name="blocks"/> blocks of width <paramref name="d"/>. <paramref name="quiet"/> blocks have their
    /// attention-output and down projections scaled by 1e-3, so they barely change the hidden state.
    /// </summary>
    public static OnnxModel Build(Family family, int blocks, int d = 16, int heads = 2, int seed = 1, params int[] quiet) =>
        Build(family, blocks, Vocab, d, heads, seed, quiet);

    /// <summary>As above, with a vocabulary of <paramref name="vocab"/> tokens (256 for a byte-level model).</summary>
    public static OnnxModel Build(Family family, int blocks, int vocab, int d, int heads, int seed, int[] quiet)
    {
        var b = new TransformerGraphs(seed * 1000);
        b._g.Input.Add(Info("input_ids", OnnxDataType.Int64, "batch", "seq"));
        if (family == Family.Bert) b._g.Input.Add(Info("attention_mask", OnnxDataType.Int64, "batch", "seq"));
        var x = b.Node("Gather", "embed", [b.Weight("wte", vocab, d, 1.0), "input_ids"]);
        string? mask = null;
        if (family == Family.Bert)
        {
            x = b.LayerNorm("embed_ln", x, d);
            // (1 − mask)·(−1e4), shaped [B, 1, 1, S] to add to the attention scores.
            var m = b.Node("Cast", "mask_cast", ["attention_mask"], ("to", (long)OnnxDataType.Float));
            var inv = b.Node("Sub", "mask_inv", [b.Scalar("one", 1f), m]);
            var add = b.Node("Mul", "mask_scale", [inv, b.Scalar("neg", -1e4f)]);
            mask = b.Node("Unsqueeze", "mask_4d", [add, b.Ints("mask_axes", 1, 2)]);
        }
        for (int l = 0; l < blocks; l++)
            x = b.Block(family, $"b{l}.", x, d, heads, quiet.Contains(l) ? 1e-3 : 1.0, mask);
        var final = family switch
        {
            Family.Llama => b.RmsNorm("ln_f", x, d),
            Family.Gpt2 => b.LayerNorm("ln_f", x, d),
            _ => x,
        };
        var logits = b.Node("MatMul", "lm_head", [final, b.Weight("lm_head.weight", d, vocab, 1.0 / Math.Sqrt(d))]);
        b._g.Output.Add(new ValueInfoProto { Name = logits, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)OnnxDataType.Float } } });
        var proto = new ModelProto { IrVersion = 8, ProducerName = "whittle-tests", Graph = b._g };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return OnnxModel.FromProto(proto);
    }

    /// <summary>
    /// <paramref name="count"/> batches of <paramref name="batch"/> random sequences of <paramref name="length"/> tokens;
    /// with <paramref name="mask"/>, an attention_mask whose sequences have 1 … length real tokens (the rest padding).
    /// </summary>
    public static BatchSet Batches(int count, int batch, int length, bool mask, int seed)
    {
        var rng = new Random(seed);
        var batches = new List<InputBatch>();
        for (int c = 0; c < count; c++)
        {
            var ids = new long[batch * length];
            for (int i = 0; i < ids.Length; i++) ids[i] = rng.Next(Vocab);
            var inputs = new Dictionary<string, HostTensor> { ["input_ids"] = HostTensor.Int64(ids, batch, length) };
            if (mask)
            {
                var m = new long[batch * length];
                for (int s = 0; s < batch; s++)
                {
                    int real = 1 + rng.Next(length);
                    for (int p = 0; p < real; p++) m[s * length + p] = 1;
                }
                inputs["attention_mask"] = HostTensor.Int64(m, batch, length);
            }
            batches.Add(new InputBatch(inputs));
        }
        return new BatchSet(batches, description: "random tokens");
    }

    private string Block(Family family, string p, string x, int d, int heads, double outScale, string? mask)
    {
        int hd = d / heads;
        bool bias = family != Family.Llama;
        string attnIn = family switch
        {
            Family.Llama => RmsNorm(p + "ln1", x, d),
            Family.Gpt2 => LayerNorm(p + "ln1", x, d),
            _ => x,
        };
        string q, k, v;
        if (family == Family.Gpt2)
        {
            var qkv = Linear(p + "qkv", attnIn, d, 3 * d, bias: true);
            var parts = new[] { p + "q_out", p + "k_out", p + "v_out" };
            var split = new NodeProto { OpType = "Split", Name = p + "split", Input = { qkv, Ints(p + "split_sizes", d, d, d) } };
            split.Output.Add(parts);
            split.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = -1 });
            _g.Node.Add(split);
            (q, k, v) = (Heads(p + "q", parts[0], heads, hd), Heads(p + "k", parts[1], heads, hd), Heads(p + "v", parts[2], heads, hd));
        }
        else
        {
            q = Heads(p + "q", Linear(p + "q", attnIn, d, d, bias), heads, hd);
            k = Heads(p + "k", Linear(p + "k", attnIn, d, d, bias), heads, hd);
            v = Heads(p + "v", Linear(p + "v", attnIn, d, d, bias), heads, hd);
        }
        var kt = Node("Transpose", p + "kt", [k], ("perm", new long[] { 0, 1, 3, 2 }));
        var scores = Node("Div", p + "scale", [Node("MatMul", p + "scores", [q, kt]), Scalar(p + "sqrt_hd", MathF.Sqrt(hd))]);
        if (mask is not null) scores = Node("Add", p + "masked", [scores, mask]);
        var probs = Node("Softmax", p + "softmax", [scores], ("axis", -1L));
        var ctx = Node("Transpose", p + "ctx_t", [Node("MatMul", p + "context", [probs, v])], ("perm", new long[] { 0, 2, 1, 3 }));
        var merged = Node("Reshape", p + "merge", [ctx, Ints(p + "merge_shape", 0, 0, d)]);
        var o = Linear(p + "o", merged, d, d, bias, outScale);
        var h = Node("Add", p + "attn_residual", [x, o]);
        if (family == Family.Bert) h = LayerNorm(p + "ln1", h, d);
        string mlpIn = family switch
        {
            Family.Llama => RmsNorm(p + "ln2", h, d),
            Family.Gpt2 => LayerNorm(p + "ln2", h, d),
            _ => h,
        };
        string down;
        if (family == Family.Llama)
        {
            var gate = Linear(p + "gate", mlpIn, d, 2 * d, bias: false);
            var up = Linear(p + "up", mlpIn, d, 2 * d, bias: false);
            var silu = Node("Mul", p + "silu", [gate, Node("Sigmoid", p + "sig", [gate])]);
            down = Linear(p + "down", Node("Mul", p + "gated", [silu, up]), 2 * d, d, bias: false, outScale);
        }
        else
        {
            var fc1 = Linear(p + "fc1", mlpIn, d, 4 * d, bias: true);
            down = Linear(p + "fc2", Node("Relu", p + "relu", [fc1]), 4 * d, d, bias: true, outScale);
        }
        var y = Node("Add", p + "mlp_residual", [h, down]);
        return family == Family.Bert ? LayerNorm(p + "ln2", y, d) : y;
    }

    private string Heads(string name, string y, int heads, int hd)
    {
        var r = Node("Reshape", name + "_heads", [y, Ints(name + "_shape", 0, 0, heads, hd)]);
        return Node("Transpose", name + "_t", [r], ("perm", new long[] { 0, 2, 1, 3 }));
    }

    private string Linear(string name, string x, int inF, int outF, bool bias, double scale = 1.0)
    {
        var y = Node("MatMul", name, [x, Weight(name + ".weight", inF, outF, scale / Math.Sqrt(inF))]);
        return bias ? Node("Add", name + "_bias", [y, Weight(name + ".bias", outF, 0.1)]) : y;
    }

    private string LayerNorm(string name, string x, int d) =>
        Node("LayerNormalization", name, [x, Constant(name + ".weight", d, 1f), Constant(name + ".bias", d, 0f)], ("axis", -1L), ("epsilon", 1e-5f));

    private string RmsNorm(string name, string x, int d)
    {
        var p = Node("Pow", name + "_pow", [x, Scalar(name + ".two", 2f)]);
        var m = Node("ReduceMean", name + "_mean", [p], ("axes", new long[] { -1 }), ("keepdims", 1L));
        var r = Node("Sqrt", name + "_sqrt", [Node("Add", name + "_eps", [m, Scalar(name + ".eps", 1e-6f)])]);
        return Node("Mul", name, [Node("Div", name + "_div", [x, r]), Constant(name + ".weight", d, 1f)]);
    }

    private string Weight(string name, int rows, int cols, double scale)
    {
        var w = RandomMatrix.Gaussian<float>(rows, cols, _seed++);
        foreach (ref var v in w.AsSpan()) v = (float)(v * scale);
        _g.Initializer.Add(OnnxTensors.FromMatrix(name, w, OnnxDataType.Float));
        return name;
    }

    private string Weight(string name, int length, double scale)
    {
        var w = RandomMatrix.Gaussian<float>(1, length, _seed++);
        foreach (ref var v in w.AsSpan()) v = (float)(v * scale);
        _g.Initializer.Add(OnnxTensors.FromArray<float>(name, w.AsSpan(), [length], OnnxDataType.Float));
        return name;
    }

    private string Constant(string name, int length, float value)
    {
        var values = Enumerable.Repeat(value, length).ToArray();
        _g.Initializer.Add(OnnxTensors.FromArray<float>(name, values, [length], OnnxDataType.Float));
        return name;
    }

    private string Scalar(string name, float value)
    {
        _g.Initializer.Add(OnnxTensors.FromArray<float>(name, [value], [], OnnxDataType.Float));
        return name;
    }

    private string Ints(string name, params long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)OnnxDataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.Add(values);
        _g.Initializer.Add(t);
        return name;
    }

    private string Node(string op, string name, string[] inputs, params (string Name, object Value)[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.Add(name + "_out");
        foreach (var (an, av) in attributes)
        {
            var a = new AttributeProto { Name = an };
            switch (av)
            {
                case long l: a.Type = AttributeProto.Types.AttributeType.Int; a.I = l; break;
                case long[] ls: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.Add(ls); break;
                case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
                default: throw new ArgumentException($"attribute {an}");
            }
            n.Attribute.Add(a);
        }
        _g.Node.Add(n);
        return name + "_out";
    }

    private static ValueInfoProto Info(string name, OnnxDataType type, params string[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
