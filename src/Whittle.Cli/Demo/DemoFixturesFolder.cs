namespace Whittle.Cli.Demo;

/// <summary>
/// The repository's <c>fixtures/</c> folder, which holds the demo's trained models and data (made by
/// <c>scripts/train_*_fixtures.py</c>; see <c>fixtures/README.md</c>).
/// </summary>
/// <param name="Root">The folder.</param>
internal sealed record DemoFixturesFolder(string Root)
{
    /// <summary>The Fashion-MNIST VGG classifier.</summary>
    public string Vgg => Path.Combine(Root, "fashion-mnist", "vgg.onnx");

    /// <summary>1,000 training images for calibration.</summary>
    public string CalibrationImages => Path.Combine(Root, "fashion-mnist", "calib-images-idx3-ubyte.gz");

    /// <summary>Their labels.</summary>
    public string CalibrationLabels => Path.Combine(Root, "fashion-mnist", "calib-labels-idx1-ubyte.gz");

    /// <summary>The first 2,000 test images.</summary>
    public string HeldOutImages => Path.Combine(Root, "fashion-mnist", "heldout-images-idx3-ubyte.gz");

    /// <summary>Their labels.</summary>
    public string HeldOutLabels => Path.Combine(Root, "fashion-mnist", "heldout-labels-idx1-ubyte.gz");

    /// <summary>The byte-level Llama language model.</summary>
    public string Llama => Path.Combine(Root, "text", "llama.onnx");

    /// <summary>About 16 KB of its training text.</summary>
    public string CalibrationText => Path.Combine(Root, "text", "calib-excerpt.txt");

    /// <summary>About 16 KB of its held-out text.</summary>
    public string HeldOutText => Path.Combine(Root, "text", "heldout-excerpt.txt");

    /// <summary>Every file the demo reads.</summary>
    public IEnumerable<string> Files => [Vgg, CalibrationImages, CalibrationLabels, HeldOutImages, HeldOutLabels, Llama, CalibrationText, HeldOutText];

    /// <summary>
    /// <paramref name="given"/> when set, else the first <c>fixtures/</c> above the current directory or above the
    /// installed command that holds the demo's files.
    /// </summary>
    /// <exception cref="FileNotFoundException">A file is missing (names it), or no folder was found (says where it looked).</exception>
    public static DemoFixturesFolder Find(string? given)
    {
        if (given is not null)
        {
            var folder = new DemoFixturesFolder(Path.GetFullPath(given));
            foreach (var file in folder.Files)
                if (!File.Exists(file)) throw new FileNotFoundException($"--fixtures {given}: the demo's file {Path.GetRelativePath(folder.Root, file)} is missing.", file);
            return folder;
        }
        string[] starts = [Directory.GetCurrentDirectory(), AppContext.BaseDirectory];
        foreach (string start in starts)
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var folder = new DemoFixturesFolder(Path.Combine(dir.FullName, "fixtures"));
                if (folder.Files.All(File.Exists)) return folder;
            }
        throw new FileNotFoundException(
            $"The demo's fixtures (fixtures/fashion-mnist and fixtures/text of the Whittle repository) are not above {starts[0]} or {starts[1]}: run it in a clone of the repository or pass --fixtures DIR.");
    }
}
