using System.Collections;
using System.Text;
using Whittle.IO;
using Whittle.LinearAlgebra;
using static Whittle.Tests.IO.NpyTestFiles;

namespace Whittle.Tests.IO;

public class NpyTests
{
    /// <summary>A (2, 3, 2) array with distinct, dtype-appropriate values (negative where signed).</summary>
    private static NpyArray Sample(NpyDType dtype, bool fortran)
    {
        var a = new NpyArray(dtype, [2, 3, 2], fortran);
        for (int i = 0; i < a.Length; i++)
        {
            switch (dtype)
            {
                case NpyDType.Float16: a.AsSpan<Half>()[i] = (Half)(i * 0.5 - 3); break;
                case NpyDType.Float32: a.AsSpan<float>()[i] = i * 0.37f - 2; break;
                case NpyDType.Float64: a.AsSpan<double>()[i] = i * 0.37 - 2e100 / (i + 1); break;
                case NpyDType.Int8: a.AsSpan<sbyte>()[i] = (sbyte)(i * 11 - 120); break;
                case NpyDType.Int16: a.AsSpan<short>()[i] = (short)(i * 2999 - 32000); break;
                case NpyDType.Int32: a.AsSpan<int>()[i] = i * 190_000_000 - 2_000_000_000; break;
                case NpyDType.Int64: a.AsSpan<long>()[i] = i * 800_000_000_000_000_000L - long.MaxValue; break;
                case NpyDType.UInt8: a.AsSpan<byte>()[i] = (byte)(i * 11 + 3); break;
                case NpyDType.UInt16: a.AsSpan<ushort>()[i] = (ushort)(i * 2999 + 7); break;
                case NpyDType.Bool: a.AsSpan<bool>()[i] = i % 3 == 0; break;
            }
        }
        return a;
    }

    public static TheoryData<NpyDType, bool> DTypesAndOrders()
    {
        var data = new TheoryData<NpyDType, bool>();
        foreach (var d in Enum.GetValues<NpyDType>())
            foreach (bool fortran in new[] { false, true })
                data.Add(d, fortran);
        return data;
    }

    [Theory]
    [MemberData(nameof(DTypesAndOrders))]
    public void EveryDTypeAndOrderRoundTrips(NpyDType dtype, bool fortran)
    {
        var a = Sample(dtype, fortran);
        var bytes = ToBytes(a);
        Assert.Equal(1, bytes[6]);
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        Assert.Equal(0, (10 + headerLength) % 64);
        Assert.Equal((byte)'\n', bytes[10 + headerLength - 1]);
        Assert.Equal(10 + headerLength + a.ByteLength, bytes.Length);

        var b = FromBytes(bytes);
        Assert.Equal(dtype, b.DType);
        Assert.Equal([2, 3, 2], b.Shape);
        Assert.Equal(fortran, b.FortranOrder);
        Assert.True(StructuralComparisons.StructuralEqualityComparer.Equals(a.Storage, b.Storage));
    }

    [Theory]
    [MemberData(nameof(DTypesAndOrders))]
    public void BigEndianFilesReadAsTheSameValues(NpyDType dtype, bool fortran)
    {
        var a = Sample(dtype, fortran);
        var bytes = ToBytes(a);
        int dataStart = 10 + BitConverter.ToUInt16(bytes, 8);
        string header = Encoding.Latin1.GetString(bytes, 10, dataStart - 10);
        if (a.ElementSize > 1)
        {
            // Same header with '>' for '<', and every element's bytes reversed.
            Encoding.Latin1.GetBytes(header.Replace("'<", "'>")).CopyTo(bytes, 10);
            for (int p = dataStart; p < bytes.Length; p += a.ElementSize) Array.Reverse(bytes, p, a.ElementSize);
        }
        var b = FromBytes(bytes);
        Assert.True(StructuralComparisons.StructuralEqualityComparer.Equals(a.Storage, b.Storage));
    }

