// CURing: CUR decomposition of selected transformer weights, without fine-tuning (METHODS.md §1).
//
// Pipeline, for a stack of L transformer blocks (the structure analysis finds them on the residual stream):
//   1. Calibration. A survey of the original model, segment by segment, collects every block boundary's hidden
//      state at each sequence's last real token. Then the pass over the blocks: at the input of every target matrix
//      of a chosen block, the per-feature RMS a_j and the Gram matrix G = XᵀX (for the activation core and the output
//      error) — in sequential mode on the activations of the blocks already compressed, in parallel mode on the
//      original's (collected in the survey itself while the Gram matrices of all eligible blocks fit in
//      OnePassStatisticsBytes).
//   2. Layer selection. d_l = arccos(cos(h_{l−1}, h_l))/π averaged over sequences; blocks 0 and L − 1 are never
//      chosen; the N smallest distances win (or the N blocks before the last, or a given list).
//   3. Which matrices. The target roles (q, k, gate by default) of each chosen block; for a plain MLP "gate" is its
//      first projection; the Q/K/V rows of a fused projection are separate matrices.
//   4. Rank. r = min(r_max, break-even rank), the largest r with m·r + r² + r·n < m·n.
//   5–7. S = |W|·a (WANDA), DEIM rows I and columns J from the top-r singular vectors of S, C = W[:, J],
//      R = W[I, :], U by the chosen core (DeimCur). Computed in float64; C and R are exact slices of W.
//   8. Rewrite. Each matrix becomes x → R → U → C (FactorChain; RowBlockChains for fused Q/K/V), on a copy.
//
// Hidden states: h_{l−1} is the value block l reads and h_l the value block l + 1 reads (block L − 1: its own
// output). For pre-norm models these are the residual stream between blocks; for post-norm encoders (BERT) they
// are the normalized states each block reads, so every distance compares like with like. Encoders use the same
// last-real-token rule (METHODS.md); their batches carry an attention mask, which locates that token.
//
// Reference: Park & Moon, "CURing Large Models: Compression via CUR Decomposition", arXiv 2501.04211
// (code lukepark327/CURing). Reference figures: Llama-3.1-8B, N = 10, r = 256 → −9% parameters, 129 s on one GPU.

using Whittle.Analysis;
using Whittle.Calibration;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Rewriting;

namespace Whittle.Methods;

/// <summary>
/// CURing (Park &amp; Moon 2025): replaces the query, key and first MLP projections of the transformer blocks whose
/// output changes least by <c>C·U·R</c> factors built from real rows and columns of each weight.
/// </summary>
public sealed class Curing : ICompressionMethod
{
    /// <summary>The batch tensor name <see cref="CuringOptions.MaskInput"/> falls back to.</summary>
    public const string DefaultMaskInput = "attention_mask";

    /// <summary>A CURing method with <paramref name="options"/> (null: the paper's defaults).</summary>
    /// <exception cref="ArgumentException">An option is out of range (see <see cref="CuringOptions"/>).</exception>
    public Curing(CuringOptions? options = null)
    {
        Options = options ?? new CuringOptions();
        Options.Validate();
    }

    /// <summary>The options.</summary>
    public CuringOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "curing";

    /// <summary>One matrix to decompose: a whole site, or a row block of a fused Q/K/V site.</summary>
    private sealed record Target(int Block, BlockRole Role, LinearSite Site, int RowOffset, int Rows);

    /// <summary>A target's factors [C, U, R] in float32, ready for the graph (null when it was left alone), and its report entry.</summary>
    private sealed record Decomposed(Target Target, Matrix<float>[]? Factors, SiteReport Report);

    /// <inheritdoc/>
    /// <remarks>CURing takes no budget: the size follows from <see cref="CuringOptions.Layers"/> and <see cref="CuringOptions.MaxRank"/>.</remarks>
    public BudgetKinds Budgets => BudgetKinds.MethodDefault;

    /// <inheritdoc/>
    public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(budgets);
        var warnings = new List<string>();
        var model = run.Original;
        var structure = run.Structure;
        var blocks = structure.Blocks;
        int count = BlockCount(blocks.Count, model, warnings);
        string? mask = MaskInput(run.Calibration);

