using System.Diagnostics.CodeAnalysis;

namespace Whittle.IO;

/// <summary>
/// The one place .npy/.npz problems become exceptions, so every message has the same shape:
/// the file (and array) first, then what was found and what was expected.
/// </summary>
internal static class NpyErrors
{
    /// <summary>Throws <see cref="InvalidDataException"/>: "<paramref name="source"/>: <paramref name="problem"/>".</summary>
    [DoesNotReturn]
    public static void InvalidData(string source, string problem, Exception? inner = null) =>
        throw new InvalidDataException($"{source}: {problem}", inner);

    /// <summary>The data section ended early.</summary>
    [DoesNotReturn]
    public static void Truncated(string source, long expectedBytes, long actualBytes) =>
        InvalidData(source, $"truncated array data: expected {expectedBytes} bytes, got {actualBytes}.");

    /// <summary>The header ended early.</summary>
    [DoesNotReturn]
    public static void TruncatedHeader(string source, string part, int expectedBytes, int actualBytes) =>
        InvalidData(source, $"truncated .npy header: expected {expectedBytes} bytes of {part}, got {actualBytes}.");

    /// <summary>The header dictionary could not be parsed.</summary>
    [DoesNotReturn]
    public static void MalformedHeader(string source, string header, string problem) =>
        InvalidData(source, $"malformed .npy header ({problem}); expected a dict like " +
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }, got " + Quote(header) + ".");

    /// <summary>An array does not have the kind of data a conversion needs.</summary>
    [DoesNotReturn]
    public static void WrongKind(string source, string expected, string actual) =>
        InvalidData(source, $"expected {expected}, got {actual}.");

    private static string Quote(string s) => s.Length <= 200 ? s.TrimEnd() : s[..200] + "…";
}
