using Whittle.Text;
using Whittle.Data;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Data;

/// <summary>The one loader: each format, labels, text tokenization, and the errors.</summary>
public class ModelDataTests
{
    private static OnnxModel Mlp() => OnnxModel.Load(Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("mlp.onnx")); // input float[batch,784] → logits [batch,10]

    private static OnnxModel Gpt2() => OnnxModel.Load(Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("gpt2_tiny.onnx")); // input_ids int64[batch,seq]

    private static OnnxModel WithMetadata(OnnxModel model, string key, string value)
    {
        var proto = model.Proto.Clone();
        proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return OnnxModel.FromProto(proto);
    }

    /// <summary>Samples whose every pixel is the sample index, so a batch shows which samples it holds.</summary>
    private static NpyArray Indexed(int n, int features) =>
        NpyArray.Wrap(Enumerable.Range(0, n * features).Select(i => (float)(i / features)).ToArray(), [n, features]);

    private static string WriteNpz(TempFolder dir, params (string Name, NpyArray Array)[] arrays)
    {
        string path = dir.File("data.npz");
        Npz.Write(path, arrays.Select(a => new KeyValuePair<string, NpyArray>(a.Name, a.Array)));
        return path;
    }

    [Theory]
    [InlineData("labels")]
    [InlineData("label")]
    [InlineData("y")]
    public void NpzLabelArraysThatAreNotInputsBecomeLabels(string name)
    {
        using var dir = new TempFolder();
        string path = WriteNpz(dir, ("x", Indexed(7, 784)), (name, NpyArray.Wrap(new byte[] { 3, 1, 4, 1, 5, 9, 2 }, [7])));
        var data = ModelData.Load(Mlp(), new DataSource(path));
        Assert.Equal(DataKind.Arrays, data.Kind);
        Assert.Equal(7, data.Count);
        Assert.Equal([3L, 1, 4, 1, 5, 9, 2], data.Labels!.AsInt64());
        Assert.Equal([7, 784], data.Inputs.Samples["input"].Shape);
        Assert.Contains($"labels from array '{name}'", data.Description);
        Assert.Contains("by order: x → input", data.Description);
    }

    [Fact]
    public void LabelsFollowTheirSamplesThroughShufflesAndBatches()
    {
        using var dir = new TempFolder();
        string path = WriteNpz(dir, ("input", Indexed(10, 784)), ("labels", NpyArray.Wrap(Enumerable.Range(0, 10).Select(i => (long)i).ToArray(), [10, 1])));
        var data = ModelData.Load(Mlp(), new DataSource(path));
        var set = data.Batches(3, new DataSelection(Limit: 8, ShuffleSeed: 5));
        Assert.Equal(8, set.Examples);
        Assert.Equal([3, 3, 2], set.Select(b => b.BatchSize));
        for (int b = 0; b < set.Count; b++)
        {
            var pixels = set[b]["input"].AsFloats();
            var labels = set.Labels![b].AsInt64();
            for (int i = 0; i < labels.Length; i++) Assert.Equal(labels[i], (long)pixels[i * 784]);
        }
        Assert.Equal(new DataSelection(Limit: 8, ShuffleSeed: 5).Indices(10).Select(i => (long)i), set.Labels!.SelectMany(l => l.AsInt64()));
    }

    [Fact]
    public void AnArrayNamedLikeLabelsThatIsAModelInputStaysAnInput()
    {
        // A model whose only input is called 'y'.
        var proto = TestModels.Dense(4, 2);
        proto.Graph.Input[0].Name = "y";
        foreach (var n in proto.Graph.Node)
            for (int i = 0; i < n.Input.Count; i++)
                if (n.Input[i] == "X") n.Input[i] = "y";
        var model = OnnxModel.FromProto(proto);
        using var dir = new TempFolder();
        string path = WriteNpz(dir, ("y", Indexed(3, 4)));
        var data = ModelData.Load(model, new DataSource(path));
        Assert.Null(data.Labels);
        Assert.Equal([3, 4], data.Inputs.Samples["y"].Shape);
    }