        // 1. Survey: hidden states at every block boundary; in parallel mode also the statistics of every target the
        //    selection may pick, while their Gram matrices fit in OnePassStatisticsBytes.
        var boundaries = Boundaries(blocks);
        var known = Options.Selection.Kind == LayerSelectionKind.Angular ? null : SelectBlocks(new double[blocks.Count], count, Options.Selection);
        var candidates = Targets(structure, known ?? [.. Enumerable.Range(1, blocks.Count - 2)], out var missing);
        bool parallel = run.Mode == CalibrationMode.Parallel;
        bool onePass = parallel && (known is not null || StatisticsBytes(candidates) <= Options.OnePassStatisticsBytes);
        var hidden = boundaries.Distinct().ToDictionary(b => b, b => new LastTokenStatistic(b, mask), StringComparer.Ordinal);
        var statistics = new Dictionary<string, InputStatistics>(StringComparer.Ordinal);
        var pending = new HashSet<string>(hidden.Keys, StringComparer.Ordinal);
        run.Survey(model, step =>
        {
            var here = pending.Where(b => step.Segment.Inputs.Contains(b) || step.Segment.Produced.Contains(b)).ToList();
            pending.ExceptWith(here);
            var inputs = onePass ? Inputs(candidates.Where(t => step.Holds(t.Site.Name))) : [];
            step.Calibrate([.. here.Select(b => hidden[b]), .. inputs.Values.SelectMany(i => i.Statistics)]);
            foreach (var (name, i) in inputs) statistics[name] = i;
        });

        // 2. Layer selection by angular distance.
        var states = boundaries.Select(b => hidden[b].Finish()).ToList();
        var distances = AngularDistances(states);
        var chosen = known ?? SelectBlocks(distances, count, Options.Selection);

        // 3. Which matrices: the targets of the chosen blocks.
        var targets = candidates.Where(t => chosen.Contains(t.Block)).ToList();
        warnings.AddRange(missing.Where(m => chosen.Contains(m.Block)).Select(m => m.Message));

        // 4–8. Per segment: statistics of its targets (unless surveyed), rank, WANDA scores, DEIM indices, C, U, R; rewrite.
        var compressed = run.Copy();
        var reports = new List<SiteReport>();
        int done = 0;
        run.Pass([compressed], step =>
        {
            var here = targets.Where(t => step.Holds(t.Site.Name)).ToList();
            if (here.Count == 0) return;
            if (!onePass)
            {
                var inputs = Inputs(here);
                step.Calibrate([.. inputs.Values.SelectMany(i => i.Statistics)]);
                foreach (var (name, i) in inputs) statistics[name] = i;
            }
            var decomposed = new List<Decomposed>();
            foreach (var t in here)
            {
                run.CancellationToken.ThrowIfCancellationRequested();
                run.Report(Stages.Decomposition, done++, targets.Count, $"block {t.Block} {BlockRoles.Name(t.Role)}");
                var d = run.Time(Stages.Decomposition, () => Decompose(step.Source, t, statistics[t.Site.Input], run.Seed));
                if (d.Factors is null) warnings.Add($"{d.Report.Site}: {d.Report.Skipped}");
                else decomposed.Add(d);
                reports.Add(d.Report);
            }
            foreach (var target in step.Targets) run.Time(Stages.Rewrite, () => Rewrite(target.Model, step.Source, decomposed));
        });
        run.Time(Stages.Rewrite, () => FactorChain.Tidy(compressed));

