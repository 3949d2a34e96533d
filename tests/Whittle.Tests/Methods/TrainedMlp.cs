using Whittle.Data;
using Whittle.LinearAlgebra;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;

namespace Whittle.Tests.Methods;

/// <summary>
/// A small classifier trained here, in float64, by full-batch gradient descent with momentum and weight decay (which leaves the layers nearly low-rank) on a synthetic task whose
/// inputs lie near a 3-dimensional subspace of R²⁴ (so its layers are compressible): 24 → 48 → 32 → 5, ReLU, exported as
/// MatMul + Add, MatMul + Add, Gemm (transB = 1, α = 0.5) with a symbolic batch. Deterministic for a seed.
/// </summary>
internal sealed class TrainedMlp
{
    public const int In = 24, Hidden1 = 48, Hidden2 = 32, Classes = 5, Latent = 3;

    private TrainedMlp(OnnxModel model, BatchSet calibration, BatchSet heldOut, double trainLoss)
    {
        Model = model;
        Calibration = calibration;
        HeldOut = heldOut;
        TrainLoss = trainLoss;
    }

    public OnnxModel Model { get; }

    public BatchSet Calibration { get; }

    public BatchSet HeldOut { get; }

    public double TrainLoss { get; }

    /// <summary>Trains on 600 samples (the first 300 are the calibration set, in batches of 50) and keeps 300 others as held-out data.</summary>
    public static TrainedMlp Train(int seed = 1, int steps = 400, double weightDecay = 0, double initScale = 0.2)
    {
        var rng = new Random(seed);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var centers = new double[Classes, Latent];
        for (int c = 0; c < Classes; c++) for (int k = 0; k < Latent; k++) centers[c, k] = 1.5 * Gauss();
        var mixing = new double[In, Latent];
        for (int i = 0; i < In; i++) for (int k = 0; k < Latent; k++) mixing[i, k] = Gauss() / Math.Sqrt(Latent);
        (double[][] X, int[] Y) Sample(int count)
        {
            var xs = new double[count][];
            var ys = new int[count];
            for (int s = 0; s < count; s++)
            {
                int y = rng.Next(Classes);
                var z = new double[Latent];
                for (int k = 0; k < Latent; k++) z[k] = centers[y, k] + 0.7 * Gauss();
                var x = new double[In];
                for (int i = 0; i < In; i++)
                {
                    for (int k = 0; k < Latent; k++) x[i] += mixing[i, k] * z[k];
                    x[i] += 0.05 * Gauss();
                }
                xs[s] = x;
                ys[s] = y;
            }
            return (xs, ys);
        }
        var (trainX, trainY) = Sample(600);
        var (testX, testY) = Sample(300);

        var layers = new[] { new Layer(Hidden1, In, rng, initScale), new Layer(Hidden2, Hidden1, rng, initScale), new Layer(Classes, Hidden2, rng, initScale) };
        double loss = 0;
        for (int step = 0; step < steps; step++)
        {
            foreach (var l in layers) l.ZeroGradient();
            loss = 0;
            for (int s = 0; s < trainX.Length; s++)
            {
                var a0 = trainX[s];
                var a1 = Relu(layers[0].Forward(a0));
                var a2 = Relu(layers[1].Forward(a1));
                var z = layers[2].Forward(a2);
                var (p, nll) = SoftmaxNll(z, trainY[s]);
                loss += nll / trainX.Length;
                p[trainY[s]] -= 1;
                for (int k = 0; k < Classes; k++) p[k] /= trainX.Length;
                var g2 = layers[2].Backward(a2, p);
                for (int k = 0; k < g2.Length; k++) if (a2[k] <= 0) g2[k] = 0;
                var g1 = layers[1].Backward(a1, g2);
                for (int k = 0; k < g1.Length; k++) if (a1[k] <= 0) g1[k] = 0;
                layers[0].Backward(a0, g1);
            }
            foreach (var l in layers) l.Step(0.1, 0.9, weightDecay);
        }

        var model = Export(layers);
        var calibration = Batches(trainX.Take(300).ToArray(), trainY.Take(300).ToArray(), 50, "trained-mlp train[0:300]");
        var heldOut = Batches(testX, testY, 100, "trained-mlp test");
        return new TrainedMlp(model, calibration, heldOut, loss);
    }

    private static BatchSet Batches(double[][] x, int[] y, int size, string description)
    {
        var batches = new List<InputBatch>();
        var labels = new List<HostTensor>();
        for (int start = 0; start < x.Length; start += size)
        {
            int n = Math.Min(size, x.Length - start);
            var data = new float[n * In];
            for (int s = 0; s < n; s++) for (int i = 0; i < In; i++) data[s * In + i] = (float)x[start + s][i];
            batches.Add(new InputBatch("x", HostTensor.Float(data, n, In), description));
            labels.Add(HostTensor.Int64([.. y.Skip(start).Take(n).Select(v => (long)v)], n));
        }
        return new BatchSet(batches, labels, description);
    }

