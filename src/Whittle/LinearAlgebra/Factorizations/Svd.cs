using System.Numerics;

namespace Whittle.LinearAlgebra.Factorizations;

/// <summary>
/// A thin singular value decomposition <c>A = U·diag(S)·Vt</c> of an m × n matrix, r = min(m, n).
/// </summary>
/// <param name="U">m × r, orthonormal columns (the left singular vectors).</param>
/// <param name="S">The r singular values, non-negative and in descending order.</param>
/// <param name="Vt">r × n, orthonormal rows (the right singular vectors, transposed).</param>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed record SvdResult<T>(Matrix<T> U, T[] S, Matrix<T> Vt) where T : unmanaged, IFloatingPointIeee754<T>;

/// <summary>
/// Thin singular value decomposition of dense matrices.
/// </summary>
/// <remarks>
/// <para>Algorithm (Golub and Van Loan §8.6; LAPACK dgesvd with the QR iteration): an m × n matrix
/// with m ≥ n is first reduced by <see cref="HouseholderQr"/> when m ≥ 1.6·n (so the bidiagonalization
/// works on the n × n R), then bidiagonalized (<see cref="Bidiagonalization"/>, blocked as dgebrd),
/// and the bidiagonal is diagonalized by implicit-shift QR (<see cref="BidiagonalSvd"/>, as dbdsqr)
/// whose rotations update the explicit orthogonal factors (<see cref="PlaneRotations{T}"/>).
/// A wide matrix (m &lt; n) is handled through its transpose.</para>
/// <para>Accuracy: U and V are orthonormal to O(n·ε), <c>‖A − U·Σ·Vᵀ‖ = O(n·ε·‖A‖)</c>, each σ has
/// absolute error O(n·ε·σ_max). The input is scaled by a power of two (exact) so that no intermediate
/// overflows or underflows. Singular vectors of repeated or clustered σ are not unique; only the
/// subspaces they span are determined.</para>
/// <para>Cost: about 4mn² + 8n³ flops for the reduction and factors, plus the QR iterations, whose
/// rotations dominate (≈ 12n³ flops, applied with SIMD, in cache-sized panels, on all cores).</para>
/// </remarks>
public static class Svd
{
    // Above this aspect ratio a QR first makes the bidiagonalization cheaper (LAPACK's crossover is similar).
    private const double QrFirstRatio = 1.6;

    /// <summary>Computes the thin SVD of <paramref name="a"/>; the input view is not modified.</summary>
    /// <param name="a">Any m × n matrix of finite values (m or n may be 0).</param>
    /// <param name="computeVectors">When false, U and Vt are returned empty (m × 0 and 0 × n) and only S is computed.</param>
    /// <returns>U (m × r), S (r, descending), Vt (r × n) with r = min(m, n).</returns>
    /// <exception cref="ArgumentException"><paramref name="a"/> contains NaN or infinity.</exception>
    /// <exception cref="ArithmeticException">The QR iteration failed to converge (not expected for finite input).</exception>
    public static SvdResult<T> Compute<T>(MatrixView<T> a, bool computeVectors = true) where T : unmanaged, IFloatingPointIeee754<T>
    {
        MatrixChecks.RequireFinite(a, nameof(a));
        if (a.Rows < a.Cols)
        {
            var t = ComputeTall(a.Transpose(), computeVectors);
            return computeVectors
                ? new SvdResult<T>(t.Vt.Transpose().ToMatrix(), t.S, t.U.Transpose().ToMatrix())
                : new SvdResult<T>(new Matrix<T>(a.Rows, 0), t.S, new Matrix<T>(0, a.Cols));
        }
        return ComputeTall(a, computeVectors);
    }

    /// <summary>The min(m, n) singular values of <paramref name="a"/>, in descending order.</summary>
    /// <param name="a">Any m × n matrix of finite values; it is not modified.</param>
    /// <exception cref="ArgumentException"><paramref name="a"/> contains NaN or infinity.</exception>
    public static T[] SingularValues<T>(MatrixView<T> a) where T : unmanaged, IFloatingPointIeee754<T>
        => Compute(a, computeVectors: false).S;

    private static SvdResult<T> ComputeTall<T>(MatrixView<T> a, bool computeVectors) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = a.Rows, n = a.Cols;
        if (n == 0)
            return new SvdResult<T>(new Matrix<T>(m, 0), System.Array.Empty<T>(), new Matrix<T>(0, 0));

        var work = a.ToMatrix();
        // Scale by a power of two (exact) so that max |a_ij| is about 1.
        T maxAbs = T.Zero;
        foreach (var x in work.AsSpan()) maxAbs = T.Max(maxAbs, T.Abs(x));
        if (maxAbs == T.Zero)
        {
            var s0 = new T[n];
            return computeVectors
                ? new SvdResult<T>(Matrix<T>.Diagonal(Enumerable.Repeat(T.One, n).ToArray(), m, n), s0, Matrix<T>.Identity(n))
                : new SvdResult<T>(new Matrix<T>(m, 0), s0, new Matrix<T>(0, n));
        }
        int exponent = T.ILogB(maxAbs);
        if (exponent != 0) Kernels.VectorKernels.Scale(T.ScaleB(T.One, -exponent), work.AsSpan());

        // Tall: QR first, then work on the n × n R.
        bool qrFirst = m >= QrFirstRatio * n && n > 1;
        Matrix<T> source = work;
        HouseholderQr<T>? qr = null;
        if (qrFirst)
        {
            qr = HouseholderQr.Compute<T>(work);
            source = qr.R.View.ToMatrix(); // n × n upper triangular; a copy, since the reduction overwrites it
        }

        int rows = source.Rows;
        var d = new T[n];
        var e = new T[n - 1];
        var tauq = new T[n];
        var taup = new T[n];
        Bidiagonalization.Reduce<T>(source, d, e, tauq, taup);

        Matrix<T>? ut = null, vt = null;
        if (computeVectors)
        {
            ut = Bidiagonalization.FormQ<T>(source, tauq).Transpose().ToMatrix(); // Qᵀ: n × rows
            vt = Bidiagonalization.FormPt<T>(source, taup);                       // Pᵀ: n × n
        }
        BidiagonalSvd.Compute<T>(d, e, ut?.View, vt?.View);

        if (exponent != 0)
        {
            T back = T.ScaleB(T.One, exponent);
            for (int i = 0; i < n; i++) d[i] *= back;
        }
        if (!computeVectors)
            return new SvdResult<T>(new Matrix<T>(m, 0), d, new Matrix<T>(0, n));

        Matrix<T> u;
        if (qrFirst)
        {
            // U = Q·[U_R; 0] (ApplyQ with n rows multiplies by the thin Q).
            u = qr!.ApplyQ(ut!.Transpose());
        }
        else
        {
            u = ut!.Transpose().ToMatrix();
        }
        return new SvdResult<T>(u, d, vt!);
    }

}
