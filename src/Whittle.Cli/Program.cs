using System.CommandLine;
using Spectre.Console;
using Whittle.Cli.Commands;

var root = new RootCommand("Whittle: make trained neural networks smaller and faster without fine-tuning.");
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(DecomposeCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(CompressCommand.Create());
root.Subcommands.Add(ImportCommand.Create());
root.Subcommands.Add(DemoCommand.Create());

try
{
    return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception ex) when (Whittle.Cli.CliErrors.IsExpected(ex))
{
    // Expected failures (bad input, unreadable files) get one line; anything else is a bug and keeps its stack trace.
    AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {ex.Message}");
    return 1;
}
