// Replaces a convolution by two smaller ones — the written form of a low-rank factorization of its kernel.
//
// Shapes: the kernel K is Cout × Cin × k₁ × … × k_d (group = 1); as a matrix W = K reshaped to Cout × (Cin·k₁⋯k_d),
// row-major, so column j = (c·k₁ + i₁)·k₂ + … indexes one input channel and kernel offset. W ≈ L·R with L Cout × r and
// R r × (Cin·k₁⋯k_d) becomes
//     x → Conv(R as r × Cin × k₁ × … × k_d; the original strides, pads, dilations, auto_pad) → Conv(L as Cout × r × 1 × … × 1, bias)
// The first convolution computes, at every output position, the r numbers R·patch; the 1 × 1 convolution mixes them
// with L and adds the bias, so the output is (L·R)·patch + b at every position: exactly the original when L·R = W.
// Parameters r·(Cin·k₁⋯k_d + Cout) instead of Cout·Cin·k₁⋯k_d (plus the bias), and MACs per output position likewise.

using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Rewriting;

/// <summary>Reads a convolution's kernel as a matrix and rewrites the convolution as a rank-r pair of convolutions.</summary>
public static class ConvFactorChain
{
    /// <summary>
    /// The kernel of <paramref name="site"/> as <c>W</c>: <see cref="ConvSite.OutChannels"/> rows × (Cin·k₁⋯k_d) columns, a new
    /// float32 matrix (row-major reshape of the stored <c>[Cout, Cin, k₁, …]</c> tensor).
    /// </summary>
    /// <exception cref="NotSupportedException">The convolution is grouped, or its weight is quantized or reached through other ops.</exception>
    /// <exception cref="OnnxModelException">The weight is missing from the graph or its data cannot be read.</exception>
    public static Matrix<float> Weight(OnnxModel model, ConvSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        CheckFactorable(site);
        var tensor = KernelTensor(model, site);
        var values = tensor.ToArray<float>();
        int cols = checked((int)(values.Length / site.OutChannels));
        return new Matrix<float>(site.OutChannels, cols, values);
    }

    /// <summary>The columns of <see cref="Weight"/>: Cin·k₁⋯k_d.</summary>
    public static int PatchLength(ConvSite site)
    {
        ArgumentNullException.ThrowIfNull(site);
        return checked((int)(site.InChannels * site.Kernel.Aggregate(1L, (a, k) => a * k)));
    }

    /// <summary>
    /// Replaces the convolution of <paramref name="site"/> in <paramref name="model"/> (edited in place) by a convolution with
    /// <paramref name="r"/> as its r-channel kernel (same strides, pads, dilations) followed by a 1 × 1 convolution with
    /// <paramref name="l"/> and the original bias. The old kernel stays until <see cref="FactorChain.Tidy"/> removes it.
    /// </summary>
    /// <param name="model">The model to edit.</param>
    /// <param name="site">A convolution site of <paramref name="model"/>'s current graph, with group = 1.</param>
    /// <param name="l">Cout × r.</param>
    /// <param name="r">r × (Cin·k₁⋯k_d), r ≥ 1.</param>
    /// <returns>The names of the two new kernels: [L's, R's].</returns>
    /// <exception cref="ArgumentException">The shapes do not chain to Cout × (Cin·k₁⋯k_d), or the site is not in the graph.</exception>
    /// <exception cref="NotSupportedException">The convolution is grouped or its weight quantized.</exception>
    public static IReadOnlyList<string> Replace(OnnxModel model, ConvSite site, Matrix<float> l, Matrix<float> r)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(l);
        ArgumentNullException.ThrowIfNull(r);
        CheckFactorable(site);
        int patch = PatchLength(site);
        if (l.Rows != site.OutChannels)
            ThrowHelper.ShapeMismatch(nameof(l), $"Conv '{site.Name}': L", $"{site.OutChannels} rows (output channels)", $"{l.Rows}");
        if (r.Rows != l.Cols || r.Rows < 1)
            ThrowHelper.ShapeMismatch(nameof(r), $"Conv '{site.Name}': R", $"{l.Cols} rows (L's columns, at least 1)", $"{r.Rows}");
        if (r.Cols != patch)
            ThrowHelper.ShapeMismatch(nameof(r), $"Conv '{site.Name}': R", $"{patch} columns (Cin·kernel)", $"{r.Cols}");

