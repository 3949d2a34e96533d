#:project ../src/Whittle/Whittle.csproj
#:property PublishAot=false
// CURing acceptance figures (issue 9): held-out perplexity of the original and of N = 1 … L − 2 decomposed blocks;
// the three cores, the three DEIM variants and angular vs last selection at one rank; compression wall time per
// stage; ONNX Runtime latency of original vs compressed. A development script (.NET 10 file-based app):
//
//   dotnet run -c Release scripts/curing_acceptance.cs -- --model M.onnx --text data/moby-dick.txt \
//       [--tokenizer tok512.bin|bytes] [--calib 0:0.5] [--eval 0.9:1] [--seq 128] [--calib-count 128] \
//       [--eval-count 64] [--rank 16] [--latency-runs 50] [--sections sweep,cores,deim,selection] [--report out.json]
//
// The tokenizer defaults to the one stored in the model (whittle import records it).
//
// Calibration windows come from the --calib character range of the text, evaluation windows from the --eval range
// (disjoint; nothing is tuned on the evaluation text). Each configuration is compressed, then evaluated together
// with the original by Whittle.Evaluation's Evaluator on the held-out windows (each BOS + text when the tokenizer
// has a BOS): perplexity = exp(mean NLL), mean KL(original ‖ compressed), top-1 agreement, and ORT latency at
// batch 1 with the two models alternating (median of --latency-runs).

using System.Globalization;
using System.Text;
using System.Text.Json;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Decompositions;
using Whittle.Evaluation;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Text;

var opts = Args.Parse(args);
var model = OnnxModel.Load(opts.Model);
ITextTokenizer tokenizer = opts.Tokenizer switch
{
    null => ModelTokenizer.FromModel(model).Tokenizer,
    "bytes" => new ByteTokenizer(),
    var file => Llama2cTokenizer.Load(file),
};
string text = File.ReadAllText(opts.Text, Encoding.UTF8);
var calibration = Windows(text, opts.Calib, opts.CalibCount, "calibration");
var evaluation = Windows(text, opts.Eval, opts.EvalCount, "evaluation");
var set = new BatchSet([.. Batches(calibration, 8)], description: $"{opts.Text} {opts.Calib.Item1}:{opts.Calib.Item2}");
var heldOut = new BatchSet([.. Batches(evaluation, 8)], description: $"{opts.Text} {opts.Eval.Item1}:{opts.Eval.Item2}");
var evalOptions = new EvaluationOptions { Task = ModelTask.LanguageModel, LatencyWarmup = 5, LatencyRepeats = opts.LatencyRuns };
var blocks = Whittle.Analysis.ModelStructure.Analyze(model, ShapeProbe.Run(model, set.FirstExample()).Shapes, batchSize: 1).Blocks.Count;
Console.WriteLine($"model {opts.Model}: {blocks} blocks; calibration {calibration.Shape[0]}×{opts.Seq} tokens ({opts.Calib}), "
    + $"held-out {evaluation.Shape[0]}×{opts.Seq} tokens ({opts.Eval}); {Environment.ProcessorCount} cores, ORT 1 intra-op thread");

var results = new List<(string Config, CompressionReport Report, EvaluationReport Evaluation)>();
Console.WriteLine();
Console.WriteLine("| config | blocks | params | Δparams | mean ‖W−CUR‖/‖W‖ | mean output error | PPL original | PPL | KL | top-1 agreement | latency ms orig → comp (batch 1) | calib s | decomp s | rewrite s |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");

void Measure(string config, CuringOptions o)
{
    var r = new Curing(o).Compress(new CompressionJob(model, set) { Seed = 0 }, [CompressionBudget.MethodDefault]).Single();
    var e = Evaluator.Evaluate(r.Model, model, heldOut, evalOptions);
    results.Add((config, r.Report, e));
    var d = (CuringDetails)r.Report.Details!;
    var sites = r.Report.Sites.Where(s => s.Skipped is null).Select(s => (CurSiteDetails)s.Details!).ToList();
    double T(string stage) => r.Report.Timings.Where(t => t.Stage == stage).Sum(t => t.Seconds);
    var lm = e.Model.Latency.First(l => l.BatchSize == 1);
    var lr = e.Reference!.Latency.First(l => l.BatchSize == 1);
    Console.WriteLine($"| {config} | {string.Join(",", d.ChosenBlocks)} | {r.Report.After.Parameters} | {r.Report.After.Parameters - r.Report.Before.Parameters} "
        + $"| {sites.Average(s => s.RelativeError):F4} | {sites.Average(s => s.OutputError ?? double.NaN):F4} | {e.Reference.Perplexity:F4} | {e.Model.Perplexity:F4} "
        + $"| {e.Comparison!.MeanKl:F4} | {e.Comparison.Agreement:P1} | {lr.MedianMilliseconds:F3} → {lm.MedianMilliseconds:F3} "
        + $"| {T(Stages.Calibration):F2} | {T(Stages.Decomposition):F2} | {T(Stages.Rewrite):F2} |");
}

