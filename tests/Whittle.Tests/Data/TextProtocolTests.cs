using System.Text.Json;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Import;
using Whittle.Onnx;
using Whittle.Tests.Fixtures;
using Whittle.Tests.Import;
using Whittle.Tests.Onnx;
using Whittle.Text;
using Xunit.Abstractions;

namespace Whittle.Tests.Data;

/// <summary>
/// The text protocols (documents, stride, concatenated) against an independent float64 NumPy forward pass of
/// stories260K with llama2.c's tokenizer (<c>scripts/lm_protocol_reference.py</c> → <c>fixtures/lm-protocols/</c>),
/// and the windowing rules on small byte-level texts.
/// </summary>
public class TextProtocolTests(ITestOutputHelper output)
{
    private const string Golden = "One day, a clever fox found a shiny key under the old oak tree.";

    private static readonly Lazy<OnnxModel> Stories = new(() =>
        Llama2cImporter.Import(SharedModels.Stories260K("stories260K.bin"), SharedModels.Stories260K("tok512.bin")));

    private static JsonElement Reference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(RepoFixtures.Path("lm-protocols", "protocols.json")));
        return doc.RootElement.Clone();
    }

    private static EvaluationReport Evaluate(DataSource source, int batchSize = 4)
    {
        var data = ModelData.Load(Stories.Value, source);
        return Evaluator.Evaluate(Stories.Value, null, data.Batches(batchSize), new EvaluationOptions { LatencyRepeats = 0 });
    }

    [Fact]
    public void GoldenSentenceNeedsNoWindowFlag()
    {
        // llama2.c's known value: BOS + 34 tokens, perplexity 4.953633; the default window (128) is longer than the text.
        var report = Evaluate(new DataSource { TextString = Golden });
        Assert.Equal(34, report.Data.PredictedTokens);
        Assert.Equal(1, report.Data.Examples);
        Assert.Equal(4.953633, report.Model.Perplexity!.Value, 4.953633 * 1e-4);
        Assert.Equal("documents, window 128", report.Data.Protocol);
    }

    public static TheoryData<int> Cases() => [.. Enumerable.Range(0, Reference().GetProperty("cases").GetArrayLength())];

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryProtocolMatchesTheNumpyReference(int index)
    {
        var reference = Reference();
        var c = reference.GetProperty("cases")[index];
        var source = new DataSource(Text: RepoFixtures.Path("lm-protocols", "stories.txt"))
        {
            DocumentSeparator = reference.GetProperty("separator").GetString(),
            Protocol = TextWindowing.Parse(c.GetProperty("protocol").GetString()!),
            WindowLength = c.GetProperty("window").GetInt32(),
            Stride = c.TryGetProperty("stride", out var s) ? s.GetInt32() : null,
        };
        var report = Evaluate(source, batchSize: 5);
        double expected = c.GetProperty("perplexity").GetDouble();
        output.WriteLine($"{report.Data.Protocol}: {report.Data.Examples} windows, {report.Data.PredictedTokens} tokens, perplexity {report.Model.Perplexity:F6} (reference {expected:F6})");
        Assert.Equal(c.GetProperty("windows").GetInt32(), report.Data.Examples);
        Assert.Equal(c.GetProperty("scoredTokens").GetInt64(), report.Data.PredictedTokens);
        Assert.Equal(reference.GetProperty("documents").GetInt32(), report.Data.Documents);
        Assert.Equal(expected, report.Model.Perplexity!.Value, expected * 1e-4);
        var ci = report.Model.PerplexityInterval!;
        Assert.Equal("documents", ci.Units);
        Assert.Equal(6, ci.Count);
        Assert.Equal(c.GetProperty("interval95")[0].GetDouble(), ci.Low, ci.Low * 1e-4);
        Assert.Equal(c.GetProperty("interval95")[1].GetDouble(), ci.High, ci.High * 1e-4);
    }

    [Fact]
    public void NextTokenLossScoresWhatTheProtocolScores()
    {
        // The loss the low-rank search measures reads the same targets as the evaluator (padding and context unscored).
        var source = new DataSource(Text: RepoFixtures.Path("lm-protocols", "stories.txt")) { DocumentSeparator = "<|endoftext|>", Protocol = TextProtocol.Stride, WindowLength = 64, Stride = 24 };
        var batches = ModelData.Load(Stories.Value, source).Batches(8);
        var report = Evaluator.Evaluate(Stories.Value, null, batches, new EvaluationOptions { LatencyRepeats = 0 });
        using var runner = ModelRunner.Create(Stories.Value, batches);
        var loss = runner.Loss(TaskLoss.NextToken(batches, output: "logits"));
        Assert.Equal(report.Data.PredictedTokens, loss.Count);
        Assert.Equal(report.Model.Loss!.Value, loss.Mean, 1e-9);
    }

    [Fact]
    public void StrideScoresEveryTokenButTheFirstOnceWithBoundedContext()
    {
        // One document of BOS + 10 bytes, W = 4, S = 2: windows start at 0, 2, 4, 6, 8; the first scores 3 tokens, the
        // rest the tokens past the previous window's end (2, 2, 2, 1); 10 tokens in all, each once.
        var set = TextWindows.Create(["abcdefghij"], new ByteTokenizer(bosId: 256), new TextWindowing { Protocol = TextProtocol.Stride, Length = 4, Stride = 2 });
        var ids = set.Inputs.Samples["input_ids"].AsInt64();
        var targets = set.Targets.Ids.AsInt64();
        Assert.Equal(5, set.Inputs.Count);
        Assert.Equal(10, set.ScoredTokens);
        Assert.Equal(new long[] { 256, 'a', 'b', 'c', 'b', 'c', 'd', 'e', 'd', 'e', 'f', 'g', 'f', 'g', 'h', 'i' }, ids[..16]);
        Assert.Equal(new long[] { 'a', 'b', 'c', -1, -1, 'd', 'e', -1, -1, 'f', 'g', -1, -1, 'h', 'i', -1 }, targets[..16]);
        var scored = targets.Where(t => t >= 0).Order().ToArray();
        Assert.Equal("abcdefghij".Select(c => (long)c).Order().ToArray(), scored);

        // Stride = window: non-overlapping windows, the first token of each later window context only (3 + 3 + 2).
        var flat = TextWindows.Create(["abcdefghij"], new ByteTokenizer(bosId: 256), new TextWindowing { Protocol = TextProtocol.Stride, Length = 4, Stride = 4 });
        Assert.Equal(8, flat.ScoredTokens);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            TextWindows.Create(["abc"], new ByteTokenizer(), new TextWindowing { Protocol = TextProtocol.Stride, Length = 4, Stride = 5 }));
    }

    [Fact]
    public void DocumentsNeverShareAWindowExceptConcatenated()
    {
        var tokenizer = new ByteTokenizer(bosId: 256, eosId: 257);
        string[] docs = ["abc", "defgh"];
        var documents = TextWindows.Create(docs, tokenizer, new TextWindowing { Length = 4 });
        // [BOS a b c] | [BOS d e f] [g h, padded with EOS]
        Assert.Equal(new long[] { 256, 'a', 'b', 'c', 256, 'd', 'e', 'f', 'g', 'h', 257, 257 }, documents.Inputs.Samples["input_ids"].AsInt64());
        Assert.Equal(new long[] { 0, 0, 0, -1, 1, 1, 1, -1, 1, -1, -1, -1 }, documents.Targets.Documents.AsInt64());
        Assert.Equal(2, documents.Documents);

        var concatenated = TextWindows.Create(docs, tokenizer, new TextWindowing { Protocol = TextProtocol.Concatenated, Length = 4 });
        // One stream BOS a b c BOS d e f g h: the second window holds the end of one document and the start of the next.
        Assert.Equal(new long[] { 256, 'a', 'b', 'c', 256, 'd', 'e', 'f', 'g', 'h', 257, 257 }, concatenated.Inputs.Samples["input_ids"].AsInt64());
        var windows = TextWindows.Create(docs, tokenizer, new TextWindowing { Protocol = TextProtocol.Concatenated, Length = 3 });
        // [BOS a b] [c BOS d] [e f g], and the lone h (nothing to score) dropped.
        Assert.Equal(new long[] { 256, 'a', 'b', 'c', 256, 'd', 'e', 'f', 'g' }, windows.Inputs.Samples["input_ids"].AsInt64());
        // Window 2 is [c BOS d]: its targets BOS and d belong to document 1, c (context) to none.
        Assert.Equal(new long[] { 1, 1, -1 }, windows.Targets.Documents.AsInt64()[3..6]);

        // Calibration keeps full windows only; with none, it says what to change.
        var full = TextWindows.Create(docs, tokenizer, new TextWindowing { Length = 4, FullWindowsOnly = true });
        Assert.Equal(2, full.Inputs.Count);
        var e = Assert.Throws<InputDataException>(() => TextWindows.Create(docs, tokenizer, new TextWindowing { Length = 8, FullWindowsOnly = true }, source: "c.txt"));
        Assert.Contains("c.txt: no 8-token window", e.Message);
        Assert.Contains("longest of 2 document(s) has 6 tokens", e.Message);
    }

    [Fact]
    public void TextsSplitAtSeparatorsBlankLinesAndJsonLines()
    {
        Assert.Equal(["one", "two words", "three"], TextDocuments.Split(" one <|endoftext|>two words\n<|endoftext|>\n<|endoftext|>three", "<|endoftext|>"));
        Assert.Equal(["a\nb", "c", "d"], TextDocuments.Split("a\nb\n\nc\r\n \r\n\n d\n", TextDocuments.BlankLine));
        Assert.Equal(["whole text"], TextDocuments.Split("  whole text \n", null));
        Assert.Throws<ArgumentException>(() => TextDocuments.Split("x", ""));

        using var dir = new TempFolder();
        string jsonl = dir.File("docs.jsonl");
        File.WriteAllText(jsonl, "{\"text\": \"first\"}\n\n{\"text\": \"second\", \"id\": 2}\n{\"text\": \"  \"}\n");
        Assert.Equal(["first", "second"], TextDocuments.ReadJsonLines(jsonl));
        File.WriteAllText(jsonl, "{\"text\": \"first\"}\n{\"body\": \"no text\"}\n");
        var e = Assert.Throws<InputDataException>(() => TextDocuments.ReadJsonLines(jsonl));
        Assert.Contains("docs.jsonl, line 2: no string field \"text\"", e.Message);
        File.WriteAllText(jsonl, "{\"text\": \"first\"\n");
        e = Assert.Throws<InputDataException>(() => TextDocuments.ReadJsonLines(jsonl));
        Assert.Contains("docs.jsonl, line 1: not well-formed JSON", e.Message);
    }

    [Fact]
    public void JsonLinesAreDocumentsAndUnsplitMarkersAreWarnedAbout()
    {
        using var dir = new TempFolder();
        var reference = Reference();
        var stories = File.ReadAllText(RepoFixtures.Path("lm-protocols", "stories.txt"));
        string jsonl = dir.File("stories.jsonl");
        File.WriteAllLines(jsonl, TextDocuments.Split(stories, "<|endoftext|>").Select(d => JsonSerializer.Serialize(new { text = d })));
        var c = reference.GetProperty("cases")[0];
        var report = Evaluate(new DataSource(Text: jsonl) { WindowLength = c.GetProperty("window").GetInt32() });
        Assert.Equal(c.GetProperty("perplexity").GetDouble(), report.Model.Perplexity!.Value, c.GetProperty("perplexity").GetDouble() * 1e-4);
        Assert.Equal(6, report.Data.Documents);

        var unsplit = ModelData.Load(Stories.Value, new DataSource(Text: RepoFixtures.Path("lm-protocols", "stories.txt")));
        Assert.Contains(unsplit.Warnings, w => w.Contains("--doc-separator '<|endoftext|>'", StringComparison.Ordinal));
        var e = Assert.Throws<InputDataException>(() => ModelData.Load(Stories.Value, new DataSource(Text: jsonl) { DocumentSeparator = "x" }));
        Assert.Contains("one document per line", e.Message);
    }

    [Fact]
    public void IntervalIsTheClusterRobustRatioInterval()
    {
        // Two documents with mean NLL 1 and 2 per token over 10 tokens each: μ = 1.5, residuals ±5, se² = 2·50/400.
        var ci = PerplexityInterval.Of([10.0, 20.0], [10L, 10L], "documents")!;
        double se = Math.Sqrt(2 * 50.0) / 20;
        Assert.Equal(Math.Exp(1.5 - 1.959964 * se), ci.Low, 1e-5);
        Assert.Equal(Math.Exp(1.5 + 1.959964 * se), ci.High, 1e-5);
        Assert.Null(PerplexityInterval.Of([10.0], [10L], "documents"));
    }
}
