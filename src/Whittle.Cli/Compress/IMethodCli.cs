using System.CommandLine;
using Whittle.Compression;

namespace Whittle.Cli.Compress;

/// <summary>
/// How <c>whittle compress</c> offers one method (or a family sharing flags, such as <c>id</c> and <c>magnitude</c>):
/// the names <c>--method</c> accepts, the flags only this method reads, and how they become the method's option record.
/// One implementation per method, listed in <see cref="MethodCatalog"/>; stateless.
/// </summary>
internal interface IMethodCli
{
    /// <summary>The <c>--method</c> values this entry builds.</summary>
    IReadOnlyList<string> Names { get; }

    /// <summary>One line per name for <c>--help</c>: what the method does.</summary>
    string Description { get; }

    /// <summary>Flags only these methods read (each with its description and default). Names must not collide with other entries'.</summary>
    IReadOnlyList<Option> Options { get; }

    /// <summary>Whether the methods take <c>--keep-macs</c>/<c>--keep-params</c>/<c>--tolerance</c> budgets (else only the method default).</summary>
    bool TakesBudgets { get; }

    /// <summary>Builds the method <paramref name="name"/> from the parsed flags.</summary>
    /// <exception cref="ArgumentException">A flag value is invalid (the message names the flag and the allowed values).</exception>
    ICompressionMethod Create(string name, ParseResult parse);
}
