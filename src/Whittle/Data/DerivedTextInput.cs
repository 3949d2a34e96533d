using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Data;

/// <summary>
/// Inputs of exported transformers that text windows determine besides the token ids and the mask: Hugging Face's
/// <c>position_ids</c> (0 … T − 1 in every window, as the model would number them itself), BERT's <c>token_type_ids</c>
/// (all 0: one segment), and a decoder's key/value cache <c>past_key_values.*</c> / <c>past.*</c>, fed empty
/// (<c>[batch, heads, 0, head size]</c>): every window is scored from its first token, as without a cache.
/// </summary>
internal static class DerivedTextInput
{
    /// <summary>What kind of derived input <paramref name="input"/> is, or null when text cannot feed it.</summary>
    public static string? Of(ModelInput input) => input switch
    {
        { Name: "position_ids", ElementType: OnnxDataType.Int64, Shape: null or { Count: 2 } } => "positions",
        { Name: "token_type_ids", ElementType: OnnxDataType.Int64, Shape: null or { Count: 2 } } => "segments",
        { ElementType: OnnxDataType.Float, Shape: [_, { Value: > 0 }, _, { Value: > 0 }] } when IsCache(input.Name) => "cache",
        _ => null,
    };

    // past_key_values.N.key/value (Hugging Face), past_key_N / past_value_N, past.N.key (older exports).
    private static bool IsCache(string name) =>
        name.StartsWith("past_key", StringComparison.Ordinal) || name.StartsWith("past_value", StringComparison.Ordinal)
        || name.StartsWith("past.", StringComparison.Ordinal);

    /// <summary><paramref name="windows"/> with every input of <paramref name="derived"/> added, one row per window.</summary>
    public static InputDataset Add(InputDataset windows, string idsName, IReadOnlyList<ModelInput> derived, string path)
    {
        var ids = windows.Samples[idsName];
        int n = ids.Shape[0], t = ids.Shape[1];
        var pairs = windows.Samples.Names.Select(name => new KeyValuePair<string, HostTensor>(name, windows.Samples[name])).ToList();
        foreach (var input in derived)
        {
            var tensor = Of(input) switch
            {
                "positions" => HostTensor.Int64([.. Enumerable.Range(0, n).SelectMany(_ => Enumerable.Range(0, t).Select(p => (long)p))], n, t),
                "segments" => HostTensor.Int64(new long[(long)n * t], n, t),
                _ => HostTensor.Float([], n, checked((int)input.Shape![1].Value!.Value), 0, checked((int)input.Shape[3].Value!.Value)),
            };
            pairs.Add(new(input.Name, tensor));
        }
        return new InputDataset(new InputBatch(pairs, path), windows.Source, windows.Matching);
    }
}
