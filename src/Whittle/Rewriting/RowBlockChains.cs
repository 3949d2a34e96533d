// Replaces a fused projection — several layers stacked as row blocks of one W, such as GPT-2's c_attn with
// W = [W_q; W_k; W_v] — by one factor chain per row block, joined by a Concat along the output-feature axis.
// A block may be rewritten (C·U·R for W_q) while its neighbours stay whole (one factor: the block of W itself).
//
// Shapes: W is m × n (out × in); block b has m_b rows (Σ m_b = m), factors F₁ (m_b × r₁), …, F_k (r_{k−1} × n)
// with F₁·…·F_k ≈ W[rows of b, :]. A right-operand MatMul (x·B, output […, m]) concatenates on the last axis; a
// left-operand MatMul (W·x, output […, m, T]) on the second-to-last. The Concat writes the site's product output,
// so a separate bias Add (and everything downstream, the Split included) is untouched.

using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Rewriting;

/// <summary>Rewrites a fused linear site as one factor chain per row block.</summary>
public static class RowBlockChains
{
    /// <summary>
    /// Replaces the MatMul of <paramref name="site"/> in <paramref name="model"/> (edited in place) by
    /// <c>Concat(chain₁(x), …, chain_B(x))</c>, chain_b = <c>x ↦ F₁(F₂(…(F_k x)))</c> of <paramref name="blocks"/>[b],
    /// whose product approximates the next <c>F₁.Rows</c> rows of the site's <c>W</c>. Factors are stored in the
    /// site's compute type. The old weight stays until <see cref="FactorChain.Tidy"/> removes it.
    /// </summary>
    /// <param name="model">The model to edit.</param>
    /// <param name="site">A MatMul site of <paramref name="model"/>'s current graph.</param>
    /// <param name="blocks">At least one block of at least one factor; the blocks' rows add up to the site's out features.</param>
    /// <returns>The names of the new initializers, per block in the order of its factors.</returns>
    /// <exception cref="ArgumentException">The factor shapes do not chain, the rows do not add up, or the site is not in the graph.</exception>
    /// <exception cref="NotSupportedException">The site is a Gemm (fused Gemm projections are not rewritten).</exception>
    public static IReadOnlyList<IReadOnlyList<string>> Replace(OnnxModel model, LinearSite site, IReadOnlyList<IReadOnlyList<Matrix<float>>> blocks)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(blocks);
        if (site.OpType != "MatMul")
            throw new NotSupportedException($"Site '{site.Name}': only a fused MatMul can be split into row blocks, not a {site.OpType}.");
        CheckShapes(site, blocks);
        var graph = model.Graph;
        var node = SiteWeights.SiteNode(model, site);
        var type = SiteWeights.ComputeType(model, site);
        var storage = SiteWeights.StorageType(model, site);

        var initializers = new List<TensorProto>();
        var nodes = new List<NodeProto>();
        var names = new List<IReadOnlyList<string>>();
        var parts = new List<string>();
        for (int b = 0; b < blocks.Count; b++)
        {
            var factors = blocks[b];
            var blockNames = new string[factors.Count];
            var values = new string[factors.Count];
            for (int j = 0; j < factors.Count; j++)
            {
                values[j] = graph.UniqueName($"{site.Name}.block{b + 1}.factor{j + 1}");
                // Right-operand products read Fᵀ (in × out).
                var stored = site.WeightIsLeftOperand ? factors[j] : factors[j].Transpose().ToMatrix();
                blockNames[j] = SiteWeights.AddWeight(graph, values[j], stored, type, storage, initializers, nodes);
            }
            string current = site.Input;
            for (int j = factors.Count - 1; j >= 0; j--)
            {
                string output = graph.UniqueName($"{site.Name}.block{b + 1}.chain{factors.Count - j}");
                nodes.Add(new NodeProto
                {
                    OpType = "MatMul",
                    Name = graph.UniqueName($"{site.Name}/block{b + 1}/factor{j + 1}"),
                    Input = { site.WeightIsLeftOperand ? values[j] : current, site.WeightIsLeftOperand ? current : values[j] },
                    Output = { output },
                });
                current = output;
            }
            parts.Add(current);
            names.Add(blockNames);
        }
        var concat = new NodeProto { OpType = "Concat", Name = graph.UniqueName($"{site.Name}/concat"), Output = { site.ProductOutput } };
        concat.Input.Add(parts);
        concat.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = site.WeightIsLeftOperand ? -2 : -1 });
        nodes.Add(concat);
        graph.ReplaceNode(node, nodes, initializers);
        return names;
    }

    private static void CheckShapes(LinearSite site, IReadOnlyList<IReadOnlyList<Matrix<float>>> blocks)
    {
        if (blocks.Count == 0) ThrowHelper.Argument(nameof(blocks), $"Site '{site.Name}': at least one row block is needed.");
        int rows = 0;
        for (int b = 0; b < blocks.Count; b++)
        {
            var factors = blocks[b];
            ArgumentNullException.ThrowIfNull(factors, nameof(blocks));
            if (factors.Count == 0) ThrowHelper.Argument(nameof(blocks), $"Site '{site.Name}': row block {b + 1} has no factor.");
            for (int j = 1; j < factors.Count; j++)
                if (factors[j].Rows != factors[j - 1].Cols)
                    ThrowHelper.ShapeMismatch(nameof(blocks), $"Site '{site.Name}': row block {b + 1}, factor {j + 1}", $"{factors[j - 1].Cols} rows (factor {j}'s columns)", $"{factors[j].Rows}");
            if (factors[^1].Cols != site.InFeatures)
                ThrowHelper.ShapeMismatch(nameof(blocks), $"Site '{site.Name}': row block {b + 1}, last factor", $"{site.InFeatures} columns (in features)", $"{factors[^1].Cols}");
            rows += factors[0].Rows;
        }
        if (rows != site.OutFeatures)
            ThrowHelper.ShapeMismatch(nameof(blocks), $"Site '{site.Name}': the row blocks", $"{site.OutFeatures} rows in all (out features)", $"{rows}");
    }
}
