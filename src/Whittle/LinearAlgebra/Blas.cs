using System.Numerics;
using System.Runtime.CompilerServices;
using Whittle.LinearAlgebra.Kernels;

namespace Whittle.LinearAlgebra;

/// <summary>
/// Level-2 and level-3 dense kernels: matrix product, symmetric rank-k update (Gram matrices) and
/// matrix-vector product. Transposes are expressed with views (<see cref="MatrixView{T}.Transpose"/>);
/// outputs may be any view that does not overlap the inputs.
/// </summary>
public static class Blas
{
    // Below this many multiply-adds, packing and threads cost more than they save.
    private const long SmallProduct = 32 * 32 * 32;
    private const long ParallelThreshold = 128L * 128 * 128;
    private const int SyrkLeaf = 512;

    /// <summary><c>C ← α·A·B + β·C</c>.</summary>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">m × k (a transposed view gives <c>Aᵀ</c>).</param>
    /// <param name="b">k × n.</param>
    /// <param name="beta">Scale of the existing C; with 0, C's old contents (even NaN) are ignored.</param>
    /// <param name="c">m × n output.</param>
    /// <param name="path">Instruction-set path; <see cref="SimdPath.Auto"/> picks the widest.</param>
    public static void Gemm<T>(T alpha, MatrixView<T> a, MatrixView<T> b, T beta, MatrixView<T> c, SimdPath path = SimdPath.Auto)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (a.Cols != b.Rows)
            ThrowHelper.ShapeMismatch(nameof(b), "Gemm: B must have as many rows as A has columns", $"{a.Cols}×{b.Cols}", $"{b.Rows}×{b.Cols}");
        if (c.Rows != a.Rows || c.Cols != b.Cols)
            ThrowHelper.ShapeMismatch(nameof(c), "Gemm: C must be rows(A) × cols(B)", $"{a.Rows}×{b.Cols}", $"{c.Rows}×{c.Cols}");
        path = SimdPaths.Resolve(path);

        // The driver writes row-major C; for a transposed C compute Cᵀ = Bᵀ·Aᵀ instead.
        if (!c.IsRowMajor && c.Rows > 1)
        {
            Gemm(alpha, b.Transpose(), a.Transpose(), beta, c.Transpose(), path);
            return;
        }
        Scale(beta, c);
        if (c.IsEmpty || a.Cols == 0 || alpha == T.Zero) return;

