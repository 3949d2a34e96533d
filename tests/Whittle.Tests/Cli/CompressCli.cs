using System.CommandLine;
using Spectre.Console;
using Whittle.Cli.Commands;

namespace Whittle.Tests.Cli;

/// <summary><c>whittle compress …</c> run in process, with its console output and its error stream captured.</summary>
internal static class CompressCli
{
    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        var root = new RootCommand { CompressCommand.Create(console, error) };
        int exit = root.Parse(["compress", .. args]).Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        return (exit, output.ToString(), error.ToString());
    }
}
