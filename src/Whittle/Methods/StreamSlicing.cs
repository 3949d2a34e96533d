// Slicing a transformer's residual stream: SliceGPT (Ashkboos, Croci, do Nascimento, Hoefler, Hensman, "SliceGPT:
// Compress Large Language Models by Deleting Rows and Columns", ICLR 2024), for pre-norm models (RMSNorm or
// LayerNorm), one rotation for the whole stream.
//
//   0. LayerNorm models: every writer of the stream (embeddings, attention output, MLP down) is centred, W ← W·C with
//      C = I − 11ᵀ/d, so the stream has zero mean over its features and LayerNorm(x) = RMSNorm(x)·γ + β; each
//      LayerNorm becomes an RMSNorm whose β is folded into its readers' biases (b ← b + β·W).
//
//   1. Calibrate: G = Σ_j X_jᵀX_j, X_j the stream where a norm reads it (the embedding output, every residual sum).
//   2. Rotate: G = QΛQᵀ (C·G·C for LayerNorm models), λ descending. RMSNorm is invariant to x ↦ xQ (‖xQ‖ = ‖x‖) once
//      its scale γ is folded into the layers that read it, so the model computes the same function on the rotated stream
//      z = xQ. Keep Q_k, the first k
//      columns: ε_k = sqrt(Σ_{j≥k} λ_j / Σ_j λ_j) is the relative residual ‖X − XQ_kQ_kᵀ‖_F/‖X‖_F of the stream at the join
//      points — what an ID unit's ε_k is for its activation.
//   3. Rewrite: the embedding tables E ← E·Q_k; every writer (attention output, MLP down) W ← W·Q_k, its bias b ← b·Q_k;
//      every reader (q, k, v, gate, up, the LM head) W ← √(d/k)·Q_kᵀ·diag(γ)·W; each norm's γ ← 1 and its ε ← ε·d/k, so
//      z/sqrt(mean_k(z²) + ε·d/k) = √(d/k)·x/sqrt(mean_d(x²) + ε) whenever the slice keeps all of ‖x‖.
//   Every matrix that touches the stream loses d − k rows or columns: parameters and MACs fall linearly in k.
//   A LM head tied to the embedding is untied (the two now differ by Q_k and γ).

using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Compression;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Rewriting;

namespace Whittle.Methods;

/// <summary>
/// SliceGPT-style slicing of a transformer's hidden dimension: the residual stream rotated onto its principal directions
/// (one rotation for every block) and cut to the first k, with every norm's scale folded into its readers. Pre-norm
/// models with RMSNorm or LayerNorm. See the file header for the algorithm.
/// </summary>
public sealed class StreamSlicing : ICompressionMethod
{
    /// <summary>Creates the method, widths rounded to multiples of <paramref name="align"/> (1: off).</summary>
    public StreamSlicing(int align = HardwareAlignment.Default)
    {
        if (align < 1) ThrowHelper.ArgumentOutOfRange(nameof(align), align, "an alignment ≥ 1 (1 turns it off)");
        Align = align;
    }

    /// <summary>Kept widths are multiples of this where the stream is at least four multiples wide.</summary>
    public int Align { get; }

    /// <inheritdoc/>
    public string Name => "slice";

    /// <inheritdoc/>
    /// <remarks>Budgets: <see cref="BudgetKind.KeepParameters"/> (the widest aligned k that fits) or <see cref="BudgetKind.Tolerance"/> (the narrowest k with ε_k ≤ ε).</remarks>
    public BudgetKinds Budgets => BudgetKinds.KeepParameters | BudgetKinds.Tolerance;

    /// <summary>
    /// A norm reading the stream: the value its readers see, its scale γ (and LayerNorm's β), where its ε lives (a constant
    /// value, or the op's attribute), and the op node (null for an exported RMSNorm).
    /// </summary>
    private sealed record Norm(NormKind Kind, string Stream, string Output, string Scale, string? Bias, string? EpsilonValue, string? OpNode);

