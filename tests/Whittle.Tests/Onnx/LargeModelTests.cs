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

    /// <summary>
    /// A model over 2 GiB written tensor by tensor (<see cref="StreamedModelWriter"/>: one tensor in memory at a time, as imports and
    /// compression runs write) loads in ONNX Runtime, which reads every tensor from the external data at its offset.
    /// </summary>
    [Fact]
    [Trait("Category", "Large")]
    public void ModelOver2GBWrittenTensorByTensorRunsInOnnxRuntime()
    {
        using var dir = new TempFolder();
        string path = dir.File("streamed.onnx");
        var graph = new GraphProto { Name = "streamed" };
        graph.Input.Add(TestModels.Tensor("rows", OnnxDataType.Int64, 2));
        graph.Output.Add(TestModels.Tensor("Y", OnnxDataType.Float, 2, Side));
        using (var writer = new StreamedModelWriter(path))
        {
            for (int t = 0; t < Tensors; t++)
            {
                var data = GC.AllocateUninitializedArray<byte>((int)TensorBytes);
                var longs = MemoryMarshal.Cast<byte, long>(data.AsSpan());
                for (int j = 0; j < longs.Length; j++) longs[j] = Pattern(t, j);
                graph.Initializer.Add(writer.Add(OnnxTensors.FromBytes($"W{t}", OnnxDataType.Float, [Side, Side], data)));
                graph.Node.Add(TestModels.Node("Gather", $"gather{t}", [$"W{t}", "rows"], [$"G{t}"]));
            }
            Assert.True(writer.ExternalBytes >= Tensors * TensorBytes);
            graph.Node.Add(TestModels.Node("Sum", "sum", [.. Enumerable.Range(0, Tensors).Select(t => $"G{t}")], ["Y"]));
            writer.Commit(TestModels.Model(graph));
        }
        Assert.Equal(["streamed.onnx", "streamed.onnx.data"], dir.Entries());
        Assert.True(new FileInfo(path + ".data").Length > int.MaxValue);

        long[] rows = [3, Side - 1]; // the second row is read from near the end of every tensor, past 2 GiB in the file for the last ones
        using var session = Whittle.Runtime.TappedSession.Create(OnnxModel.Load(path), []);
        var y = session.Run(new Dictionary<string, Whittle.Runtime.HostTensor> { ["rows"] = Whittle.Runtime.HostTensor.Int64(rows, 2) })["Y"].AsFloats();
        int finite = 0;
        for (int r = 0; r < rows.Length; r++)
            foreach (int c in new[] { 0, 1, 2, 3, Side / 2, Side / 2 + 1, Side - 2, Side - 1 })
            {
                long element = rows[r] * Side + c; // two floats per pattern long
                float expected = 0;
                for (int t = 0; t < Tensors; t++)
                {
                    long word = Pattern(t, element / 2);
                    int bits = (int)(element % 2 == 0 ? word : word >> 32);
                    expected += BitConverter.Int32BitsToSingle(bits);
                }
                float actual = y[r * Side + c];
                Assert.True(actual.Equals(expected) || Math.Abs(actual - expected) <= 1e-6f * Math.Abs(expected), $"Y[{r}, {c}] = {actual}, expected {expected}");
                if (float.IsFinite(expected)) finite++;
            }
        Assert.True(finite >= 4, $"only {finite} of the values checked are finite"); // the bit patterns make some NaN or ∞
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
