using System.IO.Compression;
using Whittle.Data;
using Whittle.Onnx;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Data;

public class IdxTests
{
    public static TheoryData<IdxElementType, bool> TypesAndCompression()
    {
        var data = new TheoryData<IdxElementType, bool>();
        foreach (var t in Enum.GetValues<IdxElementType>())
        {
            data.Add(t, false);
            data.Add(t, true);
        }
        return data;
    }

    private static double[] SampleValues(IdxElementType type) => type switch
    {
        IdxElementType.UInt8 => [0, 1, 127, 128, 200, 255],
        IdxElementType.Int8 => [-128, -1, 0, 1, 100, 127],
        IdxElementType.Int16 => [-32768, -300, 0, 1, 258, 32767],
        IdxElementType.Int32 => [int.MinValue, -70000, 0, 1, 65536, int.MaxValue],
        IdxElementType.Float32 => [-1.5, 0, 0.25, 3.140625, 1e30f, -2.5e-8f],
        _ => [-1.5, 0, 0.1, Math.PI, 1e300, -2.5e-300],
    };

    [Theory]
    [MemberData(nameof(TypesAndCompression))]
    public void ReadsEveryElementTypePlainAndGzipped(IdxElementType type, bool gzip)
    {
        using var dir = new TempFolder();
        string path = dir.File("a.idx");
        var values = SampleValues(type);
        Idx.Write(path, type, [2, 3], values, gzip);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(gzip, bytes[0] == 0x1f && bytes[1] == 0x8b);
        if (!gzip) Assert.Equal(new byte[] { 0, 0, (byte)type, 2, 0, 0, 0, 2, 0, 0, 0, 3 }, bytes[..12]);

        var array = Idx.Read(path);
        Assert.Equal(type, array.ElementType);
        Assert.Equal([2, 3], array.Shape);
        Assert.Equal(values, array.Values);
    }

    [Fact]
    public void BigEndianLayoutIsTheSpecs()
    {
        // 0x0C int, rank 1, dim 2: 0x01020304 and -2 big-endian, written by hand.
        using var dir = new TempFolder();
        string path = dir.File("hand");
        File.WriteAllBytes(path, [0, 0, 0x0C, 1, 0, 0, 0, 2, 1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFE]);
        Assert.Equal([0x01020304, -2.0], Idx.Read(path).Values);
    }

