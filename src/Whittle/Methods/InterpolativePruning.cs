// Model-preserving structured pruning by interpolative decomposition (METHODS.md §2).
//
//   Chee, Flynn (Renz), Damle, De Sa, "Model Preserving Compression for Neural Networks", NeurIPS 2022
//   (arXiv 2108.00065); for transformers STAT: Flynn, Wang, Alvarez, De Sa, Damle, "Shrinking Transformers After
//   Training" (arXiv 2406.00061).
//
// The algorithm, per site (a fully connected or convolution chain current → nonlinearity → next, or an attention block)
//   1. Calibrate: Z (n × h) = the site's activation after its nonlinearity and per-channel ops on unlabeled data
//      (rows = samples, or samples × pixels for convolutions); only a factor A with AᵀA = ZᵀZ is kept (TSQR R,
//      Gram, or a row sketch), so memory does not grow with the number of samples.
//   2. Decompose: column-pivoted QR of A (of A·D with D = diag(‖W_next[:, j]‖) under STAT's column scaling):
//      Z ≈ Z[:, I]·T, |I| = k, T = [I_k, R11⁻¹R12]Πᵀ, unscaled T = D_I·T_s·D⁻¹; error proxy ε_k = |r_kk|/|r_00|.
//      From the Gram statistic, the same R by a pivoted Cholesky of D·G·D (no factor A, no QR).
//      Attention heads: the same with whole key/value groups of context columns as pivots, and the least-squares
//      correction M of the dropped groups from the kept ones.
//   3. Size every site from one global tolerance ε (k(ε) = min{k : ε_k ≤ ε}), ε found by bisection to meet the
//      MAC or parameter budget; or the reference greedy schedule (PruningSchedule.Greedy).
//   4. Rewrite: keep rows I of the current layer (and its bias, BatchNorm, per-channel constants), fold T into the
//      next layer (W_next ← W_next·Tᵀ; conv kernels on Cin; T ⊗ I_{H·W} at the flatten boundary; M into W_O), update
//      shape constants. No fine-tuning: the narrower network reproduces the original's outputs on Z's span.

using Whittle.Compression;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.Methods.Pruning;

namespace Whittle.Methods;

/// <summary>
/// Structured pruning of neurons, channels and attention heads by interpolative decomposition, with the interpolation
/// matrix folded into the next layer (Chee et al. 2022; STAT for transformers). See the file header for the algorithm.
/// </summary>
public sealed class InterpolativePruning : ICompressionMethod
{
    /// <summary>Creates the method with <paramref name="options"/> (the defaults when null).</summary>
    public InterpolativePruning(PruningOptions? options = null) => Options = options ?? PruningOptions.Default;

    /// <summary>The options.</summary>
    public PruningOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "id";

    /// <inheritdoc/>
    /// <remarks>Budgets: <see cref="BudgetKind.KeepMacs"/>, <see cref="BudgetKind.KeepParameters"/> or <see cref="BudgetKind.Tolerance"/> (ε itself).</remarks>
    public BudgetKinds Budgets => BudgetKinds.KeepMacs | BudgetKinds.KeepParameters | BudgetKinds.Tolerance | BudgetKinds.KeepLatency;

    /// <inheritdoc/>
    public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets) =>
        new StructuredPruning(Name, Options, f => Path(f, Options.Proxy), correction: true).Run(run, budgets);

    /// <summary>The ID path of a unit: CPQR over columns (neurons, channels) or over column groups (heads).</summary>
    internal static IUnitPath Path(UnitFactor factor, ErrorProxy proxy) =>
        factor.Unit.Kind == UnitKind.Heads ? new HeadGroups(factor, proxy) : new Columns(factor, proxy);

    /// <summary>Neurons or channels: Z·D ≈ (Z·D)[:, I]·T_s by one CPQR; T = D_I·T_s·D⁻¹.</summary>
    private sealed class Columns(UnitFactor factor, ErrorProxy proxy) : IUnitPath
    {
        private readonly InterpolativeDecompositionPath _path = factor.Gram is { } g
            ? InterpolativeDecompositionPath.FromGram(UnitPaths.ScaledGram(g, factor.Scale).View)
            : InterpolativeDecompositionPath.Factor(UnitPaths.Scaled(factor).View);

        public int Width => factor.Width;

        public int MaxKeep => _path.MaxRank;

        public double Ratio(int k) => proxy == ErrorProxy.RelativeResidual
            ? (_path.Norm > 0 ? _path.ResidualNorm(Math.Min(k, Width)) / _path.Norm : 0)
            : _path.DiagonalRatio(Math.Min(k, Width));

        public UnitChoice Choose(int k)
        {
            var id = _path.At(k);
            var (indices, t) = id.Rank < k ? Pad(id.Indices, id.Interpolation, k) : (id.Indices, id.Interpolation);
            var selection = UnitPaths.Ascending(indices, UnitPaths.Unscale(t, indices, factor.Scale), 1);
            var (activation, output) = UnitPaths.Errors(factor, selection.Kept, selection.Interpolation);
            return new UnitChoice(selection, Ratio(k), activation, output, id.UsedPseudoInverse);
        }

        /// <summary>
        /// More units than Z's rank r (a minimum width over dead units, a greedy step below the rank): the rank-r ID is
        /// already exact; the next pivots are kept as well, each reproducing itself (a unit row of T, zero in the others).
        /// </summary>
        private (int[] Indices, Matrix<double> T) Pad(int[] indices, Matrix<double> t, int k)
        {
            int[] all = [.. indices, .. _path.Pivots[indices.Length..k].ToArray()];
            var padded = new Matrix<double>(k, t.Cols);
            t.View.CopyTo(padded.Slice(0, 0, t.Rows, t.Cols));
            for (int j = indices.Length; j < k; j++)
            {
                for (int i = 0; i < indices.Length; i++) padded[i, all[j]] = 0;
                padded[j, all[j]] = 1;
            }
            return (all, padded);
        }
    }

    /// <summary>Attention heads: block CPQR over key/value groups of context columns, least-squares correction M.</summary>
    private sealed class HeadGroups(UnitFactor factor, ErrorProxy proxy) : IUnitPath
    {
        private readonly GroupInterpolativeDecompositionPath _path = GroupInterpolativeDecompositionPath.Factor(UnitPaths.Scaled(factor).View, factor.Unit.GroupSize);

        public int Width => factor.Width;

        public int MaxKeep => _path.MaxRank;

        public double Ratio(int k) => proxy == ErrorProxy.RelativeResidual
            ? (_path.Norm > 0 ? _path.ResidualNorm(Math.Min(k, Width)) / _path.Norm : 0)
            : _path.DiagonalRatio(Math.Min(k, Width));

        public UnitChoice Choose(int k)
        {
            var id = _path.At(k);
            var m = UnitPaths.Unscale(id.Interpolation, id.Columns, factor.Scale);
            var selection = UnitPaths.Ascending(id.Groups, m, factor.Unit.GroupSize);
            var (activation, output) = UnitPaths.Errors(factor, UnitPaths.Columns(selection.Kept, factor.Unit.GroupSize), selection.Interpolation);
            return new UnitChoice(selection, Ratio(k), activation, output, false);
        }
    }
}
