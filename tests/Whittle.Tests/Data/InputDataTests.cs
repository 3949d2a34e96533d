using Whittle.Text;
using Whittle.Data;
using Whittle.IO;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Data;

public class InputDataTests
{
    private static ModelDim Sym(string s) => new(null, s);
    private static ModelDim Fix(long v) => new(v, null);

    /// <summary>A vision-plus-ids model: image float[batch,3,4,4], ids int64[batch,seq], mask int64[batch,seq].</summary>
    private static readonly ModelInput[] TwoInputs =
    [
        new("image", OnnxDataType.Float, [Sym("batch"), Fix(3), Fix(4), Fix(4)]),
        new("ids", OnnxDataType.Int64, [Sym("batch"), Sym("seq")]),
    ];

    private static NpyArray Floats(int n, params int[] sampleShape)
    {
        int[] shape = [n, .. sampleShape];
        var data = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < data.Length; i++) data[i] = i;
        return NpyArray.Wrap(data, shape);
    }

    private static NpyArray Ints<T>(int n, int seq, Func<int, T> f) where T : unmanaged =>
        NpyArray.Wrap(Enumerable.Range(0, n * seq).Select(f).ToArray(), [n, seq]);

    private static string WriteNpz(TempFolder dir, params (string Name, NpyArray Array)[] arrays)
    {
        string path = dir.File("data.npz");
        Npz.Write(path, arrays.Select(a => new KeyValuePair<string, NpyArray>(a.Name, a.Array)));
        return path;
    }

    [Fact]
    public void NpzMatchesByNameInAnyOrder()
    {
        using var dir = new TempFolder();
        string path = WriteNpz(dir, ("ids", Ints(5, 7, i => (long)i)), ("image", Floats(5, 3, 4, 4)));
        var data = NpyInputs.Load(path, TwoInputs);
        Assert.Equal(InputMatching.ByName, data.Matching);
        Assert.Equal(5, data.Count);
        Assert.Equal(OnnxDataType.Int64, data.Samples["ids"].ElementType);
        Assert.Equal([5, 3, 4, 4], data.Samples["image"].Shape);
        Assert.StartsWith("by name", data.MatchingDescription);
    }

    [Fact]
    public void NpzMatchesByOrderWhenNoNameMatchesAndConvertsTypes()
    {
        using var dir = new TempFolder();
        // np.savez(f, x, y): arr_0 float64, arr_1 int32.
        var f64 = NpyArray.Wrap(Enumerable.Range(0, 2 * 48).Select(i => i * 0.5).ToArray(), [2, 3, 4, 4]);
        string path = WriteNpz(dir, ("arr_0", f64), ("arr_1", Ints(2, 3, i => i * 10)));
        var data = NpyInputs.Load(path, TwoInputs);
        Assert.Equal(InputMatching.ByOrder, data.Matching);
        Assert.Equal("by order: arr_0 → image, arr_1 → ids", data.MatchingDescription);
        Assert.Equal(OnnxDataType.Float, data.Samples["image"].ElementType);
        Assert.Equal(1.5f, data.Samples["image"].AsFloats()[3]);
        Assert.Equal([0L, 10, 20, 30, 40, 50], data.Samples["ids"].AsInt64());
    }

    [Fact]
    public void SingleNpyFeedsASingleInputByOrderAndFortranOrderIsRespected()
    {
        using var dir = new TempFolder();
        string path = dir.File("calib.npy");
        // Fortran order [2,3]: memory holds columns, so C order is 0,2,4 / 1,3,5... of the stored values.
        Npy.Write(path, NpyArray.Wrap(new float[] { 0, 3, 1, 4, 2, 5 }, [2, 3], fortranOrder: true));
        var data = NpyInputs.Load(path, [new ModelInput("x", OnnxDataType.Float, [Sym("N"), Fix(3)])]);
        Assert.Equal(InputMatching.ByOrder, data.Matching);
        Assert.Equal([0f, 1, 2, 3, 4, 5], data.Samples["x"].AsFloats());
        Assert.Equal(["calib"], data.ArrayNames);
    }

    [Fact]
    public void BoolAndSmallIntegerArraysWidenToInt64()
    {
        using var dir = new TempFolder();
        var mask = NpyArray.Wrap(new[] { true, false, true, true }, [2, 2]);
        var ids = NpyArray.Wrap(new byte[] { 1, 2, 255, 0 }, [2, 2]);
        string path = WriteNpz(dir, ("input_ids", ids), ("attention_mask", mask));
        var data = NpyInputs.Load(path, [new("input_ids", OnnxDataType.Int64, [Sym("b"), Sym("s")]), new("attention_mask", OnnxDataType.Int64, [Sym("b"), Sym("s")])]);
        Assert.Equal([1L, 0, 1, 1], data.Samples["attention_mask"].AsInt64());
        Assert.Equal([1L, 2, 255, 0], data.Samples["input_ids"].AsInt64());
    }

    private static InputDataException Fails(TempFolder dir, ModelInput[] inputs, params (string, NpyArray)[] arrays)
    {
        string path = WriteNpz(dir, arrays);
        var e = Assert.Throws<InputDataException>(() => NpyInputs.Load(path, inputs));
        Assert.Contains(path, e.Message);
        Assert.Equal(path, e.FilePath);
        return e;
    }

    [Fact]
    public void ValidationErrorsNameFileArrayAndExpectedVersusActual()
    {
        using var dir = new TempFolder();
        var image = Floats(2, 3, 4, 4);
        var ids = Ints(2, 5, i => (long)i);

        var missing = Fails(dir, TwoInputs, ("image", image));
        Assert.Contains("missing input 'ids' (int64[batch,seq])", missing.Message);
        Assert.Equal("ids", missing.InputName);

        var extraByName = Fails(dir, TwoInputs, ("image", image), ("ids", ids), ("labels", ids));
        Assert.Contains("extra array 'labels'", extraByName.Message);
        Assert.Contains("'image' float[batch,3,4,4]", extraByName.Message);

        var extraByOrder = Fails(dir, TwoInputs, ("a", image), ("b", ids), ("c", ids));
        Assert.Contains("extra array 'c'", extraByOrder.Message);
        Assert.Contains("matched by order", extraByOrder.Message);

        var intForFloat = Fails(dir, TwoInputs, ("image", NpyArray.Wrap(new byte[96], [2, 3, 4, 4])), ("ids", ids));
        Assert.Contains("array 'image' is UInt8 but model input 'image' is float[batch,3,4,4]: expected a floating-point array", intForFloat.Message);

        var floatForInt = Fails(dir, TwoInputs, ("image", image), ("ids", Floats(2, 5)));
        Assert.Contains("array 'ids' is Float32 but model input 'ids' is int64[batch,seq]: expected an integer array", floatForInt.Message);

        var fixedDim = Fails(dir, TwoInputs, ("image", Floats(2, 3, 5, 4)), ("ids", ids));
        Assert.Contains("array 'image' has shape [2,3,5,4] but model input 'image' is float[batch,3,4,4]: dimension 2 must be 4, got 5", fixedDim.Message);

        var rank = Fails(dir, TwoInputs, ("image", Floats(2, 48)), ("ids", ids));
        Assert.Contains("shape [2,48] (rank 2) but model input 'image' is float[batch,3,4,4] (rank 4)", rank.Message);

        var samples = Fails(dir, TwoInputs, ("image", Floats(3, 3, 4, 4)), ("ids", ids));
        Assert.Contains("'ids' has 2 samples along axis 0 but 'image' has 3", samples.Message);

        var overflow = Fails(dir, [TwoInputs[0]], ("image", NpyArray.Wrap(Enumerable.Repeat(1e300, 48).ToArray(), [1, 3, 4, 4])));
        Assert.Contains("beyond the float32 range", overflow.Message);

        var scalar = Fails(dir, [TwoInputs[0]], ("image", NpyArray.Wrap(new float[] { 1 }, [])));
        Assert.Contains("0-dimensional", scalar.Message);
    }

    [Fact]
    public void SymbolicDimensionsMustAgreeAcrossInputs()
    {
        ModelInput[] inputs = [new("ids", OnnxDataType.Int64, [Sym("batch"), Sym("seq")]), new("mask", OnnxDataType.Int64, [Sym("batch"), Sym("seq")])];
        var batch = new InputBatch([new("ids", HostTensor.Int64(new long[6], 2, 3)), new("mask", HostTensor.Int64(new long[8], 2, 4))], "x.npz");
        var e = Assert.Throws<InputDataException>(() => InputValidator.Validate(inputs, batch));
        Assert.Contains("x.npz: dimension 'seq' is 3 in 'ids' (axis 1) but 4 in 'mask' (axis 1", e.Message);
    }

    [Fact]
    public void FixedBatchDimensionIsCheckedPerBatchNotPerDataset()
    {
        ModelInput[] inputs = [new("x", OnnxDataType.Float, [Fix(2), Fix(3)])];
        var data = new InputDataset(new InputBatch("x", HostTensor.Float(new float[15], 5, 3), "x.npy"), "x.npy").Bind(inputs);
        var batches = data.Batches(2).ToList();
        Assert.Equal([2, 2, 1], batches.Select(b => b.BatchSize));
        InputValidator.Validate(inputs, batches[0]);
        var e = Assert.Throws<InputDataException>(() => InputValidator.Validate(inputs, batches[2]));
        Assert.Contains("x.npy, batch 2 (selected samples 4–4): array 'x' has shape [1,3] but model input 'x' is float[2,3]: dimension 0 must be 2, got 1", e.Message);
    }

    [Fact]
    public void UnsupportedModelInputTypeIsAClearError()
    {
        var batch = new InputBatch("x", HostTensor.Int64(new long[2], 2), "d.npz");
        var e = Assert.Throws<InputDataException>(() => InputValidator.Validate([new ModelInput("x", OnnxDataType.Int32, [Sym("n")])], batch));
        Assert.Contains("model input 'x' has element type int32; Whittle feeds float and int64 inputs only", e.Message);
        var f = Assert.Throws<InputDataException>(() => InputValidator.Validate([new ModelInput("x", OnnxDataType.Float, [Sym("n")])], batch));
        Assert.Contains("array 'x' is int64 but model input 'x' is float[n]: expected float32", f.Message);
    }

    [Fact]
    public void SelectionIsSeededShuffleThenLimitAndBatchesCoverIt()
    {
        var ids = HostTensor.Int64([.. Enumerable.Range(0, 10).Select(i => (long)i)], 10, 1);
        var data = new InputDataset(new InputBatch("x", ids), "mem");
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), data.Batches(3).SelectMany(b => b["x"].AsInt64()));

        var selection = new DataSelection(Limit: 7, ShuffleSeed: 42);
        var a = data.Batches(4, selection).SelectMany(b => b["x"].AsInt64()).ToArray();
        var b = data.Batches(3, selection).SelectMany(b => b["x"].AsInt64()).ToArray();
        Assert.Equal(a, b);
        Assert.Equal(7, a.Length);
        Assert.Equal(7, a.Distinct().Count());
        Assert.NotEqual(Enumerable.Range(0, 7).Select(i => (long)i), a);
        // Pinned: the shuffle must not change between runs, platforms or .NET versions.
        Assert.Equal(selection.Indices(10).Select(i => (long)i), a);
        Assert.NotEqual(new DataSelection(ShuffleSeed: 43).Indices(10), new DataSelection(ShuffleSeed: 42).Indices(10));
        Assert.Equal(10, new DataSelection(Limit: 100).Indices(10).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Batches(0).ToList());
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Batches(2, new DataSelection(Limit: 0)).ToList());
    }

    [Fact]
    public void ShuffleOrderIsPinned()
    {
        // SplitMix64 Fisher–Yates, computed independently (Python) for seed 7 over 8 samples.
        Assert.Equal([3, 7, 4, 5, 2, 0, 1, 6], new DataSelection(ShuffleSeed: 7).Indices(8));
    }

    [Fact]
    public void ByteTokenizerWindowsWithAndWithoutBos()
    {
        var documents = new TextWindowing { Length = 4 };
        var data = TextWindows.Create(["héllo world"], new ByteTokenizer(), documents, attentionMaskName: "attention_mask");
        // UTF-8: h c3 a9 l l o ' ' w o r l d = 12 bytes → 3 windows of 4, each scoring all but its first token.
        Assert.Equal(3, data.Inputs.Count);
        Assert.Equal([3, 4], data.Inputs.Samples["input_ids"].Shape);
        Assert.Equal(new long[] { 'h', 0xC3, 0xA9, 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd' }, data.Inputs.Samples["input_ids"].AsInt64());
        Assert.All(data.Inputs.Samples["attention_mask"].AsInt64(), v => Assert.Equal(1L, v));
        Assert.Equal(9, data.ScoredTokens);

        var bos = TextWindows.Create(["abcdefg"], new ByteTokenizer(bosId: 256), new TextWindowing { Length = 3 }, attentionMaskName: "attention_mask");
        // BOS once at the document's start; the last window (f g) is padded (0) and still scored.
        Assert.Equal(new long[] { 256, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 0 }, bos.Inputs.Samples["input_ids"].AsInt64());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 0 }, bos.Inputs.Samples["attention_mask"].AsInt64());
        Assert.Equal(new long[] { 'a', 'b', -1, 'd', 'e', -1, 'g', -1, -1 }, bos.Targets.Ids.AsInt64());
        Assert.Equal(5, bos.ScoredTokens);

        // A text shorter than the window is scored at its own length, not refused.
        var shortText = TextWindows.Create(["ab"], new ByteTokenizer(), new TextWindowing { Length = 128 }, source: "tiny.txt");
        Assert.Equal([1, 2], shortText.Inputs.Samples["input_ids"].Shape);
        Assert.Equal(1, shortText.ScoredTokens);
        var e = Assert.Throws<InputDataException>(() => TextWindows.Create(["a"], new ByteTokenizer(), documents, source: "tiny.txt"));
        Assert.Contains("tiny.txt: nothing to score", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TextWindows.Create(["abc"], new ByteTokenizer(bosId: 1), new TextWindowing { Length = 1 }));
    }

    [Fact]
    public void TextWindowsBindToTheGpt2FixtureAndRunInOnnxRuntime()
    {
        using var dir = new TempFolder();
        string text = dir.File("corpus.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 4)));
        string modelPath = Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("gpt2_tiny.onnx");
        var model = OnnxModel.Load(modelPath);
        var inputs = ModelInput.FromModel(model);
        Assert.Equal("input_ids", Assert.Single(inputs).Name);
        Assert.Equal(OnnxDataType.Int64, inputs[0].ElementType);
        Assert.False(inputs[0].Shape![0].IsFixed);

        var data = TextWindows.Create([File.ReadAllText(text)], new ByteTokenizer(), new TextWindowing { Length = 16 }).Inputs.Bind(inputs);
        Assert.Equal(InputMatching.ByName, data.Matching);
        var batch = data.Batches(4, new DataSelection(Limit: 6, ShuffleSeed: 1)).First();
        InputValidator.Validate(inputs, batch);
        var t = batch["input_ids"];
        var proto = new Whittle.Onnx.Proto.TensorProto { Name = "input_ids", DataType = (int)OnnxDataType.Int64 };
        proto.Dims.AddRange(t.Shape.Select(d => (long)d));
        proto.Int64Data.AddRange(t.AsInt64());
        var logits = Assert.Single(OrtTensors.Run(modelPath, [("input_ids", proto)], ["logits"]));
        Assert.Equal([4L, 16, 256], logits.Dims);

        // A mask the model does not take is an extra array.
        var masked = TextWindows.Create([File.ReadAllText(text)], new ByteTokenizer(), new TextWindowing { Length = 16 }, attentionMaskName: "attention_mask").Inputs;
        var e = Assert.Throws<InputDataException>(() => masked.Bind(inputs));
        Assert.Contains("extra array 'attention_mask'", e.Message);
    }

    [Fact]
    public void TensorAndBatchContracts()
    {
        Assert.Throws<ArgumentException>(() => HostTensor.Float(new float[3], 2, 2));
        // A scalar has no sample axis: a batch refuses it.
        Assert.Throws<ArgumentException>(() => new InputBatch("a", HostTensor.Float(new float[1])));
        Assert.Throws<ArgumentException>(() => new InputBatch([new("a", HostTensor.Float(new float[2], 2)), new("a", HostTensor.Float(new float[2], 2))]));
        var t = HostTensor.Float([1, 2, 3, 4, 5, 6], 3, 2);
        Assert.Equal("float32[3,2]", t.ToString());
        Assert.Throws<InvalidOperationException>(() => t.AsInt64());
        Assert.Equal([5f, 6, 1, 2], t.SelectRows([2, 0]).AsFloats());
        var batch = new InputBatch("x", t, "src");
        Assert.Equal("x: float32[3,2]", batch.ToString());
        var k = Assert.Throws<KeyNotFoundException>(() => batch["y"]);
        Assert.Contains("src has no tensor 'y'", k.Message);

        // Rows, samples and reshapes (shared data) of the one tensor type.
        Assert.Equal(3, t.Rows);
        Assert.Equal(2, t.SampleLength);
        var r = t.Reshape(3, 1, 2);
        Assert.Equal([3, 1, 2], r.Shape);
        Assert.Same(t.Data, r.Data);
        Assert.Throws<ArgumentException>(() => t.Reshape(4, 2));
        Assert.Equal([7L, 8, 9, 1, 2, 3], HostTensor.Int64([1, 2, 3, 4, 5, 6, 7, 8, 9], 3, 3).SelectRows([2, 0]).AsInt64());
        Assert.Equal("int64[2,3]", HostTensor.Int64([1, 2, 3, 4, 5, 6, 7, 8, 9], 3, 3).SelectRows([2, 0]).ToString());
        Assert.Equal([true, false], (bool[])HostTensor.Bool([false, false, true, false], 2, 2).SelectRows([1]).Data);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.SelectRows([3]));
        var scalar = HostTensor.Float([1f]);
        Assert.Equal("float32[]", scalar.ToString());
        Assert.Throws<InvalidOperationException>(() => scalar.Rows);
        Assert.Throws<InvalidOperationException>(() => scalar.SelectRows([0]));
    }

    [Fact]
    public void DatasetBatchesFeedTappedSessionsAndCalibrationDirectly()
    {
        var model = Whittle.Tests.Runtime.RuntimeModels.Mlp([6, 5, 4]);
        var x = Whittle.Tests.Runtime.RuntimeModels.RandomFloats(3, 10, 6);
        var data = new InputDataset(new InputBatch("arr_0", x, "mem"), "mem").Bind(ModelInput.FromModel(model));
        Assert.Equal(InputMatching.ByOrder, data.Matching);

        using var session = TappedSession.Create(model, ["h1"]);
        var all = session.Run(data.Samples)["h1"].AsFloats();
        var batched = data.Batches(4).SelectMany(b => session.Run(b)["h1"].AsFloats()).ToArray();
        Assert.Equal(all, batched);

        var rms = new Whittle.Calibration.RmsStatistic("h1");
        var stats = Whittle.Calibration.CalibrationRunner.Run(model, [rms], data.Batches(3));
        Assert.Equal(4, stats.Batches);
        Assert.Equal(10, stats.Samples);
        for (int j = 0; j < 5; j++)
        {
            double sum = 0;
            for (int i = 0; i < 10; i++) sum += (double)all[i * 5 + j] * all[i * 5 + j];
            Assert.Equal(Math.Sqrt(sum / 10), rms.Finish().Rms()[j], 1e-12);
        }
    }
}
