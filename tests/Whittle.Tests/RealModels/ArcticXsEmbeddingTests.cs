using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Evaluation;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.RealModels;

/// <summary>The embedding task on a real sentence encoder and real sentences (Moby Dick, tokenized by its WordPiece vocabulary).</summary>
public class ArcticXsEmbeddingTests
{
    private const int Sentences = 24;

    /// <summary>One sentence alone, unpadded: the mean of its hidden states over all its tokens, in float64.</summary>
    private static double[] Alone(TappedSession session, int[] sentence)
    {
        int t = sentence.Length;
        var batch = new InputBatch([
            new("input_ids", HostTensor.Int64([.. sentence.Select(x => (long)x)], 1, t)),
            new("attention_mask", HostTensor.Int64([.. Enumerable.Repeat(1L, t)], 1, t)),
            new("token_type_ids", HostTensor.Int64(new long[t], 1, t))]);
        var h = session.Run(batch)["last_hidden_state"].AsFloats();
        int d = h.Length / t;
        var mean = new double[d];
        for (int p = 0; p < t; p++) for (int j = 0; j < d; j++) mean[j] += h[p * d + j] / (double)t;
        return mean;
    }

    [Fact]
    public void EmbeddingCosine_OnPaddedBatches_EqualsTheCosineOfEachSentenceRunAlone()
    {
        var model = OnnxModel.Load(RealModels.ArcticXs);
        var perturbed = EvalTestModels.Perturbed(model, 0.05, seed: 3);
        var sentences = ArcticSentences.Tokenized(skip: 10, take: Sentences);
        Assert.Equal(Sentences, sentences.Count);
        Assert.True(sentences.Select(s => s.Length).Distinct().Count() > 5, "sentences of several lengths, so batches are padded");

        var report = Evaluator.Evaluate(perturbed, model, ArcticSentences.Padded(sentences, "moby-dick").Batches(8),
            new EvaluationOptions { Task = ModelTask.Embedding, LatencyRepeats = 0 });

        // Independently: each sentence alone (no padding, no mask), mean over its tokens, cosine in float64.
        using var a = TappedSession.Create(perturbed, []);
        using var b = TappedSession.Create(model, []);
        var cosines = sentences.Select(s =>
        {
            double[] x = Alone(a, s), y = Alone(b, s);
            double xy = 0, xx = 0, yy = 0;
            for (int j = 0; j < x.Length; j++) { xy += x[j] * y[j]; xx += x[j] * x[j]; yy += y[j] * y[j]; }
            return xy / Math.Sqrt(xx * yy);
        }).Order().ToArray();
        var e = report.Comparison!.Embedding!;
        Assert.Equal(ModelTask.Embedding, report.Task.Task);
        Assert.Equal(Sentences, e.Examples);
        Assert.Equal(cosines.Average(), e.Mean, 1e-5);
        Assert.Equal(cosines[0], e.Min, 1e-5);
        double at = 0.05 * (Sentences - 1);
        Assert.Equal(cosines[(int)at] + (at - (int)at) * (cosines[(int)at + 1] - cosines[(int)at]), e.Percentile5, 1e-5);
        // The noise moves the embeddings, but not far.
        Assert.InRange(e.Mean, 0.5, 0.9999);

        var same = Evaluator.Evaluate(model, model, ArcticSentences.Padded(sentences, "moby-dick").Batches(8), new EvaluationOptions { Task = ModelTask.Embedding, LatencyRepeats = 0 });
        Assert.Equal(1.0, same.Comparison!.Embedding!.Min, 1e-6);
    }
}
