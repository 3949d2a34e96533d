// CUR decomposition of a weight matrix from given row and column indices (CURing).
//
// Contract: given W (m × n, out × in), row indices I (|I| = l) and column indices J (|J| = k), returns
// C = W[:, J] (m × k), R = W[I, :] (l × n) and a core U (k × l) with W ≈ C·U·R. The caller chooses the
// indices (CURing: DEIM on the leading singular vectors of the WANDA score matrix, see Deim.SelectRows);
// this file picks none itself. Inputs are never modified.
//
// Shapes: W m × n; X T × n calibration inputs (rows are tokens), G = XᵀX n × n; a (length n) the
// per-input-feature RMS a_j = sqrt(mean_t x_tj²).
//
// Cores (CurCore):
//   PseudoInverse  U = C⁺·W·R⁺ — the paper's (Park & Moon, "CURing Large Models: Compression via CUR
//                  Decomposition", arXiv 2501.04211, step 7); the Frobenius-optimal core for fixed C, R.
//   Activation     U = argmin_U ‖(W − C·U·R)·Xᵀ‖_F = C⁺·W·G·Rᵀ·(R·G·Rᵀ + λI)⁺, λ = ridge·trace(RGRᵀ)/l.
//                  (Write G = S·Sᵀ: the problem is min ‖C·U·(R·S) − W·S‖_F, solved by C⁺·(W·S)·(R·S)⁺, and
//                  (R·S)⁺ = Sᵀ·Rᵀ·(R·G·Rᵀ)⁺.) A closed-form, fine-tuning-free replacement for the paper's
//                  optional "healing" of U. With ridge = 0 it is the exact least-squares optimum.
//   Diagonal       U = C⁺·(W·D)·(R·D)⁺, D = diag(a): the later public CURing variant, needing only the RMS.
//
// Numerical caveats: pseudo-inverses come from the SVD with the default cutoff max(rows, cols)·ε·σ₁, so a
// rank-deficient C or R (duplicate-like or dependent rows/columns) is handled, but the core is then only as
// accurate as cond(C)·cond(R)·ε; float inputs are computed in float. Products are ordered to avoid the
// n × n × m product W·G: G·Rᵀ (n²·l) first, then W·(G·Rᵀ) (m·n·l). The l × l system R·G·Rᵀ + λI is solved by
// Cholesky when numerically positive definite (every pivot L_ii² > l·ε·max diagonal), otherwise through its
// pseudo-inverse (e.g. ridge = 0 and a singular G).
// A zero RMS a_j simply zeroes column j of R·D; the pseudo-inverse handles it (no division by a_j).

using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Decompositions;

/// <summary>How <see cref="Cur.Compute{T}"/> computes the core U of a CUR decomposition.</summary>
public enum CurCore
{
    /// <summary><c>U = C⁺·W·R⁺</c>: minimizes ‖W − C·U·R‖_F (the CURing paper's core).</summary>
    PseudoInverse,

    /// <summary><c>U = C⁺·W·G·Rᵀ·(R·G·Rᵀ + λI)⁺</c>: minimizes the output error ‖(W − C·U·R)·Xᵀ‖_F on calibration
    /// inputs X (G = XᵀX). Needs the Gram matrix.</summary>
    Activation,

    /// <summary><c>U = C⁺·(W·D)·(R·D)⁺</c> with D = diag(a), a the per-input-feature RMS. Needs the RMS.</summary>
    Diagonal,
}

/// <summary>
/// A CUR decomposition <c>W ≈ C·U·R</c> of an m × n matrix: C = W[:, <see cref="Cols"/>] (m × k),
/// R = W[<see cref="Rows"/>, :] (l × n) and the core U (k × l); CURing uses k = l = r.
/// </summary>
/// <param name="Rows">The row indices I of W kept in R, in the order of R's rows.</param>
/// <param name="Cols">The column indices J of W kept in C, in the order of C's columns.</param>
/// <param name="C">m × k: the columns J of W.</param>
/// <param name="U">k × l: the core.</param>
/// <param name="R">l × n: the rows I of W.</param>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed record CurDecomposition<T>(int[] Rows, int[] Cols, Matrix<T> C, Matrix<T> U, Matrix<T> R)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>The m × n product <c>C·(U·R)</c>.</summary>
    public Matrix<T> Reconstruct() => Blas.Multiply<T>(C, Blas.Multiply<T>(U, R));

    /// <summary>Parameters stored by the three factors: <c>m·k + k·l + l·n</c> (= m·r + r·r + r·n for k = l = r).</summary>
    public long ParameterCount => (long)C.Rows * C.Cols + (long)U.Rows * U.Cols + (long)R.Rows * R.Cols;

    /// <summary>The relative reconstruction error <c>‖W − C·U·R‖_F / ‖W‖_F</c> (0 when W = 0 and the product is 0).</summary>
    /// <param name="w">The decomposed m × n matrix.</param>
    public double RelativeError(MatrixView<T> w)
    {
        if (w.Rows != C.Rows || w.Cols != R.Cols)
            ThrowHelper.ShapeMismatch(nameof(w), "CurDecomposition.RelativeError: W must have the decomposed shape",
                $"{C.Rows}×{R.Cols}", $"{w.Rows}×{w.Cols}");
        double distance = MatrixNorms.FrobeniusDistance(w, Reconstruct().View);
        double norm = MatrixNorms.Frobenius(w);
        return norm == 0 ? (distance == 0 ? 0 : double.PositiveInfinity) : distance / norm;
    }
}

