using System.CommandLine;
using Whittle.Cli.Commands;

var root = new RootCommand("Whittle: make trained neural networks smaller and faster without fine-tuning.");
root.Subcommands.Add(BenchCommand.Create());
return root.Parse(args).Invoke();
