// In-domain text for stories260K: children's stories sampled from the model itself (seeded, temperature 1), so that
// its calibration and held-out data look like what it was trained on (TinyStories) rather than the English prose of
// fixtures/text, on which the original's own perplexity is ~73. Writes two files of stories separated by blank lines
// (use --doc-separator blank-line): the first half of the samples for calibration, the second for evaluation.
//
//   whittle import llama2c --model ../shared/models/stories260K/stories260K.bin --tokenizer ../shared/models/stories260K/tok512.bin --out /tmp/stories260K.onnx
//   dotnet run scripts/stories_samples.cs -- /tmp/stories260K.onnx ../shared/models/stories260K/tok512.bin fixtures/text
#:project ../src/Whittle/Whittle.csproj
#:property Nullable=enable
#:property TreatWarningsAsErrors=true

using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Whittle.Text;

if (args.Length < 3)
{
    Console.Error.WriteLine("usage: stories_samples.cs MODEL.onnx TOKENIZER.bin OUT_DIR [STORIES=128] [TOKENS=256] [SEED=1]");
    return 2;
}
string modelPath = args[0], tokenizerPath = args[1], outDir = args[2];
int stories = args.Length > 3 ? int.Parse(args[3]) : 128;
int maxTokens = args.Length > 4 ? int.Parse(args[4]) : 256;
int seed = args.Length > 5 ? int.Parse(args[5]) : 1;
const int Bos = 1, Eos = 2;

var tokenizer = Llama2cTokenizer.Load(tokenizerPath);
using var session = new InferenceSession(modelPath);
var rng = new Random(seed);
var texts = new List<string>();
const int Batch = 32;
for (int start = 0; start < stories; start += Batch)
{
    int b = Math.Min(Batch, stories - start);
    var seqs = Enumerable.Range(0, b).Select(_ => new List<long> { Bos }).ToArray();
    var done = new bool[b];
    for (int t = 1; t < maxTokens && done.Contains(false); t++)
    {
        // No KV cache: the whole prefix each step (the model has 260 K parameters).
        var ids = new DenseTensor<long>([b, t]);
        for (int i = 0; i < b; i++)
            for (int j = 0; j < t; j++) ids[i, j] = j < seqs[i].Count ? seqs[i][j] : Eos;
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("input_ids", ids)]);
        var logits = results[0].AsTensor<float>();
        int vocab = logits.Dimensions[2];
        for (int i = 0; i < b; i++)
        {
            if (done[i]) continue;
            int pos = seqs[i].Count - 1;
            double max = double.NegativeInfinity;
            for (int v = 0; v < vocab; v++) max = Math.Max(max, logits[i, pos, v]);
            double sum = 0;
            var p = new double[vocab];
            for (int v = 0; v < vocab; v++) sum += p[v] = Math.Exp(logits[i, pos, v] - max);
            double u = rng.NextDouble() * sum;
            int next = vocab - 1;
            for (int v = 0; v < vocab; v++)
                if ((u -= p[v]) <= 0) { next = v; break; }
            if (next is Eos or Bos) done[i] = true;
            else seqs[i].Add(next);
        }
    }
    foreach (var s in seqs)
    {
        var text = new StringBuilder();
        foreach (long id in s.Skip(1)) text.Append(tokenizer.Piece((int)id));
        // Stories are separated by blank lines: a story's own blank lines would split it, so they become one line break.
        string story = text.ToString().Trim().Replace("\r", "");
        while (story.Contains("\n\n")) story = story.Replace("\n\n", "\n");
        if (story.Length > 0) texts.Add(story);
    }
    Console.Error.WriteLine($"{Math.Min(start + b, stories)} / {stories} stories");
}
int half = texts.Count / 2;
File.WriteAllText(Path.Combine(outDir, "stories-calib.txt"), string.Join("\n\n", texts.Take(half)) + "\n");
File.WriteAllText(Path.Combine(outDir, "stories-heldout.txt"), string.Join("\n\n", texts.Skip(half)) + "\n");
Console.WriteLine($"{texts.Count} stories, {texts.Sum(t => t.Length)} characters → {outDir}/stories-calib.txt, stories-heldout.txt");
return 0;