    [Fact]
    public void FortranOrderGivesTheSameMatrixAsCOrder()
    {
        var expected = Matrix<double>.Create(3, 4, (i, j) => 10 * i + j + 0.5);
        var c = NpyArray.FromMatrix(expected);
        var f = NpyArray.Wrap(expected.Transpose().ToMatrix().AsSpan().ToArray(), [3, 4], fortranOrder: true);
        foreach (var a in new[] { c, f, FromBytes(ToBytes(f)) })
        {
            var m = a.ToMatrix<double>();
            Assert.Equal(expected.AsSpan().ToArray(), m.AsSpan().ToArray());
            Assert.Equal(expected.AsSpan().ToArray().Select(v => (float)v), a.ToMatrix<float>().AsSpan().ToArray());
        }
        Assert.Equal(Enumerable.Range(0, 12).Select(k => (long)(k / 4 * 10 + k % 4)),
            NpyArray.Wrap(f.AsSpan<double>().ToArray().Select(v => (long)v).ToArray(), [3, 4], true).ToInt64Array());
    }

    [Fact]
    public void NumpyFloat32COrderFixture()
    {
        var a = Npy.Read(Fixture("f32_c.npy"));
        Assert.Equal(NpyDType.Float32, a.DType);
        Assert.False(a.FortranOrder);
        var m = a.ToMatrix<float>(requireFinite: true);
        Assert.Equal((3, 4), (m.Rows, m.Cols));
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(0.5f * (4 * i + j) - 1, m[i, j]);
        Assert.Equal(0.5 * 11 - 1, a.ToMatrix<double>()[2, 3]);
    }

    [Fact]
    public void NumpyFloat64FortranFixture()
    {
        var a = Npy.Read(Fixture("f64_fortran.npy"));
        Assert.True(a.FortranOrder);
        Assert.Equal([2, 3], a.Shape);
        var m = a.ToMatrix<double>();
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                Assert.Equal(1.25 * (3 * i + j) + 0.1, m[i, j]);
    }

    [Fact]
    public void NumpyInt16ThreeDimensionalFortranFixtureFlattensInCOrder()
    {
        var a = Npy.Read(Fixture("i16_3d_fortran.npy"));
        Assert.True(a.FortranOrder);
        Assert.Equal([2, 3, 4], a.Shape);
        Assert.Equal(Enumerable.Range(0, 24).Select(k => (long)k), a.ToInt64Array());
        Assert.Equal(12, a.AsSpan<short>()[1]); // storage is first-index-fastest: [1, 0, 0]
    }

    [Fact]
    public void NumpyIntegerAndSmallTypeFixtures()
    {
        Assert.Equal([-3, 0, 7, 1L << 40, -(1L << 62)], Npy.Read(Fixture("i64_1d.npy")).ToInt64Array());
        Assert.Equal([-3.0, 0, 7, 1L << 40, -(1L << 62)], Npy.Read(Fixture("i64_1d.npy")).ToVector<double>());
        Assert.Equal([1, -2, 70000, int.MinValue], Npy.Read(Fixture("i4_big_endian.npy")).ToInt64Array());
        Assert.Equal([1f, -2.5f, 0.125f, 65504f], Npy.Read(Fixture("f16.npy")).ToVector<float>());
        Assert.Equal([1L, 0, 1], Npy.Read(Fixture("bool.npy")).ToInt64Array());
        Assert.Equal([true, false, true], Npy.Read(Fixture("bool.npy")).AsSpan<bool>().ToArray());
        Assert.Equal([0L, 1, 255], Npy.Read(Fixture("u1.npy")).ToInt64Array());
        Assert.Equal([0L, 1, 65535], Npy.Read(Fixture("u2.npy")).ToInt64Array());
        Assert.Equal([-128L, 0, 127], Npy.Read(Fixture("i1.npy")).ToInt64Array());
    }

    [Fact]
    public void NumpyBigEndianFloat64Fixture()
    {
        var a = Npy.Read(Fixture("f64_big_endian.npy"));
        Assert.Equal(NpyDType.Float64, a.DType);
        var m = a.ToMatrix<double>();
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                Assert.Equal(3 * i + j - 2.5, m[i, j]);
        // Written back, it is little-endian.
        Assert.Contains("'descr': '<f8'", Encoding.Latin1.GetString(ToBytes(a)));
    }

    [Fact]
    public void NumpyScalarAndEmptyFixtures()
    {
        var s = Npy.Read(Fixture("scalar_0d.npy"));
        Assert.Equal(0, s.Rank);
        Assert.Equal(1, s.Length);
        Assert.Equal([3.5f], s.ToVector<float>());
        var m = s.ToMatrix<double>();
        Assert.Equal((1, 1, 3.5), (m.Rows, m.Cols, m[0, 0]));

        var e = Npy.Read(Fixture("empty_0x3.npy"));
        Assert.Equal([0, 3], e.Shape);
        Assert.Equal(0, e.Length);
        var em = e.ToMatrix<float>(requireFinite: true);
        Assert.Equal((0, 3), (em.Rows, em.Cols));
        Assert.Equal(File.ReadAllBytes(Fixture("empty_0x3.npy")), ToBytes(e));
        Assert.Equal(File.ReadAllBytes(Fixture("scalar_0d.npy")), ToBytes(s));
    }