    [Fact]
    public void SingleNpyWithLabelsFromAnotherNpy()
    {
        using var dir = new TempFolder();
        string x = dir.File("x.npy"), y = dir.File("y.npy");
        Npy.Write(x, NpyArray.Wrap(new double[2 * 784], [2, 784]));
        Npy.Write(y, NpyArray.Wrap(new[] { 7, 8 }, [2]));
        var data = ModelData.Load(Mlp(), new DataSource(x, Labels: y));
        Assert.Equal([7L, 8], data.Labels!.AsInt64());
        Assert.Equal(OnnxDataType.Float, data.Inputs.Samples["input"].ElementType);
        Assert.EndsWith($"labels from {y}", data.Description);
    }

    [Fact]
    public void IdxImagesReshapeToTheInputAndTakeIdxLabels()
    {
        using var dir = new TempFolder();
        string images = dir.File("heldout-images-idx3-ubyte.gz"), labels = dir.File("heldout-labels-idx1-ubyte.gz");
        var pixels = Enumerable.Range(0, 3 * 784).Select(i => (double)(i % 256)).ToArray();
        Idx.Write(images, IdxElementType.UInt8, [3, 28, 28], pixels, gzip: true);
        Idx.Write(labels, IdxElementType.UInt8, [3], [9, 0, 4], gzip: true);
        var data = ModelData.Load(Mlp(), new DataSource(images, labels));
        Assert.Equal(DataKind.Images, data.Kind);
        var x = data.Inputs.Samples["input"];
        Assert.Equal([3, 784], x.Shape);
        // Pixel i holds i mod 256: element 801 (sample 1, pixel 17) is 801 mod 256 = 33.
        Assert.Equal(1f, x.AsFloats()[255]);
        Assert.Equal(33 / 255.0, x.AsFloats()[801], 1e-7);
        Assert.Equal([9L, 0, 4], data.Labels!.AsInt64());
        Assert.Contains("3 images as 'input' float32[3,784] (pixels / 255)", data.Description);

        // Uncompressed files with Debian's names work the same way.
        string plain = dir.File("t10k-images-idx3-ubyte");
        Idx.Write(plain, IdxElementType.UInt8, [3, 28, 28], pixels);
        Assert.Equal(x.AsFloats(), ModelData.Load(Mlp(), new DataSource(plain)).Inputs.Samples["input"].AsFloats());
    }

    [Fact]
    public void TextIsTokenizedByTheModelsTokenizer()
    {
        using var dir = new TempFolder();
        string path = dir.File("corpus.txt");
        File.WriteAllText(path, "abcdefghij");
        var declared = WithMetadata(Gpt2(), ModelTokenizer.MetadataKey, "bytes");
        var data = ModelData.Load(declared, new DataSource(Text: path) { WindowLength = 4 });
        Assert.Equal(DataKind.Text, data.Kind);
        Assert.Empty(data.Warnings);
        // 10 bytes → 2 windows of 4 and "ij" in a third, padded (0) and scored like the others.
        Assert.Equal(new long[] { 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 0, 0 }, data.Inputs.Samples["input_ids"].AsInt64());
        Assert.Equal(3 + 3 + 1, data.Text!.ScoredTokens);
        Assert.Contains("1 document(s), 3 windows of up to 4 tokens (documents, window 4), 7 scored tokens, 'bytes' tokenizer, as 'input_ids'", data.Description);

        // A .txt data file is text too; without a declared tokenizer: byte-level, with a warning.
        var guessed = ModelData.Load(Gpt2(), new DataSource(path) { WindowLength = 5 });
        Assert.Equal([2, 5], guessed.Inputs.Samples["input_ids"].Shape);
        Assert.Contains("no 'whittle.tokenizer' metadata", Assert.Single(guessed.Warnings));

        // The default window is 128 tokens; calibration keeps the full ones.
        File.WriteAllText(path, new string('x', 300));
        Assert.Equal([3, 128], ModelData.Load(declared, new DataSource(Text: path)).Inputs.Samples["input_ids"].Shape);
        Assert.Equal([2, 128], ModelData.Load(declared, new DataSource(Text: path) { FullWindowsOnly = true }).Inputs.Samples["input_ids"].Shape);
    }

