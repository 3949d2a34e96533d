using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Whittle.Data;
using Whittle.IO;
using Whittle.Runtime;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.RealModels;

/// <summary>Real sentences (Moby Dick) tokenized for <see cref="RealModels.ArcticXs"/> by its own WordPiece vocabulary.</summary>
internal static class ArcticSentences
{
    private const int MaxTokens = 40;

    /// <summary>Sentences of 6–30 words in the text's order, from the <paramref name="skip"/>-th, each as [CLS] … [SEP].</summary>
    public static List<int[]> Tokenized(int skip, int take)
    {
        var tokenizer = BertTokenizer.Create(RealModels.ArcticXsVocab);
        string text = File.ReadAllText(RepoFixtures.MobyDick);
        return [.. Regex.Split(text, @"(?<=[.!?])\s+")
            .Select(s => Regex.Replace(s, @"\s+", " ").Trim())
            .Where(s => s.Split(' ').Length is >= 6 and <= 30 && !s.StartsWith("CHAPTER", StringComparison.Ordinal))
            .Skip(skip).Take(take)
            .Select(s => tokenizer.EncodeToIds(s).Take(MaxTokens).ToArray())];
    }

    /// <summary>The sentences padded to the longest (attention mask 0 on the padding), as the model's three inputs.</summary>
    public static ModelData Padded(List<int[]> sentences, string source)
    {
        var (ids, mask, types) = Arrays(sentences);
        var batch = new InputBatch([new("input_ids", ids), new("attention_mask", mask), new("token_type_ids", types)], source);
        return new ModelData(new InputDataset(batch, source), null, DataKind.Arrays, "Moby Dick sentences");
    }

    /// <summary>The sentences written as an .npz of the model's three inputs.</summary>
    public static void WriteNpz(List<int[]> sentences, string path)
    {
        var (ids, mask, types) = Arrays(sentences);
        NpyArray Wrap(HostTensor t) => NpyArray.Wrap(t.AsInt64(), t.Shape);
        Npz.Write(path, [new("input_ids", Wrap(ids)), new("attention_mask", Wrap(mask)), new("token_type_ids", Wrap(types))]);
    }

    private static (HostTensor Ids, HostTensor Mask, HostTensor Types) Arrays(List<int[]> sentences)
    {
        int t = sentences.Max(s => s.Length);
        var ids = new long[sentences.Count * t];
        var mask = new long[sentences.Count * t];
        for (int i = 0; i < sentences.Count; i++)
            for (int p = 0; p < sentences[i].Length; p++) { ids[i * t + p] = sentences[i][p]; mask[i * t + p] = 1; }
        return (HostTensor.Int64(ids, sentences.Count, t), HostTensor.Int64(mask, sentences.Count, t), HostTensor.Int64(new long[ids.Length], sentences.Count, t));
    }
}
