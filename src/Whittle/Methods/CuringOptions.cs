using Whittle.Decompositions;

namespace Whittle.Methods;

/// <summary>A linear projection of a transformer block, by its role (what <see cref="CuringOptions.Targets"/> names).</summary>
public enum BlockRole
{
    /// <summary><c>q</c>: the attention query projection (the query rows of a fused Q/K/V projection).</summary>
    Query,

    /// <summary><c>k</c>: the attention key projection (the key rows of a fused Q/K/V projection).</summary>
    Key,

    /// <summary><c>v</c>: the attention value projection (the value rows of a fused Q/K/V projection).</summary>
    Value,

    /// <summary><c>o</c>: the attention output projection.</summary>
    Output,

    /// <summary><c>gate</c>: the gate projection of a gated MLP; the first MLP projection of a plain one (GPT-2's <c>c_fc</c>, BERT's intermediate).</summary>
    Gate,

    /// <summary><c>up</c>: the up projection of a gated MLP; the first MLP projection of a plain one (then the same layer as <see cref="Gate"/>).</summary>
    Up,

    /// <summary><c>down</c>: the last MLP projection.</summary>
    Down,
}

/// <summary>How <see cref="Curing"/> picks the blocks to decompose. Blocks 0 and L − 1 are never picked.</summary>
public enum LayerSelectionKind
{
    /// <summary>The N blocks whose output changes least: smallest angular distance between their input and output hidden states (the paper's).</summary>
    Angular,

    /// <summary>The N blocks before the last one (L − 1 − N … L − 2): a baseline that needs no distances.</summary>
    Last,

    /// <summary>The blocks listed in <see cref="LayerSelection.Blocks"/>.</summary>
    List,
}

/// <summary>Which blocks <see cref="Curing"/> decomposes. Immutable; use <see cref="Angular"/>, <see cref="Last"/> or <see cref="List"/>.</summary>
/// <param name="Kind">The rule.</param>
/// <param name="Blocks">The 0-based blocks for <see cref="LayerSelectionKind.List"/> (empty otherwise).</param>
public sealed record LayerSelection(LayerSelectionKind Kind, IReadOnlyList<int> Blocks)
{
    /// <summary>The paper's rule: smallest angular distance.</summary>
    public static LayerSelection Angular { get; } = new(LayerSelectionKind.Angular, []);

    /// <summary>The blocks just before the last.</summary>
    public static LayerSelection Last { get; } = new(LayerSelectionKind.Last, []);

    /// <summary>Exactly <paramref name="blocks"/> (0-based, distinct, none of them the first or the last block).</summary>
    /// <exception cref="ArgumentException">The list is empty or repeats a block.</exception>
    public static LayerSelection List(params int[] blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.Length == 0) ThrowHelper.Argument(nameof(blocks), "A block list needs at least one block.");
        if (blocks.Distinct().Count() != blocks.Length)
            ThrowHelper.Argument(nameof(blocks), $"The block list {string.Join(",", blocks)} repeats a block.");
        return new(LayerSelectionKind.List, [.. blocks]);
    }

    /// <summary>The CLI spelling: <c>angular</c>, <c>last</c> or <c>list:3,4,5</c>.</summary>
    public override string ToString() => Kind switch
    {
        LayerSelectionKind.List => "list:" + string.Join(",", Blocks),
        _ => Kind.ToString().ToLowerInvariant(),
    };
}

/// <summary>
/// Options of <see cref="Curing"/>; the defaults are the paper's (Park &amp; Moon 2025, METHODS.md §1). Immutable.
/// </summary>
public sealed record CuringOptions
{
    /// <summary>The paper's block count for 32-block models.</summary>
    public const int PaperLayers = 10;

    /// <summary>
    /// N, the number of blocks to decompose; null takes the paper's <see cref="PaperLayers"/>, capped at L − 2 (with a
    /// warning in the report). An explicit N must be at most L − 2. Ignored (and must be null or equal to the list's length)
    /// with <see cref="LayerSelectionKind.List"/>.
    /// </summary>
    public int? Layers { get; init; }

    /// <summary><c>r_max</c>: each matrix gets rank <c>r = min(r_max, break-even rank)</c>; default 256.</summary>
    public int MaxRank { get; init; } = 256;

    /// <summary>The projections decomposed in each chosen block; default query, key and gate (the paper's q_proj, k_proj, gate_proj).</summary>
    public IReadOnlyList<BlockRole> Targets { get; init; } = [BlockRole.Query, BlockRole.Key, BlockRole.Gate];