    /// <summary>What reads and writes the stream: the embedding tables and their Gathers, the values norms read, the layers.</summary>
    private sealed record StreamLayout(int Width, IReadOnlyList<(string Table, string Gather)> Embeddings, IReadOnlyList<string> Values,
        IReadOnlyList<LinearSite> Writers, IReadOnlyList<(LinearSite Site, Norm Norm)> Readers, IReadOnlyList<Norm> Norms)
    {
        /// <summary>LayerNorm models: the stream is centred first.</summary>
        public bool Centred => Norms.Any(n => n.Kind == NormKind.LayerNorm);
    }

    /// <summary>Parameter counts: <c>Fixed + PerK·k</c> after slicing to k, of the tensors slicing touches (<see cref="Before"/> now).</summary>
    private sealed record SliceSizes(long PerK, long Fixed, long Before, bool Tied)
    {
        public long After(int k) => Fixed + PerK * k;
    }

    /// <inheritdoc/>
    public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(budgets);
        var original = run.Original;
        var layout = run.Time(Stages.Analysis, () => Find(original, run.Structure));
        int d = layout.Width;

        // 1–2. The stream's Gram matrix at every join point (centred for LayerNorm models), and its principal directions.
        var sum = new Matrix<double>(d, d);
        long rows = 0;
        run.Time(Stages.Calibration, () => run.Survey(original, step =>
        {
            var stats = layout.Values.Where(step.Segment.Produced.Contains).Select(v => new GramStatistic(v)).ToList();
            if (stats.Count == 0) return;
            step.Calibrate(stats);
            foreach (var g in stats.Select(s => s.Finish()))
            {
                for (int i = 0; i < d; i++)
                    for (int j = 0; j < d; j++) sum[i, j] += g.Gram[i, j];
                rows += g.Rows;
            }
        }));
        if (layout.Centred) Centre(sum);
        var eigen = run.Time(Stages.Decomposition, () => SymmetricEigen.Compute<double>(sum.View));
        int[] order = [.. Enumerable.Range(0, d).OrderByDescending(j => eigen.Values[j])];
        var lambda = order.Select(j => Math.Max(0, eigen.Values[j])).ToArray();
        var q = new Matrix<double>(d, d);
        for (int c = 0; c < d; c++)
            for (int r = 0; r < d; r++) q[r, c] = eigen.Vectors[r, order[c]];
        double total = lambda.Sum();
        var tail = new double[d + 1];
        for (int k = d - 1; k >= 0; k--) tail[k] = tail[k + 1] + lambda[k];
        double Residual(int k) => total > 0 ? Math.Sqrt(Math.Max(0, tail[k]) / total) : 0;