    [Fact]
    public void TokenizerKindsComeFromMetadata()
    {
        var bytes = ModelTokenizer.FromModel(WithMetadata(Gpt2(), "whittle.tokenizer", "bytes"));
        Assert.Equal("bytes", bytes.Kind);
        Assert.Null(bytes.Warning);
        Assert.Equal([0xC3, 0xA9], bytes.Tokenizer.Encode("é"));
        Assert.NotNull(ModelTokenizer.FromModel(Gpt2()).Warning);
        var e = Assert.Throws<NotSupportedException>(() => ModelTokenizer.FromModel(WithMetadata(Gpt2(), "whittle.tokenizer", "tiktoken")));
        Assert.Contains("tokenizer kind 'tiktoken'", e.Message);
        Assert.Contains("'bytes'", e.Message);
        // A known kind without its stored data cannot be built.
        var missing = Assert.Throws<InvalidDataException>(() => ModelTokenizer.FromModel(WithMetadata(Gpt2(), "whittle.tokenizer", "sentencepiece")));
        Assert.Contains("whittle.tokenizer.data", missing.Message);
    }

    private static InputDataException Fails(OnnxModel model, DataSource source)
    {
        var e = Assert.Throws<InputDataException>(() => ModelData.Load(model, source));
        Assert.NotNull(e.FilePath);
        Assert.Contains(e.FilePath, e.Message);
        return e;
    }

    [Fact]
    public void ErrorsNameTheFileAndWhatWasExpected()
    {
        using var dir = new TempFolder();
        var x = Indexed(4, 784);

        var twoLabels = Fails(Mlp(), new DataSource(WriteNpz(dir, ("input", x), ("labels", NpyArray.Wrap(new long[4], [4])), ("y", NpyArray.Wrap(new long[4], [4])))));
        Assert.Contains("arrays 'labels', 'y' could all be labels", twoLabels.Message);

        var count = Fails(Mlp(), new DataSource(WriteNpz(dir, ("input", x), ("labels", NpyArray.Wrap(new long[3], [3])))));
        Assert.Contains("3 labels but 4 samples", count.Message);

        var floats = Fails(Mlp(), new DataSource(WriteNpz(dir, ("input", x), ("labels", NpyArray.Wrap(new float[4], [4])))));
        Assert.Contains("labels 'labels' are Float32; expected integer class indices", floats.Message);

        var shape = Fails(Mlp(), new DataSource(WriteNpz(dir, ("input", x), ("labels", NpyArray.Wrap(new long[8], [4, 2])))));
        Assert.Contains("labels 'labels' have shape [4,2]; expected one class index per sample, [N] or [N,1]", shape.Message);

        string withLabels = WriteNpz(dir, ("input", x), ("labels", NpyArray.Wrap(new long[4], [4])));
        string labelsFile = dir.File("l-idx1-ubyte");
        Idx.Write(labelsFile, IdxElementType.UInt8, [4], [1, 2, 3, 4]);
        var twice = Fails(Mlp(), new DataSource(withLabels, labelsFile));
        Assert.Contains("labels given twice", twice.Message);

        string fewer = dir.File("few-idx1-ubyte");
        Idx.Write(fewer, IdxElementType.UInt8, [2], [1, 2]);
        var mismatch = Fails(Mlp(), new DataSource(WriteNpz(dir, ("input", x)), fewer));
        Assert.Contains("2 labels, but", mismatch.Message);
        Assert.Contains("holds 4 samples; expected one label per sample", mismatch.Message);

        var labelFileAsData = Fails(Mlp(), new DataSource(labelsFile));
        Assert.Contains("an IDX label file (idx1)", labelFileAsData.Message);

        string csv = dir.File("data.csv");
        File.WriteAllText(csv, "1,2,3");
        Assert.Contains("unknown data format", Fails(Mlp(), new DataSource(csv)).Message);
        string txtLabels = dir.File("labels.txt");
        File.WriteAllText(txtLabels, "1");
        Assert.Contains("unknown labels format", Fails(Mlp(), new DataSource(WriteNpz(dir, ("input", x)), txtLabels)).Message);

        string images = dir.File("i-idx3-ubyte");
        Idx.Write(images, IdxElementType.UInt8, [1, 2, 2], [0, 1, 2, 3]);
        var lm = Fails(Gpt2(), new DataSource(images));
        Assert.Contains("IDX images feed a model with one float input, but the model's inputs are 'input_ids' int64[batch,seq]", lm.Message);
        var wrongSize = Fails(Mlp(), new DataSource(images));
        Assert.Contains("array 'input' has shape [1,2,2] (rank 3) but model input 'input' is float[batch,784] (rank 2)", wrongSize.Message);

        string text = dir.File("t.txt");
        File.WriteAllText(text, "hello world");
        var textForImages = Fails(Mlp(), new DataSource(Text: text));
        Assert.Contains("text feeds an int64 token-id input [batch, sequence]", textForImages.Message);
        var textLabels = Fails(Gpt2(), new DataSource(Text: text, Labels: labelsFile));
        Assert.Contains("labelled by their own next tokens", textLabels.Message);
        // A text shorter than the window is scored at its own length; calibration, which needs full windows, says so.
        Assert.Equal([1, 11], ModelData.Load(Gpt2(), new DataSource(Text: text) { WindowLength = 64 }).Inputs.Samples["input_ids"].Shape);
        var shortText = Assert.Throws<InputDataException>(() => ModelData.Load(Gpt2(), new DataSource(Text: text) { WindowLength = 64, FullWindowsOnly = true }));
        Assert.Contains("no 64-token window to calibrate on: the longest of 1 document(s) has 11 tokens", shortText.Message);
        var stride = Assert.Throws<ArgumentOutOfRangeException>(() => ModelData.Load(Gpt2(), new DataSource(Text: text) { Stride = 4 }));
        Assert.Contains("a stride goes with the stride protocol", stride.Message);

        Assert.Throws<ArgumentException>(() => ModelData.Load(Gpt2(), new DataSource(text, Text: text)));
        Assert.Throws<ArgumentException>(() => ModelData.Load(Gpt2(), new DataSource()));
        Assert.Throws<FileNotFoundException>(() => ModelData.Load(Mlp(), new DataSource(dir.File("missing.npz"))));
    }

