using Whittle.LinearAlgebra;
using Whittle.Rewriting;

namespace Whittle.Methods.Pruning;

/// <summary>
/// How a method ranks one unit's columns: for every number of kept units k, the error proxy ε_k (non-increasing in k)
/// and the selection with its correction. One per unit per calibration; every budget reads the same path.
/// </summary>
internal interface IUnitPath
{
    /// <summary>The unit's current width.</summary>
    int Width { get; }

    /// <summary>Keeping more than this changes nothing (the numerical rank of Z; dead units excluded).</summary>
    int MaxKeep { get; }

    /// <summary>ε_k, the method's error proxy for keeping k units (0 for k ≥ <see cref="MaxKeep"/>).</summary>
    double Ratio(int k);

    /// <summary>The selection keeping k units (kept ascending) and its errors on the calibration data.</summary>
    UnitChoice Choose(int k);
}

/// <summary>A unit's selection and what it costs on the calibration data.</summary>
/// <param name="Selection">Kept units (ascending) and the correction (null for magnitude pruning).</param>
/// <param name="ErrorEstimate">ε_k.</param>
/// <param name="ActivationError"><c>‖Z − Z[:, I]·T‖_F / ‖Z‖_F</c>.</param>
/// <param name="PredictedOutputError"><c>‖(Z − Z[:, I]·T)·Wᵀ‖_F / ‖Z·Wᵀ‖_F</c> for fully connected consumers, else null.</param>
/// <param name="UsedPseudoInverse">Whether the triangular solve fell back to a pseudo-inverse.</param>
internal sealed record UnitChoice(UnitSelection Selection, double ErrorEstimate, double ActivationError, double? PredictedOutputError, bool UsedPseudoInverse)
{
    /// <summary>The same choice without its correction matrix: what the report keeps once the correction is folded into the model
    /// (for a transformer's MLPs the matrices of every block together weigh more than the model's new weights).</summary>
    public UnitChoice Folded() => this with { Selection = Selection with { Interpolation = null } };
}

/// <summary>Shared arithmetic of unit paths: column scaling, ordering, errors.</summary>
internal static class UnitPaths
{
    /// <summary>A·diag(scale) (a copy), or A itself when not scaled.</summary>
    public static Matrix<double> Scaled(UnitFactor f)
    {
        if (f.Scale is not { } d) return f.A;
        var a = f.A.Clone();
        for (int i = 0; i < a.Rows; i++)
        {
            var row = a.Row(i);
            for (int j = 0; j < row.Length; j++) row[j] *= d[j];
        }
        return a;
    }

    /// <summary>D·G·D, the Gram matrix of Z·D (a copy), or G itself when not scaled.</summary>
    public static Matrix<double> ScaledGram(Matrix<double> gram, double[]? scale)
    {
        if (scale is not { } d) return gram;
        var g = gram.Clone();
        for (int i = 0; i < g.Rows; i++)
        {
            var row = g.Row(i);
            for (int j = 0; j < row.Length; j++) row[j] *= d[i] * d[j];
        }
        return g;
    }

    /// <summary>
    /// Undoes the column scaling of an interpolation over columns: from Z·D ≈ (Z·D)[:, C]·X, column j of Z is
    /// z_j ≈ Σ_i X[i, j]·(d_{C_i} / d_j)·z_{C_i}, so T[i, j] = d_{C_i}·X[i, j] / d_j (T = D_I·T_s·D⁻¹ of STAT). A column with
    /// d_j = 0 feeds nothing downstream and gets 0; a kept column with d = 0 keeps its own identity row.
    /// </summary>
    public static Matrix<double> Unscale(Matrix<double> x, int[] columns, double[]? scale)
    {
        if (scale is null) return x;
        var t = new Matrix<double>(x.Rows, x.Cols);
        for (int i = 0; i < x.Rows; i++)
        {
            double di = scale[columns[i]];
            if (di == 0) { t[i, columns[i]] = 1; continue; }
            for (int j = 0; j < x.Cols; j++) t[i, j] = scale[j] == 0 ? 0 : x[i, j] * di / scale[j];
        }
        return t;
    }

    /// <summary>Kept units in ascending order, with the correction's rows (blocks of <paramref name="block"/>) reordered to match.</summary>
    public static UnitSelection Ascending(int[] kept, Matrix<double>? mix, int block)
    {
        var order = Enumerable.Range(0, kept.Length).OrderBy(i => kept[i]).ToArray();
        var sorted = order.Select(i => kept[i]).ToArray();
        if (mix is null) return new UnitSelection(sorted, null);
        var m = new Matrix<double>(mix.Rows, mix.Cols);
        for (int j = 0; j < order.Length; j++)
            for (int b = 0; b < block; b++) mix.Row(order[j] * block + b).CopyTo(m.Row(j * block + b));
        return new UnitSelection(sorted, m);
    }

    /// <summary>The kept columns of Z (entry level) for a selection of units of <paramref name="block"/> columns.</summary>
    public static int[] Columns(int[] kept, int block) => [.. kept.SelectMany(g => Enumerable.Range(g * block, block))];

