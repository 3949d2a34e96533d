using System.Text;

namespace Whittle.IO;

/// <summary>
/// UTF-8 that refuses invalid bytes. System.Text.Json checks a document's UTF-8 only when a string is read (and then
/// throws InvalidOperationException), so JSON read from bytes is checked with this first.
/// </summary>
internal static class StrictUtf8
{
    private static readonly UTF8Encoding Encoding = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Throws <see cref="DecoderFallbackException"/> (naming the offset) when <paramref name="bytes"/> are not valid UTF-8.</summary>
    public static void Check(ReadOnlySpan<byte> bytes) => _ = Encoding.GetCharCount(bytes);
}
