using Whittle.LinearAlgebra;

namespace Whittle.Tests.LinearAlgebra;

public class MatrixViewTests
{
    private static Matrix<double> Numbered(int rows, int cols) => Matrix<double>.Create(rows, cols, (i, j) => 100 * i + j);

    [Fact]
    public void SliceOfATransposeAddressesTheRightElements()
    {
        var m = Numbered(5, 7);
        var v = m.Transpose().Slice(2, 1, 3, 4); // rows 2..4 of Mᵀ = columns 2..4 of M
        Assert.Equal(3, v.Rows);
        Assert.Equal(4, v.Cols);
        Assert.False(v.IsRowMajor);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(m[1 + j, 2 + i], v[i, j]);
    }

    [Fact]
    public void WritesThroughAViewReachTheMatrix()
    {
        var m = Numbered(4, 4);
        m.Slice(1, 1, 2, 2).Fill(-1);
        m.Transpose()[3, 0] = 42; // M[0, 3]
        Assert.Equal(-1, m[1, 1]);
        Assert.Equal(-1, m[2, 2]);
        Assert.Equal(42, m[0, 3]);
        Assert.Equal(103, m[1, 3]);
    }

    [Fact]
    public void CopyToTransposesAcrossLayouts()
    {
        var m = Numbered(37, 70);
        var t = m.Transpose().ToMatrix();
        Assert.True(t.View.IsRowMajor);
        for (int i = 0; i < 70; i++)
            for (int j = 0; j < 37; j++)
                Assert.Equal(m[j, i], t[i, j]);
    }

    [Fact]
    public void OutOfRangeSliceSaysWhatWasExpected()
    {
        var m = Numbered(3, 3);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => m.Slice(2, 0, 2, 3));
        Assert.Equal("rows", ex.ParamName);
        Assert.Contains("0..3", ex.Message);
    }

    [Fact]
    public void EmptyMatricesAreValid()
    {
        var m = new Matrix<float>(0, 5);
        Assert.True(m.View.IsEmpty);
        Assert.Equal(5, m.Transpose().Rows);
        Assert.Equal(0, Blas.Multiply<float>(m, new Matrix<float>(5, 3)).Rows);
    }

    [Fact]
    public void DataLengthMustMatchTheShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => new Matrix<float>(2, 3, new float[5]));
        Assert.Equal("data", ex.ParamName);
    }
}