    [Fact]
    public void ImagesScaleToUnitIntervalAndNormalise()
    {
        using var dir = new TempFolder();
        string path = dir.File("images-idx3-ubyte.gz");
        Idx.Write(path, IdxElementType.UInt8, [2, 2, 2], [0, 51, 102, 255, 255, 0, 0, 0], gzip: true);
        var images = Idx.ReadImages(path);
        Assert.Equal(OnnxDataType.Float, images.ElementType);
        Assert.Equal([2, 2, 2], images.Shape);
        Assert.Equal([0f, 0.2f, 0.4f, 1f, 1f, 0f, 0f, 0f], images.AsFloats());
        var normalised = Idx.ReadImages(path, mean: 0.5f, std: 0.25f);
        Assert.Equal([-2f, -1.2f, -0.4f, 2f], normalised.AsFloats()[..4], new ToleranceComparer(1e-6f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Idx.ReadImages(path, mean: 0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Idx.ReadImages(path, mean: 0.5f, std: 0));
    }

    [Fact]
    public void LabelsAreInt64AndMustBeIntegers()
    {
        using var dir = new TempFolder();
        string path = dir.File("labels");
        Idx.Write(path, IdxElementType.UInt8, [4], [3, 0, 9, 255]);
        var labels = Idx.ReadLabels(path);
        Assert.Equal(OnnxDataType.Int64, labels.ElementType);
        Assert.Equal([3L, 0, 9, 255], labels.AsInt64());
        Idx.Write(path, IdxElementType.Float32, [1], [1.5]);
        var e = Assert.Throws<InputDataException>(() => Idx.ReadLabels(path));
        Assert.Contains("must be integers", e.Message);
    }

    [Fact]
    public void MalformedFilesAreClearErrors()
    {
        using var dir = new TempFolder();
        string path = dir.File("bad");
        void Expect(byte[] bytes, string text)
        {
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<InputDataException>(() => Idx.Read(path));
            Assert.Contains(text, e.Message);
            Assert.Contains(path, e.Message);
            Assert.Equal(path, e.FilePath);
        }
        Expect([0, 0], "truncated IDX header");
        Expect([1, 0, 8, 1, 0, 0, 0, 1, 5], "not an IDX file");
        Expect([0, 0, 0x0A, 1, 0, 0, 0, 1, 5], "unknown IDX element type 0x0a");
        Expect([0, 0, 8, 0], "rank 0");
        Expect([0, 0, 8, 2, 0, 0, 0, 1], "truncated IDX header");
        Expect([0, 0, 8, 1, 0, 0, 0, 3, 1, 2], "truncated IDX data");
        Expect([0, 0, 8, 1, 0, 0, 0, 1, 1, 2], "1 trailing bytes");
        Expect([0, 0, 8, 1, 0xFF, 0xFF, 0xFF, 0xFF], "negative");
        Expect([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "corrupt gzip");
    }

    [Fact]
    public void GzipIsDetectedByMagicNotByName()
    {
        using var dir = new TempFolder();
        string plain = dir.File("plain.gz"), packed = dir.File("packed-idx1-ubyte");
        Idx.Write(plain, IdxElementType.UInt8, [3], [1, 2, 3]);
        using (var o = File.Create(packed))
        using (var gz = new GZipStream(o, CompressionLevel.Fastest))
            gz.Write(File.ReadAllBytes(plain));
        Assert.Equal([1.0, 2, 3], Idx.Read(plain).Values);
        Assert.Equal([1.0, 2, 3], Idx.Read(packed).Values);
    }

    [Fact]
    public void ImagesBindToFlatOrChannelInputsByReshaping()
    {
        using var dir = new TempFolder();
        string path = dir.File("images");
        Idx.Write(path, IdxElementType.UInt8, [3, 2, 2], [.. Enumerable.Range(0, 12).Select(i => (double)i)]);
        var dataset = Idx.LoadImages(path, "x");
        var flat = dataset.Bind([new ModelInput("x", Whittle.Onnx.OnnxDataType.Float, [new(null, "N"), new(4, null)])], reshapeSamples: true);
        Assert.Equal([3, 4], flat.Samples["x"].Shape);
        var nchw = dataset.Bind([new ModelInput("x", Whittle.Onnx.OnnxDataType.Float, [new(null, "N"), new(1, null), new(2, null), new(2, null)])], reshapeSamples: true);
        Assert.Equal([3, 1, 2, 2], nchw.Samples["x"].Shape);
        Assert.Throws<InputDataException>(() => dataset.Bind([new ModelInput("x", Whittle.Onnx.OnnxDataType.Float, [new(null, "N"), new(4, null)])]));
    }

    /// <summary>
    /// Fashion-MNIST's test labels, where Debian's dataset-fashion-mnist package put them: 10 000 labels, each class
    /// 0–9 exactly 1 000 times. Without the package the test checks nothing and says so in its output.
    /// </summary>
    [Fact]
    public void FashionMnistTestLabelsWhenInstalled()
    {
        const string labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
        const string images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
        if (!File.Exists(labels))
        {
            Console.WriteLine($"FashionMnistTestLabelsWhenInstalled: {labels} absent (apt-get install dataset-fashion-mnist); nothing checked.");
            return;
        }
        var array = Idx.Read(labels);
        Assert.Equal(IdxElementType.UInt8, array.ElementType);
        Assert.Equal([10_000], array.Shape);
        var counts = Idx.ReadLabels(labels).AsInt64().GroupBy(v => v).OrderBy(g => g.Key).Select(g => (g.Key, g.Count()));
        Assert.Equal(Enumerable.Range(0, 10).Select(c => ((long)c, 1000)), counts);
        if (File.Exists(images))
        {
            var x = Idx.ReadImages(images);
            Assert.Equal([10_000, 28, 28], x.Shape);
            float min = float.MaxValue, max = float.MinValue;
            foreach (var v in x.AsFloats()) { min = Math.Min(min, v); max = Math.Max(max, v); }
            Assert.Equal(0f, min);
            Assert.Equal(1f, max);
        }
    }

    private sealed class ToleranceComparer(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float v) => 0;
    }
}