    /// <summary>
    /// Relative errors of a selection on the calibration data, from A (AᵀA = ZᵀZ, so ‖Z·X‖_F = ‖A·X‖_F): the activation error
    /// ‖Z − Z[:, C]·M‖/‖Z‖ and, with a consumer W, the output error ‖(Z − Z[:, C]·M)·Wᵀ‖/‖Z·Wᵀ‖. M null: plain selection.
    /// </summary>
    /// <remarks>
    /// M reproduces every kept column exactly (M[:, C] = I), so the residual E = Z − Z[:, C]·M is zero there: only the
    /// dropped columns D are formed, A[:, D] − A[:, C]·M[:, D], and the output error reads only W[:, D]. For a transformer's
    /// MLP that keeps 80 % of its neurons this is a fifth of the work of forming the whole residual.
    /// </remarks>
    public static (double Activation, double? Output) Errors(UnitFactor f, int[] columns, Matrix<double>? mix)
    {
        var a = f.A;
        var isKept = new bool[a.Cols];
        foreach (int c in columns) isKept[c] = true;
        int[] dropped = [.. Enumerable.Range(0, a.Cols).Where(j => !isKept[j])];
        double norm = MatrixNorms.Frobenius(a.View);
        if (dropped.Length == 0) return (0, f.Consumer is null ? null : 0);
        var e = Decompositions.InterpolativeDecompositions.GatherColumns(a.View, dropped); // m × |D|
        if (mix is not null)
        {
            var kept = Decompositions.InterpolativeDecompositions.GatherColumns(a.View, columns);
            var mixDropped = Decompositions.InterpolativeDecompositions.GatherColumns(mix.View, dropped);
            Blas.Gemm(-1.0, kept.View, mixDropped.View, 1.0, e.View);
        }
        double activation = norm > 0 ? MatrixNorms.Frobenius(e.View) / norm : 0;
        if (f.Consumer is not { } w) return (activation, null);
        var wDropped = Decompositions.InterpolativeDecompositions.GatherColumns(w.View, dropped); // out × |D|
        var ey = Blas.Multiply(e.View, wDropped.Transpose());
        double ny = f.OutputNorm!.Value;
        return (activation, ny > 0 ? MatrixNorms.Frobenius(ey.View) / ny : 0);
    }
}

/// <summary>
/// Only the error proxy of a path, ε_k for every k: what a global tolerance or a size budget is chosen from. Kept in place
/// of the full path where the selections will come from another calibration (sequential mode), so memory holds a few
/// doubles per unit instead of its factorization.
/// </summary>
internal sealed class RatioCurve : IUnitPath
{
    private readonly double[] _ratios;

    public RatioCurve(IUnitPath path)
    {
        Width = path.Width;
        MaxKeep = path.MaxKeep;
        _ratios = [.. Enumerable.Range(0, Math.Max(0, MaxKeep)).Select(path.Ratio)];
    }

    public int Width { get; }

    public int MaxKeep { get; }

    public double Ratio(int k) => k < MaxKeep ? _ratios[k] : 0;

    public UnitChoice Choose(int k) => throw new InvalidOperationException("A ratio curve holds no selections; factor the unit's activations again.");
}

/// <summary>
/// A path whose error proxy is mapped onto the unit's measured effect on the model's output: ε_k ↦ g(ε_k), g the
/// piecewise-linear, non-decreasing curve through (0, 0) and the measured points (ε_j, √KL_j) — KL of the original
/// against the model with only this unit pruned to the width of ε_j — extended beyond the last point along its chord from
/// the origin. One tolerance on g then compares what each unit costs the output instead of what it costs its own
/// activation: a residual stream read by every later block weighs more than a layer one block reads.
/// </summary>
internal sealed class SensitivityCurve : IUnitPath
{
    private readonly IUnitPath _inner;
    private readonly (double Epsilon, double Effect)[] _points;

    /// <param name="inner">The unit's path (its ε_k).</param>
    /// <param name="measured">(ε, KL) pairs measured with the unit alone pruned.</param>
    public SensitivityCurve(IUnitPath inner, IEnumerable<(double Epsilon, double Divergence)> measured)
    {
        _inner = inner;
        var points = new List<(double, double)>();
        double running = 0;
        foreach (var (e, kl) in measured.Where(p => p.Epsilon > 0).OrderBy(p => p.Epsilon))
        {
            running = Math.Max(running, Math.Sqrt(Math.Max(0, kl)));
            points.Add((e, running));
        }
        _points = [.. points];
    }

    /// <summary>The measured points (ε, √KL made non-decreasing), by ε.</summary>
    public IReadOnlyList<(double Epsilon, double Effect)> Points => _points;

    public int Width => _inner.Width;

    public int MaxKeep => _inner.MaxKeep;

    public double Ratio(int k) => Effect(_inner.Ratio(k));

    public UnitChoice Choose(int k) => _inner.Choose(k) with { ErrorEstimate = Ratio(k) };

    /// <summary>g(ε).</summary>
    public double Effect(double epsilon)
    {
        if (epsilon <= 0) return 0;
        // No measurement (the unit could not be pruned at the grid's tolerances): the proxy itself.
        if (_points.Length == 0) return epsilon;
        var (e0, g0) = (0.0, 0.0);
        foreach (var (e, g) in _points)
        {
            if (epsilon <= e) return g0 + (g - g0) * (epsilon - e0) / (e - e0);
            (e0, g0) = (e, g);
        }
        // Past the last measurement along its chord (a unit that cost nothing there still orders by ε).
        return g0 > 0 ? g0 * epsilon / e0 : 1e-12 * epsilon;
    }
}
