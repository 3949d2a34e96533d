using Whittle.Calibration;
using Whittle.LinearAlgebra;
using Whittle.Quantization;

namespace Whittle.Tests.Quantization;

public class ActivationAwareScalesTests
{
    /// <summary>Inputs whose first channels are 30× larger than the rest (the outlier channels AWQ is about).</summary>
    private static GramMatrix OutlierInputs(int k, int rows, int seed)
    {
        var rng = new Random(seed);
        var x = Matrix<double>.Create(rows, k, (_, j) => (rng.NextDouble() * 2 - 1) * (j < 4 ? 30 : 1));
        return new GramMatrix(Blas.Gram<double>(x), rows);
    }

    [Fact]
    public void OutlierChannelsGetLargerScalesAndASmallerOutputErrorThanRoundToNearest()
    {
        const int k = 128;
        var inputs = OutlierInputs(k, 512, seed: 1);
        var w = RandomMatrix.Gaussian<float>(48, k, seed: 2);
        var result = ActivationAwareScales.Search([w], inputs, QuantizationFormat.Create(4, 32));
        Assert.True(result.Alpha > 0);
        Assert.True(result.Scales[..4].Min() > result.Scales[4..].Max());
        Assert.True(result.Errors[0] < 0.9 * result.RoundToNearestErrors[0], $"AWQ {result.Errors[0]}, round to nearest {result.RoundToNearestErrors[0]}");

        // The reported error is the output error of the weights it describes, measured directly.
        var q = ActivationAwareScales.Quantized(w, result.Scales, QuantizationFormat.Create(4, 32));
        var wd = Matrix<double>.Create(w.Rows, k, (i, j) => w[i, j]);
        var qd = Matrix<double>.Create(w.Rows, k, (i, j) => q[i, j]);
        Assert.Equal(inputs.OutputError(wd, qd), result.Errors[0], 6);
    }

    [Fact]
    public void EvenInputsKeepRoundToNearestOrBetterAndLayersSharingAnInputShareTheScales()
    {
        var rng = new Random(3);
        var x = Matrix<double>.Create(256, 64, (_, _) => rng.NextDouble() * 2 - 1);
        var inputs = new GramMatrix(Blas.Gram<double>(x), 256);
        var a = RandomMatrix.Gaussian<float>(16, 64, seed: 4);
        var b = RandomMatrix.Gaussian<float>(24, 64, seed: 5);
        var result = ActivationAwareScales.Search([a, b], inputs, QuantizationFormat.Create(4, 32));
        Assert.Equal(2, result.Errors.Length);
        // The criterion is the layers' summed output error energy ‖(Ŵ − W)Xᵀ‖², relative error² × ‖WXᵀ‖².
        double[] energy = [.. new[] { a, b }.Select(w =>
        {
            var y = Blas.Multiply<double>(x, Matrix<double>.Create(w.Cols, w.Rows, (i, j) => w[j, i]));
            return y.AsSpan().ToArray().Sum(v => v * v);
        })];
        double Total(double[] relative) => relative.Select((e, i) => e * e * energy[i]).Sum();
        Assert.True(Total(result.Errors) <= Total(result.RoundToNearestErrors) * (1 + 1e-9));
        Assert.Equal(64, result.Scales.Length);
    }
}
