using Google.Protobuf;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Onnx;

public class TensorConversionTests
{
    public static TheoryData<OnnxDataType> Convertible() =>
    [
        OnnxDataType.Float, OnnxDataType.Float16, OnnxDataType.BFloat16, OnnxDataType.Double, OnnxDataType.Int8,
        OnnxDataType.Int16, OnnxDataType.Int32, OnnxDataType.Int64, OnnxDataType.UInt8, OnnxDataType.UInt16,
        OnnxDataType.UInt32, OnnxDataType.UInt64, OnnxDataType.Bool,
    ];

    [Theory]
    [MemberData(nameof(Convertible))]
    public void ValuesExactInTheTypeRoundTrip(OnnxDataType type)
    {
        double[] values = type switch
        {
            OnnxDataType.Bool => [0, 1, 1, 0, 1, 0],
            OnnxDataType.UInt8 or OnnxDataType.UInt16 or OnnxDataType.UInt32 or OnnxDataType.UInt64 => [0, 1, 2, 100, 127, 255],
            _ => [0, 1, -2, 100, -128, 127],
        };
        foreach (var t in new[] { OnnxTensors.FromArray<double>("t", values, [2, 3], type), OnnxTensors.FromArray<float>("t", [.. values.Select(v => (float)v)], [2, 3], type) })
        {
            var tensor = OnnxTensor.Of(t);
            Assert.Equal(type, tensor.DataType);
            Assert.Equal(OnnxDataTypes.ByteLength(type, 6), tensor.ReadBytes().Length);
            Assert.Equal(values, tensor.ToArray<double>());
            Assert.Equal(values.Select(v => (float)v), tensor.ToArray<float>());
            var m = tensor.ToMatrix<double>();
            Assert.Equal((2, 3), (m.Rows, m.Cols));
            Assert.Equal(values[4], m[1, 1]);
        }
    }

    [Fact]
    public void Float16HasItsBitPatternsAndRoundsToNearestEven()
    {
        var t = OnnxTensors.FromArray<float>("h", [1f, -2f, 65504f, 1f / 3, float.PositiveInfinity, 1e-8f], [6], OnnxDataType.Float16);
        var bits = Bits16(t.RawData.ToByteArray());
        Assert.Equal([0x3C00, 0xC000, 0x7BFF, 0x3555, 0x7C00, 0x0000], bits);
        Assert.Equal(0.333251953125f, OnnxTensor.Of(t).ToArray<float>()[3]);
        Assert.True(float.IsNaN(OnnxTensor.Of(OnnxTensors.FromArray<float>("n", [float.NaN], [1], OnnxDataType.Float16)).ToArray<float>()[0]));
    }

    [Fact]
    public void BFloat16IsTheUpperHalfRoundedToNearestEven()
    {
        // 1 + 2^-8 is halfway between bfloat16 1 and 1 + 2^-7: ties go to the even mantissa (1).
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6.
        float[] values = [1f, -2.5f, 1f + 1f / 256, 1f + 3f / 256, 3.0e38f, float.NegativeInfinity, float.NaN];
        var t = OnnxTensors.FromArray<float>("b", values, [values.Length], OnnxDataType.BFloat16);
        var bits = Bits16(t.RawData.ToByteArray());
        Assert.Equal([0x3F80, 0xC020, 0x3F80, 0x3F82, 0x7F62, 0xFF80], bits[..6]);
        Assert.Equal(0x7FC0, bits[6] & 0x7FC0);
        var back = OnnxTensor.Of(t).ToArray<float>();
        Assert.Equal([1f, -2.5f, 1f, 1f + 1f / 64], back[..4]);
        Assert.True(float.IsNaN(back[6]));
        Assert.True(Math.Abs(back[4] - 3.0e38f) / 3.0e38f < 1.0 / 128);
    }

    [Fact]
    public void IntegersRoundAndSaturate()
    {
        var t = OnnxTensors.FromArray<double>("i", [2.5, 3.5, -2.5, 300, -300, double.NaN, 1e30], [7], OnnxDataType.Int8);
        Assert.Equal([2.0, 4, -2, 127, -128, 0, 127], OnnxTensor.Of(t).ToArray<double>());
        var u = OnnxTensors.FromArray<double>("u", [-1, 256, 1e30], [3], OnnxDataType.UInt8);
        Assert.Equal([0.0, 255, 255], OnnxTensor.Of(u).ToArray<double>());
        var l = OnnxTensors.FromArray<double>("l", [-1e30, 1e30], [2], OnnxDataType.Int64);
        Assert.Equal([long.MinValue, long.MaxValue], OnnxTensor.Of(l).ReadBytes().Chunk(8).Select(c => BitConverter.ToInt64(c)));
    }

