using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Whittle.LinearAlgebra.Kernels;

/// <summary>
/// Cache-blocked matrix product <c>C += α·A·B</c> for row-major C, after Goto and van de Geijn
/// (the BLIS loop nest, mirrored for row-major storage).
/// </summary>
/// <remarks>
/// Shapes: A m×k, B k×n, C m×n; A and B may be transposed views.
/// Loop nest, outermost first:
/// <list type="number">
/// <item>ic over rows of C in blocks of <c>McBlock</c>; pc over k in blocks of <c>KcBlock</c>: pack α·A[ic, pc]
///   into Ã (shared, MR-row panels, lives in L3);</item>
/// <item>jc over columns of C in blocks of <c>NcBlock</c>, in parallel: each worker packs B[pc, jc] into its own
///   B̃ (NR-column panels, lives in L2);</item>
/// <item>ir over MR panels of Ã (one stays in L1), jr over NR panels of B̃: the micro-kernel.</item>
/// </list>
/// Every element of C is accumulated by one worker in a fixed order, so the result does not depend on
/// the thread count or on scheduling; it does depend on the micro-kernel (summation order differs
/// between instruction sets).
/// </remarks>
internal static unsafe class GemmDriver<T, TKernel>
    where T : unmanaged, IFloatingPointIeee754<T>
    where TKernel : struct, IGemmMicroKernel<T>
{
    // Blocking in bytes, tuned on AMD Zen 5 (L1d 48 KiB, L2 1 MiB per core); see `whittle bench linalg`.
    private static int KcBlock => 512 * 4 / sizeof(T);
    private static int NcBlock => 256 * 4 / sizeof(T);
    private static int McBlock => 2040 / TKernel.MR * TKernel.MR;

    public static void Run(T alpha, MatrixView<T> a, MatrixView<T> b, MatrixView<T> c, int workers)
    {
        int m = c.Rows, n = c.Cols, k = a.Cols;
        int mr = TKernel.MR, nr = TKernel.NR;
        int kcMax = Math.Min(KcBlock, k);
        int mcMax = Math.Min(McBlock, RoundUp(m, mr));
        int ncChunk = Math.Min(NcBlock, ParallelWork.ChunkSize(n, workers, nr));
        int nChunks = (n + ncChunk - 1) / ncChunk;
        // Too few NR panels to share out evenly (n = 74 is three panels for two workers): split each chunk's
        // rows as well. Each split re-packs its B̃, so this is only worth it when C is that narrow.
        int nPanels = (n + nr - 1) / nr;
        int mSplits = nPanels >= 4 * workers || workers == 1 ? 1 : Math.Clamp((2 * workers + nChunks - 1) / nChunks, 1, (m + mr - 1) / mr);

        using var aScratch = new PinnedScratch<T>(mcMax * kcMax);
        T* aPack = aScratch.Pointer;
        var bScratch = new PinnedScratch<T>[Math.Max(1, Math.Min(workers, nChunks * mSplits))];
        var bPacks = new nint[bScratch.Length];
        try
        {
            for (int w = 0; w < bPacks.Length; w++)
            {
                bScratch[w] = new PinnedScratch<T>(kcMax * RoundUp(ncChunk, nr));
                bPacks[w] = (nint)bScratch[w].Pointer;
            }

            fixed (T* cBase = c.Array)
            {
                nint cPtr = (nint)(cBase + c.Offset);
                for (int ic = 0; ic < m; ic += mcMax)
                {
                    int mc = Math.Min(mcMax, m - ic);
                    int aPanels = (mc + mr - 1) / mr;
                    for (int pc = 0; pc < k; pc += kcMax)
                    {
                        int kc = Math.Min(kcMax, k - pc);
                        var aBlock = a.Slice(ic, pc, mc, kc);
                        nint aPackPtr = (nint)aPack;
                        ParallelWork.For(aPanels, workers, (_, panel) =>
                            PackA(alpha, aBlock, panel * mr, (T*)aPackPtr + panel * mr * kc));

                        var bBlock = b.Slice(pc, 0, kc, n);
                        int panelsPerSplit = (aPanels + mSplits - 1) / mSplits;
                        ParallelWork.For(nChunks * mSplits, bPacks.Length, (worker, item) =>
                        {
                            int chunk = item / mSplits, split = item % mSplits;
                            int jc = chunk * ncChunk, nc = Math.Min(ncChunk, n - jc);
                            T* bPack = (T*)bPacks[worker];
                            PackB(bBlock, jc, nc, bPack);
                            int p0 = split * panelsPerSplit, p1 = Math.Min(aPanels, p0 + panelsPerSplit);
                            T* cTile = (T*)cPtr + (nint)ic * c.RowStride + jc;
                            Macro((T*)aPackPtr, bPack, cTile, c.RowStride, kc, mc, nc, p0, p1);
                        });
                    }
                }
            }
        }
        finally
        {
            foreach (var scratch in bScratch) scratch?.Dispose();
        }
    }

    private static int RoundUp(int x, int granule) => (x + granule - 1) / granule * granule;

    /// <summary>Runs the micro-kernel over MR panels p0..p1 of Ã against every NR panel of B̃.</summary>
    private static void Macro(T* aPack, T* bPack, T* c, int ldc, int kc, int mc, int nc, int p0, int p1)
    {
        int mr = TKernel.MR, nr = TKernel.NR;
        T* edge = stackalloc T[mr * nr];
        for (int ip = p0; ip < p1; ip++)
        {
            int i = ip * mr, rows = Math.Min(mr, mc - i);
            T* aPanel = aPack + i * kc;
            for (int j = 0; j < nc; j += nr)
            {
                int cols = Math.Min(nr, nc - j);
                T* bPanel = bPack + j * kc;
                T* cTile = c + (nint)i * ldc + j;
                if (rows == mr && cols == nr)
                {
                    TKernel.Run(kc, aPanel, bPanel, cTile, ldc);
                    continue;
                }
                new Span<T>(edge, mr * nr).Clear();
                TKernel.Run(kc, aPanel, bPanel, edge, nr);
                for (int r = 0; r < rows; r++)
                    for (int s = 0; s < cols; s++)
                        cTile[(nint)r * ldc + s] += edge[r * nr + s];
            }
        }
    }

    /// <summary>Packs α·A[row0 .. row0+MR, :] as <c>dst[p·MR + i]</c>, zero-padding missing rows.</summary>
    private static void PackA(T alpha, MatrixView<T> a, int row0, T* dst)
    {
        int mr = TKernel.MR, kc = a.Cols, rows = Math.Min(mr, a.Rows - row0);
        ref T src = ref MemoryMarshal.GetArrayDataReference(a.Array);
        if (a.IsRowMajor)
        {
            for (int i = 0; i < rows; i++)
            {
                ref T row = ref Unsafe.Add(ref src, a.Offset + (row0 + i) * a.RowStride);
                for (int p = 0; p < kc; p++) dst[p * mr + i] = alpha * Unsafe.Add(ref row, p);
            }
        }
        else
        {
            for (int p = 0; p < kc; p++)
            {
                ref T col = ref Unsafe.Add(ref src, a.Offset + p * a.ColStride + row0);
                for (int i = 0; i < rows; i++) dst[p * mr + i] = alpha * Unsafe.Add(ref col, i);
            }
        }
        if (rows < mr)
            for (int p = 0; p < kc; p++)
                for (int i = rows; i < mr; i++) dst[p * mr + i] = T.Zero;
    }

    /// <summary>Packs B[:, col0 .. col0+nc] into NR-column panels <c>dst[panel·kc·NR + p·NR + j]</c>.</summary>
    private static void PackB(MatrixView<T> b, int col0, int nc, T* dst)
    {
        int nr = TKernel.NR, kc = b.Rows;
        ref T src = ref MemoryMarshal.GetArrayDataReference(b.Array);
        for (int j0 = 0; j0 < nc; j0 += nr)
        {
            int cols = Math.Min(nr, nc - j0);
            T* panel = dst + j0 * kc;
            if (b.IsRowMajor)
            {
                for (int p = 0; p < kc; p++)
                {
                    var from = MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref src, b.Offset + p * b.RowStride + col0 + j0), cols);
                    var to = new Span<T>(panel + p * nr, nr);
                    from.CopyTo(to);
                    to[cols..].Clear();
                }
            }
            else
            {
                for (int j = 0; j < cols; j++)
                {
                    ref T col = ref Unsafe.Add(ref src, b.Offset + (col0 + j0 + j) * b.ColStride);
                    for (int p = 0; p < kc; p++) panel[p * nr + j] = Unsafe.Add(ref col, p);
                }
                for (int p = 0; p < kc; p++)
                    for (int j = cols; j < nr; j++) panel[p * nr + j] = T.Zero;
            }
        }
    }
}
