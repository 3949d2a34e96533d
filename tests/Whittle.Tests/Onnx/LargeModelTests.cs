using System.Diagnostics;
using System.Runtime.InteropServices;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Xunit.Abstractions;

namespace Whittle.Tests.Onnx;

/// <summary>Runs alone, so that its memory measurements see no other test's allocations.</summary>
[CollectionDefinition(nameof(LargeModelCollection), DisableParallelization = true)]
public sealed class LargeModelCollection;

/// <summary>
/// A model over protobuf's 2 GB limit (9 × 256 MiB of weights), built in memory, saved with external
/// data and read back lazily: saving streams each tensor to the side file without a second copy, and
/// loading holds none of the weights.
/// </summary>
[Collection(nameof(LargeModelCollection))]
public class LargeModelTests(ITestOutputHelper output)
{
    private const int Tensors = 9, Side = 8192; // 9 × 8192² floats = 2.25 GiB
    private const long TensorBytes = (long)Side * Side * sizeof(float);

    [Fact]
    [Trait("Category", "Large")]
    public void ModelOver2GBIsWrittenWithExternalDataAndReadBackLazily()
    {
        using var dir = new TempFolder();
        string path = dir.File("large.onnx");
        var clock = Stopwatch.StartNew();
        SaveLargeModel(path);
        output.WriteLine($"built and saved {Tensors * TensorBytes / (double)(1L << 30):F2} GiB in {clock.Elapsed.TotalSeconds:F1} s");

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(heapBefore < 1L << 30, $"the weights were not released: {heapBefore} bytes on the heap");
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var model = OnnxModel.Load(path);
        long loadAllocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        output.WriteLine($"load allocated {loadAllocated} bytes; model file {new FileInfo(path).Length} bytes, data file {new FileInfo(path + ".data").Length} bytes");
        Assert.True(loadAllocated < 16 << 20, $"loading allocated {loadAllocated} bytes; external data must be read lazily");
        Assert.True(new FileInfo(path).Length < 1 << 20);
        Assert.True(new FileInfo(path + ".data").Length >= Tensors * TensorBytes);

        var slice = new byte[4096];
        foreach (var (t, offset) in new[] { (0, 0L), (4, TensorBytes / 2 + 8), (8, TensorBytes - slice.Length) })
        {
            var tensor = model.Graph.GetInitializer($"W{t}");
            Assert.Equal([(long)Side, Side], tensor.Shape);
            Assert.Equal(TensorBytes, tensor.ByteLength);
            tensor.ReadBytes(offset, slice);
            var longs = MemoryMarshal.Cast<byte, long>(slice);
            for (int j = 0; j < longs.Length; j++) Assert.Equal(Pattern(t, offset / 8 + j), longs[j]);
        }
        Assert.True(GC.GetTotalMemory(forceFullCollection: true) < heapBefore + (64 << 20));
    }

    /// <summary>Builds the weights (one copy in memory), saves with <see cref="OnnxExternalData.Auto"/> and checks that saving copied nothing.</summary>
    private void SaveLargeModel(string path)
    {
        var graph = new GraphProto { Name = "large" };
        var sum = TestModels.Node("Sum", "sum", [.. Enumerable.Range(0, Tensors).Select(t => $"W{t}")], ["Y"]);
        graph.Node.Add(sum);
        graph.Output.Add(TestModels.Tensor("Y", OnnxDataType.Float, Side, Side));
        for (int t = 0; t < Tensors; t++)
        {
            var data = GC.AllocateUninitializedArray<byte>((int)TensorBytes);
            var longs = MemoryMarshal.Cast<byte, long>(data.AsSpan());
            for (int j = 0; j < longs.Length; j++) longs[j] = Pattern(t, j);
            graph.Initializer.Add(OnnxTensors.FromBytes($"W{t}", OnnxDataType.Float, [Side, Side], data));
        }
        var model = OnnxModel.FromProto(TestModels.Model(graph));

        Assert.Contains("exceed protobuf's 2 GB limit", Assert.Throws<OnnxModelException>(
            () => model.Save(path, new OnnxSaveOptions { ExternalData = OnnxExternalData.Never })).Message);
        Assert.Empty(Directory.GetFileSystemEntries(Path.GetDirectoryName(path)!));

        using var process = Process.GetCurrentProcess();
        long workingSet = process.WorkingSet64;
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        model.Save(path);
        long saveAllocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        process.Refresh();
        output.WriteLine($"save allocated {saveAllocated} bytes; working set {workingSet >> 20} → {process.WorkingSet64 >> 20} MiB");
        Assert.True(saveAllocated < 64 << 20, $"saving allocated {saveAllocated} bytes; tensors must be streamed, not copied");
        Assert.True(process.WorkingSet64 < workingSet + (512L << 20), $"working set grew from {workingSet} to {process.WorkingSet64} bytes while saving");
    }

    private static long Pattern(int tensor, long index) => (index * unchecked((long)0x9E3779B97F4A7C15)) ^ tensor;
}
