// Whether held-out data repeat examples of the data a method selected on (calibration). A method that chooses ranks,
// widths or blocks by a measured loss is tuned to its calibration examples, so figures on those same examples are
// optimistic; two files can hold the same examples (a copy, an .npz made from the IDX file, overlapping text windows
// at the same offsets), which comparing paths does not catch.
//
// Contract: an example is the bytes of every model input's row (tensor names in ordinal order, each tensor's element
// type and sample shape included); two examples are equal when their SHA-256 digests are. Labels are not compared.

using System.Security.Cryptography;
using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>Counts examples two batch sets share, by content.</summary>
public static class ExampleOverlap
{
    /// <summary>The number of examples of <paramref name="heldOut"/> whose inputs also appear, byte for byte, in <paramref name="selection"/>.</summary>
    /// <param name="selection">The data a method chose on (calibration).</param>
    /// <param name="heldOut">The data results are reported on.</param>
    public static int Count(BatchSet selection, BatchSet heldOut)
    {
        ArgumentNullException.ThrowIfNull(selection);
        ArgumentNullException.ThrowIfNull(heldOut);
        var seen = new HashSet<UInt128>();
        foreach (var batch in selection) foreach (var digest in Digests(batch)) seen.Add(digest);
        int shared = 0;
        foreach (var batch in heldOut) foreach (var digest in Digests(batch)) if (seen.Contains(digest)) shared++;
        return shared;
    }

    /// <summary>One 128-bit digest (the first half of SHA-256) per example of <paramref name="batch"/>.</summary>
    private static List<UInt128> Digests(InputBatch batch)
    {
        var names = batch.Names.Order(StringComparer.Ordinal).ToList();
        var tensors = names.Select(n => batch[n]).ToList();
        var rows = new byte[tensors.Count][];
        for (int t = 0; t < tensors.Count; t++) rows[t] = new byte[RowBytes(tensors[t])];
        var digests = new List<UInt128>(batch.BatchSize);
        var hash = new byte[32];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int r = 0; r < batch.BatchSize; r++)
        {
            for (int t = 0; t < tensors.Count; t++)
            {
                var tensor = tensors[t];
                sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{names[t]}:{tensor.ElementType}:{string.Join(',', tensor.Shape.Skip(1))};"));
                int length = rows[t].Length;
                Buffer.BlockCopy(tensor.Data, r * length, rows[t], 0, length);
                sha.AppendData(rows[t]);
            }
            sha.GetHashAndReset(hash);
            digests.Add(new UInt128(BitConverter.ToUInt64(hash, 0), BitConverter.ToUInt64(hash, 8)));
        }
        return digests;
    }

    private static int RowBytes(HostTensor tensor) =>
        tensor.Length == 0 ? 0 : checked((int)(Buffer.ByteLength(tensor.Data) / tensor.Rows));
}
