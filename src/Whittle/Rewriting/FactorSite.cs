// The layers low-rank methods factorize, behind one shape: a weight W (m × n) that can be read and replaced by L·R.
//
//   linear  y = W x + b, W out × in (SiteWeights), rewritten as two MatMuls (FactorChain).
//   conv    an ungrouped Cout × Cin × k₁ × … kernel as W = Cout × (Cin·k₁⋯), rewritten as an r-channel convolution
//           followed by a 1 × 1 convolution (ConvFactorChain).
// A site is eligible when its weight is float, read directly or through Transpose/Cast/Identity by this node alone (a
// tied weight, e.g. a language model head sharing the embedding, would gain parameters when factorized), and when some
// rank saves parameters: c·(m + n) < m·n.

using Whittle.Analysis;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.Onnx;

namespace Whittle.Rewriting;

/// <summary>A layer a low-rank method leaves alone, and why.</summary>
/// <param name="Name">The site id (node name).</param>
/// <param name="Position">Topological position of the node in the original graph.</param>
/// <param name="FullRank">min(m, n) of its weight.</param>
/// <param name="Parameters">Its weight and bias elements.</param>
/// <param name="Reason">Why it is left alone.</param>
public sealed record SkippedSite(string Name, int Position, int FullRank, long Parameters, string Reason);

/// <summary>One layer a low-rank method can factorize: its weight as an m × n matrix, and how to write factors back.</summary>
public abstract class FactorSite
{
    private protected FactorSite(string name, int rows, int cols, long biasParameters, string input, string output, int position)
    {
        Name = name;
        Rows = rows;
        Cols = cols;
        BiasParameters = biasParameters;
        Input = input;
        Output = output;
        Position = position;
    }

    /// <summary>The site id (node name).</summary>
    public string Name { get; }

    /// <summary><c>linear</c> or <c>conv</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>m: outputs (output channels).</summary>
    public int Rows { get; }

    /// <summary>n: inputs (input channels × kernel size).</summary>
    public int Cols { get; }

    /// <summary>Bias elements (kept as they are).</summary>
    public long BiasParameters { get; }

    /// <summary>The activation the layer reads.</summary>
    public string Input { get; }

    /// <summary>The layer's output (after its bias).</summary>
    public string Output { get; }

    /// <summary>Topological position of the node in the original graph.</summary>
    public int Position { get; }

    /// <summary>Weight and bias elements now.</summary>
    public long Parameters => (long)Rows * Cols + BiasParameters;

    /// <summary>The full rank, min(m, n).</summary>
    public int FullRank => Math.Min(Rows, Cols);

    /// <summary>The largest rank whose factors save parameters.</summary>
    public int MaxSavingRank => LowRank.MaxSavingRank(Rows, Cols);

    /// <summary>Weight and bias elements after factorizing at <paramref name="rank"/>: c·(m + n) + bias.</summary>
    public long FactorParameters(int rank) => (long)rank * (Rows + Cols) + BiasParameters;

    /// <summary>The factor the graph multiplies the stored weight by (a Gemm's α; 1 otherwise).</summary>
    public abstract float Scale(OnnxModel model);

    /// <summary>W (m × n), float32, read from <paramref name="model"/>.</summary>
    public abstract Matrix<float> Weight(OnnxModel model);

    /// <summary>Replaces the layer in <paramref name="model"/> (edited in place) by <c>x ↦ L(R x)</c>.</summary>
    public abstract void Replace(OnnxModel model, Matrix<float> l, Matrix<float> r);

    /// <summary>Replaces the layer's weight in <paramref name="model"/> (edited in place) by the dense <paramref name="w"/> (m × n).</summary>
    public abstract void ReplaceDense(OnnxModel model, Matrix<float> w);

    /// <summary>This site, left alone for <paramref name="reason"/>.</summary>
    public SkippedSite Skip(string reason) => new(Name, Position, FullRank, Parameters, reason);
}

/// <summary>A fully connected layer.</summary>
public sealed class LinearFactorSite(LinearSite site, int position)
    : FactorSite(site.Name, site.OutFeatures, site.InFeatures, site.Bias is null ? 0 : site.OutFeatures, site.Input, site.Output, position)
{
    /// <summary>The analysed site.</summary>
    public LinearSite Site { get; } = site;

    /// <inheritdoc/>
    public override string Kind => "linear";

    /// <inheritdoc/>
    public override float Scale(OnnxModel model) =>
        Site.OpType == "Gemm" ? GraphQuery.Float(SiteWeights.SiteNode(model, Site), "alpha", 1f) : 1f;

    /// <inheritdoc/>
    public override Matrix<float> Weight(OnnxModel model) => SiteWeights.Weight(model, Site);

    /// <inheritdoc/>
    public override void Replace(OnnxModel model, Matrix<float> l, Matrix<float> r) => FactorChain.Replace(model, Site, [l, r]);

    /// <inheritdoc/>
    public override void ReplaceDense(OnnxModel model, Matrix<float> w) => FactorChain.Replace(model, Site, [w]);
}

