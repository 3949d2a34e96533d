using System.CommandLine;
using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Cli.Compress;

/// <summary>
/// <c>whittle compress --method int4|int8</c> (and <c>whittle quantize</c>, and the last stage of <c>compress --quantize</c>):
/// weight-only quantization to ONNX Runtime's MatMulNBits, with AWQ-style scales from the calibration data or round to
/// nearest.
/// </summary>
internal sealed class QuantizeCli : IMethodCli
{
    /// <summary>The weight widths by method name.</summary>
    public static IReadOnlyDictionary<string, int> Widths { get; } = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase) { ["int4"] = 4, ["int8"] = 8 };

    internal Option<int?> BlockSize { get; } = new("--block-size")
    {
        Description = "Weights per quantization block along a layer's input (a power of two ≥ 16): one float scale and one zero point per block. "
            + "Default 32 for int4, 128 for int8 (a float scale per 32 bytes would add 16 % to int8's weights).",
    };

    internal Option<string> Scales { get; } = CreateScales();

    private static Option<string> CreateScales()
    {
        var o = new Option<string>("--scales")
        {
            Description = "awq: per-input-channel scales chosen on the calibration data (AWQ), never worse than round to nearest there; rtn: round to "
                + "nearest, no calibration pass (no --calib needed). Default awq with --calib, else rtn.",
        };
        o.AcceptOnlyFromAmong("awq", "rtn");
        return o;
    }

    public IReadOnlyList<string> Names { get; } = ["int4", "int8"];

    public string Description => "Weight-only quantization: MatMul/Gemm weights to ONNX Runtime's MatMulNBits (4 or 8 bits in blocks), convolution kernels to int8 per channel.";

    public IReadOnlyList<Option> Options => [BlockSize, Scales];

    public bool TakesBudgets => false;

    public ICompressionMethod Create(string name, ParseResult parse) => Create(name, parse, calibrated: true);

    /// <summary>The method for <c>int4</c>/<c>int8</c>; <paramref name="calibrated"/>: whether calibration data was given.</summary>
    public WeightQuantization Create(string name, ParseResult parse, bool calibrated)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (!Widths.TryGetValue(name, out int bits)) throw new ArgumentException($"'{name}': expected int4 or int8.");
        int block = parse.GetValue(BlockSize) ?? WeightQuantizationOptions.DefaultBlockSize(bits);
        if (block < 16 || (block & (block - 1)) != 0) throw new ArgumentException($"--block-size {block}: expected a power of two of at least 16 (32, 64, 128).");
        string scales = parse.GetValue(Scales) ?? (calibrated ? "awq" : "rtn");
        if (scales == "awq" && !calibrated) throw new ArgumentException("--scales awq needs calibration data (--calib); without it, quantization rounds to nearest (--scales rtn).");
        return new WeightQuantization(new WeightQuantizationOptions { Bits = bits, BlockSize = block, ActivationAware = scales == "awq" });
    }

    /// <summary>Whether <paramref name="method"/> runs without calibration data.</summary>
    public static bool NeedsNoData(ICompressionMethod method) => method is WeightQuantization { Options.ActivationAware: false };

    /// <summary>
    /// One batch of ones at the model's analysis shapes (batch 1, sequence <see cref="AnalysisShapes.DefaultSequenceLength"/>):
    /// what the harness probes shapes with when no calibration data is needed.
    /// </summary>
    public static BatchSet Ones(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var shapes = AnalysisShapes.Resolve(model);
        if (shapes.Inputs.FirstOrDefault(i => i.Shape.Aggregate(1.0, (a, d) => a * Math.Max(d, 1)) > AnalysisShapes.MaxProbeElements) is { } huge)
            throw new ArgumentException($"{OnnxModelException.Describe(model.FilePath)}: input '{huge.Name}' would be [{string.Join(",", huge.Shape)}], "
                + $"over {AnalysisShapes.MaxProbeElements:N0} elements; give calibration data (--calib) of the shape it takes.");
        var graph = model.Graph;
        var tensors = shapes.Inputs.Select(i =>
        {
            var type = (OnnxDataType)(graph.Inputs.First(v => v.Name == i.Name).Type?.TensorType?.ElemType ?? (int)OnnxDataType.Float);
            return new KeyValuePair<string, HostTensor>(i.Name, HostTensor.Filled(type, [.. i.Shape], ones: true));
        });
        return new BatchSet([new InputBatch(tensors, "ones (no calibration data)")], description: "ones at the model's input shapes (no calibration data)");
    }
}
