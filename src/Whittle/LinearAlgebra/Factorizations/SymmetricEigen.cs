using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// The eigendecomposition <c>A = V·diag(Values)·Vᵀ</c> of a symmetric matrix.
/// </summary>
/// <param name="Values">The n eigenvalues in ascending order.</param>
/// <param name="Vectors">n × n orthogonal matrix whose COLUMN j is the unit eigenvector of <c>Values[j]</c>
/// (n × 0 when vectors were not requested).</param>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed record EigenResult<T>(T[] Values, Matrix<T> Vectors) where T : unmanaged, IFloatingPointIeee754<T>;

/// <summary>
/// Eigenvalues and eigenvectors of dense symmetric matrices.
/// </summary>
/// <remarks>
/// <para>Algorithm (Golub and Van Loan §8.3; LAPACK dsyev): blocked Householder tridiagonalization
/// (<see cref="Tridiagonalization"/>, as dsytrd/dlatrd), the orthogonal factor formed explicitly
/// (dorgtr), then implicit QR with Wilkinson shifts on the tridiagonal (<see cref="SymmetricTridiagonalQr"/>,
/// as dsteqr) whose rotations are applied to the factor in cache-sized SIMD batches
/// (<see cref="PlaneRotations{T}"/>).</para>
/// <para>Only the LOWER triangle of the input (diagonal included) is read; the strict upper triangle is
/// ignored, so a matrix that is symmetric only up to rounding is treated as exactly symmetric.</para>
/// <para>Accuracy: each eigenvalue has absolute error O(n·ε·‖A‖); eigenvectors are orthonormal to O(n·ε)
/// and <c>‖A·V − V·Λ‖ = O(n·ε·‖A‖)</c>. Eigenvectors of repeated or clustered eigenvalues are not
/// unique; only the invariant subspace is determined. The input is scaled by a power of two (exact) so
/// that no intermediate overflows or underflows.</para>
/// </remarks>
public static class SymmetricEigen
{
    /// <summary>Computes the eigenvalues (ascending) and, optionally, eigenvectors of the symmetric matrix whose lower triangle is <paramref name="a"/>'s.</summary>
    /// <param name="a">A square n × n matrix of finite values; only its lower triangle is read and the view is not modified.</param>
    /// <param name="computeVectors">When false only the eigenvalues are computed and <see cref="EigenResult{T}.Vectors"/> is n × 0.</param>
    /// <exception cref="ArgumentException"><paramref name="a"/> is not square, or its lower triangle contains NaN or infinity.</exception>
    /// <exception cref="ArithmeticException">The QR iteration failed to converge (not expected for finite input).</exception>
    public static EigenResult<T> Compute<T>(MatrixView<T> a, bool computeVectors = true) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (a.Rows != a.Cols)
            ThrowHelper.ShapeMismatch(nameof(a), "SymmetricEigen needs a square matrix", $"{a.Rows}×{a.Rows} (or {a.Cols}×{a.Cols})", $"{a.Rows}×{a.Cols}");
        MatrixChecks.RequireFinite(a, nameof(a), lowerTriangleOnly: true);
        int n = a.Rows;
        // Full symmetric working copy from the lower triangle.
        var work = new Matrix<T>(n, n);
        T maxAbs = T.Zero;
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                T x = a[i, j];
                work[i, j] = x;
                work[j, i] = x;
                maxAbs = T.Max(maxAbs, T.Abs(x));
            }
        int exponent = maxAbs == T.Zero ? 0 : T.ILogB(maxAbs);
        if (exponent != 0) Kernels.VectorKernels.Scale(T.ScaleB(T.One, -exponent), work.AsSpan());

        var d = new T[n];
        var e = new T[Math.Max(0, n - 1)];
        var tau = new T[e.Length];
        Tridiagonalization.Reduce<T>(work, d, e, tau);
        Matrix<T>? qt = computeVectors ? Tridiagonalization.FormQt<T>(work, tau) : null;
        SymmetricTridiagonalQr.Compute<T>(d, e, qt?.View);
        if (exponent != 0)
        {
            T back = T.ScaleB(T.One, exponent);
            for (int i = 0; i < n; i++) d[i] *= back;
        }
        return new EigenResult<T>(d, qt is null ? new Matrix<T>(n, 0) : qt.Transpose().ToMatrix());
    }
}
