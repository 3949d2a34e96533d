using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Xunit.Abstractions;

namespace Whittle.Tests.Onnx;

/// <summary>
/// Debian's libonnx-testdata (the ONNX backend test models with their inputs and expected outputs):
/// every model is loaded and saved by Whittle; the saved model must be protobuf-equal to the original
/// and, where ONNX Runtime runs the model, reproduce the expected outputs within ONNX's backend-test
/// tolerances (rtol 1e-3, atol 1e-7).
/// </summary>
public class PeerSuiteTests(ITestOutputHelper output)
{
    private const string SuiteRoot = "/usr/share/libonnx-testdata/data";
    private static readonly string[] Folders = ["node", "pytorch-converted", "pytorch-operator", "simple"];

    private sealed record Outcome(string Model, bool Loaded, bool Equal, bool Ran, bool Matched, string? Reason, bool WhittleFault);

    [Fact]
    public void EveryModelRoundTripsUnchangedAndRunsTheSame()
    {
        if (!Directory.Exists(SuiteRoot))
            Assert.Fail($"The ONNX peer suite is not installed ({SuiteRoot} is missing). Install it with: sudo apt-get update && sudo apt-get install -y libonnx-testdata");
        var models = Folders
            .SelectMany(f => Directory.GetDirectories(Path.Combine(SuiteRoot, f)).Order(StringComparer.Ordinal))
            .Where(d => File.Exists(Path.Combine(d, "model.onnx")))
            .ToList();
        var outcomes = new ConcurrentBag<Outcome>();
        var temp = Directory.CreateTempSubdirectory("whittle-peer-");
        var clock = Stopwatch.StartNew();
        try
        {
            Parallel.ForEach(models, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                dir => outcomes.Add(Check(dir, temp.FullName)));
        }
        finally
        {
            temp.Delete(recursive: true);
        }
        clock.Stop();

        var all = outcomes.OrderBy(o => o.Model, StringComparer.Ordinal).ToList();
        int loaded = all.Count(o => o.Loaded), equal = all.Count(o => o.Equal), ran = all.Count(o => o.Ran), matched = all.Count(o => o.Matched);
        var failures = all.Where(o => o.Reason is not null).ToList();
        output.WriteLine($"ONNX peer suite ({SuiteRoot}; {string.Join(", ", Folders)}): {all.Count} models, {loaded} loaded, {equal} saved protobuf-equal, "
            + $"{ran} run in ONNX Runtime {OrtEnv.Instance().GetVersionString()}, {matched} matched (rtol {OrtTensors.RelativeTolerance}, atol {OrtTensors.AbsoluteTolerance}); {clock.Elapsed.TotalSeconds:F0} s.");
        foreach (var group in failures.GroupBy(f => Category(f.Reason!)).OrderByDescending(g => g.Count()))
        {
            output.WriteLine($"{group.Count()} × {group.Key}:");
            foreach (var f in group) output.WriteLine($"  {f.Model}: {f.Reason}");
        }
        string summary = Path.Combine(AppContext.BaseDirectory, "onnx-peer-suite.json");
        File.WriteAllText(summary, JsonSerializer.Serialize(new
        {
            suite = SuiteRoot,
            folders = Folders,
            onnxRuntime = OrtEnv.Instance().GetVersionString(),
            relativeTolerance = OrtTensors.RelativeTolerance,
            absoluteTolerance = OrtTensors.AbsoluteTolerance,
            models = all.Count,
            loaded,
            equal,
            run = ran,
            matched,
            seconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
            failures = failures.Select(f => new { model = f.Model, category = Category(f.Reason!), reason = f.Reason, whittleFault = f.WhittleFault }),
        }, new JsonSerializerOptions { WriteIndented = true }));
        output.WriteLine($"Summary: {summary}");

        var ours = failures.Where(f => f.WhittleFault).ToList();
        Assert.True(ours.Count == 0, $"{ours.Count} models failed because of Whittle:\n" + string.Join("\n", ours.Select(f => $"{f.Model}: {f.Reason}")));
        Assert.Equal(all.Count, equal);
        Assert.True(models.Count > 900, $"expected the ~1,000 models of libonnx-testdata, found {models.Count}");
    }

    private static string Category(string reason) => reason.Split(':', 2)[0];

