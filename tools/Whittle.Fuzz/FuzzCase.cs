namespace Whittle.Fuzz;

/// <summary>What one case did.</summary>
public enum Outcome
{
    /// <summary>Refused with exit code 1 and a one-line message.</summary>
    CleanError,

    /// <summary>Ran to the end (exit code 0).</summary>
    Accepted,

    /// <summary>An exception the CLI does not expect escaped (a bug: the executable would print a stack trace).</summary>
    Crash,

    /// <summary>Still running at the deadline.</summary>
    Hang,

    /// <summary>Ran out of memory, or its working set passed the limit.</summary>
    OverMemory,

    /// <summary>A failed case left files behind (temporary, partial or spill files), in its folder or the temporary folder.</summary>
    Leftover,

    /// <summary>Read or wrote outside its folder: a link replaced, or a file from outside copied into an output.</summary>
    Escape,
}

/// <summary>One malformed input and the command that reads it.</summary>
/// <param name="Kind">The input kind (<c>onnx</c>, <c>safetensors</c>, …).</param>
/// <param name="Mutation">What was changed, for the report.</param>
/// <param name="Args">The <c>whittle</c> arguments.</param>
/// <param name="Folder">The case's own folder: every input, and every output it may write.</param>
/// <param name="Outputs">Files the command may leave when it succeeds.</param>
/// <param name="Blame">Names a clean error should mention (the file at fault); empty when any message will do.</param>
public sealed record FuzzCase(string Kind, string Mutation, string[] Args, string Folder, IReadOnlyList<string> Outputs, IReadOnlyList<string> Blame);

/// <summary>A case and what came of it.</summary>
/// <param name="Case">The case.</param>
/// <param name="Outcome">What it did.</param>
/// <param name="Detail">The error line, the exception, or what was left behind.</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="NamesTheFile">For a clean error: whether the message names one of <see cref="FuzzCase.Blame"/>.</param>
public sealed record CaseResult(FuzzCase Case, Outcome Outcome, string Detail, double Seconds, bool NamesTheFile)
{
    /// <summary>Whether the outcome is a defect (crash, hang, over-memory, leftover, escape).</summary>
    public bool IsDefect => Outcome is not (Outcome.CleanError or Outcome.Accepted);
}
