using System.CommandLine;
using Whittle.Cli.Commands;

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
}
