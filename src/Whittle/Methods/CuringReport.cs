namespace Whittle.Methods;

/// <summary>One block's angular distance (METHODS.md §1 step 2).</summary>
/// <param name="Block">0-based block index.</param>
/// <param name="Input">The hidden state entering the block, <c>h_{l−1}</c>.</param>
/// <param name="Output">The hidden state leaving it, <c>h_l</c> (the next block's input; the block's own output for the last block).</param>
/// <param name="Distance"><c>d_l = arccos(cos(h_{l−1}, h_l))/π</c> at each sequence's last real token, averaged over sequences; in [0, 1].</param>
/// <param name="Eligible">False for blocks 0 and L − 1, which are never chosen.</param>
/// <param name="Chosen">Whether the block was decomposed.</param>
public sealed record BlockDistance(int Block, string Input, string Output, double Distance, bool Eligible, bool Chosen);

/// <summary>Method-wide facts of a CURing run (<see cref="Compression.CompressionReport.Details"/>).</summary>
/// <param name="Blocks">Every block's angular distance, in block order.</param>
/// <param name="ChosenBlocks">The decomposed blocks, ascending.</param>
/// <param name="Selection">The selection rule (<c>angular</c>, <c>last</c>, <c>list:…</c>).</param>
/// <param name="Deim">The DEIM variant (<c>reference</c>, <c>textbook</c>, <c>qdeim</c>).</param>
/// <param name="Core">The core (<c>pinv</c>, <c>activation</c>, <c>diag</c>).</param>
/// <param name="MaxRank"><c>r_max</c>.</param>
/// <param name="Targets">The target projections' short names.</param>
/// <param name="Sequences">Calibration sequences behind the distances.</param>
/// <param name="MaskInput">The batch tensor that located each sequence's last real token, or null (position L − 1).</param>
public sealed record CuringDetails(
    IReadOnlyList<BlockDistance> Blocks,
    IReadOnlyList<int> ChosenBlocks,
    string Selection,
    string Deim,
    string Core,
    int MaxRank,
    IReadOnlyList<string> Targets,
    int Sequences,
    string? MaskInput);

/// <summary>What CURing did to one matrix (<see cref="Compression.SiteReport.Details"/>).</summary>
/// <param name="Block">The block.</param>
/// <param name="Role">The projection's short name (<c>q</c>, <c>k</c>, <c>gate</c>, …).</param>
/// <param name="Site">The linear site (graph node) holding the matrix.</param>
/// <param name="RowOffset">The matrix's first row in the site's <c>W</c> (nonzero for the K and V rows of a fused Q/K/V projection).</param>
/// <param name="OutFeatures">m.</param>
/// <param name="InFeatures">n.</param>
/// <param name="Rank">r = min(r_max, break-even rank).</param>
/// <param name="BreakEvenRank">The largest r with <c>m·r + r² + r·n &lt; m·n</c>.</param>
/// <param name="Rows">The kept row indices I (R = W[I, :]), in DEIM selection order.</param>
/// <param name="Cols">The kept column indices J (C = W[:, J]), in DEIM selection order.</param>
/// <param name="RelativeError"><c>‖W − CUR‖_F/‖W‖_F</c>.</param>
/// <param name="OutputError"><c>‖(W − CUR)Xᵀ‖_F/‖WXᵀ‖_F</c> on the calibration inputs X (from their Gram matrix), or null when not measured.</param>
/// <param name="FactorParameters"><c>m·r + r² + r·n</c>, the elements of C, U and R.</param>
public sealed record CurSiteDetails(
    int Block,
    string Role,
    string Site,
    int RowOffset,
    int OutFeatures,
    int InFeatures,
    int Rank,
    int BreakEvenRank,
    IReadOnlyList<int> Rows,
    IReadOnlyList<int> Cols,
    double RelativeError,
    double? OutputError,
    long FactorParameters);
