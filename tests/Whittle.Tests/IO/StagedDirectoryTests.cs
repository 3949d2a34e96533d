using Whittle.IO;

namespace Whittle.Tests.IO;

public class StagedDirectoryTests
{
    [Fact]
    public void FilesAppearInTheTargetOnlyAtTheCommitAndReplaceWhatWasThere()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-staged-");
        try
        {
            string target = Path.Combine(dir.FullName, "out");
            Directory.CreateDirectory(target);
            File.WriteAllText(Path.Combine(target, "old.txt"), "old");
            using (var staged = new StagedDirectory(target, replace: true))
            {
                File.WriteAllText(Path.Combine(staged.Folder, "new.txt"), "new");
                Assert.Equal(["old.txt"], Directory.GetFiles(target).Select(Path.GetFileName));
                staged.Commit();
            }
            Assert.Equal(["new.txt"], Directory.GetFiles(target).Select(Path.GetFileName));
            Assert.Equal([target], Directory.GetFileSystemEntries(dir.FullName));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void WithoutACommitNothingIsLeftAndTheTargetIsUntouched()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-staged-");
        try
        {
            string target = Path.Combine(dir.FullName, "out");
            using (var staged = new StagedDirectory(target, replace: false))
                File.WriteAllText(Path.Combine(staged.Folder, "half.txt"), "half");
            Assert.Empty(Directory.GetFileSystemEntries(dir.FullName));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void ANonEmptyTargetIsRefusedUnlessReplacingIsAskedFor()
    {
        var dir = Directory.CreateTempSubdirectory("whittle-staged-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "mine.txt"), "mine");
            var ex = Assert.Throws<IOException>(() => new StagedDirectory(dir.FullName, replace: false));
            Assert.Contains(dir.FullName, ex.Message);
            Assert.Throws<IOException>(() => new StagedDirectory(Path.Combine(dir.FullName, "mine.txt"), replace: true));
            // An empty folder is not in the way.
            string empty = Directory.CreateDirectory(Path.Combine(dir.FullName, "empty")).FullName;
            using var staged = new StagedDirectory(empty, replace: false);
            staged.Commit();
            Assert.True(Directory.Exists(empty));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
