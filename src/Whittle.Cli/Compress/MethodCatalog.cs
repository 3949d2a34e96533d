using System.CommandLine;
using Whittle.Compression;

namespace Whittle.Cli.Compress;

/// <summary>Every method <c>whittle compress</c> offers, in the order <c>--help</c> lists them.</summary>
internal static class MethodCatalog
{
    /// <summary>The quantization entry, which is also <c>--quantize</c>'s last stage.</summary>
    public static QuantizeCli Quantize { get; } = new();

    /// <summary>
    /// <c>--align N</c>, shared by the methods that choose widths or ranks: each is a multiple of N where the layer allows,
    /// since ONNX Runtime's CPU GEMM works on blocks of 16 output columns and an odd width costs the time of the next multiple.
    /// </summary>
    public static Option<int?> Align { get; } = new("--align")
    {
        Description = "Round every rank and pruned width chosen from an error rule up to a multiple of N (layers whose range is under 4·N are "
            + "left unaligned): ONNX Runtime's CPU GEMM works on blocks of 16 columns, so other widths save MACs but not time. 1 turns it off. "
            + "Default: 16 for svd/asvd/whitened-svd and slice, 1 for id/magnitude (where 16 cost accuracy on the fixtures).",
    };

    /// <summary>The value of <see cref="Align"/>, checked, or <paramref name="fallback"/> (the method's default) when not given.</summary>
    public static int AlignOf(ParseResult parse, int fallback)
    {
        ArgumentNullException.ThrowIfNull(parse);
        int align = parse.GetValue(Align) ?? fallback;
        if (align < 1) throw new ArgumentException($"--align {align}: expected a positive multiple (1 turns alignment off).");
        return align;
    }

    /// <summary>The entries (stateless).</summary>
    public static IReadOnlyList<IMethodCli> All { get; } =
    [
        new PruningMethodCli(),
        new CuringCli(),
        new LowRankCli(),
        new SvdBaselineCli(),
        new SliceCli(),
        Quantize,
    ];

    /// <summary>The entry that builds <paramref name="name"/>, or null.</summary>
    public static IMethodCli? Find(string name) => All.FirstOrDefault(m => m.Names.Contains(name, StringComparer.OrdinalIgnoreCase));
}