    [Fact]
    public void TextWindowLengthFollowsAFixedSequenceDimension()
    {
        var proto = Gpt2().Proto.Clone();
        var dim = proto.Graph.Input[0].Type.TensorType.Shape.Dim[1];
        dim.DimValue = 8; // seq fixed at 8
        var fixedModel = OnnxModel.FromProto(proto);
        using var dir = new TempFolder();
        string text = dir.File("t.txt");
        File.WriteAllText(text, new string('a', 20));
        // 20 tokens → windows of 8, 8 and 4, the last padded to the fixed 8.
        var windows = ModelData.Load(fixedModel, new DataSource(Text: text));
        Assert.Equal([3, 8], windows.Inputs.Samples["input_ids"].Shape);
        Assert.Equal(7 + 7 + 3, windows.Text!.ScoredTokens);
        var e = Assert.Throws<InputDataException>(() => ModelData.Load(fixedModel, new DataSource(Text: text) { WindowLength = 4 }));
        Assert.Contains("its sequence length is fixed at 8", e.Message);
    }

    [Fact]
    public void BatchSetChecksItsLabels()
    {
        var batch = new InputBatch("x", HostTensor.Float(new float[6], 3, 2));
        Assert.Throws<ArgumentException>(() => new BatchSet([]));
        Assert.Throws<ArgumentException>(() => new BatchSet([batch], [HostTensor.Int64(new long[2], 2)]));
        Assert.Throws<ArgumentException>(() => new BatchSet([batch], [HostTensor.Float(new float[3], 3)]));
        Assert.Throws<ArgumentException>(() => new BatchSet([batch], []));
        var set = new BatchSet([batch, batch], [HostTensor.Int64(new long[3], 3), HostTensor.Int64(new long[3], 3)], "mem");
        Assert.Equal(6, set.Examples);
        Assert.Equal("mem", set.Description);
    }
}
