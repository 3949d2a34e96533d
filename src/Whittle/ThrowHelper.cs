using System.Diagnostics.CodeAnalysis;

namespace Whittle;

/// <summary>
/// Every exception Whittle throws at a public entry point goes through here, so messages stay
/// uniform: the value received, what was expected, and how to fix it.
/// </summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ArgumentOutOfRange(string paramName, object? actual, string expected) =>
        throw new ArgumentOutOfRangeException(paramName, actual, $"Expected {expected}, got {actual}.");

    [DoesNotReturn]
    public static void Argument(string paramName, string message) =>
        throw new ArgumentException(message, paramName);

    [DoesNotReturn]
    public static void ShapeMismatch(string paramName, string what, string expected, string actual) =>
        throw new ArgumentException($"{what}: expected shape {expected}, got {actual}.", paramName);

    [DoesNotReturn]
    public static void NotSupportedElementType(Type type) =>
        throw new NotSupportedException(
            $"Element type {type.Name} is not supported by Whittle's linear algebra; use float or double.");
}
