namespace Whittle.Onnx;

/// <summary>The elements of a tensor, flat in row-major order, with its shape.</summary>
/// <param name="Values">Row-major elements (length: the product of <paramref name="Shape"/>).</param>
/// <param name="Shape">Dimensions; empty for a scalar.</param>
public sealed record TensorValues<T>(T[] Values, IReadOnlyList<long> Shape);
