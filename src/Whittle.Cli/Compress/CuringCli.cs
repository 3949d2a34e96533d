using System.CommandLine;
using System.Globalization;
using Whittle.Compression;
using Whittle.Decompositions;
using Whittle.Methods;

namespace Whittle.Cli.Compress;

/// <summary><c>whittle compress --method curing</c>: the flags of <see cref="CuringOptions"/>, defaults the paper's.</summary>
internal sealed class CuringCli : IMethodCli
{
    private static readonly string[] DeimNames = ["reference", "textbook", "qdeim"];
    private static readonly string[] CoreNames = ["pinv", "activation", "diag"];

    private readonly Option<int?> _layers = new("--layers")
    {
        Description = $"Blocks to decompose, N (default: the paper's {CuringOptions.PaperLayers}, capped at L − 2; the first and last blocks are never decomposed).",
    };

    private readonly Option<int> _maxRank = new("--max-rank")
    {
        Description = "Maximum rank r_max; each matrix gets min(r_max, its break-even rank).",
        DefaultValueFactory = _ => new CuringOptions().MaxRank,
    };

    private readonly Option<string> _targets = new("--targets")
    {
        Description = $"Projections to decompose in each chosen block, comma-separated from {string.Join(",", BlockRoles.All)} (gate = the first MLP projection of a plain MLP).",
        DefaultValueFactory = _ => string.Join(",", new CuringOptions().Targets.Select(BlockRoles.Name)),
    };

    private readonly Option<string> _selection = new("--layer-selection")
    {
        Description = "How blocks are chosen: angular (smallest angular distance), last (the N blocks before the last) or list:3,4,5 (0-based).",
        DefaultValueFactory = _ => "angular",
    };

    private readonly Option<string> _deim = new("--deim")
    {
        Description = "DEIM variant picking rows and columns: reference (the CURing code's), textbook or qdeim.",
        DefaultValueFactory = _ => DeimNames[0],
    };

    private readonly Option<string> _core = new("--core")
    {
        Description = "Core U: pinv (C⁺WR⁺, the paper's), activation (least squares on the calibration inputs) or diag (C⁺(WD)(RD)⁺, D = diag(RMS)).",
        DefaultValueFactory = _ => CoreNames[0],
    };

    public CuringCli()
    {
        _deim.AcceptOnlyFromAmong(DeimNames);
        _core.AcceptOnlyFromAmong(CoreNames);
    }

    public IReadOnlyList<string> Names { get; } = ["curing"];

    public string Description => "CURing: C·U·R of the q, k and gate projections of the blocks whose output changes least (Park & Moon 2025).";

    public IReadOnlyList<Option> Options => [_layers, _maxRank, _targets, _selection, _deim, _core];

    public bool TakesBudgets => false;

    public ICompressionMethod Create(string name, ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var options = new CuringOptions
        {
            Layers = parse.GetValue(_layers),
            MaxRank = parse.GetValue(_maxRank),
            Targets = ParseTargets(parse.GetValue(_targets) ?? ""),
            Selection = ParseSelection(parse.GetValue(_selection) ?? ""),
            Deim = parse.GetValue(_deim) switch
            {
                "textbook" => DeimVariant.Textbook,
                "qdeim" => DeimVariant.QDeim,
                _ => DeimVariant.Reference,
            },
            Core = parse.GetValue(_core) switch
            {
                "activation" => CurCore.Activation,
                "diag" => CurCore.Diagonal,
                _ => CurCore.PseudoInverse,
            },
        };
        if (options.Layers is < 1) throw new ArgumentException($"--layers must be at least 1, got {options.Layers}.");
        if (options.MaxRank < 1) throw new ArgumentException($"--max-rank must be at least 1, got {options.MaxRank}.");
        if (options.Selection.Kind == LayerSelectionKind.List && options.Layers is { } n && n != options.Selection.Blocks.Count)
            throw new ArgumentException($"--layers {n} contradicts --layer-selection {options.Selection} ({options.Selection.Blocks.Count} blocks); give one or the other.");
        return new Curing(options);
    }

    /// <summary><c>q,k,gate</c> → roles.</summary>
    internal static IReadOnlyList<BlockRole> ParseTargets(string text)
    {
        var names = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0) throw new ArgumentException($"--targets needs at least one of {string.Join(",", BlockRoles.All)}.");
        var roles = new List<BlockRole>();
        foreach (var n in names)
        {
            try { roles.Add(BlockRoles.Parse(n)); }
            catch (ArgumentException) { throw new ArgumentException($"--targets: unknown projection '{n}'; expected a comma-separated list from {string.Join(",", BlockRoles.All)}."); }
        }
        return [.. roles.Distinct()];
    }

    /// <summary><c>angular</c>, <c>last</c> or <c>list:3,4,5</c>.</summary>
    internal static LayerSelection ParseSelection(string text)
    {
        string t = text.Trim();
        if (t.Equals("angular", StringComparison.OrdinalIgnoreCase)) return LayerSelection.Angular;
        if (t.Equals("last", StringComparison.OrdinalIgnoreCase)) return LayerSelection.Last;
        if (t.StartsWith("list:", StringComparison.OrdinalIgnoreCase))
        {
            var items = t["list:".Length..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var blocks = new int[items.Length];
            for (int i = 0; i < items.Length; i++)
                if (!int.TryParse(items[i], NumberStyles.None, CultureInfo.InvariantCulture, out blocks[i]))
                    throw new ArgumentException($"--layer-selection {text}: '{items[i]}' is not a block number; write list:3,4,5 (0-based).");
            if (blocks.Length == 0) throw new ArgumentException($"--layer-selection {text}: the list is empty; write list:3,4,5 (0-based).");
            if (blocks.Distinct().Count() != blocks.Length) throw new ArgumentException($"--layer-selection {text}: a block is listed twice.");
            return LayerSelection.List(blocks);
        }
        throw new ArgumentException($"--layer-selection must be angular, last or list:3,4,5 (0-based blocks), got '{text}'.");
    }
}
