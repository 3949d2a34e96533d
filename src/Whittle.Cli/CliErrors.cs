using System.Text;

namespace Whittle.Cli;

/// <summary>Which exceptions are expected failures of a command (bad input, unreadable files) rather than bugs.</summary>
internal static class CliErrors
{
    /// <summary>
    /// True for the exceptions that bad input or files produce: I/O failures (missing file or folder, end of stream),
    /// access denied, malformed or unsupported data (<see cref="InvalidDataException"/>, <see cref="FormatException"/>,
    /// <see cref="NotSupportedException"/>, undecodable header text), invalid arguments and arithmetic failures
    /// (<see cref="ArithmeticException"/>, e.g. a matrix that should be positive definite is not), and a hub that cannot be reached.
    /// </summary>
    public static bool IsExpected(Exception ex) =>
        ex is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException or DecoderFallbackException
            or FormatException or NotSupportedException or ArithmeticException or System.Net.Http.HttpRequestException;
}
