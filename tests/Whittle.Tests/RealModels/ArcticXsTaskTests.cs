using Whittle.Evaluation;
using Whittle.Onnx;

namespace Whittle.Tests.RealModels;

public class ArcticXsTaskTests
{
    [Fact]
    public void HiddenStatesOutput_IsAnEncoder_NeverALanguageModel_AndTheGuessSaysHowToOverride()
    {
        var task = DetectedTask.Detect(OnnxModel.Load(RealModels.ArcticXs));

        Assert.Equal(ModelTask.Generic, task.Task);
        Assert.Equal("last_hidden_state", task.Output);
        Assert.StartsWith("guessed", task.Reason);
        Assert.Contains("384 wide, not the 30522-token vocabulary", task.Reason);
        Assert.Contains("--task", task.Reason);
    }
}
