using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Whittle.Onnx;
using Whittle.Onnx.Proto;

namespace Whittle.Tests.Onnx;

/// <summary>Runs ONNX models in ONNX Runtime on <see cref="TensorProto"/> inputs and compares outputs with tolerances.</summary>
internal static class OrtTensors
{
    /// <summary>ONNX's backend-test tolerances: |actual − expected| ≤ atol + rtol·|expected|.</summary>
    public const double RelativeTolerance = 1e-3, AbsoluteTolerance = 1e-7;

    public static SessionOptions SingleThreaded() => new()
    {
        IntraOpNumThreads = 1,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
    };

    /// <summary>Runs <paramref name="modelPath"/> on <paramref name="inputs"/> (name → tensor) and returns the named outputs as tensors.</summary>
    public static List<TensorProto> Run(string modelPath, IReadOnlyList<(string Name, TensorProto Value)> inputs, IReadOnlyList<string> outputNames)
    {
        using var options = SingleThreaded();
        using var session = new InferenceSession(modelPath, options);
        return Run(session, inputs, outputNames);
    }

    /// <summary>Runs <paramref name="session"/> on <paramref name="inputs"/> and returns the named outputs as tensors.</summary>
    public static List<TensorProto> Run(InferenceSession session, IReadOnlyList<(string Name, TensorProto Value)> inputs, IReadOnlyList<string> outputNames)
    {
        var values = new List<OrtValue>();
        try
        {
            foreach (var (_, t) in inputs) values.Add(ToOrtValue(t));
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, [.. inputs.Select(i => i.Name)], values, [.. outputNames]);
            return [.. results.Select(FromOrtValue)];
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    public static OrtValue ToOrtValue(TensorProto t)
    {
        long[] shape = [.. t.Dims];
        if (t.DataType == (int)OnnxDataType.String)
        {
            var s = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
            for (int i = 0; i < t.StringData.Count; i++) s.StringTensorSetElementAt(t.StringData[i].Span, i);
            return s;
        }
        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, (TensorElementType)t.DataType, shape);
        try
        {
            var bytes = OnnxTensor.Of(t).ReadBytes();
            bytes.CopyTo(value.GetTensorMutableRawData());
            return value;
        }
        catch
        {
            value.Dispose();
            throw;
        }
    }

    public static TensorProto FromOrtValue(OrtValue value)
    {
        if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR) throw new NotSupportedException($"output is a {value.OnnxType}, not a tensor");
        var info = value.GetTensorTypeAndShape();
        var t = new TensorProto { DataType = (int)info.ElementDataType };
        t.Dims.AddRange(info.Shape);
        if (info.ElementDataType == TensorElementType.String)
            foreach (var s in value.GetStringTensorAsArray()) t.StringData.Add(Google.Protobuf.ByteString.CopyFromUtf8(s));
        else
            t.RawData = Google.Protobuf.ByteString.CopyFrom(value.GetTensorDataAsSpan<byte>());
        return t;
    }

    /// <summary>Null if <paramref name="actual"/> matches <paramref name="expected"/>, else what differs.</summary>
    public static string? Compare(TensorProto expected, TensorProto actual, double rtol = RelativeTolerance, double atol = AbsoluteTolerance)
    {
        if (expected.DataType == (int)OnnxDataType.UInt16 && actual.DataType == (int)OnnxDataType.BFloat16)
        {
            // ONNX 1.12's suite stores bfloat16 results as uint16 bit patterns.
            expected = expected.Clone();
            expected.DataType = (int)OnnxDataType.BFloat16;
        }
        if (expected.DataType != actual.DataType)
            return $"type {OnnxDataTypes.Name((OnnxDataType)actual.DataType)} instead of {OnnxDataTypes.Name((OnnxDataType)expected.DataType)}";
        if (!expected.Dims.SequenceEqual(actual.Dims))
            return $"shape [{string.Join(",", actual.Dims)}] instead of [{string.Join(",", expected.Dims)}]";
        var type = (OnnxDataType)expected.DataType;
        if (type == OnnxDataType.String)
            return expected.StringData.SequenceEqual(actual.StringData) ? null : "strings differ";
        if (type is OnnxDataType.Float or OnnxDataType.Double or OnnxDataType.Float16 or OnnxDataType.BFloat16)
        {
            var e = OnnxTensor.Of(expected).ToArray<double>();
            var a = OnnxTensor.Of(actual).ToArray<double>();
            for (int i = 0; i < e.Length; i++)
            {
                if (double.IsNaN(e[i]) && double.IsNaN(a[i])) continue;
                if (e[i] == a[i]) continue;
                if (!(Math.Abs(a[i] - e[i]) <= atol + rtol * Math.Abs(e[i])))
                    return $"element {i}: {a[i]:R} instead of {e[i]:R}";
            }
            return null;
        }
        var eb = OnnxTensor.Of(expected).ReadBytes();
        var ab = OnnxTensor.Of(actual).ReadBytes();
        return eb.AsSpan().SequenceEqual(ab) ? null : "values differ";
    }

    public static string FirstLine(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length > 160 ? line[..160] + "…" : line;
    }

    internal static string Utf8(Google.Protobuf.ByteString s) => Encoding.UTF8.GetString(s.Span);
}