/// <summary>
/// CUR decomposition of weight matrices (CURing, Park &amp; Moon, arXiv 2501.04211): the core from given
/// row/column indices, the WANDA importance scores the indices are chosen from, and the rank rule.
/// </summary>
public static class Cur
{
    /// <summary>
    /// Builds <c>W ≈ C·U·R</c> from the given indices: C = W[:, <paramref name="cols"/>], R = W[<paramref name="rows"/>, :],
    /// and the core chosen by <paramref name="core"/> (see <see cref="CurCore"/>). W is not modified; C and R are copies.
    /// </summary>
    /// <param name="w">m × n weight matrix (out × in), finite.</param>
    /// <param name="rows">Distinct row indices I in 0..m−1 (length l ≥ 1); copied.</param>
    /// <param name="cols">Distinct column indices J in 0..n−1 (length k ≥ 1); copied.</param>
    /// <param name="core">Which core to compute.</param>
    /// <param name="gram">n × n Gram matrix G = XᵀX of the calibration inputs; required by <see cref="CurCore.Activation"/>.</param>
    /// <param name="activationRms">Length-n per-input-feature RMS a (non-negative); required by <see cref="CurCore.Diagonal"/>.</param>
    /// <param name="ridge">Relative ridge of the activation core: λ = ridge·trace(R·G·Rᵀ)/l; ≥ 0 (0: exact least squares).</param>
    /// <returns>The decomposition, with k × l core U.</returns>
    /// <exception cref="ArgumentException">An index is out of range or repeated, a shape does not match, the input the core
    /// needs (<paramref name="gram"/> or <paramref name="activationRms"/>) is missing, or a value is negative or not finite.</exception>
    public static CurDecomposition<T> Compute<T>(MatrixView<T> w, int[] rows, int[] cols, CurCore core = CurCore.PseudoInverse,
        MatrixView<T>? gram = null, ReadOnlySpan<T> activationRms = default, double ridge = 1e-6)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(cols);
        int m = w.Rows, n = w.Cols;
        CheckIndices(rows, m, nameof(rows), "row");
        CheckIndices(cols, n, nameof(cols), "column");

        var c = new Matrix<T>(m, cols.Length);
        for (int i = 0; i < m; i++)
            for (int t = 0; t < cols.Length; t++) c[i, t] = w[i, cols[t]];
        var r = new Matrix<T>(rows.Length, n);
        for (int t = 0; t < rows.Length; t++) w.Slice(rows[t], 0, 1, n).CopyTo(r.Slice(t, 0, 1, n));