    [Theory]
    [InlineData("f32_v2.npy", 2)]
    [InlineData("f32_v3.npy", 3)]
    public void NumpyFormatVersions2And3(string name, int version)
    {
        Assert.Equal(version, File.ReadAllBytes(Fixture(name))[6]);
        Assert.Equal([0f, 1, 2, 3, 4], Npy.Read(Fixture(name)).ToVector<float>());
    }

    [Fact]
    public void WriterOutputIsByteIdenticalToNumpySave()
    {
        var f32 = NpyArray.FromMatrix(Matrix<float>.Create(3, 4, (i, j) => 0.5f * (4 * i + j) - 1));
        Assert.Equal(File.ReadAllBytes(Fixture("f32_c.npy")), ToBytes(f32));
        Assert.Equal(File.ReadAllBytes(Fixture("i64_1d.npy")), ToBytes(NpyArray.FromInt64([-3, 0, 7, 1L << 40, -(1L << 62)], [5])));
        var fortran = Npy.Read(Fixture("f64_fortran.npy"));
        Assert.Equal(File.ReadAllBytes(Fixture("f64_fortran.npy")), ToBytes(fortran));
        Assert.Equal(File.ReadAllBytes(Fixture("i16_3d_fortran.npy")), ToBytes(Npy.Read(Fixture("i16_3d_fortran.npy"))));
    }

    [Fact]
    public void LongHeadersSwitchToVersion2()
    {
        var shape = Enumerable.Repeat(1, 30_000).ToArray();
        var a = NpyArray.Wrap(new[] { 2.5f }, shape);
        var bytes = ToBytes(a);
        Assert.Equal(2, bytes[6]);
        Assert.Equal(0L, (12 + BitConverter.ToUInt32(bytes, 8)) % 64);
        var b = FromBytes(bytes);
        Assert.Equal(30_000, b.Rank);
        Assert.Equal(2.5f, b.AsSpan<float>()[0]);
    }

    [Fact]
    public void DataLargerThanOneReadChunkRoundTrips()
    {
        // 2.5 M doubles = 20 MB, more than the 16 MB read/write chunk.
        var values = new double[2_500_000];
        for (int i = 0; i < values.Length; i++) values[i] = i * 0.25 - 1e5;
        var bytes = ToBytes(NpyArray.Wrap(values, [500_000, 5]));
        var back = Npy.Read(new NonSeekableStream(new MemoryStream(bytes)), "big.npy");
        Assert.Equal(values, back.AsSpan<double>().ToArray());
        var cut = Assert.Throws<InvalidDataException>(() => Npy.Read(new NonSeekableStream(new MemoryStream(bytes[..^1])), "big.npy"));
        Assert.Contains("expected 20000000 bytes, got 19999999", cut.Message);
    }

    [Fact]
    public void VectorsBecomeRowsOrColumns()
    {
        var v = NpyArray.FromVector<double>([1, 2, 3]);
        var row = v.ToMatrix<double>();
        var col = v.ToMatrix<double>(vectorAsColumn: true);
        Assert.Equal((1, 3, 3.0), (row.Rows, row.Cols, row[0, 2]));
        Assert.Equal((3, 1, 3.0), (col.Rows, col.Cols, col[2, 0]));
    }

    [Fact]
    public void MatrixViewsAreCopiedInLogicalOrder()
    {
        var m = Matrix<float>.Create(4, 5, (i, j) => i * 5 + j);
        var a = NpyArray.FromMatrix(m.Transpose().Slice(1, 1, 3, 2));
        Assert.Equal([3, 2], a.Shape);
        Assert.Equal([6f, 11, 7, 12, 8, 13], a.AsSpan<float>().ToArray());
    }

    // ---- Errors ---------------------------------------------------------------------------------

