// Maps one axis of a stored tensor through AxisSegments (see PruningPlan): slicing and folding a correction.
//
// Shapes: the tensor is viewed as [outer, L, inner] around the axis (L its length). A segment of U blocks of F
// entries is gathered into X (U × F·outer·inner, row c = block c), mapped (rows Kept of X, or Mix·X), and
// scattered back as the segment's new entries; entries outside the segments are copied. One GEMM per segment.

using System.Numerics;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Rewriting;

/// <summary>Edits one axis of a tensor.</summary>
internal static class TensorAxis
{
    /// <summary>A new tensor (named <paramref name="name"/>, same element type) with <paramref name="axis"/> mapped through <paramref name="segments"/>.</summary>
    public static TensorProto Map(OnnxTensor tensor, int axis, IReadOnlyList<AxisSegment> segments, string name)
    {
        var dims = tensor.Shape.ToArray();
        long outer = 1;
        int inner = 1;
        for (int i = 0; i < axis; i++) outer *= dims[i];
        for (int i = axis + 1; i < dims.Length; i++) inner = checked(inner * (int)dims[i]);
        int length = (int)dims[axis];
        var pieces = Pieces(length, segments);
        int newLength = pieces.Sum(p => p.Segment?.NewLength ?? p.Length);
        var newDims = (long[])dims.Clone();
        newDims[axis] = newLength;
        var type = tensor.DataType;
        if (type == OnnxDataType.Double)
            return OnnxTensors.FromArray<double>(name, MapValues(tensor.ToArray<double>(), outer, length, inner, pieces, newLength), newDims, type);
        if (IsFloating(type))
            return OnnxTensors.FromArray<float>(name, MapValues(tensor.ToArray<float>(), outer, length, inner, pieces, newLength), newDims, type);
        int size = OnnxDataTypes.BitsPerElement(type) / 8;
        return OnnxTensors.FromBytes(name, type, newDims, SelectBytes(tensor.ReadBytes(), size, outer, length, inner, pieces, newLength));
    }

    /// <summary>Floating-point element types, edited numerically; integer (quantized) tensors are only sliced, byte by byte.</summary>
    public static bool IsFloating(OnnxDataType type) => type is OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Double;

    private sealed record Piece(int Start, int Length, AxisSegment? Segment);

    /// <summary>The axis cut into copied ranges and segments, in order.</summary>
    private static List<Piece> Pieces(int length, IReadOnlyList<AxisSegment> segments)
    {
        var pieces = new List<Piece>();
        int at = 0;
        foreach (var s in segments.OrderBy(s => s.Offset))
        {
            if (s.Offset > at) pieces.Add(new Piece(at, s.Offset - at, null));
            pieces.Add(new Piece(s.Offset, s.OldLength, s));
            at = s.Offset + s.OldLength;
        }
        if (at < length) pieces.Add(new Piece(at, length - at, null));
        return pieces;
    }

    private static T[] MapValues<T>(T[] old, long outer, int length, int inner, List<Piece> pieces, int newLength)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var result = new T[outer * newLength * inner];
        int newStart = 0;
        foreach (var p in pieces)
        {
            if (p.Segment is not { } s)
            {
                for (long o = 0; o < outer; o++)
                    Array.Copy(old, (o * length + p.Start) * inner, result, (o * newLength + newStart) * inner, (long)p.Length * inner);
                newStart += p.Length;
                continue;
            }
            // X: U × (outer·F·inner), row c holds block c of every outer index.
            int f = s.Factor;
            long cols = outer * f * inner;
            var x = new Matrix<T>(s.Units, checked((int)cols));
            for (int c = 0; c < s.Units; c++)
            {
                var row = x.Row(c);
                for (long o = 0; o < outer; o++)
                    old.AsSpan((int)((o * length + s.Offset + (long)c * f) * inner), f * inner).CopyTo(row.Slice((int)(o * f * inner), f * inner));
            }
            Matrix<T> y;
            if (s.Mix is { } mix) y = Blas.Multiply(Matrix<T>.Create(mix.Rows, mix.Cols, (i, j) => T.CreateTruncating(mix[i, j])).View, x.View);
            else
            {
                y = new Matrix<T>(s.Kept.Length, x.Cols);
                for (int j = 0; j < s.Kept.Length; j++) x.Row(s.Kept[j]).CopyTo(y.Row(j));
            }
            for (int j = 0; j < y.Rows; j++)
            {
                var row = y.Row(j);
                for (long o = 0; o < outer; o++)
                    row.Slice((int)(o * f * inner), f * inner).CopyTo(result.AsSpan((int)((o * newLength + newStart + (long)j * f) * inner), f * inner));
            }
            newStart += y.Rows * f;
        }
        return result;
    }

    private static byte[] SelectBytes(byte[] old, int size, long outer, int length, int inner, List<Piece> pieces, int newLength)
    {
        var result = new byte[outer * newLength * inner * size];
        long block = (long)inner * size;
        for (long o = 0; o < outer; o++)
        {
            int newAt = 0;
            foreach (var p in pieces)
            {
                if (p.Segment is not { } s)
                {
                    Array.Copy(old, (o * length + p.Start) * block, result, (o * newLength + newAt) * block, p.Length * block);
                    newAt += p.Length;
                    continue;
                }
                foreach (int k in s.Kept)
                {
                    Array.Copy(old, (o * length + s.Offset + (long)k * s.Factor) * block, result, (o * newLength + newAt) * block, s.Factor * block);
                    newAt += s.Factor;
                }
            }
        }
        return result;
    }
}
