using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Cli.Benchmarks;

/// <summary>
/// One case of <c>whittle bench calibration</c>: the same batches through a plain session and through
/// <see cref="CalibrationRunner"/> with the taps a compression method would ask for.
/// </summary>
/// <param name="Model">The model's file name without extension.</param>
/// <param name="Taps">Which values are tapped, in words.</param>
/// <param name="StatisticNames">What the taps collect, in words.</param>
/// <param name="Statistics">Makes fresh statistics for one pass.</param>
/// <param name="Batches">The batches (built untimed, shared by both runs).</param>
/// <param name="BatchShape">The first input's shape per batch, as text.</param>
/// <param name="Plain">Creates a session without taps and runs every batch (fetching the model's outputs, no copies).</param>
/// <param name="Calibrate">One <see cref="CalibrationRunner.Run"/> pass over the batches.</param>
internal sealed record CalibrationCase(string Model, string Taps, string StatisticNames, Func<IReadOnlyList<IBatchStatistic>> Statistics,
    IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> Batches, string BatchShape, Action Plain, Action Calibrate);

/// <summary>
/// The cases of <c>whittle bench calibration</c>. Taps follow <see cref="ModelStructure"/>, as the compression
/// methods will: for a model with transformer blocks, every linear site's input with Gram + RMS (the whitening and
/// activation-aware statistics) and every block boundary hidden state with last-token collection; otherwise every
/// prunable chain's activation, once with the TSQR R factor (ID pruning) and once with the Gram. Both timed runs
/// include creating their session, so the ratio is the whole cost of a calibration pass over plain inference.
/// </summary>
internal static class CalibrationBenchmark
{
    /// <summary>The fixture models, found in <c>tests/Whittle.Tests/Fixtures</c> above the current or the program's folder.</summary>
    public static readonly string[] FixtureModels = ["resnet_cifar.onnx", "vgg_cifar.onnx", "gpt2_tiny.onnx", "llama_tiny.onnx"];