int all = blocks - 2;
if (opts.Sections.Contains("sweep"))
    for (int n = 1; n <= all; n++) Measure($"N={n} default (angular, reference, pinv, r_max 256)", new CuringOptions { Layers = n });
if (opts.Sections.Contains("cores"))
    foreach (var core in new[] { CurCore.PseudoInverse, CurCore.Activation, CurCore.Diagonal })
        Measure($"N={all} r_max {opts.Rank} core {core}", new CuringOptions { Layers = all, MaxRank = opts.Rank, Core = core });
if (opts.Sections.Contains("deim"))
    foreach (var deim in new[] { DeimVariant.Reference, DeimVariant.Textbook, DeimVariant.QDeim })
        Measure($"N={all} r_max {opts.Rank} deim {deim}", new CuringOptions { Layers = all, MaxRank = opts.Rank, Deim = deim });
if (opts.Sections.Contains("selection"))
    for (int n = 1; n <= blocks - 3; n++)
        foreach (int rank in new[] { 256, opts.Rank })
            foreach (var sel in new[] { LayerSelection.Angular, LayerSelection.Last })
                Measure($"N={n} r_max {rank} selection {sel}", new CuringOptions { Layers = n, MaxRank = rank, Selection = sel });

// Every block's angular distance (from the first run).
var distances = (CuringDetails)results[0].Report.Details!;
Console.WriteLine();
Console.WriteLine("angular distances: " + string.Join("  ", distances.Blocks.Select(b => $"block {b.Block}: {b.Distance:F4}{(b.Eligible ? "" : " (never chosen)")}")));

if (opts.Report is { } path)
{
    var json = new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    File.WriteAllText(path, JsonSerializer.Serialize(results.Select(r => new { r.Config, r.Report, r.Evaluation }), json));
}

HostTensor Windows(string all, (double From, double To) range, int count, string what)
{
    int from = (int)(all.Length * range.From), to = (int)(all.Length * range.To);
    var ids = TextWindows.Create(all[from..to], tokenizer, opts.Seq, what).Samples["input_ids"];
    if (ids.Shape[0] < count) throw new InvalidOperationException($"{what}: the range {range} holds only {ids.Shape[0]} windows of {opts.Seq}; asked for {count}.");
    return ids.SelectRows([.. Enumerable.Range(0, count)]);
}

static List<InputBatch> Batches(HostTensor ids, int size)
{
    var batches = new List<InputBatch>();
    for (int i = 0; i < ids.Shape[0]; i += size)
        batches.Add(new InputBatch("input_ids", ids.SelectRows([.. Enumerable.Range(i, Math.Min(size, ids.Shape[0] - i))])));
    return batches;
}

internal sealed record Args(string Model, string Text, string? Tokenizer, (double, double) Calib, (double, double) Eval, int Seq, int CalibCount, int EvalCount, int Rank, int LatencyRuns, string[] Sections, string? Report)
{
    public static Args Parse(string[] args)
    {
        var map = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) map[args[i]] = args[i + 1];
        static (double, double) Range(string s) { var p = s.Split(':'); return (double.Parse(p[0], CultureInfo.InvariantCulture), double.Parse(p[1], CultureInfo.InvariantCulture)); }
        string Get(string k, string d) => map.TryGetValue(k, out var v) ? v : d;
        return new Args(map["--model"], map["--text"], map.GetValueOrDefault("--tokenizer"), Range(Get("--calib", "0:0.5")), Range(Get("--eval", "0.9:1")),
            int.Parse(Get("--seq", "128")), int.Parse(Get("--calib-count", "128")), int.Parse(Get("--eval-count", "64")), int.Parse(Get("--rank", "16")), int.Parse(Get("--latency-runs", "50")), Get("--sections", "sweep,cores,deim,selection").Split(','),
            map.TryGetValue("--report", out var r) ? r : null);
    }
}

