using Whittle.Import;
using Whittle.Onnx;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Import;

/// <summary>Imports that stream their weights to disk write the same model as the in-memory import, and leave nothing behind when stopped.</summary>
public class StreamedImportTests
{
    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("gpt2")]
    [InlineData("bert")]
    public void Hf_StreamedImportWritesTheSameTensorsAsTheInMemoryImport(string fixture)
    {
        using var dir = new TempFolder();
        var inMemory = HfImporter.Import(HfImportTests.Fixture(fixture)).Model;
        string path = dir.File(fixture + ".onnx");
        OnnxModel written;
        using (var writer = new StreamedModelWriter(path))
        {
            var streamed = HfImporter.Import(HfImportTests.Fixture(fixture), writer);
            Assert.True(writer.ExternalBytes > 0);
            Assert.False(File.Exists(path)); // nothing at the target before the commit
            written = writer.Commit(streamed.Model.Proto);
        }
        Assert.True(File.Exists(path + ".data"));
        Assert.Equal([fixture + ".onnx", fixture + ".onnx.data"], dir.Entries());
        AssertSameTensors(inMemory, written);
        Assert.Contains(written.Proto.Graph.Initializer, t => ExternalDataInfo.IsExternal(t));
    }

    [Fact]
    public void Llama2c_StreamedImportRunsLikeTheInMemoryImport()
    {
        using var dir = new TempFolder();
        string bin = SharedModels.Stories260K("stories260K.bin");
        var inMemory = Llama2cImporter.Import(bin);
        using var writer = new StreamedModelWriter(dir.File("stories.onnx"));
        var written = writer.Commit(Llama2cImporter.Import(bin, weights: writer).Proto);
        AssertSameTensors(inMemory, written);
        long[] ids = [1, 403, 407, 261, 378, 282, 259, 429];
        var expected = LanguageModelRunner.Run(inMemory, [("input_ids", ids, [1, ids.Length])])["logits"].Values;
        var actual = LanguageModelRunner.Run(written, [("input_ids", ids, [1, ids.Length])])["logits"].Values;
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void InlineCommit_WritesOneFileWithEveryTensorInside()
    {
        using var dir = new TempFolder();
        string path = dir.File("gpt2.onnx");
        using var writer = new StreamedModelWriter(path);
        var written = writer.Commit(HfImporter.Import(HfImportTests.Fixture("gpt2"), writer).Model.Proto, inlineAll: true);
        Assert.Equal(["gpt2.onnx"], dir.Entries());
        Assert.DoesNotContain(written.Proto.Graph.Initializer, t => ExternalDataInfo.IsExternal(t));
        AssertSameTensors(HfImporter.Import(HfImportTests.Fixture("gpt2")).Model, written);
    }

    [Fact]
    public void AnImportThatFailsOrIsDisposedLeavesNothing()
    {
        using var dir = new TempFolder();
        using (var writer = new StreamedModelWriter(dir.File("gpt2.onnx")))
        {
            HfImporter.Import(HfImportTests.Fixture("gpt2"), writer);
            Assert.True(writer.ExternalBytes > 0);
            Assert.Single(Directory.GetDirectories(dir.Path)); // the staging folder
        }
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));

        // A checkpoint that fails half-way (a tensor missing after others were written) leaves nothing either.
        string broken = dir.File("broken");
        Directory.CreateDirectory(broken);
        foreach (var f in Directory.GetFiles(HfImportTests.Fixture("llama"))) File.Copy(f, Path.Combine(broken, Path.GetFileName(f)));
        var config = File.ReadAllText(Path.Combine(broken, "config.json"));
        File.WriteAllText(Path.Combine(broken, "config.json"), config.Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"));
        string target = dir.File("broken.onnx");
        Assert.Throws<CheckpointException>(() =>
        {
            using var writer = new StreamedModelWriter(target);
            HfImporter.Import(broken, writer);
        });
        Assert.Equal(["broken"], dir.Entries());
    }

    [Fact]
    public void ACancelledImportStopsAtTheNextTensorAndLeavesNothing()
    {
        using var dir = new TempFolder();
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            using var writer = new StreamedModelWriter(dir.File("gpt2.onnx"), cancellationToken: cancel.Token);
            HfImporter.Import(HfImportTests.Fixture("gpt2"), writer);
        });
        Assert.Empty(dir.Entries());
    }

    /// <summary>Same initializers, with the same bytes, in the same order.</summary>
    private static void AssertSameTensors(OnnxModel expected, OnnxModel actual)
    {
        var e = expected.Proto.Graph.Initializer;
        var a = actual.Proto.Graph.Initializer;
        Assert.Equal(e.Select(t => t.Name), a.Select(t => t.Name));
        for (int i = 0; i < e.Count; i++)
            Assert.True(expected.Tensor(e[i]).ReadBytes().AsSpan().SequenceEqual(actual.Tensor(a[i]).ReadBytes()), $"tensor '{e[i].Name}' differs");
    }
}
