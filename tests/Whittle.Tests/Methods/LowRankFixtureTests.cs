using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Evaluation;

namespace Whittle.Tests.Methods;

/// <summary>The low-rank methods on the trained Fashion-MNIST MLP fixture (fixtures/fashion-mnist: 1,000 training images for calibration, 2,000 held-out test images).</summary>
public class LowRankFixtureTests
{
    private static string Folder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Whittle.slnx"))) return Path.Combine(dir.FullName, "fixtures", "fashion-mnist");
        throw new DirectoryNotFoundException("The repository root (Whittle.slnx) is not above the test binaries.");
    }

    private static (OnnxModel Model, BatchSet Calibration, BatchSet HeldOut) Mlp()
    {
        string f = Folder();
        var model = OnnxModel.Load(Path.Combine(f, "mlp.onnx"));
        BatchSet Load(string name) => ModelData.Load(model, new DataSource(Path.Combine(f, $"{name}-images-idx3-ubyte.gz"), Path.Combine(f, $"{name}-labels-idx1-ubyte.gz"))).Batches(250);
        return (model, Load("calib"), Load("heldout"));
    }

    /// <summary>Mean cross-entropy, accuracy and the argmax of every example, computed here from ORT's logits.</summary>
    private static (double Loss, double Accuracy, List<int> Predictions) Score(OnnxModel model, BatchSet batches)
    {
        using var session = TappedSession.Create(model, []);
        double loss = 0;
        var predictions = new List<int>();
        int correct = 0;
        for (int b = 0; b < batches.Count; b++)
        {
            var logits = session.Run(batches[b])["logits"].AsFloats();
            var labels = batches.Labels![b].AsInt64();
            for (int i = 0; i < labels.Length; i++)
            {
                var z = logits.AsSpan(i * 10, 10);
                loss -= EvalTestModels.LogSoftmax(z)[labels[i]];
                int p = EvalTestModels.ArgMax(z);
                predictions.Add(p);
                if (p == labels[i]) correct++;
            }
        }
        return (loss / predictions.Count, (double)correct / predictions.Count, predictions);
    }

    [Fact]
    public void CompactModeWithASmallToleranceHalvesTheMlpAndKeepsItsHeldOutAccuracy()
    {
        var (model, calibration, heldOut) = Mlp();
        const double tolerance = 0.005;
        var result = Assert.Single(new JointLowRank(new JointLowRankOptions { Mode = LowRankMode.Compact, LossTolerance = tolerance, Loss = LowRankLoss.Task })
            .Compress(new CompressionJob(model, calibration), [CompressionBudget.MethodDefault]));

        var (_, originalAccuracy, originalPredictions) = Score(model, heldOut);
        var calibrationLoss = Score(model, calibration).Loss;
        Assert.True(Score(result.Model, calibration).Loss <= calibrationLoss + tolerance + 1e-6);
        Assert.True(result.Report.After.Parameters <= 0.5 * result.Report.Before.Parameters, $"{result.Report.After.Parameters} of {result.Report.Before.Parameters}");
        var (_, accuracy, predictions) = Score(result.Model, heldOut);
        double agreement = predictions.Zip(originalPredictions).Count(p => p.First == p.Second) / (double)predictions.Count;
        Assert.True(accuracy >= originalAccuracy - 0.005, $"held-out accuracy {accuracy} vs {originalAccuracy}");
        Assert.True(agreement >= 0.98, $"agreement {agreement}");
    }
}
