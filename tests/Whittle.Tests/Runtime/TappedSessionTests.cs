using Whittle.Data;
using Whittle.Onnx;
using Whittle.Runtime;

namespace Whittle.Tests.Runtime;

public class TappedSessionTests
{
    [Fact]
    public void Taps_untyped_intermediates_and_matches_plain_outputs()
    {
        var model = RuntimeModels.Mlp([6, 5, 4]);
        var x = RuntimeModels.RandomFloats(1, 3, 6);
        using var plain = TappedSession.Create(model, []);
        using var tapped = TappedSession.Create(model, ["h1", "mm0", "X"]);
        Assert.Equal(["y"], plain.OutputNames);
        Assert.Equal(["y", "h1", "mm0", "X"], tapped.OutputNames);
        var y = plain.Run(new InputBatch("X", x))["y"];
        var outs = tapped.Run(new InputBatch("X", x));
        Assert.Equal(y.AsFloats(), outs["y"].AsFloats());
        Assert.Equal([3, 5], outs["h1"].Shape);
        Assert.Equal(x.AsFloats(), outs["X"].AsFloats());
        // h1 = relu(mm0 + B0), checked directly.
        var mm0 = outs["mm0"].AsFloats();
        var b0 = model.Graph.GetInitializer("B0").ToMatrix<float>().AsSpan().ToArray();
        var h1 = outs["h1"].AsFloats();
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) Assert.Equal(MathF.Max(0, mm0[i * 5 + j] + b0[j]), h1[i * 5 + j]);
        Assert.Equal(["y"], model.Proto.Graph.Output.Select(o => o.Name)); // the caller's model is untouched
    }

    [Fact]
    public void Unknown_tap_names_it_and_lists_close_matches()
    {
        var model = RuntimeModels.Mlp([6, 5, 4]);
        var ex = Assert.Throws<ArgumentException>(() => TappedSession.Create(model, ["mm_0"]));
        Assert.Contains("'mm_0'", ex.Message);
        Assert.Contains("'mm0'", ex.Message);
    }

    [Fact]
    public void Input_mismatches_name_the_input_and_expected_vs_got()
    {
        var model = RuntimeModels.Mlp([6, 5, 4]);
        using var s = TappedSession.Create(model, []);
        var wrongShape = Assert.Throws<ArgumentException>(() => s.Run(new InputBatch("X", RuntimeModels.RandomFloats(1, 3, 7))));
        Assert.Contains("'X'", wrongShape.Message);
        Assert.Contains("[?,6]", wrongShape.Message);
        Assert.Contains("[3,7]", wrongShape.Message);
        var wrongType = Assert.Throws<ArgumentException>(() => s.Run(new InputBatch("X", HostTensor.Int64(new long[18], 3, 6))));
        Assert.Contains("'X'", wrongType.Message);
        Assert.Contains("float", wrongType.Message);
        Assert.Contains("int64", wrongType.Message);
        var wrongRank = Assert.Throws<ArgumentException>(() => s.Run(new InputBatch("X", RuntimeModels.RandomFloats(1, 18))));
        Assert.Contains("[18]", wrongRank.Message);
        var unknown = Assert.Throws<ArgumentException>(() => s.Run(new Dictionary<string, HostTensor> { ["X"] = RuntimeModels.RandomFloats(1, 3, 6), ["Z"] = RuntimeModels.RandomFloats(1, 1) }));
        Assert.Contains("'Z'", unknown.Message);
        var missing = Assert.Throws<ArgumentException>(() => s.Run(new Dictionary<string, HostTensor>()));
        Assert.Contains("'X' is missing", missing.Message);
        var badOutput = Assert.Throws<ArgumentException>(() => s.Run(new InputBatch("X", RuntimeModels.RandomFloats(1, 3, 6)), ["h1"]));
        Assert.Contains("'h1'", badOutput.Message);
    }

    [Fact]
    public void Dispose_twice_is_safe_and_run_after_dispose_throws()
    {
        var s = TappedSession.Create(RuntimeModels.Mlp([3, 2]), []);
        s.Dispose();
        s.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.Run(new InputBatch("X", RuntimeModels.RandomFloats(1, 1, 3))));
    }
}

/// <summary>Working-set figures are process-wide: these run alone (<see cref="Compression.StreamCollection"/>).</summary>
[Collection(nameof(Compression.StreamCollection))]
public class TappedSessionMemoryTests
{
    [Fact]
    public void Many_sessions_and_runs_release_native_memory()
    {
        var model = RuntimeModels.Mlp([64, 64, 8]);
        var x = RuntimeModels.RandomFloats(2, 32, 64);
        var batch = new InputBatch("X", x);
        using (var warm = TappedSession.Create(model, ["h1"])) warm.Run(batch);
        GC.Collect();
        long before = Environment.WorkingSet;
        for (int i = 0; i < 60; i++)
        {
            using var s = TappedSession.Create(model, ["h1"]);
            for (int r = 0; r < 20; r++) s.Run(batch);
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long growth = Environment.WorkingSet - before;
        Assert.True(growth < 64L << 20, $"working set grew by {growth >> 20} MiB over 60 sessions × 20 runs");
    }
}
