using System.Numerics;

namespace Whittle.LinearAlgebra;

/// <summary>Copies between views whose layouts differ, in cache-sized tiles.</summary>
internal static class MatrixCopy
{
    private const int Tile = 32;

    public static void Transposing<T>(MatrixView<T> source, MatrixView<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i0 = 0; i0 < source.Rows; i0 += Tile)
        {
            int i1 = Math.Min(i0 + Tile, source.Rows);
            for (int j0 = 0; j0 < source.Cols; j0 += Tile)
            {
                int j1 = Math.Min(j0 + Tile, source.Cols);
                for (int i = i0; i < i1; i++)
                    for (int j = j0; j < j1; j++)
                        destination[i, j] = source[i, j];
            }
        }
    }
}