        var sizes = Sizes(original, layout);
        var results = new List<CompressionResult>(budgets.Count);
        foreach (var budget in budgets)
        {
            run.CancellationToken.ThrowIfCancellationRequested();
            var warnings = new List<string>(run.Structure.Warnings);
            int k = budget.Kind == BudgetKind.Tolerance
                ? HardwareAlignment.RoundUp(Enumerable.Range(1, d).First(k => Residual(k) <= budget.Value || k == d), d, Align)
                : Fitting(budget, run.OriginalCost.Parameters, sizes, d, warnings);
            var model = run.Copy();
            run.Time(Stages.Rewrite, () => Rewrite(model, layout, q, k));
            if (sizes.Tied)
                warnings.Add($"The LM head shared the embedding table '{layout.Embeddings[0].Table}'; it now has its own weights (the two differ by the rotation and the norm's scale).");
            var site = new SiteReport("residual stream", "stream", d, k)
            {
                ParametersBefore = sizes.Before,
                ParametersAfter = sizes.After(k),
                ErrorEstimate = Residual(k),
                Details = new StreamSlicingDetails(d, k, Residual(k), layout.Writers.Select(w => w.Name).ToList(),
                    layout.Readers.Select(r => r.Site.Name).ToList(), layout.Norms.Count, layout.Centred, sizes.Tied, rows),
            };
            results.Add(run.Result(budget, model, [site], site.Details, warnings, (sizes.Before, null)));
        }
        return results;
    }

    /// <summary>G ← C·G·C, C = I − 11ᵀ/d: the Gram matrix of the centred stream.</summary>
    private static void Centre(Matrix<double> g)
    {
        int d = g.Rows;
        var rowMean = new double[d];
        double all = 0;
        for (int i = 0; i < d; i++)
        {
            for (int j = 0; j < d; j++) rowMean[i] += g[i, j];
            all += rowMean[i];
            rowMean[i] /= d;
        }
        all /= (double)d * d;
        // G symmetric: column means equal row means.
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) g[i, j] += all - rowMean[i] - rowMean[j];
    }

    /// <summary>The widest k (a multiple of the alignment where it applies) whose model fits a parameter budget.</summary>
    private int Fitting(CompressionBudget budget, long modelParameters, SliceSizes sizes, int d, List<string> warnings)
    {
        bool model = budget.Scope == BudgetScope.Model;
        bool Fits(int k) => model
            ? modelParameters - sizes.Before + sizes.After(k) <= budget.Value * modelParameters + 1e-9
            : sizes.After(k) <= budget.Value * sizes.Before + 1e-9;
        int step = HardwareAlignment.Applies(d, Align) ? Align : 1;
        for (int k = d / step * step; k >= step; k -= step)
            if (Fits(k)) return k;
        warnings.Add($"{budget} cannot be met by slicing the stream alone: {step} of its {d} dimensions are kept.");
        return step;
    }

    /// <summary>
    /// What slicing to k leaves: per kept dimension a row of every embedding table, a column of every writer (and its bias),
    /// a row of every reader, a scale per RMSNorm and the LayerNorms' shared 1/k vector; fixed, the readers' new biases
    /// (LayerNorm's β folded in) and the LayerNorms' constants.
    /// </summary>
    private static SliceSizes Sizes(OnnxModel model, StreamLayout layout)
    {
        var graph = model.Graph;
        var touched = new HashSet<string>(StringComparer.Ordinal);
        long perK = 0, fixedParameters = 0;
        foreach (var (table, _) in layout.Embeddings)
        {
            touched.Add(table);
            perK += graph.GetInitializer(table).Proto.Dims[0];
        }
        foreach (var w in layout.Writers)
        {
            touched.Add(w.Weight.Initializer);
            perK += w.InFeatures + (w.Bias is null ? 0 : 1);
            if (w.Bias is not null) touched.Add(w.Bias);
        }
        bool tied = false;
        foreach (var (r, norm) in layout.Readers)
        {
            tied |= layout.Embeddings.Any(e => e.Table == r.Weight.Initializer);
            touched.Add(r.Weight.Initializer);
            perK += r.OutFeatures;
            if (norm.Bias is not null && r.Bias is null) fixedParameters += r.OutFeatures;
        }
        foreach (var n in layout.Norms)
        {
            touched.Add(n.Scale);
            if (n.Bias is not null) touched.Add(n.Bias);
            if (n.EpsilonValue is not null && n.Kind == NormKind.RmsNorm) touched.Add(n.EpsilonValue);
        }
        perK += layout.Norms.Where(n => n.Kind == NormKind.RmsNorm).Select(n => n.Scale).Distinct(StringComparer.Ordinal).Count();
        var layerNorms = layout.Norms.Where(n => n.Kind == NormKind.LayerNorm).ToList();
        if (layerNorms.Count > 0) perK++; // the shared 1/k column of the mean
        fixedParameters += (layerNorms.Count > 0 ? 1 : 0) + layerNorms.Count; // the exponent 2, one ε per norm
        fixedParameters += layout.Norms.Where(n => n.Kind == NormKind.RmsNorm && n.EpsilonValue is not null)
            .Select(n => n.EpsilonValue!).Distinct(StringComparer.Ordinal).Sum(e => graph.TryGetInitializer(e, out var t) ? t.ElementCount : 0);
        long before = touched.Sum(t => graph.TryGetInitializer(t, out var init) ? init.ElementCount : 0);
        return new SliceSizes(perK, fixedParameters, before, tied);
    }

    /// <summary>Steps 0 and 3 on <paramref name="model"/> (a copy of the original) for width k.</summary>
    private static void Rewrite(OnnxModel model, StreamLayout layout, Matrix<double> q, int k)
    {
        var graph = model.Graph;
        int d = layout.Width;
        var qk = q.Slice(0, 0, d, k).ToMatrix();
        // Writers map into the stream through C·Q_k (C = I − 11ᵀ/d centres it for LayerNorm models): Q_k's columns less their means.
        var into = qk.Clone();
        if (layout.Centred)
            for (int c = 0; c < k; c++)
            {
                double average = 0;
                for (int r = 0; r < d; r++) average += into[r, c];
                average /= d;
                for (int r = 0; r < d; r++) into[r, c] -= average;
            }
        double scale = Math.Sqrt((double)d / k);
        var gammas = layout.Norms.ToDictionary(n => n.Output, n => graph.GetInitializer(n.Scale).ToArray<double>(), StringComparer.Ordinal);
        var betas = layout.Norms.Where(n => n.Bias is not null).ToDictionary(n => n.Output, n => graph.GetInitializer(n.Bias!).ToArray<double>(), StringComparer.Ordinal);

        // Readers first: W ← √(d/k)·Q_kᵀ·diag(γ)·W (k × out), stored as a new [k, out] initializer the MatMul reads directly;
        // a LayerNorm's β goes into the bias: b ← b + β·W.
        foreach (var (site, norm) in layout.Readers)
        {
            var w = Widen(SiteWeights.Weight(model, site).Transpose().ToMatrix()); // d × out
            var delta = betas.TryGetValue(norm.Output, out var beta) ? Blas.Multiply(Row(beta).View, w.View) : null;
            var gamma = gammas[norm.Output];
            for (int i = 0; i < d; i++)
            {
                var row = w.Row(i);
                for (int j = 0; j < row.Length; j++) row[j] *= gamma[i] * scale;
            }
            SetWeight(model, site, Blas.Multiply(qk.Transpose(), w.View));
            if (delta is not null) AddToBias(model, site, delta.Row(0)); // last: a new bias Add moves the product to another value
        }
        // Writers: W (in × d) ← W·C·Q_k; bias b ← b·C·Q_k.
        foreach (var site in layout.Writers)
        {
            var w = Widen(SiteWeights.Weight(model, site).Transpose().ToMatrix()); // in × d
            SetWeight(model, site, Blas.Multiply(w.View, into.View));
            if (SiteWeights.Bias(model, site) is { } b)
            {
                var rotated = Blas.Multiply(Row([.. b.Select(v => (double)v)]).View, into.View);
                graph.ReplaceInitializer(OnnxTensors.FromArray(site.Bias!, Narrow(rotated).Row(0), [k], OnnxDataType.Float));
            }
        }
        // The embeddings (a Gather gets its own table when something else, a tied head's Transpose, still reads the old one).
        graph.RemoveDeadNodes();
        foreach (var (table, gather) in layout.Embeddings)
        {
            var rotated = Narrow(Blas.Multiply(Widen(graph.GetInitializer(table).ToMatrix<float>()).View, into.View));
            var reader = Node(graph, gather);
            var storage = graph.GetInitializer(table).DataType;
            if (reader.Input[0] == table && graph.Consumers(table).Count == 1)
                graph.ReplaceInitializer(OnnxTensors.FromMatrix(table, rotated, storage));
            else
            {
                // Its own table, in the old one's storage (16 bits behind a Cast where it had that).
                List<TensorProto> initializers = [];
                List<NodeProto> widen = [];
                string name = graph.UniqueName(table + ".sliced");
                SiteWeights.AddWeight(graph, name, rotated, OnnxDataType.Float, storage is OnnxDataType.Float16 or OnnxDataType.BFloat16 ? storage : OnnxDataType.Float,
                    initializers, widen);
                var lookup = reader.Clone();
                lookup.Input[0] = name;
                graph.ReplaceNode(reader, [.. widen, lookup], initializers);
            }
        }
        // Norms: RMSNorms keep their form with γ ← 1 (k values) and ε ← ε·d/k; LayerNorms become z / sqrt(mean(z²) + ε·d/k).
        var done = new HashSet<string>(StringComparer.Ordinal);
        string? two = null, mean = null;
        foreach (var n in layout.Norms)
        {
            if (n.Kind == NormKind.LayerNorm)
            {
                var node = Node(graph, n.OpNode!);
                float eps = (float)((node.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f) * d / k);
                var initializers = new List<TensorProto>();
                if (two is null)
                {
                    two = graph.UniqueName("slice.two");
                    mean = graph.UniqueName("slice.mean_of_k");
                    initializers.Add(OnnxTensors.FromArray(two, [2f], [], OnnxDataType.Float));
                    initializers.Add(OnnxTensors.FromArray(mean, Enumerable.Repeat(1f / k, k).ToArray().AsSpan(), [k, 1], OnnxDataType.Float));
                }
                string epsName = graph.UniqueName(n.OpNode + ".eps");
                initializers.Add(OnnxTensors.FromArray(epsName, [eps], [], OnnxDataType.Float));
                string V(string what) => graph.UniqueName($"{n.OpNode}.{what}");
                string square = V("square"), meanSquare = V("mean_square"), shifted = V("plus_eps"), rms = V("rms");
                graph.ReplaceNode(node,
                [
                    NewNode("Pow", [n.Stream, two], square, V("Pow")),
                    NewNode("MatMul", [square, mean!], meanSquare, V("MatMul")),
                    NewNode("Add", [meanSquare, epsName], shifted, V("Add")),
                    NewNode("Sqrt", [shifted], rms, V("Sqrt")),
                    NewNode("Div", [n.Stream, rms], n.Output, V("Div")),
                ], initializers);
                continue;
            }
            if (done.Add(n.Scale)) graph.ReplaceInitializer(OnnxTensors.FromArray(n.Scale, Enumerable.Repeat(1f, k).ToArray().AsSpan(), [k], OnnxDataType.Float));
            if (n.EpsilonValue is { } e && done.Add(e))
            {
                var epsilon = Scalar(graph, e)!;
                var value = OnnxTensors.FromArray(e, [(float)(OnnxTensor.Of(epsilon).ToArray<double>()[0] * d / k)], [.. epsilon.Dims], OnnxDataType.Float);
                if (graph.TryGetInitializer(e, out _)) graph.ReplaceInitializer(value);
                else graph.Producer(e)!.Attribute.First(a => a.Name == "value").T = value;
            }
            if (n.EpsilonValue is null && n.OpNode is { } op)
            {
                var node = Node(graph, op);
                if (node.Attribute.FirstOrDefault(a => a.Name == "epsilon") is not { } attr)
                    node.Attribute.Add(attr = new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = 1e-5f });
                attr.F = (float)(attr.F * d / k);
            }
        }
        // Recorded shapes of the stream and everything computed from it along the hidden axis are stale: ORT infers them.
        graph.Proto.ValueInfo.Clear();
        graph.Invalidate();
    }

    /// <summary>A one-element float constant (an initializer or a Constant node's value), or null.</summary>
    private static TensorProto? Scalar(OnnxGraph graph, string value)
    {
        var t = graph.TryGetInitializer(value, out var init) ? init.Proto
            : graph.Producer(value) is { OpType: "Constant" } c ? c.Attribute.FirstOrDefault(a => a.Name == "value")?.T : null;
        return t is not null && t.Dims.Aggregate(1L, (a, b) => a * b) == 1 && t.DataType == (int)OnnxDataType.Float ? t : null;
    }

    private static NodeProto Node(OnnxGraph graph, string name) => graph.Proto.Node.First(n => GraphQuery.NameOf(n) == name);

    private static NodeProto NewNode(string op, IEnumerable<string> inputs, string output, string name)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(output);
        return node;
    }

    /// <summary>Adds <paramref name="delta"/> to the site's bias, giving it a bias <c>Add</c> if it has none.</summary>
    private static void AddToBias(OnnxModel model, LinearSite site, ReadOnlySpan<double> delta)
    {
        var graph = model.Graph;
        var values = new float[delta.Length];
        var old = SiteWeights.Bias(model, site);
        for (int j = 0; j < values.Length; j++) values[j] = (float)(delta[j] + (old?[j] ?? 0));
        if (old is not null)
        {
            graph.ReplaceInitializer(OnnxTensors.FromArray(site.Bias!, values.AsSpan(), [values.Length], OnnxDataType.Float));
            return;
        }
        var node = SiteWeights.SiteNode(model, site);
        string product = graph.UniqueName(site.Output + ".unbiased"), bias = graph.UniqueName(site.Name + ".bias");
        var matmul = node.Clone();
        matmul.Output[0] = product;
        graph.ReplaceNode(node, [matmul, NewNode("Add", [product, bias], site.Output, graph.UniqueName(site.Name + ".bias_add"))],
            [OnnxTensors.FromArray(bias, values.AsSpan(), [values.Length], OnnxDataType.Float)]);
    }

    /// <summary>Points the site's MatMul at a new [in, out] initializer holding <paramref name="weightInOut"/>.</summary>
    private static void SetWeight(OnnxModel model, LinearSite site, Matrix<double> weightInOut)
    {
        var node = SiteWeights.SiteNode(model, site);
        var graph = model.Graph;
        // Keeps 16-bit storage (behind a Cast) where the weight had it.
        var storage = SiteWeights.StorageType(model, site);
        string name = graph.UniqueName(site.Name + ".sliced_weight");
        List<TensorProto> initializers = [];
        List<NodeProto> widen = [];
        SiteWeights.AddWeight(graph, name, Narrow(weightInOut), OnnxDataType.Float, storage, initializers, widen);
        var product = node.Clone();
        product.Input[1] = name;
        graph.ReplaceNode(node, [.. widen, product], initializers);
    }

    private static Matrix<double> Row(double[] values)
    {
        var m = new Matrix<double>(1, values.Length);
        for (int j = 0; j < values.Length; j++) m[0, j] = values[j];
        return m;
    }

    private static Matrix<double> Widen(Matrix<float> m) => LowRankBaseline.Widen(m);

    private static Matrix<float> Narrow(Matrix<double> m) => LowRankBaseline.Narrow(m);

    /// <summary>The stream's writers, readers and norms; throws naming what does not fit the pattern.</summary>
    private static StreamLayout Find(OnnxModel model, ModelStructure structure)
    {
        string file = OnnxModelException.Describe(model.FilePath);
        var stream = structure.ResidualStream
            ?? throw new ArgumentException($"slice: {file} has no transformer residual stream (a chain of residual Adds around attention and MLP blocks).");
        var graph = model.Graph;
        var sites = structure.LinearSites.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var byOutput = structure.LinearSites.GroupBy(s => s.Output, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        ArgumentException Refuse(string why) => new($"slice: {file}: {why}");

        List<string> values = [stream.Start, .. stream.Values];
        var addNodes = stream.AddNodes.Select(n => Node(graph, n)).ToList();
        if (addNodes.FirstOrDefault(a => !a.Input.Any(values.Contains)) is { } postNorm)
            throw Refuse($"the residual Add '{GraphQuery.NameOf(postNorm)}' adds to a normalized stream (post-norm, BERT-style): no rotation passes through "
                + "a norm between the Adds; only pre-norm models are sliced.");

        // The stream starts at a Gather from the token embedding [vocab, d], or the sum of it and a position embedding's.
        var start = graph.Producer(stream.Start);
        var gathers = start is { OpType: "Add" } ? start.Input.Select(graph.Producer).ToList() : [start];
        // The table may be stored in 16 bits behind a Cast (Table is then the stored initializer).
        string? TableOf(NodeProto? g) => g is { OpType: "Gather" } ? GraphQuery.StoredInitializer(graph, g.Input[0]) : null;
        bool IsEmbedding(NodeProto? g) => TableOf(g) is { } table && graph.GetInitializer(table).Proto.Dims.Count == 2
            && !g!.Attribute.Any(a => a.Name == "axis" && a.I != 0);
        if (!gathers.All(IsEmbedding))
            throw Refuse($"the stream '{stream.Start}' does not start at a Gather from a [vocab, d] embedding table, or the sum of two (found "
                + $"{start?.OpType ?? "a graph input"}); scaled embeddings are not sliced yet.");
        var embeddings = gathers.Select(g => (Table: TableOf(g)!, Gather: GraphQuery.NameOf(g!))).ToList();
        int d = (int)graph.GetInitializer(embeddings[0].Table).Proto.Dims[1];
        if (embeddings.Any(e => graph.GetInitializer(e.Table).Proto.Dims[1] != d))
            throw Refuse($"the embedding tables {string.Join(", ", embeddings.Select(e => $"'{e.Table}'"))} that start the stream differ in width.");
        var adds = new HashSet<string>(stream.AddNodes, StringComparer.Ordinal);

        var writers = new List<LinearSite>();
        foreach (var add in addNodes)
        {
            string branch = values.Contains(add.Input[0]) ? add.Input[1] : add.Input[0];
            if (!byOutput.TryGetValue(branch, out var w) || graph.Consumers(w.ProductOutput).Count != 1)
                throw Refuse($"the residual Add '{GraphQuery.NameOf(add)}' adds '{branch}', which is not the output of a linear layer read only there.");
            writers.Add(Checked(w!, d, reader: false, Refuse));
        }

        var norms = new List<Norm>();
        var readers = new List<(LinearSite, Norm)>();
        foreach (string v in values)
        {
            if (graph.IsGraphOutput(v)) throw Refuse($"the stream value '{v}' is a graph output; slicing would change it.");
            foreach (var c in graph.Consumers(v).DistinctBy(GraphQuery.NameOf))
            {
                if (c.OpType == "Add" && adds.Contains(GraphQuery.NameOf(c)) || c.OpType == "Shape") continue;
                // The exported RMSNorm's square (Pow → ReduceMean) is handled with the Div or Mul that applies it.
                if (c.OpType == "Pow" && graph.Consumers(c.Output[0]).All(x => x.OpType == "ReduceMean")) continue;
                var norm = c.OpType is "Div" or "Mul" ? Exported(graph, v, c, Refuse)
                    : c.OpType is "SimplifiedLayerNormalization" or "RMSNormalization" or "LayerNormalization" ? Op(graph, v, c, Refuse)
                    : throw Refuse($"'{GraphQuery.NameOf(c)}' ({c.OpType}) reads the residual stream '{v}'; only norms (RMSNorm, the LayerNormalization op) "
                        + "and residual Adds may" + (c.OpType is "ReduceMean" or "Sub" ? " (an exported LayerNorm is not rewritten yet)." : "."));
                norms.Add(norm);
                foreach (var r in graph.Consumers(norm.Output))
                {
                    if (r.OpType == "Shape") continue; // exports read the batch and sequence lengths here
                    var site = sites.Values.FirstOrDefault(s => SiteWeights.SiteNode(model, s) == r);
                    if (site is null || site.Input != norm.Output)
                        throw Refuse($"'{GraphQuery.NameOf(r)}' ({r.OpType}) reads the normalized stream '{norm.Output}'; only linear layers may.");
                    readers.Add((Checked(site!, d, reader: true, Refuse), norm));
                }
            }
        }
        if (norms.Count == 0) throw Refuse("no norm reads the stream.");
        if (norms.Select(n => n.Kind).Distinct().Count() > 1) throw Refuse("the stream is read by both RMSNorms and LayerNorms.");
        return new StreamLayout(d, embeddings, values, writers, readers, norms);
    }

    /// <summary>A site slicing can rewrite: a MatMul x·W with a float weight of the right width.</summary>
    private static LinearSite Checked(LinearSite s, int d, bool reader, Func<string, Exception> refuse)
    {
        if (s.OpType != "MatMul" || s.WeightIsLeftOperand || s.Weight.Path.Any(p => p is not ("Transpose" or "Cast")))
            throw refuse($"'{s.Name}' ({s.OpType}{(s.Weight.Path.Count > 0 ? " through " + string.Join(", ", s.Weight.Path) : "")}) touches the stream; only MatMul x·W layers are sliced.");
        if ((reader ? s.InFeatures : s.OutFeatures) != d)
            throw refuse($"'{s.Name}' {(reader ? "reads" : "writes")} {(reader ? s.InFeatures : s.OutFeatures)} features of a {d}-wide stream.");
        return s;
    }

    /// <summary>
    /// The exported RMSNorm whose <paramref name="apply"/> node reads <paramref name="x"/>: Div(x, Sqrt(Add(ReduceMean(Pow(x, 2)), ε)))
    /// or Mul(x, Reciprocal(Sqrt(…))) (torch.rsqrt), then · γ.
    /// </summary>
    private static Norm Exported(OnnxGraph graph, string x, NodeProto apply, Func<string, Exception> refuse)
    {
        string other = apply.Input[0] == x ? apply.Input[1] : apply.Input[0];
        var p = graph.Producer(other);
        bool Constant(string v) => graph.TryGetInitializer(v, out _) || graph.Producer(v) is { OpType: "Constant" };
        while (p is { OpType: "Sqrt" or "Reciprocal" } || p is { OpType: "Div" } && Constant(p.Input[0]))
            p = graph.Producer(p.OpType == "Div" ? p.Input[1] : p.Input[0]);
        string? eps = p?.OpType == "Add" && p.Input.Any(i => graph.Producer(i) is { OpType: "ReduceMean" })
            ? p.Input.FirstOrDefault(i => Scalar(graph, i) is not null) : null;
        var mul = graph.Consumers(apply.Output[0]) is [{ OpType: "Mul" } m] ? m : null;
        string? gamma = mul?.Input.FirstOrDefault(i => i != apply.Output[0] && graph.TryGetInitializer(i, out var t) && t.Proto.Dims.Count == 1);
        if ((apply.OpType == "Div" && apply.Input[0] != x) || eps is null || gamma is null)
            throw refuse($"'{GraphQuery.NameOf(apply)}' ({apply.OpType}) reads the residual stream '{x}' but is not an RMSNorm x / sqrt(mean(x²) + ε) · γ "
                + $"with initializers ε and γ (found {(p is null ? "no" : p.OpType)} before ε, {(gamma is null ? "no" : "a")} scale).");
        return new Norm(NormKind.RmsNorm, x, mul!.Output[0], gamma!, null, eps, null);
    }

    /// <summary>A norm op reading <paramref name="x"/>: SimplifiedLayerNormalization, RMSNormalization, LayerNormalization (its β too).</summary>
    private static Norm Op(OnnxGraph graph, string x, NodeProto node, Func<string, Exception> refuse)
    {
        bool layer = node.OpType == "LayerNormalization";
        string? bias = layer && node.Input.Count > 2 && node.Input[2].Length > 0 ? node.Input[2] : null;
        bool OneDim(string v) => graph.TryGetInitializer(v, out var t) && t.Proto.Dims.Count == 1;
        if (node.Input.Count < 2 || node.Input[0] != x || !OneDim(node.Input[1]) || bias is not null && !OneDim(bias)
            || node.Attribute.Any(a => a.Name == "axis" && a.I != -1) || node.Output.Skip(1).Any(o => o.Length > 0 && graph.Consumers(o).Count > 0))
            throw refuse($"'{GraphQuery.NameOf(node)}' ({node.OpType}) normalizes the stream '{x}' in a form slicing does not rewrite "
                + "(scale or bias not an initializer, another axis, extra outputs read).");
        return new Norm(layer ? NormKind.LayerNorm : NormKind.RmsNorm, x, node.Output[0], node.Input[1], bias, null, GraphQuery.NameOf(node));
    }
}

/// <summary>What stream slicing did, attached to <see cref="CompressionReport.Details"/>.</summary>
/// <param name="Width">The stream's width d.</param>
/// <param name="Kept">k, the principal directions kept.</param>
/// <param name="ResidualRatio">ε_k = sqrt(Σ_{j≥k} λ_j / Σ λ_j) on the calibration data.</param>
/// <param name="Writers">Layers writing the stream (rotated on their outputs).</param>
/// <param name="Readers">Layers reading a norm of the stream (rotated on their inputs, the norm's scale folded in).</param>
/// <param name="Norms">Norms reading the stream.</param>
/// <param name="Centred">Whether they are LayerNorms, turned into RMSNorms on a centred stream.</param>
/// <param name="UntiedHead">Whether a LM head tied to the embedding got weights of its own.</param>
/// <param name="CalibrationRows">Stream rows (tokens × join points) the rotation was computed from.</param>
public sealed record StreamSlicingDetails(int Width, int Kept, double ResidualRatio, IReadOnlyList<string> Writers, IReadOnlyList<string> Readers,
    int Norms, bool Centred, bool UntiedHead, long CalibrationRows);
