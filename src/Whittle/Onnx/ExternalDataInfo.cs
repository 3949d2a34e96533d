using System.Globalization;
using Whittle.Onnx.Proto;

namespace Whittle.Onnx;

/// <summary>Where the data of an external tensor lives: a file relative to the model's folder, a byte offset and a length.</summary>
/// <param name="Location">The file, relative to the folder of the model.</param>
/// <param name="Offset">Byte offset of the data in the file.</param>
/// <param name="Length">Bytes of data, or null where the model does not say (then it is the tensor's size).</param>
public sealed record ExternalDataInfo(string Location, long Offset, long? Length)
{
    /// <summary>Whether <paramref name="tensor"/> keeps its data in a side file.</summary>
    public static bool IsExternal(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return tensor.HasDataLocation && tensor.DataLocation == TensorProto.Types.DataLocation.External;
    }

    /// <summary>Parses the <c>external_data</c> entries of <paramref name="tensor"/>.</summary>
    /// <exception cref="OnnxModelException">The entries are malformed or point outside the model's folder.</exception>
    public static ExternalDataInfo Parse(TensorProto tensor, string? modelPath)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        string? location = null;
        long offset = 0;
        long? length = null;
        foreach (var entry in tensor.ExternalData)
        {
            switch (entry.Key)
            {
                case "location": location = entry.Value; break;
                case "offset": offset = ParseNumber(entry.Value, "offset"); break;
                case "length": length = ParseNumber(entry.Value, "length"); break;
            }
        }
        if (string.IsNullOrEmpty(location))
            throw Error("has data_location EXTERNAL but no 'location' entry in external_data");
        if (Path.IsPathRooted(location) || location.Replace('\\', '/').Split('/').Any(s => s == ".."))
            throw Error($"has external data location '{location}', which is not a path inside the model's folder");
        return new ExternalDataInfo(location, offset, length);

        long ParseNumber(string value, string key) =>
            long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long n)
                ? n
                : throw Error($"has external data {key} '{value}', which is not a non-negative integer");

        OnnxModelException Error(string what) =>
            new($"{OnnxModelException.Describe(modelPath)}: tensor '{tensor.Name}' {what}.", modelPath, tensor.Name);
    }

    /// <summary>The entries to store in <c>external_data</c>.</summary>
    public IEnumerable<StringStringEntryProto> ToEntries()
    {
        yield return new StringStringEntryProto { Key = "location", Value = Location };
        yield return new StringStringEntryProto { Key = "offset", Value = Offset.ToString(CultureInfo.InvariantCulture) };
        if (Length is { } length)
            yield return new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) };
    }
}
