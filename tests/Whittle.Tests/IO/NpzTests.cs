using System.IO.Compression;
using Whittle.IO;
using Whittle.LinearAlgebra;
using static Whittle.Tests.IO.NpyTestFiles;

namespace Whittle.Tests.IO;

public class NpzTests
{
    [Theory]
    [InlineData("two.npz")]
    [InlineData("two_compressed.npz")]
    public void NumpySavezFixtures(string name)
    {
        string path = Fixture(name);
        Assert.Equal(["w", "idx"], Npz.ListNames(path));
        var all = Npz.Read(path);
        var w = all["w"].ToMatrix<float>(requireFinite: true);
        Assert.Equal((2, 3), (w.Rows, w.Cols));
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                Assert.Equal(3 * i + j + 0.25f, w[i, j]);
        Assert.Equal([5L, -1, 9], all["idx"].ToInt64Array());
        Assert.Equal([5L, -1, 9], Npz.Read(path, "idx").ToInt64Array());
        Assert.Equal($"{path} (array 'w')", all["w"].SourceName);
    }

    [Fact]
    public void CompressedFixtureReallyIsDeflated()
    {
        using var zip = ZipFile.OpenRead(Fixture("two_compressed.npz"));
        Assert.All(zip.Entries, e => Assert.True(e.CompressedLength < e.Length));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RoundTripsStoredAndDeflated(bool compress)
    {
        using var folder = new TempFolder();
        string path = folder.File("model.npz");
        var arrays = new Dictionary<string, NpyArray>
        {
            ["layer.0/weight"] = NpyArray.FromMatrix(Matrix<double>.Create(40, 30, (i, j) => i - 0.5 * j)),
            ["mask"] = NpyArray.FromVector<bool>([true, false, false, true]),
            ["half"] = NpyArray.FromVector<Half>([(Half)0.5, (Half)(-8)]),
            ["order"] = NpyArray.Wrap(new short[] { 1, 2, 3, 4, 5, 6 }, [3, 2], fortranOrder: true),
            ["scalar"] = NpyArray.Wrap(new[] { 2.0f }, []),
            ["empty"] = new NpyArray(NpyDType.Float32, [0]),
        };
        Npz.Write(path, arrays, compress);
        Assert.Equal(["model.npz"], folder.Names());

        using (var zip = ZipFile.OpenRead(path))
        {
            var weight = zip.GetEntry("layer.0/weight.npy")!;
            Assert.Equal(compress, weight.CompressedLength < weight.Length);
        }
        using var archive = NpzArchive.Open(path);
        Assert.Equal(arrays.Keys, archive.Names);
        Assert.True(archive.Contains("mask"));
        Assert.False(archive.Contains("mask.npy"));
        foreach (var (name, expected) in arrays)
        {
            var actual = archive.Read(name);
            Assert.Equal(expected.DType, actual.DType);
            Assert.Equal(expected.Shape, actual.Shape);
            Assert.Equal(expected.FortranOrder, actual.FortranOrder);
            Assert.Equal(ToBytes(expected), ToBytes(actual));
        }
        Assert.Equal(0.5 * -29 + 39, archive.Read("layer.0/weight").ToMatrix<double>()[39, 29]);
    }

    [Fact]
    public void MissingArrayNamesArchiveAndContents()
    {
        string path = Fixture("two.npz");
        var e = Assert.Throws<InvalidDataException>(() => Npz.Read(path, "bias"));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("no array 'bias'", e.Message);
        Assert.Contains("'w', 'idx'", e.Message);
    }

    [Fact]
    public void NotAZipArchive()
    {
        string path = Fixture("f32_c.npy");
        var e = Assert.Throws<InvalidDataException>(() => Npz.Read(path));
        Assert.StartsWith(path + ": not a valid .npz", e.Message);
        Assert.Throws<FileNotFoundException>(() => Npz.Read(Fixture("no-such.npz")));
    }

    [Theory]
    [InlineData(CompressionLevel.NoCompression)]
    [InlineData(CompressionLevel.Optimal)]
    public void BadEntriesNameTheArchiveAndArray(CompressionLevel level)
    {
        using var folder = new TempFolder();
        string path = folder.File("bad.npz");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using (var s = zip.CreateEntry("cut.npy", level).Open())
                s.Write(File.ReadAllBytes(Fixture("f32_c.npy"))[..^8]);
            using (var s = zip.CreateEntry("complex.npy", level).Open())
                s.Write(Craft("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", new byte[8]));
        }
        var cut = Assert.Throws<InvalidDataException>(() => Npz.Read(path, "cut"));
        Assert.Equal($"{path} (array 'cut'): truncated array data: expected 48 bytes, got 40.", cut.Message);
        var complex = Assert.Throws<InvalidDataException>(() => Npz.Read(path, "complex"));
        Assert.StartsWith($"{path} (array 'complex'): unsupported dtype '<c8'", complex.Message);
    }

    private static IEnumerable<KeyValuePair<string, NpyArray>> FailingMidway()
    {
        yield return new("first", NpyArray.FromMatrix(Matrix<float>.Create(100, 100, (i, j) => i * j)));
        throw new IOException("source failed");
    }

    [Fact]
    public void FailedWritesLeaveTheTargetAsItWasAndNoTemporaryFile()
    {
        using var folder = new TempFolder();
        string path = folder.File("weights.npz");

        Assert.Throws<IOException>(() => Npz.Write(path, FailingMidway()));
        Assert.Empty(folder.Names());

        var good = new Dictionary<string, NpyArray> { ["a"] = NpyArray.FromVector<long>([1, 2]) };
        Npz.Write(path, good);
        byte[] before = File.ReadAllBytes(path);
        Assert.Throws<IOException>(() => Npz.Write(path, FailingMidway(), compress: true));
        Assert.Throws<ArgumentException>(() => Npz.Write(path, [new("a", good["a"]), new("a", good["a"])]));
        Assert.Throws<ArgumentException>(() => Npz.Write(path, [new("", good["a"])]));
        Assert.Equal(["weights.npz"], folder.Names());
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([1L, 2], Npz.Read(path, "a").ToInt64Array());
    }
}