    private static InvalidDataException ReadFails(byte[] bytes, string name = "crafted.npy")
    {
        var seekable = Assert.Throws<InvalidDataException>(() => FromBytes(bytes, name));
        var streaming = Assert.Throws<InvalidDataException>(() => Npy.Read(new NonSeekableStream(new MemoryStream(bytes)), name));
        Assert.Equal(seekable.Message, streaming.Message);
        Assert.StartsWith(name + ": ", seekable.Message);
        return seekable;
    }

    [Fact]
    public void TruncatedDataSaysExpectedAndActualBytes()
    {
        var bytes = File.ReadAllBytes(Fixture("f32_c.npy"));
        var e = ReadFails(bytes[..^5]);
        Assert.Contains("expected 48 bytes, got 43", e.Message);

        using var folder = new TempFolder();
        string path = folder.File("cut.npy");
        File.WriteAllBytes(path, bytes[..^5]);
        var fromFile = Assert.Throws<InvalidDataException>(() => Npy.Read(path));
        Assert.Contains(path, fromFile.Message);
        Assert.Contains("expected 48 bytes, got 43", fromFile.Message);
    }

    [Fact]
    public void TruncatedHeader()
    {
        var bytes = File.ReadAllBytes(Fixture("f32_c.npy"));
        Assert.Contains("truncated .npy header", ReadFails(bytes[..40]).Message);
        Assert.Contains("truncated .npy header", ReadFails(bytes[..9]).Message);
        Assert.Contains("truncated .npy header", ReadFails(bytes[..4]).Message);
    }

    [Fact]
    public void WrongMagic()
    {
        var bytes = File.ReadAllBytes(Fixture("f32_c.npy"));
        bytes[5] = (byte)'Z';
        var e = ReadFails(bytes);
        Assert.Contains("not a .npy file", e.Message);
        Assert.Contains("\\x93NUMPY", e.Message);
        Assert.Contains("an empty file", ReadFails([]).Message);
        Assert.Contains("not a .npy file", ReadFails(Encoding.ASCII.GetBytes("PK\x03\x04 zip, not npy")).Message);
    }

    [Fact]
    public void UnsupportedVersion()
    {
        var bytes = File.ReadAllBytes(Fixture("f32_c.npy"));
        bytes[6] = 4;
        Assert.Contains("unsupported .npy format version 4.0; expected 1.0, 2.0 or 3.0", ReadFails(bytes).Message);
    }