    [Fact]
    public void TypedFieldsReadLikeRawData()
    {
        var f = new TensorProto { Name = "f", DataType = (int)OnnxDataType.Float };
        f.Dims.Add(3);
        f.FloatData.Add([1.5f, -2f, 3f]);
        Assert.Equal([1.5f, -2f, 3f], OnnxTensor.Of(f).ToArray<float>());

        var h = new TensorProto { Name = "h", DataType = (int)OnnxDataType.Float16 };
        h.Dims.Add(2);
        h.Int32Data.Add([0x3C00, 0xC000]); // float16 bits in int32_data
        Assert.Equal([1.0, -2.0], OnnxTensor.Of(h).ToArray<double>());

        var i8 = new TensorProto { Name = "i8", DataType = (int)OnnxDataType.Int8 };
        i8.Dims.Add(2);
        i8.Int32Data.Add([-5, 7]);
        Assert.Equal([-5.0, 7.0], OnnxTensor.Of(i8).ToArray<double>());

        var u32 = new TensorProto { Name = "u32", DataType = (int)OnnxDataType.UInt32 };
        u32.Dims.Add(1);
        u32.Uint64Data.Add(4000000000UL);
        Assert.Equal([4000000000.0], OnnxTensor.Of(u32).ToArray<double>());

        var l = new TensorProto { Name = "l", DataType = (int)OnnxDataType.Int64 };
        l.Int64Data.Add(-9); // a scalar: no dims
        Assert.Equal([-9.0], OnnxTensor.Of(l).ToValues<double>().Values);
        Assert.Empty(OnnxTensor.Of(l).ToValues<double>().Shape);

        var d = new TensorProto { Name = "d", DataType = (int)OnnxDataType.Double };
        d.Dims.Add(2);
        d.DoubleData.Add([0.1, 0.2]);
        Assert.Equal([0.1, 0.2], OnnxTensor.Of(d).ToArray<double>());
    }

    [Fact]
    public void EveryDataTypeIsReadableAsBytesOrStrings()
    {
        foreach (var type in Enum.GetValues<OnnxDataType>().Where(t => t is not (OnnxDataType.Undefined or OnnxDataType.String)))
        {
            long bytes = OnnxDataTypes.ByteLength(type, 5);
            var t = OnnxTensors.FromBytes("t", type, [5], new byte[bytes]);
            Assert.Equal(bytes, OnnxTensor.Of(t).ReadBytes().Length);
            Assert.Equal(OnnxDataTypes.IsConvertible(type), TryConvert(t));
        }
        var s = new TensorProto { Name = "s", DataType = (int)OnnxDataType.String };
        s.Dims.Add(2);
        s.StringData.Add([ByteString.CopyFromUtf8("a"), ByteString.CopyFromUtf8("bc")]);
        Assert.Equal(["a", "bc"], OnnxTensor.Of(s).ReadStrings().Select(b => b.ToStringUtf8()));
        Assert.Contains("no fixed-size byte layout", Assert.Throws<OnnxModelException>(() => OnnxTensor.Of(s).ReadBytes()).Message);
    }

    [Fact]
    public void MatricesRoundTripAndConvKernelsFlatten()
    {
        var m = RandomMatrix.Gaussian<double>(4, 18, seed: 5);
        var t = OnnxTensors.FromMatrix("conv.weight", m, OnnxDataType.Double, [4, 2, 3, 3]);
        Assert.Equal([4L, 2, 3, 3], t.Dims);
        var back = OnnxTensor.Of(t).ToMatrix<double>();
        Assert.Equal(m.AsSpan().ToArray(), back.AsSpan().ToArray());
        var f = OnnxTensor.Of(OnnxTensors.FromMatrix("w", m, OnnxDataType.Float)).ToMatrix<float>();
        Assert.Equal(m.AsSpan().ToArray().Select(v => (float)v), f.AsSpan().ToArray());
        Assert.Throws<ArgumentException>(() => OnnxTensors.FromMatrix("bad", m, OnnxDataType.Float, [5, 5]));
    }

    [Fact]
    public void InconsistentDataLengthNamesTheTensor()
    {
        var t = new TensorProto { Name = "weights", DataType = (int)OnnxDataType.Float, RawData = ByteString.CopyFrom(new byte[10]) };
        t.Dims.Add(3);
        var ex = Assert.Throws<OnnxModelException>(() => OnnxTensor.Of(t).ToArray<float>());
        Assert.Contains("tensor 'weights' holds 10 bytes of data, but shape [3] of float needs 12", ex.Message);
    }

    private static bool TryConvert(TensorProto t)
    {
        try
        {
            OnnxTensor.Of(t).ToArray<float>();
            return true;
        }
        catch (OnnxModelException)
        {
            return false;
        }
    }

    private static int[] Bits16(byte[] bytes) => [.. bytes.Chunk(2).Select(c => (int)BitConverter.ToUInt16(c))];
}
