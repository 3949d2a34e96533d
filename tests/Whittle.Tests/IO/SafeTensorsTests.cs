using System.Buffers.Binary;
using System.Text;
using Whittle.IO;

namespace Whittle.Tests.IO;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whittle-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>A file with header <paramref name="json"/> (padded to 8 bytes) and <paramref name="dataBytes"/> data bytes.</summary>
    private string Raw(string name, string json, int dataBytes, ulong? statedLength = null)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, statedLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(PathOf(name), bytes);
        return PathOf(name);
    }

    [Fact]
    public void RoundTrip_AllFloatStorageTypes_AndMetadata()
    {
        float[] values = [1f, -2.5f, 3.140625f, 0f, 1e-3f, 65504f];
        string path = PathOf("m.safetensors");
        SafeTensorsWriter.Write(path,
        [
            SafeTensorData.FromFloat32("a.f32", values, [2, 3]),
            SafeTensorData.FromFloat32("b.f16", values, [6], SafeTensorsDType.F16),
            SafeTensorData.FromFloat32("c.bf16", values, [3, 2], SafeTensorsDType.BF16),
            new SafeTensorData("d.i64", SafeTensorsDType.I64, [2], new byte[16]),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        Assert.Equal(0, (new FileInfo(path).Length - 8 - (6 * 4 + 6 * 2 + 6 * 2 + 16)) % 8);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(["a.f32", "b.f16", "c.bf16", "d.i64"], f.Tensors.Select(t => t.Name));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal([2L, 3], f["a.f32"].Shape);
        Assert.Equal(values, f.ReadFloat32("a.f32"));
        Assert.Equal(values.Select(v => (float)(Half)v), f.ReadFloat32("b.f16"));
        // bfloat16 keeps 8 significant bits: 3.140625 = 0x4049 exactly; 1e-3 and 65504 round as PyTorch's .to(torch.bfloat16) does.
        var bf = f.ReadFloat32("c.bf16");
        Assert.Equal([1f, -2.5f, 3.140625f, 0f], bf[..4]);
        Assert.Equal(0.00099945068359375f, bf[4]);
        Assert.Equal(65536f, bf[5]);
        var ex = Assert.Throws<SafeTensorsException>(() => f.ReadFloat32("d.i64"));
        Assert.Contains("'d.i64'", ex.Message);
    }

    [Fact]
    public void EmptyFileOfTensors_OpensWithNoTensors()
    {
        string path = PathOf("empty.safetensors");
        SafeTensorsWriter.Write(path, []);
        using var f = SafeTensorsFile.Open(path);
        Assert.Empty(f.Tensors);
    }

    public static TheoryData<string, string, int, string> BadHeaders => new()
    {
        { "json", "{\"a\": {\"dtype\": \"F32\", ", 0, "not well-formed JSON" },
        { "array", "[1, 2]", 0, "expected an object" },
        { "dtype", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, "unknown dtype 'F128'" },
        { "size", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20, "needs 24 bytes" },
        { "negative", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative integer" },
        { "past-end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12, "holds only 12 bytes" },
        { "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps" },
        { "hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "belong to no tensor" },
        { "trailing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover 4 bytes" },
        { "offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "ordered pair" },
        { "metadata", "{\"__metadata__\":{\"x\":1}}", 0, "not a string" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void BadFiles_ClearErrorNamingFileAndTensor(string name, string json, int dataBytes, string expected)
    {
        string path = Raw(name + ".safetensors", json, dataBytes);
        var ex = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(expected, ex.Message);
        Assert.StartsWith(path, ex.Message);
        Assert.Equal(path, ex.FilePath);
        if (json.Contains("\"w\"")) Assert.Equal("w", ex.TensorName);
    }

    [Fact]
    public void HeaderLength_TooLargeOrPastTheEnd_IsRejected()
    {
        var huge = Raw("huge.safetensors", "{}", 0, statedLength: 1UL << 40);
        Assert.Contains("over the", Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(huge)).Message);
        var past = Raw("past.safetensors", "{}", 0, statedLength: 100);
        Assert.Contains("runs past the end", Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(past)).Message);
        File.WriteAllBytes(PathOf("tiny.safetensors"), [1, 2, 3]);
        Assert.Contains("too short", Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(PathOf("tiny.safetensors"))).Message);
    }

    [Fact]
    public void Writer_RejectsDataOfTheWrongSize()
    {
        var ex = Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(PathOf("x.safetensors"), [new SafeTensorData("w", SafeTensorsDType.F32, [3], new byte[8])]));
        Assert.Contains("'w'", ex.Message);
        Assert.False(File.Exists(PathOf("x.safetensors")));
    }

    [Fact]
    public void Bfloat16_RoundsToNearestEven()
    {
        Assert.Equal(0x3F80, SafeTensorData.ToBFloat16(1f));
        Assert.Equal(0x3F80, SafeTensorData.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie, even stays
        Assert.Equal(0x3F82, SafeTensorData.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie, odd rounds up
        Assert.Equal(0x3F81, SafeTensorData.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808001)));
        Assert.True(float.IsNaN(BitConverter.Int32BitsToSingle(SafeTensorData.ToBFloat16(float.NaN) << 16)));
    }
}
