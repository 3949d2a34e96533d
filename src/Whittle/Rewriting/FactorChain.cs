// Replaces a linear layer's product W·x by a chain of smaller products F₁(F₂(…(F_k x))) — the written form of a
// low-rank factorization W ≈ L·R (k = 2) and of a CUR decomposition W ≈ C·U·R (k = 3).
//
// Shapes: F₁ is m × r₁, F_j is r_{j−1} × r_j, F_k is r_{k−1} × n (W is m × n, out × in). ONNX computes with row
// vectors, so a right-operand MatMul (x·B) becomes x·F_kᵀ·…·F₁ᵀ, each factor stored transposed (in × out), and a
// left-operand MatMul (W·x) becomes F₁·(…·(F_k·x)) with the factors stored as they are. A Gemm becomes the same
// MatMul chain, α folded into the first product and β·C added after it. The chain ends in the site's product
// output, so a separate bias Add, and everything downstream, is untouched.

using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Rewriting;

/// <summary>Rewrites a linear site as a chain of factor products.</summary>
public static class FactorChain
{
    /// <summary>
    /// Replaces the product of <paramref name="site"/> in <paramref name="model"/> (edited in place) by the chain
    /// <c>x ↦ F₁(F₂(…(F_k x)))</c> of <paramref name="factors"/> = [F₁, …, F_k], whose product approximates the site's
    /// <c>W</c> (out × in). Factors are stored in the site's compute type. The old weight stays until
    /// <see cref="Tidy"/> removes what nothing reads any more.
    /// </summary>
    /// <param name="model">The model to edit.</param>
    /// <param name="site">A linear site of <paramref name="model"/>'s current graph.</param>
    /// <param name="factors">At least one factor; consecutive shapes must chain and the product must be out × in.</param>
    /// <returns>The names of the new initializers, in the order of <paramref name="factors"/>.</returns>
    /// <exception cref="ArgumentException">The factor shapes do not chain to out × in, or the site is not in the graph.</exception>
    /// <exception cref="NotSupportedException">A Gemm with a non-constant C and β ≠ 1.</exception>
    public static IReadOnlyList<string> Replace(OnnxModel model, LinearSite site, IReadOnlyList<Matrix<float>> factors)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(factors);
        CheckShapes(site, factors);
        var graph = model.Graph;
        var node = SiteWeights.SiteNode(model, site);
        var type = SiteWeights.ComputeType(model, site);
        var storage = SiteWeights.StorageType(model, site);
        bool gemm = site.OpType == "Gemm";
        float alpha = gemm ? Attribute(node, "alpha", 1f) : 1f;
        float beta = gemm ? Attribute(node, "beta", 1f) : 1f;

        var initializers = new List<TensorProto>();
        var nodes = new List<NodeProto>();
        var names = new string[factors.Count];
        var inputs = new string[factors.Count];
        for (int j = 0; j < factors.Count; j++)
        {
            inputs[j] = graph.UniqueName($"{site.Name}.factor{j + 1}");
            var f = j == 0 && alpha != 1f ? Scaled(factors[j], alpha) : factors[j];
            // Right-operand products read Fᵀ (in × out).
            var stored = site.WeightIsLeftOperand ? f : f.Transpose().ToMatrix();
            names[j] = SiteWeights.AddWeight(graph, inputs[j], stored, type, storage, initializers, nodes);
        }

        string current = site.Input;
        string? addend = gemm && node.Input.Count > 2 && node.Input[2].Length > 0 ? node.Input[2] : null;
        for (int j = factors.Count - 1; j >= 0; j--)
        {
            bool last = j == 0;
            string output = last && addend is null ? site.ProductOutput : graph.UniqueName($"{site.Name}.chain{factors.Count - j}");
            nodes.Add(new NodeProto
            {
                OpType = "MatMul",
                Name = graph.UniqueName($"{site.Name}/factor{j + 1}"),
                Input = { site.WeightIsLeftOperand ? inputs[j] : current, site.WeightIsLeftOperand ? current : inputs[j] },
                Output = { output },
            });
            current = output;
        }
        if (addend is not null)
        {
            if (beta != 1f)
            {
                var c = GraphQuery.ConstantTensor(graph, addend)
                    ?? throw new NotSupportedException($"Site '{site.Name}': Gemm with β = {beta} and a non-constant C ('{addend}') is not supported.");
                var values = model.Tensor(c).ToArray<float>();
                for (int i = 0; i < values.Length; i++) values[i] *= beta;
                string scaled = graph.UniqueName($"{site.Name}.bias");
                initializers.Add(OnnxTensors.FromArray<float>(scaled, values, [.. c.Dims], (OnnxDataType)c.DataType));
                addend = scaled;
            }
            nodes.Add(new NodeProto { OpType = "Add", Name = graph.UniqueName($"{site.Name}/bias"), Input = { current, addend }, Output = { site.ProductOutput } });
        }
        graph.ReplaceNode(node, nodes, initializers);
        return names;
    }

    /// <summary>Removes the nodes (weight transposes, casts) and initializers that rewrites left unused.</summary>
    public static void Tidy(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Graph.RemoveDeadNodes();
        model.Graph.RemoveUnusedInitializers();
    }

    private static void CheckShapes(LinearSite site, IReadOnlyList<Matrix<float>> factors)
    {
        if (factors.Count == 0) ThrowHelper.Argument(nameof(factors), $"Site '{site.Name}': at least one factor is needed.");
        if (factors[0].Rows != site.OutFeatures)
            ThrowHelper.ShapeMismatch(nameof(factors), $"Site '{site.Name}': the first factor", $"{site.OutFeatures} rows (out features)", $"{factors[0].Rows}");
        for (int j = 1; j < factors.Count; j++)
            if (factors[j].Rows != factors[j - 1].Cols)
                ThrowHelper.ShapeMismatch(nameof(factors), $"Site '{site.Name}': factor {j + 1}", $"{factors[j - 1].Cols} rows (factor {j}'s columns)", $"{factors[j].Rows}");
        if (factors[^1].Cols != site.InFeatures)
            ThrowHelper.ShapeMismatch(nameof(factors), $"Site '{site.Name}': the last factor", $"{site.InFeatures} columns (in features)", $"{factors[^1].Cols}");
    }

    private static Matrix<float> Scaled(Matrix<float> m, float s)
    {
        var copy = m.Clone();
        foreach (ref var v in copy.AsSpan()) v *= s;
        return copy;
    }

    private static float Attribute(NodeProto node, string name, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : fallback;
}
