// The Gram matrix of a 2-D convolution's input patches (im2col rows): what whitened SVD and activation-aware SVD of
// the kernel matrix W = Cout × (Cin·kh·kw) need, since the convolution computes W·patch at every output position.
//
// Contract
//   For input x [N, Cin, H, W] and a kernel kh × kw with strides, pads (begin, end) and dilations, the patch at output
//   position (n, oh, ow) is the Cin·kh·kw vector p[(c·kh + i)·kw + j] = x[n, c, oh·s_h − pad_top + i·d_h, ow·s_w − pad_left
//   + j·d_w] (zero outside the image), the row-major order of ConvFactorChain.Weight's columns. Gram = Σ p·pᵀ over every
//   output position of every calibration sample, in float64 (GramAccumulator); Rows = N·Hout·Wout summed over batches.
//   auto_pad SAME_UPPER / SAME_LOWER / VALID is resolved from the input size as ONNX defines it.
//   Memory per convolution: (Cin·kh·kw)² doubles, plus one chunk of at most ChunkRows patches in float32 (and float64).

using Whittle.Analysis;
using Whittle.LinearAlgebra;
using Whittle.Onnx;

namespace Whittle.Calibration;

/// <summary>Accumulates the Gram matrix of a 2-D convolution's input patches (its <see cref="GramMatrix"/> over Cin·kh·kw features).</summary>
public sealed class ConvPatchStatistic : IBatchStatistic<GramMatrix>
{
    /// <summary>Patches unfolded and added to the Gram at a time (bounds the scratch memory).</summary>
    public const int ChunkRows = 4096;

    private readonly Unfolder _unfolder;

    /// <summary>The statistic of <paramref name="site"/>, a convolution of <paramref name="model"/> (whose auto_pad it reads).</summary>
    /// <exception cref="NotSupportedException">The convolution is not 2-D.</exception>
    public ConvPatchStatistic(OnnxModel model, ConvSite site)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        if (site.Kernel.Count != 2)
            throw new NotSupportedException($"Conv '{site.Name}' has a {site.Kernel.Count}-D kernel; patch statistics are collected for 2-D convolutions only.");
        var node = model.Graph.Producer(site.Output);
        var autoPad = node?.Attribute.FirstOrDefault(x => x.Name == "auto_pad");
        _unfolder = new Unfolder(site, autoPad is null ? "NOTSET" : autoPad.S.ToStringUtf8());
        Reads = [site.Input];
    }

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Reads { get; }

    /// <inheritdoc/>
    public void AddBatch(StatisticBatch batch) => _unfolder.Add(batch[_unfolder.Site.Input]);

    /// <inheritdoc/>
    public GramMatrix Finish() => _unfolder.Finish();

    /// <summary>Unfolds one convolution's input into patch rows and accumulates their Gram matrix.</summary>
    private sealed class Unfolder(ConvSite site, string autoPad)
    {
        private readonly int _kh = (int)site.Kernel[0], _kw = (int)site.Kernel[1];
        private readonly int _sh = (int)site.Strides[0], _sw = (int)site.Strides[1];
        private readonly int _dh = (int)site.Dilations[0], _dw = (int)site.Dilations[1];
        private GramAccumulator? _gram;
        private float[] _rows = [];

        public ConvSite Site { get; } = site;

        public void Add(TapValues x)
        {
            if (x.Shape.Length != 4)
                throw new NotSupportedException($"Conv '{Site.Name}': its input '{Site.Input}' has shape [{string.Join(",", x.Shape)}]; patch statistics need float32 [N, C, H, W].");
            int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
            if (c != Site.InChannels)
                ThrowHelper.ShapeMismatch(nameof(x), $"Conv '{Site.Name}': input channels of '{Site.Input}'", $"{Site.InChannels}", $"{c}");
            var (top, outH) = Window(h, _kh, _sh, _dh, 0);
            var (left, outW) = Window(w, _kw, _sw, _dw, 1);
            int features = c * _kh * _kw;
            _gram ??= new GramAccumulator(features);
            int total = n * outH * outW;
            int chunk = Math.Min(ChunkRows, Math.Max(1, total));
            if (_rows.Length < chunk * features) _rows = new float[chunk * features];
            var data = x.Span;
            int row = 0;
            for (int b = 0; b < n; b++)
                for (int oh = 0; oh < outH; oh++)
                    for (int ow = 0; ow < outW; ow++)
                    {
                        var p = _rows.AsSpan(row * features, features);
                        int k = 0;
                        for (int ch = 0; ch < c; ch++)
                        {
                            int plane = (b * c + ch) * h * w;
                            for (int i = 0; i < _kh; i++)
                            {
                                int y = oh * _sh - top + i * _dh;
                                for (int j = 0; j < _kw; j++, k++)
                                {
                                    int xx = ow * _sw - left + j * _dw;
                                    p[k] = (uint)y < (uint)h && (uint)xx < (uint)w ? data[plane + y * w + xx] : 0f;
                                }
                            }
                        }
                        if (++row == chunk)
                        {
                            _gram.AddBatch(new MatrixView<float>(_rows, 0, row, features, features, 1));
                            row = 0;
                        }
                    }
            if (row > 0) _gram.AddBatch(new MatrixView<float>(_rows, 0, row, features, features, 1));
        }

        public GramMatrix Finish() => _gram is null ? new GramMatrix(new Matrix<double>(0, 0), 0) : new GramMatrix(_gram.Gram, _gram.RowsSeen);

        // The begin pad and the output length along spatial axis `axis` (ONNX Conv semantics, auto_pad resolved).
        private (int Begin, int Out) Window(int size, int k, int stride, int dilation, int axis)
        {
            int span = (k - 1) * dilation + 1;
            switch (autoPad)
            {
                case "SAME_UPPER" or "SAME_LOWER":
                {
                    int outSize = (size + stride - 1) / stride;
                    int pad = Math.Max(0, (outSize - 1) * stride + span - size);
                    return (autoPad == "SAME_UPPER" ? pad / 2 : pad - pad / 2, outSize);
                }
                case "VALID":
                    return (0, (size - span) / stride + 1);
                default:
                {
                    int spatial = Site.Kernel.Count;
                    int begin = (int)Site.Pads[axis], end = (int)Site.Pads[axis + spatial];
                    return (begin, (size + begin + end - span) / stride + 1);
                }
            }
        }
    }
}
