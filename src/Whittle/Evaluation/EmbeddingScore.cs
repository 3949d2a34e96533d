using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>
/// Sentence embeddings against the reference's, example by example: each model's hidden states <c>[N, T, D]</c> are
/// mean-pooled over the tokens the attention mask keeps (sentence-transformers' pooling; an output <c>[N, D]</c> is
/// taken as pooled already), L2-normalized, and compared by cosine — what a search or RAG index sees of the change.
/// </summary>
internal sealed class EmbeddingScore
{
    private readonly List<double> _cosines = [];

    /// <summary>Adds one batch: the model's and the reference's outputs and the batch's attention mask (null: every token).</summary>
    /// <exception cref="InvalidDataException">The outputs differ in shape, are not rank 2 or 3, or the mask does not fit.</exception>
    public void Add(HostTensor model, HostTensor reference, HostTensor? mask, string what)
    {
        if (!model.Shape.SequenceEqual(reference.Shape))
            throw new InvalidDataException($"{what}: the model's output is {HostTensor.FormatShape(model.Shape)}, the reference's {HostTensor.FormatShape(reference.Shape)}.");
        if (model.Rank is not (2 or 3))
            throw new InvalidDataException($"{what}: an embedding output is [N, T, D] hidden states or [N, D] embeddings; got {HostTensor.FormatShape(model.Shape)}.");
        int n = model.Shape[0], t = model.Rank == 3 ? model.Shape[1] : 1, d = model.Shape[^1];
        long[]? keep = model.Rank == 3 && mask is not null ? Keep(mask) : null;
        if (keep is not null && keep.Length != (long)n * t)
            throw new InvalidDataException($"{what}: the attention mask is {mask}, the hidden states {HostTensor.FormatShape(model.Shape)}.");
        var a = new double[d];
        var b = new double[d];
        for (int i = 0; i < n; i++)
        {
            Pool(model.AsFloats(), i, t, d, keep, a);
            Pool(reference.AsFloats(), i, t, d, keep, b);
            _cosines.Add(Cosine(a, b));
        }
    }

    /// <summary>The figures so far, or null before the first example.</summary>
    public EmbeddingCosine? Result()
    {
        if (_cosines.Count == 0) return null;
        var sorted = _cosines.Order().ToArray();
        return new EmbeddingCosine(_cosines.Count, _cosines.Average(), Percentile(sorted, 0.05), sorted[0]);
    }

    private static long[] Keep(HostTensor mask) => mask.Data switch
    {
        long[] l => l,
        int[] i => [.. i.Select(x => (long)x)],
        bool[] b => [.. b.Select(x => x ? 1L : 0L)],
        float[] f => [.. f.Select(x => x != 0 ? 1L : 0L)],
        _ => throw new InvalidDataException($"the attention mask is {mask}; expected int64, int32, bool or float."),
    };

    // Mean of example i's kept token rows (all rows when no mask, or when the mask keeps none).
    private static void Pool(float[] y, int i, int t, int d, long[]? keep, double[] into)
    {
        Array.Clear(into);
        int kept = 0;
        for (int p = 0; p < t; p++)
        {
            if (keep is not null && keep[i * t + p] == 0) continue;
            kept++;
            var row = y.AsSpan((i * t + p) * d, d);
            for (int j = 0; j < d; j++) into[j] += row[j];
        }
        if (kept == 0 && keep is not null) { Pool(y, i, t, d, null, into); return; }
        for (int j = 0; j < d; j++) into[j] /= kept;
    }

    // Cosine of the L2-normalized vectors; two zero vectors agree, one zero vector does not.
    private static double Cosine(double[] a, double[] b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < a.Length; j++) { ab += a[j] * b[j]; aa += a[j] * a[j]; bb += b[j] * b[j]; }
        if (aa == 0 || bb == 0) return aa == bb ? 1 : 0;
        return ab / Math.Sqrt(aa * bb);
    }

    // Linear interpolation between closest ranks (NumPy's default).
    private static double Percentile(double[] sorted, double q)
    {
        double at = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(at);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (at - lo) * (sorted[hi] - sorted[lo]);
    }
}
