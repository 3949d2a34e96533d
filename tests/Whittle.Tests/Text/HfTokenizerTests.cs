using System.Text.Json.Nodes;
using Whittle.Onnx;
using Whittle.Text;

namespace Whittle.Tests.Text;

/// <summary>Small hand-made tokenizer.json files whose encodings can be worked out by hand.</summary>
public class HfTokenizerTests
{
    private static JsonObject Vocab(params string[] tokens)
    {
        var v = new JsonObject();
        for (int i = 0; i < tokens.Length; i++) v[tokens[i]] = i;
        return v;
    }

    private static JsonArray Strings(params string[] s) => [.. s.Select(x => (JsonNode)x)];

    private static JsonObject Template(string token, int id) => new()
    {
        ["type"] = "TemplateProcessing",
        ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = token, ["type_id"] = 0 } },
            new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
        ["special_tokens"] = new JsonObject { [token] = new JsonObject { ["id"] = token, ["ids"] = new JsonArray(id), ["tokens"] = Strings(token) } },
    };

    public static string WordPieceJson() => new JsonObject
    {
        ["normalizer"] = new JsonObject { ["type"] = "BertNormalizer", ["lowercase"] = true, ["clean_text"] = true, ["handle_chinese_chars"] = true, ["strip_accents"] = null },
        ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
        ["post_processor"] = new JsonObject { ["type"] = "BertProcessing", ["sep"] = new JsonArray("[SEP]", 3), ["cls"] = new JsonArray("[CLS]", 2) },
        ["model"] = new JsonObject
        {
            ["type"] = "WordPiece", ["unk_token"] = "[UNK]", ["continuing_subword_prefix"] = "##",
            ["vocab"] = Vocab("[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "un", "##aff", "##able", ",", "[MASK]"),
        },
    }.ToJsonString();

    [Fact]
    public void WordPiece_LowercasesSplitsPunctuationAndSubwords()
    {
        var t = HfTokenizer.FromJson(WordPieceJson());
        Assert.Equal(2, t.BosId);
        Assert.Null(t.EosId);
        Assert.Equal([4, 10, 5, 6, 7, 8, 9], t.Encode("Hello, worlds unaffable"));
        Assert.Equal([4, 1], t.Encode("hello xyz"));
        Assert.Contains("WordPiece", t.Description);
    }

    [Fact]
    public void ByteLevelBpe_Gpt2Style()
    {
        string json = new JsonObject
        {
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel" },
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 9, ["content"] = "<|endoftext|>", ["special"] = true }),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = Vocab("h", "i", "Ġ", "hi", "Ġh", "Ġhi", "Ã", "©", "Ã©", "<|endoftext|>"),
                ["merges"] = Strings("Ġ h", "h i", "Ġh i", "Ã ©"),
            },
        }.ToJsonString();
        var t = HfTokenizer.FromJson(json);
        Assert.Null(t.BosId);
        Assert.Equal(9, t.EosId);   // GPT-2's <|endoftext|>: the start token of each document when there is no BOS
        Assert.Equal([3, 5], t.Encode("hi hi"));     // "hi", then "Ġhi" ("Ġ h" ranks before "h i")
        Assert.Equal([1, 0], t.Encode("ih"));        // no merge "i h"
        Assert.Equal([3, 2, 8], t.Encode("hi é"));   // é is bytes C3 A9 = "Ã©"; no merge "Ġ Ã©"
    }

    public static string MetaspaceJson() => new JsonObject
    {
        ["normalizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
        },
        ["post_processor"] = Template("<s>", 1),
        ["model"] = new JsonObject
        {
            ["type"] = "BPE", ["unk_token"] = "<unk>", ["byte_fallback"] = true,
            ["vocab"] = Vocab("<unk>", "<s>", "</s>", "<0xC3>", "<0xA9>", "▁", "h", "i", "▁h", "▁hi", "hi"),
            ["merges"] = new JsonArray(Strings("▁", "h"), Strings("▁h", "i"), Strings("h", "i")),
        },
    }.ToJsonString();

    [Fact]
    public void MetaspaceBpe_LlamaStyleWithByteFallback()
    {
        var t = HfTokenizer.FromJson(MetaspaceJson());
        Assert.Equal(1, t.BosId);
        // "▁hi▁hi▁é": ▁h merges first (rank 0) at both places, then ▁hi; é falls back to its UTF-8 bytes.
        Assert.Equal([9, 9, 5, 3, 4], t.Encode("hi hi é"));
        Assert.Equal([5, 7, 6], t.Encode("ih"));     // "▁ih": no merge "▁ i" or "i h"
    }

    [Fact]
    public void Malformed_AndUnsupported_AreReported()
    {
        Assert.Throws<InvalidDataException>(() => HfTokenizer.FromJson("{\"model\": "));
        Assert.Contains("no \"model\"", Assert.Throws<InvalidDataException>(() => HfTokenizer.FromJson("{}")).Message);
        string unigram = new JsonObject { ["model"] = new JsonObject { ["type"] = "Unigram", ["vocab"] = new JsonObject() } }.ToJsonString();
        Assert.Contains("'Unigram'", Assert.Throws<NotSupportedException>(() => HfTokenizer.FromJson(unigram)).Message);
    }

    [Fact]
    public void Metadata_RoundTripsTheTokenizerThroughASavedModel()
    {
        var b = new OnnxGraphBuilder("t");
        var x = b.Input("x", OnnxDataType.Float, "n");
        b.Node("Identity", [x], "y");
        b.Output("y", OnnxDataType.Float, "n");
        var source = new TokenizerSource(TokenizerSource.HfJsonKind, MetaspaceJson());
        TokenizerMetadata.Write(b, TokenizerMetadata.LanguageModelTask, source);
        string dir = Directory.CreateTempSubdirectory("whittle-tok-").FullName;
        try
        {
            string path = Path.Combine(dir, "m.onnx");
            b.Build().Save(path);
            var model = OnnxModel.Load(path);
            Assert.Equal(source, TokenizerMetadata.ReadSource(model));
            var t = TokenizerMetadata.Read(model)!;
            Assert.Equal(1, t.BosId);
            Assert.Equal([9, 9, 5, 3, 4], t.Encode("hi hi é"));
            // A model edited afterwards (new task) keeps its tokenizer.
            TokenizerMetadata.Write(model, TokenizerMetadata.EncoderTask, null);
            Assert.Equal((TokenizerMetadata.EncoderTask, source), (TokenizerMetadata.ReadTask(model), TokenizerMetadata.ReadSource(model)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void BytesKind_AndUnknownKind()
    {
        var bytes = TokenizerSource.Bytes(bosId: 7).Create();
        Assert.Equal(7, bytes.BosId);
        Assert.Equal([104, 195, 169], bytes.Encode("hé"));
        Assert.Null(TokenizerSource.Bytes().Create().BosId);
        Assert.Contains("'tiktoken'", Assert.Throws<NotSupportedException>(() => new TokenizerSource("tiktoken", "").Create()).Message);
        Assert.Throws<InvalidDataException>(() => new TokenizerSource(TokenizerSource.Llama2cKind, "not base64!").Create());
    }
}
