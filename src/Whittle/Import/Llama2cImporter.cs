using Whittle.Onnx;
using Whittle.Text;

namespace Whittle.Import;

/// <summary>Imports a llama2.c checkpoint (and its tokenizer) into an ONNX language model; see <see cref="LlamaGraph"/>.</summary>
public static class Llama2cImporter
{
    /// <summary>
    /// Reads <paramref name="checkpointPath"/> and builds the model; with <paramref name="tokenizerPath"/> the tokenizer
    /// file travels in the model's metadata (<see cref="TokenizerMetadata"/>).
    /// </summary>
    /// <param name="checkpointPath">The llama2.c checkpoint.</param>
    /// <param name="tokenizerPath">Its tokenizer file, or null.</param>
    /// <param name="weights">Where the weights go, tensor by tensor as they are read, or null to build the model in memory.</param>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="CheckpointException">The checkpoint is malformed.</exception>
    /// <exception cref="InvalidDataException">The tokenizer is malformed, or does not match the vocabulary size.</exception>
    public static OnnxModel Import(string checkpointPath, string? tokenizerPath = null, StreamedModelWriter? weights = null)
    {
        var checkpoint = Llama2cCheckpoint.Load(checkpointPath);
        var builder = LlamaGraph.Build(checkpoint.Spec(), checkpoint, weights);
        if (tokenizerPath is not null)
        {
            var tokenizer = TokenizerSource.FromLlama2cFile(tokenizerPath);
            var t = (Llama2cTokenizer)tokenizer.Create(Path.GetFullPath(tokenizerPath));
            if (t.VocabSize != checkpoint.Config.Vocab)
                throw new InvalidDataException($"{Path.GetFullPath(tokenizerPath)}: {t.VocabSize} tokens, but the checkpoint's vocabulary has {checkpoint.Config.Vocab}.");
            TokenizerMetadata.Write(builder, TokenizerMetadata.LanguageModelTask, tokenizer);
        }
        else builder.Metadata(TokenizerMetadata.TaskKey, TokenizerMetadata.LanguageModelTask);
        builder.Metadata("whittle.source", "llama2.c");
        return builder.Build();
    }
}
