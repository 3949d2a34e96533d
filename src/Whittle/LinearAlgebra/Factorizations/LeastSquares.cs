using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>The minimum-norm least-squares solution and what the solve found about A.</summary>
/// <param name="X">n × p: argmin ‖A·X − B‖_F of least ‖X‖_F.</param>
/// <param name="Rank">Numerical rank of A at the cutoff used.</param>
/// <param name="SingularValues">All singular values of A, descending.</param>
public sealed record LeastSquaresSolution<T>(Matrix<T> X, int Rank, T[] SingularValues) where T : unmanaged, IFloatingPointIeee754<T>;

/// <summary>
/// Least squares <c>min ‖A·X − B‖_F</c> through the SVD, as LAPACK's gelss: singular values at or below
/// <c>cutoff·σ₁</c> are dropped, so rank-deficient and under-determined systems get the minimum-norm
/// solution <c>X = V_r·Σ_r⁻¹·U_rᵀ·B</c>.
/// </summary>
/// <remarks>
/// Shapes: A m × n, B m × p, X n × p. For a well-conditioned tall A, <see cref="HouseholderQr"/>'s
/// Solve is cheaper; this one is the safe default.
/// </remarks>
public static class LeastSquares
{
    /// <summary>Solves min ‖A·X − B‖_F; the default cutoff is <c>max(m, n)·ε</c>.</summary>
    public static LeastSquaresSolution<T> Solve<T>(MatrixView<T> a, MatrixView<T> b, double? relativeCutoff = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (b.Rows != a.Rows)
            ThrowHelper.ShapeMismatch(nameof(b), "LeastSquares: B must have one row per row of A", $"{a.Rows}×p", $"{b.Rows}×{b.Cols}");
        var svd = Svd.Compute(a);
        int rank = PseudoInverse.NumericalRank<T>(svd.S, PseudoInverse.Cutoff(a, relativeCutoff));
        var c = Blas.Multiply(svd.U.Slice(0, 0, a.Rows, rank).Transpose(), b); // C = U_rᵀ·B   (r × p)
        for (int i = 0; i < rank; i++)
        {
            T inv = T.One / svd.S[i];
            foreach (ref T v in c.Row(i)) v *= inv;                           // Σ_r⁻¹·C
        }
        var x = Blas.Multiply(svd.Vt.Slice(0, 0, rank, a.Cols).Transpose(), c); // X = V_r·Σ_r⁻¹·U_rᵀ·B
        return new LeastSquaresSolution<T>(x, rank, svd.S);
    }
}