        long work = (long)c.Rows * c.Cols * a.Cols;
        if (work < SmallProduct)
        {
            NaiveGemm(alpha, a, b, c);
            return;
        }
        int workers = work < ParallelThreshold ? 1 : ParallelWork.DefaultWorkers;
        switch (path)
        {
            case SimdPath.Avx512: GemmDriver<T, Avx512MicroKernel<T>>.Run(alpha, a, b, c, workers); break;
            case SimdPath.Avx2: GemmDriver<T, Avx2MicroKernel<T>>.Run(alpha, a, b, c, workers); break;
            default: GemmDriver<T, PortableMicroKernel<T>>.Run(alpha, a, b, c, workers); break;
        }
    }

    /// <summary>The product <c>A·B</c> as a new matrix.</summary>
    public static Matrix<T> Multiply<T>(MatrixView<T> a, MatrixView<T> b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var c = new Matrix<T>(a.Rows, b.Cols);
        Gemm(T.One, a, b, T.Zero, c);
        return c;
    }

    /// <summary>
    /// Symmetric rank-k update <c>C ← α·AᵀA + β·C</c> (BLAS syrk, "lower, transposed"). Only the lower triangle of C
    /// is read and computed, block column by block column with <see cref="Gemm{T}"/> (about half the work of a full
    /// product, in parallel); the strict upper triangle is then overwritten with its mirror, so C comes back exactly
    /// symmetric.
    /// </summary>
    /// <param name="alpha">Scale of AᵀA.</param>
    /// <param name="a">k × n (for a Gram matrix: one sample per row). Pass a transposed view for <c>A·Aᵀ</c>.</param>
    /// <param name="beta">Scale of the lower triangle of the existing C; with 0, C's old contents (even NaN) are ignored.</param>
    /// <param name="c">n × n output; must not overlap <paramref name="a"/>.</param>
    public static void Syrk<T>(T alpha, MatrixView<T> a, T beta, MatrixView<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (c.Rows != c.Cols || c.Rows != a.Cols)
            ThrowHelper.ShapeMismatch(nameof(c), "Syrk: C must be n × n with n = columns of A", $"{a.Cols}×{a.Cols}", $"{c.Rows}×{c.Cols}");
        SyrkLower(alpha, a.Transpose(), beta, c);
        MirrorLower(c);
    }

    /// <summary>The Gram matrix <c>XᵀX</c> (n × n, exactly symmetric) of a k × n matrix X, computed with <see cref="Syrk{T}"/>.</summary>
    /// <param name="x">k × n, one sample per row.</param>
    public static Matrix<T> Gram<T>(MatrixView<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var c = new Matrix<T>(x.Cols, x.Cols);
        Syrk(T.One, x, T.Zero, c);
        return c;
    }

    /// <summary>
    /// Lower triangle of <c>C ← α·P·Pᵀ + β·C</c> for P n × k, by recursive halving into <see cref="Gemm{T}"/>s.
    /// The diagonal leaf blocks are computed in full, so the strict upper triangle inside them is overwritten
    /// too; the rest of the upper triangle is not touched.
    /// </summary>
    internal static void SyrkLower<T>(T alpha, MatrixView<T> p, T beta, MatrixView<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = c.Rows;
        if (n == 0) return;
        // Recursive halving (C11 = P1·P1ᵀ, C21 = P2·P1ᵀ, C22 = P2·P2ᵀ) keeps every product large, so thin
        // inputs (a batch of 256 rows) run at GEMM speed; leaves of ≤ 512 columns are computed in full,
        // wasting at most 512·n·k of the n²·k multiply-adds (small products cost more in overhead).
        if (n <= SyrkLeaf || (long)n * n * Math.Max(1, p.Cols) < SmallProduct * 4)
        {
            Gemm(alpha, p, p.Transpose(), beta, c);
            return;
        }
        int h = (n / 2 + 31) / 32 * 32;
        SyrkLower(alpha, p.SliceRows(0, h), beta, c.Slice(0, 0, h, h));
        Gemm(alpha, p.SliceRows(h, n - h), p.SliceRows(0, h).Transpose(), beta, c.Slice(h, 0, n - h, h));
        SyrkLower(alpha, p.SliceRows(h, n - h), beta, c.Slice(h, h, n - h, n - h));
    }

    /// <summary>Copies the strict lower triangle of square C onto its strict upper triangle, in cache-sized tiles.</summary>
    internal static void MirrorLower<T>(MatrixView<T> c) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!c.IsRowMajor && c.Rows > 1)
        {
            // The transpose of a symmetric matrix is itself: mirror the other triangle of the row-major storage.
            MirrorUpper(c.Transpose());
            return;
        }
        // 8 × 8 tiles: with a power-of-two row stride every row of a column maps to one cache set, and eight
        // source plus eight destination lines still fit its ways (64-wide tiles thrashed it, 5× slower).
        const int tile = 8, band = 64;
        int n = c.Rows;
        int workers = (long)n * n < 1L << 20 ? 1 : ParallelWork.DefaultWorkers;
        var view = c;
        ParallelWork.For((n + band - 1) / band, workers, (_, b) =>
        {
            ref T origin = ref view.Array[view.Offset];
            int ld = view.RowStride;
            for (int i0 = b * band; i0 < Math.Min(n, (b + 1) * band); i0 += tile)
                for (int j0 = 0; j0 <= i0; j0 += tile)
                    for (int i = i0; i < Math.Min(n, i0 + tile); i++)
                        for (int j = j0; j < Math.Min(i, j0 + tile); j++)
                            Unsafe.Add(ref origin, (nint)j * ld + i) = Unsafe.Add(ref origin, (nint)i * ld + j);
        });
    }

    /// <summary>Copies the strict upper triangle of square row-major C onto its strict lower triangle.</summary>
    private static void MirrorUpper<T>(MatrixView<T> c) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = c.Rows;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                c[i, j] = c[j, i];
    }

    /// <summary><c>y ← α·A·x + β·y</c> (a transposed view of A gives <c>Aᵀx</c>). Parallel over rows of A
    /// (or over columns, for a transposed view) when the matrix is large.</summary>
    public static unsafe void Gemv<T>(T alpha, MatrixView<T> a, ReadOnlySpan<T> x, T beta, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length != a.Cols)
            ThrowHelper.ShapeMismatch(nameof(x), "Gemv: x must have one entry per column of A", $"{a.Cols}", $"{x.Length}");
        if (y.Length != a.Rows)
            ThrowHelper.ShapeMismatch(nameof(y), "Gemv: y must have one entry per row of A", $"{a.Rows}", $"{y.Length}");
        if (beta == T.Zero) y.Clear();
        else if (beta != T.One) VectorKernels.Scale(beta, y);
        if (a.IsEmpty || alpha == T.Zero) return;

        int m = a.Rows, n = a.Cols;
        int workers = (long)m * n < 1L << 17 ? 1 : ParallelWork.DefaultWorkers;
        fixed (T* xp = x)
        fixed (T* yp = y)
        {
            nint xs = (nint)xp, ys = (nint)yp;
            var view = a;
            if (a.IsRowMajor)
            {
                // y_i += α·⟨A_i, x⟩
                int chunk = ParallelWork.ChunkSize(m, 4 * workers, 16);
                ParallelWork.For((m + chunk - 1) / chunk, workers, (_, c) =>
                {
                    var xv = new ReadOnlySpan<T>((T*)xs, n);
                    for (int i = c * chunk; i < Math.Min(m, (c + 1) * chunk); i++)
                        ((T*)ys)[i] += alpha * VectorKernels.Dot<T>(view.Array.AsSpan(view.Offset + i * view.RowStride, n), xv);
                });
            }
            else
            {
                // A = Sᵀ with S (n × m) row-major: y += α·Σ_j x_j·S_j, split over column ranges of S.
                int chunk = ParallelWork.ChunkSize(m, workers, 64);
                ParallelWork.For((m + chunk - 1) / chunk, workers, (_, c) =>
                {
                    int i0 = c * chunk, len = Math.Min(m, i0 + chunk) - i0;
                    var yv = new Span<T>((T*)ys + i0, len);
                    for (int j = 0; j < n; j++)
                    {
                        T xj = alpha * ((T*)xs)[j];
                        if (xj != T.Zero)
                            VectorKernels.Axpy<T>(xj, view.Array.AsSpan(view.Offset + j * view.ColStride + i0, len), yv);
                    }
                });
            }
        }
    }

    /// <summary>Rank-one update <c>A ← A + α·x·yᵀ</c>.</summary>
    public static unsafe void Ger<T>(T alpha, ReadOnlySpan<T> x, ReadOnlySpan<T> y, MatrixView<T> a)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length != a.Rows)
            ThrowHelper.ShapeMismatch(nameof(x), "Ger: x must have one entry per row of A", $"{a.Rows}", $"{x.Length}");
        if (y.Length != a.Cols)
            ThrowHelper.ShapeMismatch(nameof(y), "Ger: y must have one entry per column of A", $"{a.Cols}", $"{y.Length}");
        if (a.IsEmpty || alpha == T.Zero) return;
        if (!a.IsRowMajor)
        {
            Ger(alpha, y, x, a.Transpose());
            return;
        }
        int m = a.Rows, n = a.Cols;
        int workers = (long)m * n < 1L << 17 ? 1 : ParallelWork.DefaultWorkers;
        fixed (T* xp = x)
        fixed (T* yp = y)
        {
            nint xs = (nint)xp, ys = (nint)yp;
            var view = a;
            int chunk = ParallelWork.ChunkSize(m, 4 * workers, 16);
            ParallelWork.For((m + chunk - 1) / chunk, workers, (_, c) =>
            {
                var yv = new ReadOnlySpan<T>((T*)ys, n);
                for (int i = c * chunk; i < Math.Min(m, (c + 1) * chunk); i++)
                {
                    T xi = alpha * ((T*)xs)[i];
                    if (xi != T.Zero)
                        VectorKernels.Axpy(xi, yv, view.Array.AsSpan(view.Offset + i * view.RowStride, n));
                }
            });
        }
    }

    /// <summary><c>C ← β·C</c>; with β = 0 the old contents are overwritten, not multiplied.</summary>
    internal static void Scale<T>(T beta, MatrixView<T> c) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (beta == T.One) return;
        if (beta == T.Zero)
        {
            c.Fill(T.Zero);
            return;
        }
        for (int i = 0; i < c.Rows; i++)
            for (int j = 0; j < c.Cols; j++)
                c[i, j] *= beta;
    }

    private static void NaiveGemm<T>(T alpha, MatrixView<T> a, MatrixView<T> b, MatrixView<T> c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < c.Rows; i++)
            for (int p = 0; p < a.Cols; p++)
            {
                T aip = alpha * a[i, p];
                for (int j = 0; j < c.Cols; j++) c[i, j] += aip * b[p, j];
            }
    }
}