        var graph = model.Graph;
        var node = SiteNode(model, site);
        var type = KernelTensor(model, site).DataType;
        int rank = r.Rows, spatial = site.Kernel.Count;
        string rName = graph.UniqueName($"{site.Name}.factor2");
        string lName = graph.UniqueName($"{site.Name}.factor1");
        var rKernel = OnnxTensors.FromMatrix(rName, r, type, [rank, site.InChannels, .. site.Kernel]);
        var lKernel = OnnxTensors.FromMatrix(lName, l, type, [site.OutChannels, rank, .. Enumerable.Repeat(1L, spatial)]);

        string middle = graph.UniqueName($"{site.Name}.chain1");
        var first = new NodeProto { OpType = "Conv", Name = graph.UniqueName($"{site.Name}/factor2"), Input = { site.Input, rName }, Output = { middle } };
        // Strides, pads, dilations and auto_pad act on the spatial window, which the first convolution keeps.
        foreach (var a in node.Attribute) first.Attribute.Add(a.Clone());
        var second = new NodeProto { OpType = "Conv", Name = graph.UniqueName($"{site.Name}/factor1"), Input = { middle, lName }, Output = { site.Output } };
        if (site.Bias is not null) second.Input.Add(site.Bias);
        var kernelShape = new AttributeProto { Name = "kernel_shape", Type = AttributeProto.Types.AttributeType.Ints };
        kernelShape.Ints.Add(Enumerable.Repeat(1L, spatial));
        second.Attribute.Add(kernelShape);
        graph.ReplaceNode(node, [first, second], [lKernel, rKernel]);
        return [lName, rName];
    }

    /// <summary>
    /// Replaces the kernel of <paramref name="site"/> by <paramref name="w"/> (Cout × Cin·k₁⋯k_d) in a new convolution node with
    /// the same attributes and bias (for a perturbed copy of a model; the old kernel stays until <see cref="FactorChain.Tidy"/>).
    /// </summary>
    /// <returns>The new kernel's name.</returns>
    /// <exception cref="ArgumentException"><paramref name="w"/> does not have the kernel's shape, or the site is not in the graph.</exception>
    public static string ReplaceKernel(OnnxModel model, ConvSite site, Matrix<float> w)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(w);
        CheckFactorable(site);
        if (w.Rows != site.OutChannels || w.Cols != PatchLength(site))
            ThrowHelper.ShapeMismatch(nameof(w), $"Conv '{site.Name}': the kernel", $"{site.OutChannels}×{PatchLength(site)}", $"{w.Rows}×{w.Cols}");
        var graph = model.Graph;
        var node = SiteNode(model, site);
        string name = graph.UniqueName($"{site.Name}.weight");
        var kernel = OnnxTensors.FromMatrix(name, w, KernelTensor(model, site).DataType, [site.OutChannels, site.InChannels, .. site.Kernel]);
        var copy = node.Clone();
        copy.Name = graph.UniqueName(site.Name);
        copy.Input[1] = name;
        graph.ReplaceNode(node, [copy], [kernel]);
        return name;
    }

    private static void CheckFactorable(ConvSite site)
    {
        if (site.Groups != 1)
            throw new NotSupportedException($"Conv '{site.Name}' has group = {site.Groups}; only ungrouped convolutions (group = 1) are factorized.");
        if (site.Weight.Path.Count > 0)
            throw new NotSupportedException($"Conv '{site.Name}': its kernel '{site.Weight.Initializer}' is reached through {string.Join(" → ", site.Weight.Path)}; only a kernel read directly is factorized.");
    }

    private static OnnxTensor KernelTensor(OnnxModel model, ConvSite site)
    {
        var proto = GraphQuery.ConstantTensor(model.Graph, site.Weight.Initializer)
            ?? throw new OnnxModelException($"{OnnxModelException.Describe(model.FilePath)}: conv '{site.Name}' reads '{site.Weight.Initializer}', which is neither an initializer nor a Constant.", model.FilePath, site.Weight.Initializer);
        return model.Tensor(proto);
    }

    private static NodeProto SiteNode(OnnxModel model, ConvSite site)
    {
        var node = model.Graph.Producer(site.Output);
        if (node is null || node.OpType != "Conv")
            ThrowHelper.Argument(nameof(site), $"Conv '{site.Name}': the graph has no Conv producing '{site.Output}' (was it rewritten already?).");
        return node;
    }
}