    private static Outcome Check(string dir, string temp)
    {
        string name = $"{Path.GetFileName(Path.GetDirectoryName(dir))}/{Path.GetFileName(dir)}";
        string source = Path.Combine(dir, "model.onnx");
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(source));
        OnnxModel model;
        try
        {
            model = OnnxModel.Load(source);
        }
        catch (OnnxModelException ex)
        {
            return new(name, false, false, false, false, $"not loaded: {OrtTensors.FirstLine(ex.Message)}", true);
        }
        string outDir = Path.Combine(temp, name.Replace('/', '_'));
        Directory.CreateDirectory(outDir);
        string saved = Path.Combine(outDir, "model.onnx");
        model.Save(saved);
        var reread = ModelProto.Parser.ParseFrom(File.ReadAllBytes(saved));
        if (!original.Equals(reread)) return new(name, true, false, false, false, "saved model differs from the original", true);

        var graph = original.Graph;
        if (graph.Input.Concat(graph.Output).Any(v => v.Type?.ValueCase is not (TypeProto.ValueOneofCase.TensorType or null)))
            return new(name, true, true, false, false, "not run: sequence, map or optional inputs or outputs (the comparison handles tensors only)", false);
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet();
        var inputNames = graph.Input.Select(v => v.Name).Where(n => !initializers.Contains(n)).ToList();
        var inputTypes = graph.Input.Where(v => !initializers.Contains(v.Name)).Select(v => v.Type?.TensorType?.ElemType ?? 0).ToList();
        var outputNames = graph.Output.Select(v => v.Name).ToList();
        var sets = Directory.GetDirectories(dir, "test_data_set_*").Order(StringComparer.Ordinal).ToList();
        if (sets.Count == 0) return new(name, true, true, false, false, "not run: no test data sets", false);

        string? mismatch;
        try
        {
            mismatch = RunAll(saved, sets, inputNames, inputTypes, outputNames);
        }
        catch (OnnxRuntimeException ex)
        {
            return new(name, true, true, false, false, $"ONNX Runtime cannot run it: {OrtTensors.FirstLine(ex.Message)}", false);
        }
        if (mismatch is null) return new(name, true, true, true, true, null, false);
        // Whittle's fault only if ONNX Runtime gets the suite's numbers from the original file.
        string? originalMismatch;
        try
        {
            originalMismatch = RunAll(source, sets, inputNames, inputTypes, outputNames);
        }
        catch (OnnxRuntimeException ex)
        {
            originalMismatch = ex.Message;
        }
        return originalMismatch is null
            ? new(name, true, true, true, false, $"saved model differs in ONNX Runtime from the original: {mismatch}", true)
            : new(name, true, true, true, false, $"ONNX Runtime disagrees with the suite (on the original model too): {mismatch}", false);
    }

    /// <summary>ONNX 1.12's suite stores bfloat16 tensors as uint16 bit patterns; relabel them as the model declares.</summary>
    private static TensorProto AsDeclared(TensorProto t, int declared)
    {
        if (t.DataType != (int)OnnxDataType.UInt16 || declared != (int)OnnxDataType.BFloat16) return t;
        var relabeled = t.Clone();
        relabeled.DataType = declared;
        return relabeled;
    }

    private static string? RunAll(string modelPath, List<string> sets, List<string> inputNames, List<int> inputTypes, List<string> outputNames)
    {
        using var options = OrtTensors.SingleThreaded();
        using var session = new InferenceSession(modelPath, options);
        foreach (var set in sets)
        {
            var inputs = Directory.GetFiles(set, "input_*.pb").OrderBy(Index).Select(f => TensorProto.Parser.ParseFrom(File.ReadAllBytes(f))).ToList();
            var expected = Directory.GetFiles(set, "output_*.pb").OrderBy(Index).Select(f => TensorProto.Parser.ParseFrom(File.ReadAllBytes(f))).ToList();
            if (inputs.Count != inputNames.Count) return $"{Path.GetFileName(set)} has {inputs.Count} inputs, the model {inputNames.Count}";
            var named = inputs.Select((t, i) => (inputNames[i], AsDeclared(t, inputTypes[i]))).ToList();
            var actual = OrtTensors.Run(session, named, outputNames[..expected.Count]);
            for (int i = 0; i < expected.Count; i++)
                if (OrtTensors.Compare(expected[i], actual[i]) is { } diff)
                    return $"{Path.GetFileName(set)}, output '{outputNames[i]}': {diff}";
        }
        return null;
    }

    private static int Index(string file) => int.Parse(Path.GetFileNameWithoutExtension(file).Split('_')[1], System.Globalization.CultureInfo.InvariantCulture);
}
