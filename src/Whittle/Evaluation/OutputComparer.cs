using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Evaluation;

/// <summary>
/// Compares every float32 output of a model with the same output of its reference, batch by batch: per-example cosine
/// of the flattened outputs (mean and min), Frobenius relative error over everything, largest absolute difference.
/// </summary>
internal sealed class OutputComparer(IReadOnlyList<string> outputs)
{
    private sealed class Sums
    {
        public long Examples;
        public double Cosine, MinCosine = double.PositiveInfinity, Distance, ReferenceNorm, MaxAbs;
    }

    private readonly Dictionary<string, Sums> _sums = outputs.ToDictionary(o => o, _ => new Sums(), StringComparer.Ordinal);

    /// <summary>The outputs compared.</summary>
    public IReadOnlyList<string> Outputs { get; } = outputs;

    /// <summary>Adds one batch's outputs of both models.</summary>
    /// <exception cref="InvalidDataException">An output differs in type or shape between the models.</exception>
    public void Add(IReadOnlyDictionary<string, HostTensor> model, IReadOnlyDictionary<string, HostTensor> reference)
    {
        foreach (var name in Outputs)
        {
            var y = model[name];
            var r = reference[name];
            LogitShapes.Same(y, r, LogitShapes.Describe(name));
            var s = _sums[name];
            var a = y.AsFloats();
            var b = r.AsFloats();
            int rows = y.Rank == 0 ? 1 : y.Rows;
            int per = rows == 0 ? 0 : a.Length / rows;
            for (int i = 0; i < rows; i++)
            {
                var ya = a.AsSpan(i * per, per);
                var rb = b.AsSpan(i * per, per);
                double c = LogitMetrics.CosineSimilarity(ya, rb);
                s.Cosine += c;
                if (c < s.MinCosine || double.IsNaN(c)) s.MinCosine = c;
                s.Distance += LogitMetrics.SquaredDistance(ya, rb);
                s.ReferenceNorm += LogitMetrics.SquaredNorm(rb);
                double m = LogitMetrics.MaxAbsDifference(ya, rb);
                if (m > s.MaxAbs || double.IsNaN(m)) s.MaxAbs = m;
            }
            s.Examples += rows;
        }
    }

    /// <summary>The comparisons, in output order.</summary>
    public IReadOnlyList<OutputComparison> Results() =>
        [.. Outputs.Select(n =>
        {
            var s = _sums[n];
            return new OutputComparison(n, s.Examples == 0 ? double.NaN : s.Cosine / s.Examples, s.Examples == 0 ? double.NaN : s.MinCosine,
                LogitMetrics.RelativeError(s.Distance, s.ReferenceNorm), s.MaxAbs);
        })];

    /// <summary>The outputs both runners have that hold float32 data (checked on one batch), and warnings for the rest.</summary>
    public static (List<string> Compared, List<string> Warnings) Select(IReadOnlyDictionary<string, HostTensor> model, IReadOnlyDictionary<string, HostTensor> reference)
    {
        var compared = new List<string>();
        var warnings = new List<string>();
        foreach (var (name, tensor) in model)
        {
            if (!reference.TryGetValue(name, out var r))
                warnings.Add($"output '{name}' is not an output of the reference; not compared.");
            else if (tensor.ElementType != OnnxDataType.Float || r.ElementType != OnnxDataType.Float)
                warnings.Add($"output '{name}' is {tensor} (reference {r}); only float32 outputs are compared.");
            else compared.Add(name);
        }
        foreach (var name in reference.Keys)
            if (!model.ContainsKey(name)) warnings.Add($"reference output '{name}' is not an output of the model; not compared.");
        return (compared, warnings);
    }
}