        Matrix<T> u = core switch
        {
            CurCore.PseudoInverse => PseudoInverseCore(w, c, r),
            CurCore.Activation => ActivationCore(w, c, r, RequireGram(gram, n), ridge),
            CurCore.Diagonal => DiagonalCore(w, c, r, RequireRms(activationRms, n)),
            _ => throw new ArgumentOutOfRangeException(nameof(core), core, $"Expected a CurCore value, got {core}."),
        };
        return new CurDecomposition<T>((int[])rows.Clone(), (int[])cols.Clone(), c, u, r);
    }

    /// <summary>
    /// The break-even rank: the largest r with <c>m·r + r² + r·n &lt; m·n</c>, i.e. the largest rank at which a CUR
    /// decomposition (C m × r, U r × r, R r × n) stores fewer parameters than W. Computed as
    /// <c>floor((sqrt(m² + 6mn + n²) − (m + n)) / 2)</c> and then corrected in exact integer arithmetic
    /// (at exact equality the formula's value does not save anything, and rounding of the square root can be off by one).
    /// </summary>
    /// <param name="m">Rows (outputs), ≥ 0.</param>
    /// <param name="n">Columns (inputs), ≥ 0.</param>
    /// <returns>The rank, in 0..min(m, n) − 1; 0 when no positive rank saves parameters (or m·n = 0).</returns>
    public static int BreakEvenRank(int m, int n)
    {
        if (m < 0) ThrowHelper.ArgumentOutOfRange(nameof(m), m, "a non-negative number of rows");
        if (n < 0) ThrowHelper.ArgumentOutOfRange(nameof(n), n, "a non-negative number of columns");
        double dm = m, dn = n;
        long r = (long)Math.Floor((Math.Sqrt(dm * dm + 6 * dm * dn + dn * dn) - (dm + dn)) / 2);
        r = Math.Max(r, 0);
        while (r > 0 && !Saves(m, n, r)) r--;
        while (Saves(m, n, r + 1)) r++;
        return (int)r;

        static bool Saves(long m, long n, long r) => m * r + r * r + r * n < m * n;
    }

    /// <summary>CURing's rank rule <c>r = min(maxRank, BreakEvenRank(m, n))</c> (reference maxRank = 256).</summary>
    /// <param name="m">Rows (outputs), ≥ 0.</param>
    /// <param name="n">Columns (inputs), ≥ 0.</param>
    /// <param name="maxRank">The cap r_max, ≥ 0.</param>
    public static int Rank(int m, int n, int maxRank)
    {
        if (maxRank < 0) ThrowHelper.ArgumentOutOfRange(nameof(maxRank), maxRank, "a non-negative maximum rank");
        return Math.Min(maxRank, BreakEvenRank(m, n));
    }

    /// <summary>The WANDA importance matrix <c>S_ij = |W_ij|·a_j</c> (m × n), from which CURing selects rows and columns.</summary>
    /// <param name="w">m × n weight matrix.</param>
    /// <param name="activationRms">Length-n per-input-feature RMS a_j (non-negative, finite).</param>
    /// <exception cref="ArgumentException">The length is not n, or an RMS is negative or not finite.</exception>
    public static Matrix<T> WandaScores<T>(MatrixView<T> w, ReadOnlySpan<T> activationRms) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckRms(activationRms, w.Cols);
        var s = new Matrix<T>(w.Rows, w.Cols);
        for (int i = 0; i < w.Rows; i++)
        {
            var row = s.Row(i);
            for (int j = 0; j < w.Cols; j++) row[j] = T.Abs(w[i, j]) * activationRms[j];
        }
        return s;
    }

    // ------------------------------------------------------------------ cores

    private static Matrix<T> PseudoInverseCore<T>(MatrixView<T> w, Matrix<T> c, Matrix<T> r) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var cPinv = PseudoInverse.Compute<T>(c);                                   // k × m
        var rPinv = PseudoInverse.Compute<T>(r);                                   // n × l
        return Blas.Multiply<T>(Blas.Multiply(cPinv.View, w), rPinv);              // (C⁺·W)·R⁺, k × l
    }

    private static Matrix<T> ActivationCore<T>(MatrixView<T> w, Matrix<T> c, Matrix<T> r, MatrixView<T> g, double ridge)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!(ridge >= 0) || double.IsInfinity(ridge))
            ThrowHelper.ArgumentOutOfRange(nameof(ridge), ridge, "a finite, non-negative ridge");
        int l = r.Rows;
        var gRt = Blas.Multiply<T>(g, r.Transpose());                              // G·Rᵀ, n × l
        var rgRt = Blas.Multiply<T>(r, gRt);                                       // R·G·Rᵀ, l × l
        // Symmetrize exactly (the product is symmetric only up to rounding) and add the ridge.
        double trace = 0;
        for (int i = 0; i < l; i++)
        {
            trace += double.CreateTruncating(rgRt[i, i]);
            for (int j = 0; j < i; j++)
            {
                T avg = (rgRt[i, j] + rgRt[j, i]) / T.CreateTruncating(2);
                rgRt[i, j] = avg;
                rgRt[j, i] = avg;
            }
        }
        T lambda = T.CreateTruncating(ridge * trace / l);
        for (int i = 0; i < l; i++) rgRt[i, i] += lambda;

        var wgRt = Blas.Multiply(w, gRt.View);                                     // W·G·Rᵀ, m × l
        // Right factor: X = (W·G·Rᵀ)·(R·G·Rᵀ + λI)⁺, m × l. The matrix is symmetric positive semidefinite:
        // solve by Cholesky when it is numerically definite, else multiply by the pseudo-inverse.
        var chol = TryCholesky(rgRt);
        var x = chol is not null
            ? chol.Solve(wgRt.Transpose()).Transpose().ToMatrix()                 // (A⁻¹·(WGRᵀ)ᵀ)ᵀ, A symmetric
            : Blas.Multiply<T>(wgRt, PseudoInverse.Compute<T>(rgRt));
        return Blas.Multiply<T>(PseudoInverse.Compute<T>(c), x);                   // C⁺·X, k × l
    }

    // Cholesky of the symmetric l × l matrix A, or null when it is not numerically positive definite: the
    // factorization fails, or a pivot L_ii² falls to l·ε·max A_jj (a solve would then amplify rounding into
    // huge core entries along directions the calibration data never excites; the pseudo-inverse drops them).
    private static CholeskyFactor<T>? TryCholesky<T>(Matrix<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int l = a.Rows;
        double maxDiag = 0;
        for (int i = 0; i < l; i++) maxDiag = Math.Max(maxDiag, double.CreateTruncating(a[i, i]));
        if (!(maxDiag > 0)) return null;
        CholeskyFactor<T> factor;
        try
        {
            factor = Cholesky.Compute<T>(a);
        }
        catch (NotPositiveDefiniteException)
        {
            return null;
        }
        double threshold = l * double.CreateTruncating(T.BitIncrement(T.One) - T.One) * maxDiag;
        for (int i = 0; i < l; i++)
        {
            double p = double.CreateTruncating(factor.L[i, i]);
            if (!(p * p > threshold)) return null;
        }
        return factor;
    }

    private static Matrix<T> DiagonalCore<T>(MatrixView<T> w, Matrix<T> c, Matrix<T> r, ReadOnlySpan<T> a)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = w.Rows, n = w.Cols;
        var wd = new Matrix<T>(m, n);                                              // W·D
        for (int i = 0; i < m; i++)
        {
            var row = wd.Row(i);
            for (int j = 0; j < n; j++) row[j] = w[i, j] * a[j];
        }
        var rd = r.Clone();                                                        // R·D
        for (int i = 0; i < rd.Rows; i++)
        {
            var row = rd.Row(i);
            for (int j = 0; j < n; j++) row[j] *= a[j];
        }
        var cPinv = PseudoInverse.Compute<T>(c);
        return Blas.Multiply<T>(Blas.Multiply<T>(cPinv, wd), PseudoInverse.Compute<T>(rd));
    }

    // ------------------------------------------------------------------ validation

    private static void CheckIndices(int[] indices, int count, string paramName, string what)
    {
        if (indices.Length == 0)
            ThrowHelper.Argument(paramName, $"Cur.Compute: at least one {what} index is needed, got none.");
        var seen = new bool[count];
        foreach (int i in indices)
        {
            if ((uint)i >= (uint)count)
                ThrowHelper.ArgumentOutOfRange(paramName, i, $"a {what} index in 0..{count - 1}");
            if (seen[i])
                ThrowHelper.Argument(paramName, $"Cur.Compute: {what} index {i} appears more than once; indices must be distinct.");
            seen[i] = true;
        }
    }

    private static MatrixView<T> RequireGram<T>(MatrixView<T>? gram, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (gram is not { } g)
        {
            ThrowHelper.Argument(nameof(gram), "Cur.Compute: the Activation core needs the n × n Gram matrix G = XᵀX of the calibration inputs; pass gram.");
            return default;
        }
        if (g.Rows != n || g.Cols != n)
            ThrowHelper.ShapeMismatch(nameof(gram), "Cur.Compute: G = XᵀX must be n × n (n = columns of W)", $"{n}×{n}", $"{g.Rows}×{g.Cols}");
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (!T.IsFinite(g[i, j]))
                    ThrowHelper.Argument(nameof(gram), $"Cur.Compute: the Gram matrix holds a non-finite value at ({i}, {j}).");
        return g;
    }

    private static ReadOnlySpan<T> RequireRms<T>(ReadOnlySpan<T> a, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (a.IsEmpty && n > 0)
            ThrowHelper.Argument("activationRms", "Cur.Compute: the Diagonal core needs the per-input-feature RMS a (length n); pass activationRms.");
        CheckRms(a, n);
        return a;
    }

    private static void CheckRms<T>(ReadOnlySpan<T> a, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (a.Length != n)
            ThrowHelper.ShapeMismatch("activationRms", "the per-input-feature RMS needs one entry per column of W", $"{n}", $"{a.Length}");
        for (int j = 0; j < n; j++)
            if (!T.IsFinite(a[j]) || a[j] < T.Zero)
                ThrowHelper.ArgumentOutOfRange("activationRms", a[j], $"a finite, non-negative RMS at feature {j}");
    }
}