    /// <summary>How the blocks are chosen; default <see cref="LayerSelection.Angular"/>.</summary>
    public LayerSelection Selection { get; init; } = LayerSelection.Angular;

    /// <summary>The DEIM variant picking rows and columns; default the CURing reference code's.</summary>
    public DeimVariant Deim { get; init; } = DeimVariant.Reference;

    /// <summary>The core U; default the paper's <c>C⁺·W·R⁺</c>.</summary>
    public CurCore Core { get; init; } = CurCore.PseudoInverse;

    /// <summary>
    /// The batch tensor (b × L, nonzero at real tokens) that tells where each sequence's last real token is, for the
    /// angular distances; null uses a batch tensor named <c>attention_mask</c> when there is one, else position L − 1.
    /// </summary>
    public string? MaskInput { get; init; }

    /// <summary>
    /// Whether to collect the Gram matrix <c>XᵀX</c> of every decomposed layer's input to report the output error
    /// <c>‖(W − CUR)Xᵀ‖_F/‖WXᵀ‖_F</c> (8·n² bytes per distinct input); default true. The activation core needs it regardless.
    /// </summary>
    public bool MeasureOutputError { get; init; } = true;

    /// <summary>
    /// With angular selection, the statistics (mostly n × n float64 Gram matrices) of the targets of every eligible block
    /// are collected in the pass that collects the hidden states while they take at most this many bytes (default
    /// 512 MiB); beyond, a second pass collects those of the chosen blocks only. The results are the same either way.
    /// </summary>
    public long OnePassStatisticsBytes { get; init; } = 512L << 20;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range or contradicts another.</exception>
    internal void Validate()
    {
        if (Layers is < 1) ThrowHelper.ArgumentOutOfRange(nameof(Layers), Layers, "at least one block (or null for the paper's 10)");
        if (MaxRank < 1) ThrowHelper.ArgumentOutOfRange(nameof(MaxRank), MaxRank, "a maximum rank of at least 1");
        if (OnePassStatisticsBytes < 0) ThrowHelper.ArgumentOutOfRange(nameof(OnePassStatisticsBytes), OnePassStatisticsBytes, "a non-negative number of bytes");
        ArgumentNullException.ThrowIfNull(Targets, nameof(Targets));
        if (Targets.Count == 0) ThrowHelper.Argument(nameof(Targets), "CURing needs at least one target projection (q, k, v, o, gate, up, down).");
        foreach (var t in Targets)
            if (!Enum.IsDefined(t)) ThrowHelper.ArgumentOutOfRange(nameof(Targets), t, "a defined BlockRole");
        ArgumentNullException.ThrowIfNull(Selection, nameof(Selection));
        if (Selection.Kind == LayerSelectionKind.List && Layers is { } n && n != Selection.Blocks.Count)
            ThrowHelper.Argument(nameof(Layers), $"{n} blocks were asked for, but the block list {Selection} names {Selection.Blocks.Count}; give one or the other.");
        if (!Enum.IsDefined(Deim)) ThrowHelper.ArgumentOutOfRange(nameof(Deim), Deim, "a defined DeimVariant");
        if (!Enum.IsDefined(Core)) ThrowHelper.ArgumentOutOfRange(nameof(Core), Core, "a defined CurCore");
    }
}

/// <summary>The short names of <see cref="BlockRole"/> used by the CLI and reports: <c>q k v o gate up down</c>.</summary>
public static class BlockRoles
{
    private static readonly (BlockRole Role, string Name)[] Names =
    [
        (BlockRole.Query, "q"), (BlockRole.Key, "k"), (BlockRole.Value, "v"), (BlockRole.Output, "o"),
        (BlockRole.Gate, "gate"), (BlockRole.Up, "up"), (BlockRole.Down, "down"),
    ];

    /// <summary>Every short name, in the order of <see cref="BlockRole"/>.</summary>
    public static IReadOnlyList<string> All { get; } = [.. Names.Select(n => n.Name)];

    /// <summary>The short name of <paramref name="role"/>.</summary>
    public static string Name(BlockRole role) => Names.First(n => n.Role == role).Name;

    /// <summary>The role named <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">An unknown name (the message lists the known ones).</exception>
    public static BlockRole Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var (role, n) in Names)
            if (string.Equals(n, name.Trim(), StringComparison.OrdinalIgnoreCase)) return role;
        ThrowHelper.Argument(nameof(name), $"Unknown projection '{name}'; expected one of {string.Join(", ", All)}.");
        return default;
    }
}
