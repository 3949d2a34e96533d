using Whittle.Data;
using Whittle.Runtime;

namespace Whittle.Tests.Data;

public class ExampleOverlapTests
{
    private static BatchSet Set(float[][] rows, int batchSize, long[]? ids = null)
    {
        var batches = new List<InputBatch>();
        for (int s = 0; s < rows.Length; s += batchSize)
        {
            int n = Math.Min(batchSize, rows.Length - s);
            var tensors = new List<KeyValuePair<string, HostTensor>> { new("x", HostTensor.Float([.. rows.Skip(s).Take(n).SelectMany(r => r)], n, 3)) };
            if (ids is not null) tensors.Add(new("id", HostTensor.Int64([.. ids.Skip(s).Take(n)], n)));
            batches.Add(new InputBatch(tensors));
        }
        return new BatchSet(batches);
    }

    [Fact]
    public void SharedExamplesAreCountedWhateverTheBatchingAndOrder()
    {
        float[][] a = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 1]];
        float[][] b = [[7, 8, 9], [1, 2, 3.0001f], [4, 5, 6], [4, 5, 6], [2, 2, 2]];
        Assert.Equal(3, ExampleOverlap.Count(Set(a, 3), Set(b, 2)));   // [7,8,9] and [4,5,6] twice; 3.0001 differs
        Assert.Equal(2, ExampleOverlap.Count(Set(b, 5), Set(a, 1)));
        Assert.Equal(0, ExampleOverlap.Count(Set(a, 4), Set([[2, 2, 2]], 1)));
    }

    [Fact]
    public void EveryInputTakesPart()
    {
        float[][] x = [[1, 2, 3], [1, 2, 3]];
        Assert.Equal(1, ExampleOverlap.Count(Set(x, 2, [10, 11]), Set(x, 1, [11, 12])));
    }
}
