using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;

namespace Whittle.Cli.Demo;

/// <summary>A committed fixture the demo compresses: a trained model with calibration and held-out data beside it.</summary>
/// <param name="Name">Short name for file names and the table (<c>vgg</c>, <c>llama</c>).</param>
/// <param name="Model">The ONNX file.</param>
/// <param name="Calibration">What the methods select on.</param>
/// <param name="CalibrationCount">Calibration samples (text: windows), a seeded choice.</param>
/// <param name="HeldOut">What every result is evaluated on.</param>
/// <param name="HeldOutCount">The first N held-out samples (text: windows).</param>
internal sealed record DemoFixture(string Name, string Model, DataSource Calibration, int CalibrationCount, DataSource HeldOut, int HeldOutCount);

/// <summary>One method at one or more budgets on one fixture.</summary>
/// <param name="Fixture">The model and data.</param>
/// <param name="Method">The method, configured.</param>
/// <param name="Budgets">Its budgets (<see cref="CompressionBudget.MethodDefault"/> for methods that size themselves).</param>
/// <param name="Setting">The table's budget text for a self-sizing method (<c>lossless</c>, <c>N = 2 blocks</c>), else null (the budget's text).</param>
/// <param name="FileLabel">The output file's label for a self-sizing method, else null (the budget's label).</param>
internal sealed record DemoStep(DemoFixture Fixture, ICompressionMethod Method, IReadOnlyList<CompressionBudget> Budgets, string? Setting = null, string? FileLabel = null);

/// <summary>
/// What <c>whittle demo</c> runs: the Fashion-MNIST VGG fixture pruned by interpolative decomposition and by magnitude at
/// 70 % and 50 % of its MACs, factorized by joint low-rank (lossless) and whitened SVD, and the byte-level Llama fixture
/// CURed in 2 and 4 of its 6 blocks. The maximum CUR rank is scaled to the fixture: the paper's r_max = 256 is 1/16 of
/// Llama-7B's width, and 16 is 1/8 of the fixture's 128 (256 would be the break-even rank, saving nothing).
/// </summary>
internal static class DemoPlan
{
    /// <summary>Images (calibration, held-out) and text windows (calibration, held-out) of the full and quick runs.</summary>
    private static (int Images, int HeldOutImages, int Windows, int HeldOutWindows) Sizes(bool quick) =>
        quick ? (32, 64, 8, 8) : (256, 1000, 32, 64);

    /// <summary>The text window of the language-model fixture, in tokens (bytes).</summary>
    public const int TextWindow = 128;

    /// <summary>The steps, in the order they run, on the fixtures found in <paramref name="fixtures"/>.</summary>
    public static IReadOnlyList<DemoStep> Steps(DemoFixturesFolder fixtures, bool quick)
    {
        var (images, heldOutImages, windows, heldOutWindows) = Sizes(quick);
        var vgg = new DemoFixture("vgg", fixtures.Vgg,
            new DataSource(fixtures.CalibrationImages, fixtures.CalibrationLabels), images,
            new DataSource(fixtures.HeldOutImages, fixtures.HeldOutLabels), heldOutImages);
        var llama = new DemoFixture("llama", fixtures.Llama,
            new DataSource(Text: fixtures.CalibrationText) { WindowLength = TextWindow, FullWindowsOnly = true }, windows,
            new DataSource(Text: fixtures.HeldOutText) { WindowLength = TextWindow }, heldOutWindows);

        CompressionBudget[] macs = [CompressionBudget.KeepMacs(0.7), CompressionBudget.KeepMacs(0.5)];
        CompressionBudget[] parameters = [CompressionBudget.KeepParameters(0.7), CompressionBudget.KeepParameters(0.5)];
        CompressionBudget[] self = [CompressionBudget.MethodDefault];
        return
        [
            new(vgg, new InterpolativePruning(), macs),
            new(vgg, new MagnitudePruning(), macs),
            new(vgg, new JointLowRank(), self, "lossless", "lossless"),
            new(vgg, new WhitenedSvd(), parameters),
            new(llama, Cur(2), self, "N = 2 blocks", "n-2"),
            new(llama, Cur(4), self, "N = 4 blocks", "n-4"),
            // Quantization as a last stage, and alone on the language model (AWQ-style scales from the calibration windows).
            new(vgg, new CompressionPipeline(new InterpolativePruning(), new WeightQuantization(new WeightQuantizationOptions { Bits = 8, BlockSize = 128 })),
                [CompressionBudget.KeepMacs(0.5)]),
            new(llama, new WeightQuantization(new WeightQuantizationOptions { Bits = 4, BlockSize = 32 }), self, "block 32, AWQ scales", "awq"),
        ];

        static Curing Cur(int blocks) => new(new CuringOptions { Layers = blocks, MaxRank = 16 });
    }
}
