using Google.Protobuf;
using Whittle.Text;

namespace Whittle.Tests.Text;

/// <summary>A SentencePiece BPE model built in code , read as <c>tokenizer.model</c>.</summary>
public class SentencePieceTests
{
    /// <summary>
    /// sentencepiece_model.proto, encoded by hand: ModelProto { pieces = 1 (piece = 1, score = 2, type = 3),
    /// trainer_spec = 2 (model_type = 3, byte_fallback = 35, unk/bos/eos/pad ids = 40–43),
    /// normalizer_spec = 3 (name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4, escape_whitespaces = 5) }.
    /// </summary>
    public static byte[] TinyBpeModel()
    {
        const int Normal = 1, Unknown = 2, Control = 3, Byte = 6;
        static byte[] Message(Action<CodedOutputStream> write)
        {
            using var ms = new MemoryStream();
            var o = new CodedOutputStream(ms);
            write(o);
            o.Flush();
            return ms.ToArray();
        }
        static void Bytes(CodedOutputStream o, int field, byte[] value)
        {
            o.WriteTag(field, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(value));
        }
        static void Int(CodedOutputStream o, int field, int value)
        {
            o.WriteTag(field, WireFormat.WireType.Varint);
            o.WriteInt32(value);
        }
        var pieces = new List<(string Piece, float Score, int Type)> { ("<unk>", 0, Unknown), ("<s>", 0, Control), ("</s>", 0, Control) };
        for (int b = 0; b < 256; b++) pieces.Add(($"<0x{b:X2}>", 0, Byte));
        pieces.AddRange([("▁h", -1, Normal), ("▁hi", -2, Normal), ("hi", -3, Normal), ("▁", -4, Normal), ("h", -5, Normal), ("i", -6, Normal)]); // ids 259…264
        return Message(o =>
        {
            foreach (var (piece, score, type) in pieces)
                Bytes(o, 1, Message(p =>
                {
                    p.WriteTag(1, WireFormat.WireType.LengthDelimited);
                    p.WriteString(piece);
                    p.WriteTag(2, WireFormat.WireType.Fixed32);
                    p.WriteFloat(score);
                    Int(p, 3, type);
                }));
            Bytes(o, 2, Message(t =>
            {
                Int(t, 3, 2); // BPE
                Int(t, 35, 1);
                Int(t, 40, 0);
                Int(t, 41, 1);
                Int(t, 42, 2);
                Int(t, 43, -1);
            }));
            Bytes(o, 3, Message(n =>
            {
                n.WriteTag(1, WireFormat.WireType.LengthDelimited);
                n.WriteString("identity");
                Int(n, 3, 1);
                Int(n, 4, 0);
                Int(n, 5, 1);
            }));
        });
    }

    [Fact]
    public void BpeModel_EncodesWithDummyPrefixMergesAndByteFallback()
    {
        var t = new TokenizerSource(TokenizerSource.SentencePieceKind, Convert.ToBase64String(TinyBpeModel())).Create();
        Assert.Equal(1, t.BosId);
        Assert.Equal([260, 260], t.Encode("hi hi"));
        Assert.Equal([262, 264, 263], t.Encode("ih"));
        Assert.Equal([260, 262, 3 + 0xC3, 3 + 0xA9], t.Encode("hi é")); // é is not a piece: its UTF-8 bytes
    }

    [Fact]
    public void NotAModel_IsInvalidData() =>
        Assert.Throws<InvalidDataException>(() => HfTokenizer.FromSentencePiece([1, 2, 3, 4, 5]));
}
