using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Whittle.Onnx;

namespace Whittle.Tests.Import;

/// <summary>Runs imported models in ONNX Runtime (single-threaded) and scores language models.</summary>
internal static class LanguageModelRunner
{
    public static SessionOptions Options() => new()
    {
        IntraOpNumThreads = 1,
        InterOpNumThreads = 1,
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
    };

    /// <summary>Runs <paramref name="model"/> (saved to a temporary file) on int64 inputs; returns each output's values and shape.</summary>
    public static Dictionary<string, (float[] Values, long[] Shape)> Run(OnnxModel model, IReadOnlyList<(string Name, long[] Values, long[] Shape)> inputs)
    {
        string dir = Directory.CreateTempSubdirectory("whittle-import-").FullName;
        try
        {
            string path = Path.Combine(dir, "model.onnx");
            model.Save(path);
            return Run(path, inputs);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public static Dictionary<string, (float[] Values, long[] Shape)> Run(string path, IReadOnlyList<(string Name, long[] Values, long[] Shape)> inputs)
    {
        using var options = Options();
        using var session = new InferenceSession(path, options);
        var values = inputs.Select(i => OrtValue.CreateTensorValueFromMemory(i.Values, i.Shape)).ToList();
        try
        {
            var names = session.OutputNames.ToList();
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, [.. inputs.Select(i => i.Name)], values, names);
            var map = new Dictionary<string, (float[], long[])>();
            for (int i = 0; i < names.Count; i++)
            {
                var r = results[i];
                map[names[i]] = (r.GetTensorDataAsSpan<float>().ToArray(), r.GetTensorTypeAndShape().Shape);
            }
            return map;
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>Teacher-forced negative log-likelihood (natural log, summed) of tokens 1..n−1 given the logits [1, n, vocab].</summary>
    public static double NllSum(float[] logits, int[] tokens, int vocab)
    {
        double sum = 0;
        for (int t = 0; t + 1 < tokens.Length; t++)
        {
            var row = logits.AsSpan(t * vocab, vocab);
            double max = double.NegativeInfinity;
            foreach (var x in row) max = Math.Max(max, x);
            double z = 0;
            foreach (var x in row) z += Math.Exp(x - max);
            sum += max + Math.Log(z) - row[tokens[t + 1]];
        }
        return sum;
    }
}
