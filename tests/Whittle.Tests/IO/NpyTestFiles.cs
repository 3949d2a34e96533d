using System.Text;
using Whittle.IO;
using Whittle.LinearAlgebra;

namespace Whittle.Tests.IO;

/// <summary>Fixture paths, temporary folders, crafted .npy bytes and the Whittle-written files that
/// scripts/make_npy_fixtures.py --check reads with numpy.</summary>
internal static class NpyTestFiles
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "IO", "Fixtures", name);

    /// <summary>A .npy file with the given header dict text (padded NumPy's way) and data bytes.</summary>
    public static byte[] Craft(string dict, ReadOnlySpan<byte> data, byte major = 1)
    {
        int preamble = major == 1 ? 10 : 12;
        int total = (preamble + dict.Length + 1 + 63) / 64 * 64;
        var header = Encoding.Latin1.GetBytes(dict + new string(' ', total - preamble - dict.Length - 1) + "\n");
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, 0]);
        if (major == 1) ms.Write(BitConverter.GetBytes((ushort)header.Length));
        else ms.Write(BitConverter.GetBytes((uint)header.Length));
        ms.Write(header);
        ms.Write(data);
        return ms.ToArray();
    }

    public static byte[] ToBytes(NpyArray array)
    {
        var ms = new MemoryStream();
        Npy.Write(ms, array);
        return ms.ToArray();
    }

    public static NpyArray FromBytes(byte[] bytes, string name = "test.npy") => Npy.Read(new MemoryStream(bytes), name);

    /// <summary>The .npy files the Whittle writer makes for the numpy check (values documented in the script).</summary>
    public static IEnumerable<(string Name, NpyArray Array)> WhittleWrittenNpy()
    {
        yield return ("f32.npy", NpyArray.FromMatrix(Matrix<float>.Create(3, 4, (i, j) => 4 * i + j - 5.5f)));
        yield return ("f64.npy", NpyArray.FromMatrix(Matrix<double>.Create(2, 3, (i, j) => (3 * i + j) * 0.1)));
        yield return ("i64.npy", NpyArray.FromInt64([-1, 0, 1L << 40, 5, 6, 7], [2, 3]));
        yield return ("f16.npy", NpyArray.FromVector<Half>([(Half)1, (Half)(-2.5), (Half)0.125]));
        yield return ("bool.npy", NpyArray.FromVector<bool>([true, false, true]));
        yield return ("scalar.npy", NpyArray.Wrap(new[] { 7 }, []));
        yield return ("fortran.npy", NpyArray.Wrap(new[] { 0, 1, 2, 3, 4, 5 }, [2, 3], fortranOrder: true));
    }

    public static Dictionary<string, NpyArray> WhittleWrittenNpz() => new()
    {
        ["w"] = NpyArray.FromMatrix(Matrix<float>.Create(3, 4, (i, j) => 4 * i + j - 5.5f)),
        ["idx"] = NpyArray.FromInt64([3, 1, 4, 1, 5], [5]),
    };
}

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "whittle-npy-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string[] Names() => Directory.GetFileSystemEntries(Path).Select(System.IO.Path.GetFileName).Order().ToArray()!;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A read-only stream that cannot seek, like a network or decompression stream.</summary>
internal sealed class NonSeekableStream(Stream inner) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 7 + count / 2)); // short reads, as real streams give
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
