namespace Whittle.Cli.Compress;

/// <summary>Every method <c>whittle compress</c> offers, in the order <c>--help</c> lists them.</summary>
internal static class MethodCatalog
{
    /// <summary>The quantization entry, which is also <c>--quantize</c>'s last stage.</summary>
    public static QuantizeCli Quantize { get; } = new();

    /// <summary>The entries (stateless).</summary>
    public static IReadOnlyList<IMethodCli> All { get; } =
    [
        new PruningMethodCli(),
        new CuringCli(),
        new LowRankCli(),
        new SvdBaselineCli(),
        Quantize,
    ];

    /// <summary>The entry that builds <paramref name="name"/>, or null.</summary>
    public static IMethodCli? Find(string name) => All.FirstOrDefault(m => m.Names.Contains(name, StringComparer.OrdinalIgnoreCase));
}
