using System.CommandLine;
using Whittle.Compression;
using Whittle.Methods;

namespace Whittle.Cli.Compress;

/// <summary><c>whittle compress --method slice</c>: SliceGPT-style slicing of a transformer's hidden dimension, at <c>--keep-params F</c> or <c>--tolerance ε</c>.</summary>
internal sealed class SliceCli : IMethodCli
{
    public IReadOnlyList<string> Names { get; } = ["slice"];

    public string Description => "SliceGPT-style: the residual stream of a pre-norm transformer (RMSNorm, or LayerNorm after centring) rotated onto its principal directions and cut to the first k "
        + "(embedding, every writer and reader of the stream), at --keep-params or --tolerance (the stream's relative residual).";

    public IReadOnlyList<Option> Options => [MethodCatalog.Align];

    public bool TakesBudgets => true;

    public ICompressionMethod Create(string name, ParseResult parse) => new StreamSlicing(MethodCatalog.AlignOf(parse, HardwareAlignment.Default));
}
