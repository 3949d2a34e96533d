namespace Whittle.Runtime;

/// <summary>Inputs that know where they came from (a data file, windows of a text), so a failed run can name it.</summary>
public interface IDescribedInputs
{
    /// <summary>Where the inputs came from, or null if unknown.</summary>
    string? Source { get; }
}
