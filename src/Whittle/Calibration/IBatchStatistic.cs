// The plug-in interface of calibration: a statistic reads some values of every calibration batch (AddBatch) and
// turns what it saw into a result (Finish). The one calibration loop (CalibrationLoop) runs the model, or one segment
// of it, and shows each batch to every statistic; no method streams data itself.
//
// Contract
//   AddBatch is called once per batch, in batch order, by one thread at a time (the loop may use a worker thread,
//   never two at once for one statistic). The TapValues a batch shows are valid only during the call: a
//   statistic copies what it keeps. Finish is called once, after the last batch.

using Whittle.LinearAlgebra;
using Whittle.Runtime;

namespace Whittle.Calibration;

/// <summary>A statistic accumulated over calibration batches from values of the model (taps).</summary>
public interface IBatchStatistic
{
    /// <summary>The float32 values of the model this statistic reads from each batch (tapped by the loop).</summary>
    IReadOnlyCollection<string> Reads { get; }

    /// <summary>Adds one batch.</summary>
    /// <param name="batch">The batch: the values of <see cref="Reads"/>, the model inputs, the labels.</param>
    void AddBatch(StatisticBatch batch);
}

/// <summary>A statistic with a result.</summary>
/// <typeparam name="TResult">What <see cref="Finish"/> returns.</typeparam>
public interface IBatchStatistic<out TResult> : IBatchStatistic
{
    /// <summary>The result over every batch added.</summary>
    TResult Finish();
}

/// <summary>A float32 tensor shown to a statistic for one batch: row-major values and shape. Valid only during <see cref="IBatchStatistic.AddBatch"/>.</summary>
public readonly struct TapValues
{
    private readonly float[] _data;

    /// <summary>Wraps <paramref name="data"/>'s first <c>∏ shape</c> entries (the array may be longer: a reused buffer).</summary>
    public TapValues(float[] data, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        long length = 1;
        foreach (int d in shape) length *= d;
        if (length > data.Length) ThrowHelper.ShapeMismatch(nameof(data), "TapValues: the data must hold the shape", $"≥ {length} values", $"{data.Length}");
        _data = data;
        Shape = shape;
        Length = (int)length;
    }

    /// <summary>The dims (treat as read-only).</summary>
    public int[] Shape { get; }

    /// <summary>Number of values.</summary>
    public int Length { get; }

    /// <summary>The values, row-major.</summary>
    public ReadOnlySpan<float> Span => _data.AsSpan(0, Length);

    /// <summary>The backing array (its first <see cref="Length"/> entries), for views that need one.</summary>
    internal float[] Array => _data;

    /// <summary>The values as a float32 tensor, without a copy where the backing array is exactly as long (valid only during AddBatch).</summary>
    internal HostTensor AsHostTensor() => _data.Length == Length ? HostTensor.Wrap(Onnx.OnnxDataType.Float, _data, Shape) : HostTensor.Float(Span.ToArray(), Shape);

    /// <summary>The values as a (rows × last dim) matrix view, without a copy.</summary>
    public MatrixView<float> LastAxisRows()
    {
        int features = Shape.Length == 0 ? 1 : Shape[^1];
        int rows = features == 0 ? 0 : Length / features;
        return new MatrixView<float>(_data, 0, rows, features, features, 1);
    }
}

/// <summary>One calibration batch as statistics see it.</summary>
public sealed class StatisticBatch
{
    private readonly IReadOnlyDictionary<string, TapValues> _values;

    internal StatisticBatch(int index, IReadOnlyDictionary<string, HostTensor> inputs, HostTensor? labels,
        IReadOnlyDictionary<string, TapValues> values, StatisticBatch? reference = null)
    {
        Index = index;
        Inputs = inputs;
        Labels = labels;
        _values = values;
        Reference = reference;
    }

    /// <summary>The batch's position in the calibration set.</summary>
    public int Index { get; }

    /// <summary>The model inputs of the batch (token ids, attention masks), and any extra tensors the data carries.</summary>
    public IReadOnlyDictionary<string, HostTensor> Inputs { get; }

    /// <summary>The batch's labels (int64 [batch]), or null.</summary>
    public HostTensor? Labels { get; }

    /// <summary>The same batch run through the reference model, in passes that compare two models; else null.</summary>
    public StatisticBatch? Reference { get; }

    /// <summary>
    /// Which token positions hold real tokens: the batch's <c>attention_mask</c> input (int64 <c>[batch, sequence]</c>), or
    /// null when it has none. Statistics leave the other positions out: padding is computed but never used by the model.
    /// </summary>
    public HostTensor? TokenMask => Inputs.TryGetValue("attention_mask", out var m) && m.Rank == 2 && m.Data is long[] ? m : null;

    /// <summary>Whether the batch shows <paramref name="name"/>.</summary>
    public bool Contains(string name) => _values.ContainsKey(name);

    /// <summary>The values of <paramref name="name"/> in this batch.</summary>
    /// <exception cref="ArgumentException">The statistic did not list <paramref name="name"/> in its reads.</exception>
    public TapValues this[string name] => _values.TryGetValue(name, out var v) ? v
        : throw new ArgumentException($"'{name}' was not read for this batch; list it in the statistic's Reads.", nameof(name));
}