/// <summary>An ungrouped convolution.</summary>
public sealed class ConvFactorSite(ConvSite site, int position)
    : FactorSite(site.Name, site.OutChannels, ConvFactorChain.PatchLength(site), site.Bias is null ? 0 : site.OutChannels, site.Input, site.Output, position)
{
    /// <summary>The analysed site.</summary>
    public ConvSite Site { get; } = site;

    /// <inheritdoc/>
    public override string Kind => "conv";

    /// <inheritdoc/>
    public override float Scale(OnnxModel model) => 1f;

    /// <inheritdoc/>
    public override Matrix<float> Weight(OnnxModel model) => ConvFactorChain.Weight(model, Site);

    /// <inheritdoc/>
    public override void Replace(OnnxModel model, Matrix<float> l, Matrix<float> r) => ConvFactorChain.Replace(model, Site, l, r);

    /// <inheritdoc/>
    public override void ReplaceDense(OnnxModel model, Matrix<float> w) => ConvFactorChain.ReplaceKernel(model, Site, w);
}

/// <summary>Finds the sites a low-rank method may factorize, and says why the others are left alone.</summary>
public static class FactorSites
{
    private static readonly HashSet<string> PassThrough = ["Transpose", "Cast", "Identity"];

    /// <summary>
    /// Every linear site and (with <paramref name="convolutions"/>) every convolution of <paramref name="structure"/>, in graph
    /// order: the eligible ones, and a report entry for each one left alone.
    /// </summary>
    public static (List<FactorSite> Eligible, List<SkippedSite> Skipped) Find(OnnxModel model, ModelStructure structure, bool convolutions)
    {
        var position = Positions(model);

        var eligible = new List<FactorSite>();
        var skipped = new List<SkippedSite>();
        foreach (var s in structure.LinearSites)
        {
            var site = new LinearFactorSite(s, position.GetValueOrDefault(s.ProductOutput, int.MaxValue));
            string? reason = s.Weight.Path.Contains("DequantizeLinear") ? $"its weight '{s.Weight.Initializer}' is quantized"
                : Shared(model, s.Weight.Initializer, s.ProductOutput) ? $"its weight '{s.Weight.Initializer}' is also read elsewhere (tied); factorizing it would add parameters"
                : site.MaxSavingRank < 1 ? $"no rank saves parameters for a {s.OutFeatures} × {s.InFeatures} weight"
                : null;
            if (reason is null) eligible.Add(site);
            else skipped.Add(site.Skip(reason));
        }
        foreach (var s in structure.ConvSites)
        {
            int at = position.GetValueOrDefault(s.Output, int.MaxValue);
            if (!convolutions)
            {
                skipped.Add(Skip(s, at, "convolutions are not factorized (option)"));
                continue;
            }
            string? reason = s.Groups != 1 ? $"grouped convolution (group = {s.Groups})"
                : s.Weight.Path.Count > 0 ? $"its kernel is reached through {string.Join(" → ", s.Weight.Path)}"
                : Shared(model, s.Weight.Initializer, s.Output) ? $"its kernel '{s.Weight.Initializer}' is also read elsewhere (tied)"
                : null;
            if (reason is not null)
            {
                skipped.Add(Skip(s, at, reason));
                continue;
            }
            var site = new ConvFactorSite(s, at);
            if (site.MaxSavingRank < 1) skipped.Add(site.Skip($"no rank saves parameters for a {site.Rows} × {site.Cols} kernel"));
            else eligible.Add(site);
        }
        eligible.Sort((a, b) => a.Position.CompareTo(b.Position));
        return (eligible, [.. skipped.OrderBy(s => s.Position)]);
    }

    /// <summary>
    /// The graph output <paramref name="site"/> writes, directly or through ops that only move or retype values (Identity,
    /// Cast, Reshape, Flatten, Squeeze, Unsqueeze) — a classifier's last layer, a language model's head — or null.
    /// </summary>
    public static string? GraphOutput(OnnxModel model, FactorSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        var graph = model.Graph;
        string value = site.Output;
        for (int depth = 0; depth < 8; depth++)
        {
            if (graph.IsGraphOutput(value)) return value;
            var consumers = graph.Consumers(value);
            if (consumers is not [{ OpType: "Identity" or "Cast" or "Reshape" or "Flatten" or "Squeeze" or "Unsqueeze" } next] || next.Output.Count != 1) return null;
            value = next.Output[0];
        }
        return null;
    }

    /// <summary>A model to edit: a deep copy of <paramref name="model"/>'s proto (same base directory for external data).</summary>
    public static OnnxModel Copy(OnnxModel model) => model.Clone();

    private static SkippedSite Skip(ConvSite s, int position, string reason) =>
        new(s.Name, position, (int)Math.Min(s.OutChannels, s.InChannels / Math.Max(1, s.Groups) * s.Kernel.Aggregate(1L, (a, k) => a * k)), s.Parameters, reason);

    /// <summary>Each value's producer's index in topological order (a site's graph position, for report order).</summary>
    internal static Dictionary<string, int> Positions(OnnxModel model)
    {
        var order = model.Graph.TopologicalOrder();
        var position = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < order.Count; i++)
            foreach (var o in order[i].Output) position[o] = i;
        return position;
    }

    /// <summary>Whether the weight reaches anything but the node producing <paramref name="product"/> (through pass-through ops).</summary>
    internal static bool Shared(OnnxModel model, string weight, string product)
    {
        var graph = model.Graph;
        string value = weight;
        for (int depth = 0; depth < 8; depth++)
        {
            if (graph.IsGraphOutput(value)) return true;
            var consumers = graph.Consumers(value);
            if (consumers.Count != 1) return true;
            var node = consumers[0];
            if (node.Output.Contains(product)) return false;
            if (!PassThrough.Contains(node.OpType) || node.Output.Count != 1) return true;
            value = node.Output[0];
        }
        return true;
    }
}