    private static OnnxModel Export(Layer[] layers)
    {
        var g = new GraphProto { Name = "trained-mlp" };
        g.Input.Add(Info("x", In));
        g.Output.Add(Info("logits", Classes));
        void Init(string name, Matrix<float> m, params long[] shape) => g.Initializer.Add(OnnxTensors.FromMatrix(name, m, OnnxDataType.Float, shape));
        string current = "x";
        for (int l = 0; l < 2; l++)
        {
            var w = layers[l];
            Init($"fc{l + 1}.weight", Matrix<float>.Create(w.In, w.Out, (i, o) => (float)w.W[o, i]), w.In, w.Out);  // x·Wᵀ
            Init($"fc{l + 1}.bias", Matrix<float>.Create(1, w.Out, (_, o) => (float)w.B[o]), w.Out);
            g.Node.Add(new NodeProto { OpType = "MatMul", Name = $"fc{l + 1}", Input = { current, $"fc{l + 1}.weight" }, Output = { $"fc{l + 1}_mm" } });
            g.Node.Add(new NodeProto { OpType = "Add", Name = $"fc{l + 1}_bias", Input = { $"fc{l + 1}_mm", $"fc{l + 1}.bias" }, Output = { $"fc{l + 1}_out" } });
            g.Node.Add(new NodeProto { OpType = "Relu", Name = $"relu{l + 1}", Input = { $"fc{l + 1}_out" }, Output = { $"relu{l + 1}_out" } });
            current = $"relu{l + 1}_out";
        }
        // Gemm with transB = 1 and α = 0.5: the stored weight is 2·W (out × in).
        var last = layers[2];
        Init("fc3.weight", Matrix<float>.Create(last.Out, last.In, (o, i) => (float)(2 * last.W[o, i])), last.Out, last.In);
        Init("fc3.bias", Matrix<float>.Create(1, last.Out, (_, o) => (float)last.B[o]), last.Out);
        var gemm = new NodeProto { OpType = "Gemm", Name = "fc3", Input = { current, "fc3.weight", "fc3.bias" }, Output = { "logits" } };
        gemm.Attribute.Add(new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        gemm.Attribute.Add(new AttributeProto { Name = "alpha", Type = AttributeProto.Types.AttributeType.Float, F = 0.5f });
        g.Node.Add(gemm);
        var proto = new ModelProto { IrVersion = 8, ProducerName = "whittle-tests", Graph = g };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return OnnxModel.FromProto(proto);
    }

    private static ValueInfoProto Info(string name, int features)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = features });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)OnnxDataType.Float, Shape = shape } } };
    }

    private static double[] Relu(double[] v) => [.. v.Select(x => Math.Max(0, x))];

    private static (double[] P, double Nll) SoftmaxNll(double[] z, int y)
    {
        double max = z.Max();
        double sum = z.Sum(v => Math.Exp(v - max));
        var p = z.Select(v => Math.Exp(v - max) / sum).ToArray();
        return (p, -(z[y] - max - Math.Log(sum)));
    }

    /// <summary>y = W x + b with plain momentum SGD state.</summary>
    private sealed class Layer
    {
        public Layer(int outputs, int inputs, Random rng, double initScale)
        {
            Out = outputs;
            In = inputs;
            W = new double[outputs, inputs];
            B = new double[outputs];
            _gw = new double[outputs, inputs];
            _gb = new double[outputs];
            _vw = new double[outputs, inputs];
            _vb = new double[outputs];
            double scale = initScale * Math.Sqrt(2.0 / inputs);
            for (int o = 0; o < outputs; o++)
                for (int i = 0; i < inputs; i++)
                    W[o, i] = scale * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        }

        private readonly double[,] _gw, _vw;
        private readonly double[] _gb, _vb;

        public int Out { get; }

        public int In { get; }

        public double[,] W { get; }

        public double[] B { get; }

        public double[] Forward(double[] x)
        {
            var y = new double[Out];
            for (int o = 0; o < Out; o++)
            {
                double s = B[o];
                for (int i = 0; i < In; i++) s += W[o, i] * x[i];
                y[o] = s;
            }
            return y;
        }

        /// <summary>Adds the gradient for input x and output gradient g; returns the input gradient Wᵀg.</summary>
        public double[] Backward(double[] x, double[] g)
        {
            var gx = new double[In];
            for (int o = 0; o < Out; o++)
            {
                _gb[o] += g[o];
                for (int i = 0; i < In; i++)
                {
                    _gw[o, i] += g[o] * x[i];
                    gx[i] += W[o, i] * g[o];
                }
            }
            return gx;
        }

        public void ZeroGradient()
        {
            Array.Clear(_gw);
            Array.Clear(_gb);
        }

        public void Step(double rate, double momentum, double decay)
        {
            for (int o = 0; o < Out; o++)
            {
                _vb[o] = momentum * _vb[o] - rate * _gb[o];
                B[o] += _vb[o];
                for (int i = 0; i < In; i++)
                {
                    _vw[o, i] = momentum * _vw[o, i] - rate * (_gw[o, i] + decay * W[o, i]);
                    W[o, i] += _vw[o, i];
                }
            }
        }
    }
}
