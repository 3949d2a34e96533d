// The magnitude baseline of structured pruning: the same sites, budgets, schedules and surgery as
// InterpolativePruning, but units ranked by the norm of their activation columns and no correction folded into the
// next layer (T is the selection). The report's difference to the ID's shows what the interpolation matrix buys.
//
//   score_j = ‖Z[:, j]‖ (‖Z[:, group j]‖_F for a head group), times ‖W_next[:, j]‖ under the STAT column scaling;
//   keep the k largest; ε_k = score_(k) / score_(0), the (k+1)-th largest relative to the largest, so one global
//   tolerance sizes every site as it does for the ID.

using Whittle.Compression;
using Whittle.LinearAlgebra;
using Whittle.Methods.Pruning;

namespace Whittle.Methods;

/// <summary>Structured pruning that keeps the neurons, channels or head groups of largest activation norm, without correction (a baseline for <see cref="InterpolativePruning"/>).</summary>
public sealed class MagnitudePruning : ICompressionMethod
{
    /// <summary>Creates the method with <paramref name="options"/> (the defaults when null).</summary>
    public MagnitudePruning(PruningOptions? options = null) => Options = options ?? PruningOptions.Default;

    /// <summary>The options (shared with <see cref="InterpolativePruning"/>).</summary>
    public PruningOptions Options { get; }

    /// <inheritdoc/>
    public string Name => "magnitude";

    /// <inheritdoc/>
    public BudgetKinds Budgets => BudgetKinds.KeepMacs | BudgetKinds.KeepParameters | BudgetKinds.Tolerance | BudgetKinds.KeepLatency;

    /// <inheritdoc/>
    public IReadOnlyList<CompressionResult> Compress(CompressionRun run, IReadOnlyList<CompressionBudget> budgets) =>
        new StructuredPruning(Name, Options, f => new Norms(f, Options.Proxy), correction: false).Run(run, budgets);

    /// <summary>Units ordered by the norm of their (scaled) activation columns.</summary>
    private sealed class Norms : IUnitPath
    {
        private readonly UnitFactor _factor;
        private readonly int[] _order;
        private readonly double[] _scores;
        private readonly double[] _dropped; // _dropped[k] = sqrt(Σ score² over all but the k largest) / sqrt(Σ score²)
        private readonly ErrorProxy _proxy;

        public Norms(UnitFactor factor, ErrorProxy proxy)
        {
            _factor = factor;
            _proxy = proxy;
            var a = UnitPaths.Scaled(factor);
            int b = factor.Unit.GroupSize;
            var sq = new double[factor.Width];
            for (int i = 0; i < a.Rows; i++)
            {
                var row = a.Row(i);
                for (int j = 0; j < row.Length; j++) sq[j / b] += row[j] * row[j];
            }
            _scores = [.. sq.Select(Math.Sqrt)];
            _order = [.. Enumerable.Range(0, factor.Width).OrderByDescending(j => _scores[j]).ThenBy(j => j)];
            MaxKeep = _scores.Count(s => s > 0);
            _dropped = new double[factor.Width + 1];
            double total = sq.Sum(), suffix = 0;
            for (int k = factor.Width - 1; k >= 0; k--)
            {
                suffix += sq[_order[k]];
                _dropped[k] = total > 0 ? Math.Sqrt(suffix / total) : 0;
            }
        }

        public int Width => _factor.Width;

        public int MaxKeep { get; }

        public double Ratio(int k) => k >= MaxKeep ? 0 : _proxy == ErrorProxy.RelativeResidual ? _dropped[k] : _scores[_order[k]] / _scores[_order[0]];

        public UnitChoice Choose(int k)
        {
            var selection = UnitPaths.Ascending(_order[..k], null, 1);
            var (activation, output) = UnitPaths.Errors(_factor, UnitPaths.Columns(selection.Kept, _factor.Unit.GroupSize), null);
            return new UnitChoice(selection, Ratio(k), activation, output, false);
        }
    }
}