    [Theory]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", "expected ',' or '}'")]
    [InlineData("{'descr': '<f4', 'fortran_order': False}", "no 'shape' key")]
    [InlineData("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", "'fortran_order' is not True or False")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", "'shape' is not a tuple of integers")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", "non-negative integer dimension")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", "unexpected key 'extra'")]
    [InlineData("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "appears twice")]
    [InlineData("not a dict", "expected '{'")]
    public void MalformedHeaders(string dict, string problem)
    {
        var e = ReadFails(Craft(dict, new byte[8]));
        Assert.Contains("malformed .npy header", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Theory]
    [InlineData("'<c8'", "'<c8'")]
    [InlineData("'<u4'", "'<u4'")]
    [InlineData("'|f4'", "'|f4'")]
    [InlineData("[('a', '<f4'), ('b', '<i4')]", "[('a', '<f4'), ('b', '<i4')]")]
    public void UnsupportedDTypesAreNamed(string descr, string named)
    {
        var e = ReadFails(Craft("{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }", new byte[8]));
        Assert.Contains($"unsupported dtype {named}", e.Message);
        Assert.Contains("supported: '<f2', '<f4', '<f8'", e.Message);
    }

    [Fact]
    public void OldStyleHeadersParse()
    {
        // Python 2 era: long literals and 16-byte alignment; double quotes are accepted too.
        var a = FromBytes(Craft("{\"descr\": \"<i2\", \"fortran_order\": False, \"shape\": (2L, 1L)}", [1, 0, 2, 0]));
        Assert.Equal([1L, 2], a.ToInt64Array());
    }

    [Fact]
    public void TooManyElements()
    {
        var e = ReadFails(Craft("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 1000), }", []));
        Assert.Contains("more than", e.Message);
        Assert.Contains("(100000, 100000, 1000)", e.Message);
    }

    [Fact]
    public void RequireFiniteNamesTheFirstBadIndex()
    {
        string path = Fixture("f32_nan.npy");
        var a = Npy.Read(path);
        a.ToMatrix<float>(); // allowed unless asked
        var e = Assert.Throws<InvalidDataException>(() => a.ToMatrix<float>(requireFinite: true));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("element [1, 2] is NaN", e.Message);

        var v = NpyArray.FromVector<double>([1, 1e300, double.NegativeInfinity]);
        Assert.Contains("element [1] is +Infinity after conversion to Single", Assert.Throws<InvalidDataException>(() => v.ToVector<float>(requireFinite: true)).Message);
        Assert.Contains("element [2] is -Infinity", Assert.Throws<InvalidDataException>(() => v.ToVector<double>(requireFinite: true)).Message);
        Assert.Contains("element [2] is", Assert.Throws<InvalidDataException>(() => v.ToMatrix<double>(requireFinite: true)).Message);
        var m = NpyArray.FromMatrix(Matrix<double>.Create(2, 3, (i, j) => i == 1 && j >= 1 ? double.NaN : 0));
        Assert.Contains("element [1, 1] is NaN", Assert.Throws<InvalidDataException>(() => m.ToMatrix<float>(requireFinite: true)).Message);
    }

    [Fact]
    public void ConversionsCheckKindAndRank()
    {
        string path = Fixture("i16_3d_fortran.npy");
        var three = Npy.Read(path);
        var e = Assert.Throws<InvalidDataException>(() => three.ToMatrix<float>());
        Assert.Contains(path, e.Message);
        Assert.Contains("(2, 3, 4)", e.Message);
        Assert.Throws<InvalidDataException>(() => Npy.Read(Fixture("f32_c.npy")).ToVector<float>());
        Assert.Contains("an integer or boolean array", Assert.Throws<InvalidDataException>(() => Npy.Read(Fixture("f32_c.npy")).ToInt64Array()).Message);
        Assert.Throws<InvalidOperationException>(() => Npy.Read(Fixture("f32_c.npy")).AsSpan<double>());
        Assert.Throws<InvalidOperationException>(() => Npy.Read(Fixture("u1.npy")).AsSpan<sbyte>());
        Assert.Throws<ArgumentException>(() => NpyArray.FromVector<uint>([1u]));
        Assert.Throws<ArgumentException>(() => NpyArray.FromInt64([1, 2, 3], [2, 2]));
    }

    [Fact]
    public void MissingFile()
    {
        var e = Assert.Throws<FileNotFoundException>(() => Npy.Read(Fixture("no-such.npy")));
        Assert.Contains("no-such.npy", e.Message);
    }

    [Fact]
    public void FileWritesAreAtomicAndLeaveNoTemporaryFile()
    {
        using var folder = new TempFolder();
        string path = folder.File("a.npy");
        File.WriteAllText(path, "old");
        var a = NpyArray.FromVector<float>([1, 2, 3]);
        Npy.Write(path, a);
        Assert.Equal(["a.npy"], folder.Names());
        Assert.Equal([1f, 2, 3], Npy.Read(path).ToVector<float>());
    }

    // ---- Files numpy checks (scripts/make_npy_fixtures.py --check) ------------------------------

    [Fact]
    public void CommittedWhittleFilesMatchTheWriter()
    {
        foreach (var (name, array) in WhittleWrittenNpy())
            Assert.Equal(File.ReadAllBytes(Fixture(Path.Combine("whittle", name))), ToBytes(array));
        foreach (string name in new[] { "arrays.npz", "arrays_compressed.npz" })
        {
            var read = Npz.Read(Fixture(Path.Combine("whittle", name)));
            var expected = WhittleWrittenNpz();
            Assert.Equal(expected.Keys.Order(), read.Keys.Order());
            foreach (var (key, value) in expected) Assert.Equal(ToBytes(value), ToBytes(read[key]));
        }
    }

    /// <summary>Writes the files numpy checks into $WHITTLE_NPY_EXPORT (does nothing when unset).</summary>
    [Fact]
    public void WriterExport()
    {
        string? folder = Environment.GetEnvironmentVariable("WHITTLE_NPY_EXPORT");
        if (string.IsNullOrEmpty(folder)) return;
        Directory.CreateDirectory(folder);
        foreach (var (name, array) in WhittleWrittenNpy()) Npy.Write(Path.Combine(folder, name), array);
        Npz.Write(Path.Combine(folder, "arrays.npz"), WhittleWrittenNpz());
        Npz.Write(Path.Combine(folder, "arrays_compressed.npz"), WhittleWrittenNpz(), compress: true);
    }
}
