return Whittle.Cli.WhittleCli.Run(args);