    /// <summary>The fixture models' paths.</summary>
    /// <exception cref="FileNotFoundException">No fixture folder was found.</exception>
    public static IReadOnlyList<string> DefaultModels()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var fixtures = Path.Combine(dir.FullName, "tests", "Whittle.Tests", "Fixtures");
                if (FixtureModels.All(m => File.Exists(Path.Combine(fixtures, m)))) return [.. FixtureModels.Select(m => Path.Combine(fixtures, m))];
            }
        throw new FileNotFoundException($"The fixture models ({string.Join(", ", FixtureModels)}) were not found in tests/Whittle.Tests/Fixtures above {Environment.CurrentDirectory}; give --models.");
    }

    /// <summary>The cases for one model: one for a transformer, two (R factor, Gram) for a model with prunable chains.</summary>
    /// <exception cref="InvalidDataException">The model has neither transformer blocks nor prunable chains.</exception>
    public static IReadOnlyList<CalibrationCase> Cases(string path, int batches, int batchSize, int sequenceLength, RuntimeOptions runtime, uint seed)
    {
        var model = OnnxModel.Load(path);
        var shapes = AnalysisShapes.Resolve(model, null, sequenceLength, batchSize, runtime);
        var structure = ModelStructure.Analyze(model, shapes.Values);
        var data = Batches(model, shapes, batches, seed);
        string name = Path.GetFileNameWithoutExtension(path);
        string shape = $"{shapes.Inputs[0].Name} [{string.Join(",", shapes.Inputs[0].Shape)}]";
        var cases = new List<(string Taps, string Statistics, Func<IReadOnlyList<IBatchStatistic>> Make)>();
        if (structure.Blocks.Count > 0)
        {
            int inputs = structure.LinearSites.Select(l => l.Input).Distinct().Count(), hidden = structure.HiddenStates.Distinct().Count();
            cases.Add(($"{inputs} linear inputs, {hidden} hidden states", "Gram + RMS; last token", () => TransformerStatistics(structure)));
        }
        else if (structure.Chains.Count > 0)
        {
            string taps = $"{structure.Chains.Select(c => c.Activation).Distinct().Count()} chain activations";
            cases.Add((taps, "R factor", () => ChainStatistics(structure, gram: false)));
            cases.Add((taps, "Gram", () => ChainStatistics(structure, gram: true)));
        }
        else throw new InvalidDataException($"{path}: no transformer blocks and no prunable chains, so no method would calibrate it.");
        return [.. cases.Select(c => new CalibrationCase(name, c.Taps, c.Statistics, c.Make, data, shape,
            () => RunPlain(model, data, runtime),
            () => CalibrationRunner.Run(model, c.Make(), data, runtime)))];
    }

    /// <summary>Every distinct linear input with Gram + RMS, every hidden state with last-token collection.</summary>
    public static IReadOnlyList<IBatchStatistic> TransformerStatistics(ModelStructure s) =>
    [
        .. s.LinearSites.Select(l => l.Input).Distinct().SelectMany(i => new IBatchStatistic[] { new GramStatistic(i), new RmsStatistic(i) }),
        .. s.HiddenStates.Distinct().Select(h => new LastTokenStatistic(h)),
    ];

    /// <summary>Every chain's activation with the R factor (or the Gram), on the chain's channel axis.</summary>
    public static IReadOnlyList<IBatchStatistic> ChainStatistics(ModelStructure s, bool gram) =>
        [.. s.Chains.DistinctBy(c => c.Activation).Select(c =>
        {
            var axis = c.ChannelAxis == 1 ? FeatureAxis.Channel : FeatureAxis.Last;
            return gram ? (IBatchStatistic)new GramStatistic(c.Activation, axis) : new RFactorStatistic(c.Activation, axis);
        })];

    private static void RunPlain(OnnxModel model, IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> batches, RuntimeOptions runtime)
    {
        using var session = TappedSession.Create(model, [], runtime);
        var outputs = session.OutputNames;
        foreach (var batch in batches) session.Run(batch, outputs, static (_, _) => { });
    }

    /// <summary>
    /// Seeded batches at the resolved input shapes: float inputs uniform in [−1, 1), integer inputs uniform token ids below
    /// the vocabulary of the embedding <c>Gather</c> that reads them (2 when none does).
    /// </summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> Batches(OnnxModel model, AnalysisShapes shapes, int count, uint seed)
    {
        var random = new Random(unchecked((int)seed));
        var graph = model.Graph;
        var types = graph.Inputs.ToDictionary(i => i.Name, i => (OnnxDataType)(i.Type?.TensorType?.ElemType ?? 0), StringComparer.Ordinal);
        var batches = new List<IReadOnlyDictionary<string, HostTensor>>(count);
        for (int b = 0; b < count; b++)
        {
            var batch = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            foreach (var input in shapes.Inputs)
            {
                int[] shape = [.. input.Shape];
                int n = shape.Aggregate(1, (a, d) => checked(a * d));
                batch[input.Name] = types[input.Name] switch
                {
                    OnnxDataType.Float => HostTensor.Float([.. Enumerable.Range(0, n).Select(_ => 2 * random.NextSingle() - 1)], shape),
                    OnnxDataType.Int64 => HostTensor.Int64([.. Enumerable.Range(0, n).Select(_ => random.NextInt64(Vocabulary(graph, input.Name)))], shape),
                    var t => throw new NotSupportedException($"Input '{input.Name}' is {OnnxDataTypes.Name(t)}; the calibration benchmark feeds float32 or int64 inputs."),
                };
            }
            batches.Add(batch);
        }
        return batches;
    }

    private static long Vocabulary(OnnxGraph graph, string input)
    {
        foreach (var node in graph.Consumers(input))
            if (node.OpType == "Gather" && node.Input.Count == 2 && node.Input[1] == input && graph.TryGetInitializer(node.Input[0], out var table) && table.Proto.Dims.Count > 0)
                return table.Proto.Dims[0];
        return 2;
    }
}
