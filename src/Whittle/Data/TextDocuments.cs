using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Whittle.Data;

/// <summary>
/// A text split into documents (stories, paragraphs, JSON Lines records): what a language model is scored on one
/// by one, each tokenized on its own after the model's start token (<see cref="TextWindows"/>).
/// </summary>
public static partial class TextDocuments
{
    /// <summary>The separator that splits at blank lines (paragraphs): a line holding only white space.</summary>
    public const string BlankLine = "blank-line";

    /// <summary>
    /// The documents of <paramref name="text"/>: split at every <paramref name="separator"/> (or at blank lines for
    /// <see cref="BlankLine"/>), each trimmed of surrounding white space, empty ones dropped; null keeps the whole text
    /// as one document (trimmed the same way).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="separator"/> is empty.</exception>
    public static IReadOnlyList<string> Split(string text, string? separator)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (separator is { Length: 0 }) ThrowHelper.Argument(nameof(separator), "An empty document separator; give a string such as <|endoftext|>, or blank-line.");
        IEnumerable<string> pieces = separator switch
        {
            null => [text],
            BlankLine => BlankLines().Split(text),
            _ => text.Split(separator, StringSplitOptions.None),
        };
        return [.. pieces.Select(p => p.Trim()).Where(p => p.Length > 0)];
    }

    /// <summary>
    /// The <c>"text"</c> field of every line of a JSON Lines file (<c>{"text": "…"}</c> per line; blank lines skipped),
    /// trimmed, empty texts dropped.
    /// </summary>
    /// <exception cref="InputDataException">A line is not a JSON object with a string <c>"text"</c> (the message names the line).</exception>
    public static IReadOnlyList<string> ReadJsonLines(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        IO.FileChecks.RequireRegularFile(path, "JSON Lines file");
        var documents = new List<string>();
        int number = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string? text;
            try
            {
                using var doc = JsonDocument.Parse(line);
                text = doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String
                    ? t.GetString() : null;
            }
            catch (JsonException ex)
            {
                throw new InputDataException($"{path}, line {number}: not well-formed JSON ({ex.Message}); expected one {{\"text\": \"…\"}} object per line.", path, inner: ex);
            }
            if (text is null) throw new InputDataException($"{path}, line {number}: no string field \"text\"; expected one {{\"text\": \"…\"}} object per line.", path);
            if (text.Trim() is { Length: > 0 } trimmed) documents.Add(trimmed);
        }
        return documents;
    }

    [GeneratedRegex(@"\r?\n[ \t\f\v]*\r?\n(?:[ \t\f\v]*\r?\n)*")]
    private static partial Regex BlankLines();
}