        var details = new CuringDetails(
            [.. blocks.Select((b, l) => new BlockDistance(l, boundaries[l], boundaries[l + 1], distances[l], l > 0 && l < blocks.Count - 1, chosen.Contains(l)))],
            chosen, Options.Selection.ToString(), DeimName(Options.Deim), CoreName(Options.Core), Options.MaxRank,
            [.. Options.Targets.Select(BlockRoles.Name)], states[0].Rows, mask);
        var result = run.Result(budgets[0], compressed, reports, details, warnings);
        var results = new List<CompressionResult> { result };
        for (int b = 1; b < budgets.Count; b++) results.Add(new(Clone(compressed), result.Report));
        return results;
    }

    // ------------------------------------------------------------------ 2. angular distances and layer selection

    /// <summary>
    /// The angular distance of each block: <c>d_l = mean_s arccos(cos(h_l[s], h_{l+1}[s]))/π</c> between consecutive
    /// boundaries (sequences whose state is a zero vector at either boundary are left out of that block's mean).
    /// </summary>
    /// <param name="hiddenStates">L + 1 matrices, sequences × width: the hidden state at each block boundary, one row per sequence.</param>
    /// <returns>L distances in [0, 1] (NaN for a block with no usable sequence).</returns>
    /// <exception cref="ArgumentException">Fewer than two boundaries, or the matrices' shapes differ.</exception>
    public static double[] AngularDistances(IReadOnlyList<Matrix<float>> hiddenStates)
    {
        ArgumentNullException.ThrowIfNull(hiddenStates);
        if (hiddenStates.Count < 2) ThrowHelper.Argument(nameof(hiddenStates), $"Angular distances need the hidden states at two or more block boundaries; got {hiddenStates.Count}.");
        int sequences = hiddenStates[0].Rows, width = hiddenStates[0].Cols;
        foreach (var h in hiddenStates)
            if (h.Rows != sequences || h.Cols != width)
                ThrowHelper.ShapeMismatch(nameof(hiddenStates), "Curing.AngularDistances: every boundary holds one state per sequence", $"{sequences}×{width}", $"{h.Rows}×{h.Cols}");
        var d = new double[hiddenStates.Count - 1];
        for (int l = 0; l < d.Length; l++)
        {
            double sum = 0;
            int used = 0;
            for (int s = 0; s < sequences; s++)
            {
                ReadOnlySpan<float> a = hiddenStates[l].Row(s), b = hiddenStates[l + 1].Row(s);
                double ab = 0, aa = 0, bb = 0;
                for (int j = 0; j < width; j++)
                {
                    ab += (double)a[j] * b[j];
                    aa += (double)a[j] * a[j];
                    bb += (double)b[j] * b[j];
                }
                if (aa == 0 || bb == 0) continue;
                sum += Math.Acos(Math.Clamp(ab / Math.Sqrt(aa * bb), -1, 1)) / Math.PI;
                used++;
            }
            d[l] = used == 0 ? double.NaN : sum / used;
        }
        return d;
    }

    /// <summary>
    /// The blocks to decompose, ascending. Angular: the <paramref name="count"/> smallest distances among blocks
    /// 1 … L − 2 (ties and NaN: lower index first, NaN last); last: blocks L − 1 − N … L − 2; list: the listed blocks.
    /// </summary>
    /// <param name="distances">One distance per block (L values; read only by the angular rule).</param>
    /// <param name="count">N, 1 ≤ N ≤ L − 2 (the list's length for a list).</param>
    /// <param name="selection">The rule.</param>
    /// <exception cref="ArgumentException">N is out of range, or a listed block is 0, L − 1 or beyond.</exception>
    public static int[] SelectBlocks(IReadOnlyList<double> distances, int count, LayerSelection selection)
    {
        ArgumentNullException.ThrowIfNull(distances);
        ArgumentNullException.ThrowIfNull(selection);
        int l = distances.Count;
        if (selection.Kind == LayerSelectionKind.List)
        {
            foreach (int b in selection.Blocks)
                if (b < 1 || b > l - 2)
                    ThrowHelper.ArgumentOutOfRange(nameof(selection), b, $"a block in 1..{l - 2} (blocks 0 and L − 1 = {l - 1} are never decomposed)");
            return [.. selection.Blocks.Order()];
        }
        if (count < 1 || count > l - 2)
            ThrowHelper.ArgumentOutOfRange(nameof(count), count, $"1..{Math.Max(1, l - 2)} blocks (L − 2 for L = {l}: blocks 0 and L − 1 are never decomposed)");
        return selection.Kind switch
        {
            LayerSelectionKind.Angular => [.. Enumerable.Range(1, l - 2)
                .OrderBy(b => double.IsNaN(distances[b]) ? double.PositiveInfinity : distances[b]).ThenBy(b => b)
                .Take(count).Order()],
            LayerSelectionKind.Last => [.. Enumerable.Range(l - 1 - count, count)],
            _ => throw new ArgumentOutOfRangeException(nameof(selection), selection.Kind, "Expected a defined LayerSelectionKind."),
        };
    }

    /// <summary>N: the option, or the paper's 10 capped at L − 2.</summary>
    private int BlockCount(int blocks, OnnxModel model, List<string> warnings)
    {
        string name = model.FilePath is { } f ? $"'{Path.GetFileName(f)}'" : "the model";
        if (blocks < 3)
            ThrowHelper.Argument(nameof(model), $"CURing needs at least 3 transformer blocks (blocks 0 and L − 1 are never decomposed); {name} has {blocks}.");
        if (Options.Selection.Kind == LayerSelectionKind.List) return Options.Selection.Blocks.Count;
        if (Options.Layers is { } n)
        {
            if (n > blocks - 2)
                ThrowHelper.ArgumentOutOfRange(nameof(CuringOptions.Layers), n, $"at most L − 2 = {blocks - 2} blocks for {name} ({blocks} blocks; the first and last are never decomposed)");
            return n;
        }
        if (CuringOptions.PaperLayers <= blocks - 2) return CuringOptions.PaperLayers;
        warnings.Add($"The paper's {CuringOptions.PaperLayers} blocks exceed L − 2 = {blocks - 2} for {name}; decomposing {blocks - 2}.");
        return blocks - 2;
    }

    /// <summary>Block boundary values: what each block reads, then what the last block writes.</summary>
    private static List<string> Boundaries(IReadOnlyList<TransformerBlock> blocks) => [.. blocks.Select(b => b.Input), blocks[^1].Output];

    private string? MaskInput(BatchSet calibration) =>
        Options.MaskInput ?? (calibration[0].ContainsKey(DefaultMaskInput) ? DefaultMaskInput : null);

    // ------------------------------------------------------------------ 1. calibration

    private bool NeedsGram => Options.MeasureOutputError || Options.Core == CurCore.Activation;

    /// <summary>Bytes of the statistics kept for <paramref name="targets"/>: per distinct input, RMS and (where needed) the float64 Gram matrix.</summary>
    private long StatisticsBytes(IEnumerable<Target> targets) =>
        targets.Select(t => t.Site).DistinctBy(s => s.Input).Sum(s => 8L * s.InFeatures * ((NeedsGram ? s.InFeatures : 0) + 1));

    /// <summary>The statistics of one target input: per-feature RMS, and the Gram matrix where the core or the output error needs it.</summary>
    private sealed record InputStatistics(RmsStatistic Rms, GramStatistic? Gram)
    {
        public IEnumerable<IBatchStatistic> Statistics => Gram is null ? [Rms] : [Rms, Gram];
    }

    /// <summary>Fresh statistics for every distinct input of <paramref name="targets"/>.</summary>
    private Dictionary<string, InputStatistics> Inputs(IEnumerable<Target> targets) =>
        targets.Select(t => t.Site.Input).Distinct().ToDictionary(i => i, i => new InputStatistics(new RmsStatistic(i), NeedsGram ? new GramStatistic(i) : null), StringComparer.Ordinal);

    // ------------------------------------------------------------------ 3. which matrices

    /// <summary>The target matrices of <paramref name="chosen"/> blocks, in block and graph order, and the roles a block lacks.</summary>
    private List<Target> Targets(ModelStructure structure, IReadOnlyList<int> chosen, out List<(int Block, string Message)> missing)
    {
        missing = [];
        var sites = structure.LinearSites.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var order = structure.LinearSites.Select((s, i) => (s.Name, i)).ToDictionary(p => p.Name, p => p.i, StringComparer.Ordinal);
        var targets = new List<Target>();
        foreach (int l in chosen)
        {
            var block = structure.Blocks[l];
            var found = new List<Target>();
            foreach (var role in Options.Targets.Distinct())
            {
                var t = Find(block, role, sites, out string? why);
                if (t is null) missing.Add((l, $"Block {l} {BlockRoles.Name(role)}: {why}; left alone."));
                else if (!found.Any(f => f.Site == t.Site && f.RowOffset == t.RowOffset)) found.Add(t); // "gate" and "up" of a plain MLP are one layer
            }
            targets.AddRange(found.OrderBy(t => order[t.Site.Name]).ThenBy(t => t.RowOffset));
        }
        return targets;
    }

    private static Target? Find(TransformerBlock block, BlockRole role, Dictionary<string, LinearSite> sites, out string? why)
    {
        var a = block.Attention;
        var m = block.Mlp;
        string? name = role switch
        {
            BlockRole.Query => a?.Q,
            BlockRole.Key => a?.K,
            BlockRole.Value => a?.V,
            BlockRole.Output => a?.Output,
            BlockRole.Gate => m?.Gate ?? m?.Up,
            BlockRole.Up => m?.Up,
            BlockRole.Down => m?.Down,
            _ => null,
        };
        why = null;
        if (name is not null && sites.TryGetValue(name, out var site))
            return Usable(site, out why) ? new Target(block.Index, role, site, 0, site.OutFeatures) : null;
        if (role is BlockRole.Query or BlockRole.Key or BlockRole.Value && a?.FusedQkv is { } fused && sites.TryGetValue(fused, out var f))
        {
            // Fused Q/K/V: rows [0, h·d) are the queries, then kv·d keys, then kv·d values.
            int q = a.Heads * a.HeadSize, kv = a.KvHeads * a.HeadSize;
            if (q == 0 || q + 2 * kv != f.OutFeatures)
            {
                why = $"the fused Q/K/V projection '{fused}' ({f.OutFeatures} outputs) cannot be split ({a.Heads} query heads, {a.KvHeads} key/value heads of size {a.HeadSize})";
                return null;
            }
            if (!Usable(f, out why)) return null;
            if (f.OpType != "MatMul")
            {
                why = $"the fused Q/K/V projection '{fused}' is a {f.OpType}; only a fused MatMul is split";
                return null;
            }
            return role switch
            {
                BlockRole.Query => new Target(block.Index, role, f, 0, q),
                BlockRole.Key => new Target(block.Index, role, f, q, kv),
                _ => new Target(block.Index, role, f, q + kv, kv),
            };
        }
        why = $"the block has no {RoleDescription(role)} projection";
        return null;
    }

    private static bool Usable(LinearSite site, out string? why)
    {
        why = site.WeightIsLeftOperand ? $"'{site.Name}' multiplies its weight from the left (W·x); CURing reads inputs with features on the last axis"
            : site.Weight.Path.Contains("DequantizeLinear") ? $"the weight of '{site.Name}' is quantized (DequantizeLinear); dequantize the model first"
            : null;
        return why is null;
    }

    private static string RoleDescription(BlockRole role) => role switch
    {
        BlockRole.Query => "query",
        BlockRole.Key => "key",
        BlockRole.Value => "value",
        BlockRole.Output => "attention output",
        BlockRole.Gate => "gate (or first MLP)",
        BlockRole.Up => "up (or first MLP)",
        _ => "down (last MLP)",
    };

    // ------------------------------------------------------------------ 4–7. rank, scores, DEIM, factors

    private Decomposed Decompose(OnnxModel model, Target t, InputStatistics statistics, int seed)
    {
        var full = SiteWeights.Weight(model, t.Site);
        int m = t.Rows, n = full.Cols;
        var w = new Matrix<double>(m, n);
        for (int i = 0; i < m; i++)
        {
            var src = full.Row(t.RowOffset + i);
            var dst = w.Row(i);
            for (int j = 0; j < n; j++) dst[j] = src[j];
        }
        string id = t.Rows == t.Site.OutFeatures ? t.Site.Name : $"{t.Site.Name}:{BlockRoles.Name(t.Role)}";
        long bias = t.Site.Bias is null ? 0 : m;
        int breakEven = Cur.BreakEvenRank(m, n);
        int r = Math.Min(Options.MaxRank, breakEven);
        var report = new SiteReport(id, "cur", Math.Min(m, n), Math.Min(m, n)) { ParametersBefore = (long)m * n + bias, ParametersAfter = (long)m * n + bias };
        if (r < 1)
            return new Decomposed(t, null, report with { Skipped = $"no rank saves parameters for a {m}×{n} matrix (break-even rank 0)" });

        var gram = statistics.Gram?.Finish().Gram;
        var cur = DeimCur.Compute(w.View, new DeimCurOptions(r, Options.Deim, Options.Core, seed),
            Options.Core == CurCore.Activation ? gram!.View : null, statistics.Rms.Finish().Rms());
        double? outputError = gram is null ? null : OutputError(w, cur.Reconstruct(), gram);
        var details = new CurSiteDetails(t.Block, BlockRoles.Name(t.Role), t.Site.Name, t.RowOffset, m, n, r, breakEven,
            cur.Rows, cur.Cols, cur.RelativeError(w.View), outputError, cur.ParameterCount);
        report = report with
        {
            NewSize = r,
            ParametersAfter = cur.ParameterCount + bias,
            ErrorEstimate = details.RelativeError,
            MeasuredError = outputError,
            Details = details,
        };
        return new Decomposed(t, [ToFloat(cur.C), ToFloat(cur.U), ToFloat(cur.R)], report);
    }

    /// <summary><c>‖(W − Ŵ)Xᵀ‖_F / ‖W Xᵀ‖_F</c> from G = XᵀX: <c>‖A Xᵀ‖_F² = Σ_ij (A ⊙ A·G)_ij</c>.</summary>
    private static double OutputError(Matrix<double> w, Matrix<double> approx, Matrix<double> gram)
    {
        var e = w.Clone();
        var es = e.AsSpan();
        var a = approx.AsSpan();
        for (int i = 0; i < es.Length; i++) es[i] -= a[i];
        double error = WeightedSquare(e, gram), norm = WeightedSquare(w, gram);
        return norm > 0 ? Math.Sqrt(Math.Max(error, 0) / norm) : error > 0 ? double.PositiveInfinity : 0;
    }

    private static double WeightedSquare(Matrix<double> a, Matrix<double> gram)
    {
        var ag = Blas.Multiply<double>(a, gram);
        double s = 0;
        var x = a.AsSpan();
        var y = ag.AsSpan();
        for (int i = 0; i < x.Length; i++) s += x[i] * y[i];
        return s;
    }

    private static Matrix<float> ToFloat(Matrix<double> a)
    {
        var f = new Matrix<float>(a.Rows, a.Cols);
        var src = a.AsSpan();
        var dst = f.AsSpan();
        for (int i = 0; i < src.Length; i++) dst[i] = (float)src[i];
        return f;
    }

    // ------------------------------------------------------------------ 8. rewrite

    /// <summary>Replaces every decomposed matrix of <paramref name="copy"/> (edited in place) by x → R → U → C; <paramref name="source"/> holds the weights before.</summary>
    private static void Rewrite(OnnxModel copy, OnnxModel source, IReadOnlyList<Decomposed> decomposed)
    {
        foreach (var group in decomposed.GroupBy(d => d.Target.Site.Name))
        {
            var site = group.First().Target.Site;
            var parts = group.OrderBy(d => d.Target.RowOffset).ToList();
            if (parts is [{ Target.Rows: var rows } only] && rows == site.OutFeatures)
            {
                FactorChain.Replace(copy, site, only.Factors!);
                continue;
            }
            // Row blocks of a fused projection: decomposed ones as C·U·R, the rest as their slice of W.
            var w = SiteWeights.Weight(source, site);
            var blocks = new List<IReadOnlyList<Matrix<float>>>();
            int at = 0;
            foreach (var p in parts)
            {
                if (p.Target.RowOffset > at) blocks.Add([w.SliceRows(at, p.Target.RowOffset - at).ToMatrix()]);
                blocks.Add(p.Factors!);
                at = p.Target.RowOffset + p.Target.Rows;
            }
            if (at < site.OutFeatures) blocks.Add([w.SliceRows(at, site.OutFeatures - at).ToMatrix()]);
            RowBlockChains.Replace(copy, site, blocks);
        }
    }

    private static OnnxModel Clone(OnnxModel model) => model.Clone();

    internal static string DeimName(DeimVariant v) => v switch
    {
        DeimVariant.Reference => "reference",
        DeimVariant.Textbook => "textbook",
        _ => "qdeim",
    };

    internal static string CoreName(CurCore c) => c switch
    {
        CurCore.PseudoInverse => "pinv",
        CurCore.Activation => "activation",
        _ => "diag",
    };
}
