using System.CommandLine;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Import;

namespace Whittle.Tests.Cli;

/// <summary><c>whittle bench checkpoint</c> refuses what it should before writing anything (writing a preset is exercised by hand: 268 MB and up).</summary>
public sealed class SyntheticCheckpointCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whittle-synthetic-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int Invoke(params string[] args) =>
        new RootCommand { BenchCommand.Create() }.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Error = TextWriter.Null, Output = TextWriter.Null });

    [Fact]
    public void UnknownPreset_IsAParseError_AndWritesNothing()
    {
        Assert.NotEqual(0, Invoke("bench", "checkpoint", "--preset", "llama-70b", "--out", _dir));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir));
    }

    [Fact]
    public void ExistingCheckpoint_IsKept_WithoutForce()
    {
        string config = Path.Combine(_dir, "config.json");
        File.WriteAllText(config, "{}");
        var ex = Assert.Throws<IOException>(() => Invoke("bench", "checkpoint", "--preset", "llama-134m", "--out", _dir));
        Assert.Contains("--force", ex.Message);
        Assert.Contains("config.json", ex.Message);
        Assert.Equal("{}", File.ReadAllText(config));
        Assert.Single(Directory.EnumerateFileSystemEntries(_dir));
    }

    [Fact]
    public void NegativeCalibrationCount_IsRejected_BeforeWriting()
    {
        Assert.Throws<ArgumentException>(() => Invoke("bench", "checkpoint", "--preset", "llama-134m", "--out", _dir, "--calib-sequences", "-1"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir));
    }

    [Fact]
    public void Summary_ListsEveryFileWithItsSize_TimeAndPeakWorkingSet()
    {
        var shape = new SyntheticLlamaShape(32, 1, 2, 2, 64, 50);
        var files = SyntheticCheckpoint.Write(_dir, shape, seed: 1);
        string calib = Path.Combine(_dir, "calib.npy");
        SyntheticCheckpoint.WriteTokenIds(calib, 3, 5, shape.Vocab, 1);
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 300;

        BenchCommand.PrintCheckpoint(console, "tiny", shape, 1, files, calib, seconds: 2.5, weightsSeconds: 2.0, peakWorkingSet: 3L << 20);

        string text = output.ToString();
        Assert.Contains($"tiny: {shape.ParameterCount:N0} parameters", text);
        Assert.Contains(files.WeightsPath, text);
        Assert.Contains("12 tensors, BF16", text);
        Assert.Contains("input_ids: int64 [3, 5]", text);
        Assert.Contains(InspectCommand.FormatBytes(files.WeightsBytes), text);
        Assert.Contains("Wrote in 2.5 s", text);
        Assert.Contains("peak working set 3.0 MiB", text);
    }
}
