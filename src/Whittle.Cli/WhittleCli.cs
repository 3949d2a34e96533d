using System.CommandLine;
using System.Runtime.InteropServices;
using Spectre.Console;
using Whittle.Cli.Commands;

namespace Whittle.Cli;

/// <summary>The <c>whittle</c> command line, for <c>Program</c> and for in-process drivers (tests, the fuzz harness).</summary>
internal static class WhittleCli
{
    /// <summary>The root command with every subcommand, printing to <paramref name="console"/> and one-line errors to <paramref name="error"/>
    /// (defaults: the process console).</summary>
    public static RootCommand Root(IAnsiConsole? console = null, TextWriter? error = null)
    {
        var root = new RootCommand("Whittle: make trained neural networks smaller and faster without fine-tuning.");
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(DecomposeCommand.Create(console, error));
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(InspectCommand.Create(console));
        root.Subcommands.Add(EvalCommand.Create(console, error));
        root.Subcommands.Add(CompressCommand.Create(console, error));
        root.Subcommands.Add(QuantizeCommand.Create(console, error));
        root.Subcommands.Add(ImportCommand.Create(console));
        root.Subcommands.Add(DemoCommand.Create(console, error));
        return root;
    }

    /// <summary>A parse error with .NET type names replaced by what a user types.</summary>
    internal static string Readable(string message)
    {
        (string Type, string Words)[] names =
        [
            ("System.Nullable`1[System.Int32]", "an integer"), ("System.Nullable`1[System.Int64]", "an integer"), ("System.Nullable`1[System.Double]", "a number"),
            ("System.Int32", "an integer"), ("System.Int64", "an integer"), ("System.Double", "a number"), ("System.Boolean", "true or false"),
            ("System.IO.FileInfo", "a file path"), ("System.IO.DirectoryInfo", "a folder path"), ("System.String", "text"),
        ];
        foreach (var (type, words) in names) message = message.Replace($"'{type}'", words, StringComparison.Ordinal).Replace(type, words, StringComparison.Ordinal);
        return message.Replace(" as expected type ", ": expected ", StringComparison.Ordinal);
    }

    private static IEnumerable<string> CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new Stack<string>();
        for (var r = result; r is not null && r.Parent is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult) names.Push(r.Command.Name);
        return names;
    }

    /// <summary>
    /// Runs <paramref name="args"/> as the <c>whittle</c> executable does: an expected failure (bad input, unreadable
    /// files: <see cref="CliErrors.IsExpected"/>) prints one line and gives exit code 1; any other exception is a bug and
    /// propagates with its stack trace.
    /// </summary>
    public static int Run(string[] args, IAnsiConsole? console = null, TextWriter? error = null, TextWriter? output = null)
    {
        var io = console ?? AnsiConsole.Console;
        // .NET ends the process on Ctrl-C or SIGTERM without raising ProcessExit: remove temporary files first. Commands
        // that stop gracefully (a cancellation token) find theirs gone and report that nothing was written.
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => IO.ExitCleanup.RunAll());
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => IO.ExitCleanup.RunAll());
        var configuration = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        if (output is not null) configuration.Output = output;
        if (error is not null) configuration.Error = error;
        try
        {
            var parse = Root(console, error).Parse(args);
            if (parse.Errors.Count > 0)
            {
                // One line per problem and a pointer to the help, not the whole help after a .NET type name.
                var err = error ?? Console.Error;
                foreach (var e in parse.Errors) err.WriteLine($"error: {Readable(e.Message)}");
                err.WriteLine($"See '{string.Join(' ', ["whittle", .. CommandPath(parse.CommandResult)])} --help'.");
                return 1;
            }
            return parse.Invoke(configuration);
        }
        catch (Exception ex) when (CliErrors.IsExpected(ex))
        {
            if (error is not null) error.WriteLine($"error: {ex.Message.ReplaceLineEndings(" ")}");
            else io.MarkupLineInterpolated($"[red]error:[/] {ex.Message}");
            return 1;
        }
    }
}
