using System.CommandLine;
using System.Numerics;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Decompositions;
using Whittle.IO;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Tests.Cli;

public sealed class DecomposeCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("whittle-decompose-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string PathOf(string name) => Path.Combine(_dir.FullName, name);

    private string Save<T>(string name, Matrix<T> m, bool fortran = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        string path = PathOf(name);
        if (!fortran)
        {
            Npy.Write(path, NpyArray.FromMatrix(m));
            return path;
        }
        var data = new T[m.Rows * m.Cols];
        for (int j = 0; j < m.Cols; j++)
            for (int i = 0; i < m.Rows; i++) data[j * m.Rows + i] = m[i, j];
        Npy.Write(path, NpyArray.Wrap(data, [m.Rows, m.Cols], fortranOrder: true));
        return path;
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
        });
        var root = new RootCommand { DecomposeCommand.Create(console, error) };
        int exit = root.Parse(["decompose", .. args]).Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        return (exit, output.ToString(), error.ToString());
    }

    private IReadOnlyDictionary<string, NpyArray> RunOk(params string[] args)
    {
        string outPath = PathOf("out.npz");
        File.Delete(outPath);
        var (exit, stdout, err) = Run([.. args, "--out", outPath]);
        Assert.True(exit == 0, $"exit {exit}: {err}{stdout}");
        Assert.Equal("", err);
        return Npz.Read(outPath);
    }

    private static void AssertClose<T>(MatrixView<T> expected, NpyArray actual, double tol) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Assert.Equal(typeof(T) == typeof(float) ? NpyDType.Float32 : NpyDType.Float64, actual.DType);
        var a = actual.ToMatrix<T>();
        Assert.Equal((expected.Rows, expected.Cols), (a.Rows, a.Cols));
        for (int i = 0; i < a.Rows; i++)
            for (int j = 0; j < a.Cols; j++)
            {
                double e = double.CreateTruncating(expected[i, j]), g = double.CreateTruncating(a[i, j]);
                Assert.True(Math.Abs(e - g) <= tol * (1 + Math.Abs(e)), $"({i}, {j}): {g} vs {e}");
            }
    }

    private static void AssertIndices(int[] expected, NpyArray actual)
    {
        Assert.Equal(NpyDType.Int64, actual.DType);
        Assert.Equal(expected.Select(i => (long)i), actual.ToInt64Array());
    }

    /// <summary>Z = max(A·B, 0): a ReLU activation matrix with a decaying spectrum (n × h).</summary>
    private static Matrix<T> Activations<T>(int n, int h, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var p = Blas.Multiply<double>(RandomMatrix.Gaussian<double>(n, 12, seed), RandomMatrix.Gaussian<double>(12, h, seed + 1));
        return Matrix<T>.Create(n, h, (i, j) => T.CreateTruncating(Math.Max(p[i, j], 0) + 0.01 * Math.Sin(i * 7.0 + j)));
    }

    // ---------------------------------------------------------------- id

    [Theory]
    [InlineData("cpqr", false)]
    [InlineData("cpqr", true)]
    [InlineData("gram", false)]
    [InlineData("gaussian-sketch", false)]
    [InlineData("countsketch", true)]
    public void IdMatchesTheLibrary(string variant, bool useFloat)
    {
        if (useFloat) IdCase<float>(variant, 1e-6);
        else IdCase<double>(variant, 1e-12);
    }

    private void IdCase<T>(string variant, double tol) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var z = Activations<T>(80, 30, 5);
        string input = Save("z.npy", z);
        var opts = new IdOptions(Rank: 10);
        var expected = variant switch
        {
            "gram" => InterpolativeDecompositions.FromGram(Blas.Gram<T>(z).View, opts),
            "gaussian-sketch" => InterpolativeDecompositions.FromSketch(z.View, 30, SketchKind.Gaussian, 3, opts),
            "countsketch" => InterpolativeDecompositions.FromSketch(z.View, 30, SketchKind.CountSketch, 3, opts),
            _ => InterpolativeDecompositions.Compute(z.View, opts),
        };
        var got = RunOk("id", "--input", input, "--rank", "10", "--variant", variant, "--seed", "3");
        AssertIndices(expected.Indices, got["indices"]);
        AssertClose(expected.Interpolation.View, got["T"], tol);
    }

    [Fact]
    public void IdFromAGivenGramAndByResidualTolerance()
    {
        var z = Activations<double>(60, 20, 9);
        var g = Blas.Gram<double>(z);
        var got = RunOk("id", "--input", Save("z.npy", z), "--rank", "6", "--variant", "gram", "--gram", Save("g.npy", g));
        AssertIndices(InterpolativeDecompositions.FromGram(g.View, new IdOptions(Rank: 6)).Indices, got["indices"]);

        var opts = new IdOptions(Tolerance: 0.05, ToleranceKind: IdTolerance.RelativeResidual);
        var expected = InterpolativeDecompositions.Compute(z.View, opts);
        got = RunOk("id", "--input", Save("z.npy", z), "--tolerance", "0.05", "--tolerance-kind", "residual");
        AssertIndices(expected.Indices, got["indices"]);
        AssertClose(expected.Interpolation.View, got["T"], 1e-12);
        Assert.True(expected.Error(z.View) <= 0.05 * MatrixNorms.Frobenius(z.View));
    }

    [Fact]
    public void FortranOrderInputGivesTheSameResult()
    {
        var z = Activations<float>(50, 16, 2);
        var c = RunOk("id", "--input", Save("c.npy", z), "--rank", "5");
        var f = RunOk("id", "--input", Save("f.npy", z, fortran: true), "--rank", "5");
        Assert.Equal(c["indices"].ToInt64Array(), f["indices"].ToInt64Array());
        Assert.Equal(c["T"].ToMatrix<float>().AsSpan().ToArray(), f["T"].ToMatrix<float>().AsSpan().ToArray());
        var w = RandomMatrix.Gaussian<double>(12, 9, 4);
        var sc = RunOk("svd", "--input", Save("wc.npy", w), "--rank", "3");
        var sf = RunOk("svd", "--input", Save("wf.npy", w, fortran: true), "--rank", "3");
        Assert.Equal(sc["S"].ToVector<double>(), sf["S"].ToVector<double>());
    }

    // ---------------------------------------------------------------- deim

    [Theory]
    [InlineData("reference", DeimVariant.Reference)]
    [InlineData("textbook", DeimVariant.Textbook)]
    [InlineData("qdeim", DeimVariant.QDeim)]
    public void DeimMatchesTheLibrary(string name, DeimVariant variant)
    {
        var a = RandomMatrix.Gaussian<double>(40, 25, 8);
        var basis = Svd.Compute<double>(a).U.Slice(0, 0, 40, 7).ToMatrix();
        var got = RunOk("deim", "--input", Save("u.npy", basis), "--variant", name);
        AssertIndices(Deim.SelectRows(basis.View, variant), got["indices"]);

        // --rank K: the basis is the top-K left singular vectors (seeded truncated SVD) of the input.
        var af = Matrix<float>.Create(40, 25, (i, j) => (float)a[i, j]);
        var top = TruncatedSvd.Compute<float>(af, 4, new TruncatedSvdOptions(Seed: 2)).U;
        got = RunOk("deim", "--input", Save("a.npy", af), "--variant", name, "--rank", "4", "--seed", "2");
        AssertIndices(Deim.SelectRows(top.View, variant), got["indices"]);
    }

    // ---------------------------------------------------------------- cur

    [Theory]
    [InlineData("pinv", CurCore.PseudoInverse, "reference", DeimVariant.Reference, false)]
    [InlineData("pinv", CurCore.PseudoInverse, "qdeim", DeimVariant.QDeim, true)]
    [InlineData("activation", CurCore.Activation, "textbook", DeimVariant.Textbook, true)]
    [InlineData("diag", CurCore.Diagonal, "reference", DeimVariant.Reference, true)]
    public void CurMatchesTheLibrary(string core, CurCore curCore, string deim, DeimVariant variant, bool withGram)
    {
        var w = RandomMatrix.Gaussian<double>(30, 24, 6);
        var x = Whittle.Tests.Decompositions.CurTests.AnisotropicInputs(50, 24, 7);
        var g = Blas.Gram<double>(x);
        var args = new List<string> { "cur", "--input", Save("w.npy", w), "--variant", core, "--deim", deim, "--rank", "6" };
        if (withGram) args.AddRange(["--gram", Save("g.npy", g)]);
        var got = RunOk([.. args]);
        var expected = DeimCur.Compute<double>(w, new DeimCurOptions(6, variant, curCore), withGram ? g.View : null);
        AssertIndices(expected.Rows, got["rows"]);
        AssertIndices(expected.Cols, got["cols"]);
        AssertClose(expected.C.View, got["C"], 0);
        AssertClose(expected.U.View, got["U"], 1e-12);
        AssertClose(expected.R.View, got["R"], 0);
    }

    [Fact]
    public void CurDefaultRankIsCuringsRuleAndFloatStaysFloat()
    {
        var w = Matrix<float>.Create(20, 16, (i, j) => MathF.Cos(0.3f * i * j + i));
        var got = RunOk("cur", "--input", Save("w.npy", w));
        int r = Cur.Rank(20, 16, 256);
        Assert.Equal([r], got["rows"].Shape);
        Assert.Equal(NpyDType.Float32, got["U"].DType);
        var expected = DeimCur.Compute<float>(w, new DeimCurOptions(r));
        AssertIndices(expected.Rows, got["rows"]);
        AssertClose(expected.U.View, got["U"], 1e-6);
    }

    // ---------------------------------------------------------------- svd

    [Theory]
    [InlineData("plain", false)]
    [InlineData("plain", true)]
    [InlineData("asvd", false)]
    [InlineData("whitened", false)]
    [InlineData("whitened", true)]
    public void SvdMatchesTheLibrary(string variant, bool useFloat)
    {
        if (useFloat) SvdCase<float>(variant, 2e-4);
        else SvdCase<double>(variant, 1e-10);
    }

    private void SvdCase<T>(string variant, double tol) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = 18, n = 14, k = 5;
        var w = Matrix<T>.Create(m, n, (i, j) => T.CreateTruncating(Math.Sin(i * 1.7 + j * j * 0.3) + 0.1 * i));
        var xd = Whittle.Tests.Decompositions.CurTests.AnisotropicInputs(40, n, 3, -1, 1);
        var g = Blas.Gram<T>(Matrix<T>.Create(40, n, (i, j) => T.CreateTruncating(xd[i, j])));
        var a = Enumerable.Range(0, n).Select(j => T.Sqrt(g[j, j])).ToArray();
        var factors = variant switch
        {
            "asvd" => LowRank.ActivationAware<T>(w, a, k, 0.25),
            "whitened" => LowRank.Whitened<T>(w, g, k),
            _ => LowRank.Svd<T>(w, k),
        };
        var args = new List<string> { "svd", "--input", Save("w.npy", w), "--variant", variant, "--rank", $"{k}", "--alpha", "0.25" };
        if (variant != "plain") args.AddRange(["--gram", Save("g.npy", g)]);
        var got = RunOk([.. args]);

        var s = got["S"].ToVector<T>();
        Assert.Equal(factors.SingularValues[..k], s);
        var u = got["U"].ToMatrix<T>();
        var vt = got["Vt"].ToMatrix<T>();
        for (int j = 0; j < k; j++)
        {
            T root = T.Sqrt(s[j]);
            for (int i = 0; i < m; i++) u[i, j] *= root;
            for (int c = 0; c < n; c++) vt[j, c] *= root;
        }
        AssertClose(factors.L.View, NpyArray.FromMatrix(u), tol);
        AssertClose(factors.R.View, NpyArray.FromMatrix(vt), tol);
        if (variant == "plain")
        {
            var svd = Svd.Compute<T>(w);
            var uu = got["U"].ToMatrix<T>();
            for (int j = 0; j < k; j++) // columns agree up to sign
            {
                T sign = T.Sign(uu[0, j]) == T.Sign(svd.U[0, j]) ? T.One : -T.One;
                for (int i = 0; i < m; i++)
                    Assert.True(double.CreateTruncating(T.Abs(uu[i, j] - sign * svd.U[i, j])) <= tol * 10);
            }
        }
    }

    [Fact]
    public void SvdToleranceKeepsTheSmallestSufficientRank()
    {
        var w = TestMatrices.WithSingularValues<double>(12, 10, [8, 4, 2, 1, 0.5, 0.25, 0.1, 0.05, 0.01, 0], seed: 1);
        double[] sigma = [8, 4, 2, 1, 0.5, 0.25, 0.1, 0.05, 0.01, 0];
        double total = Math.Sqrt(sigma.Sum(s => s * s));
        double e = 0.06;
        int expected = Enumerable.Range(0, 11).First(k => Math.Sqrt(sigma.Skip(k).Sum(s => s * s)) <= e * total);
        var got = RunOk("svd", "--input", Save("w.npy", w), "--tolerance", $"{e}");
        Assert.Equal([expected], got["S"].Shape);
        Assert.Equal(expected, DecomposeCommand.RankForTolerance(sigma, e));
        Assert.Equal(0, DecomposeCommand.RankForTolerance(sigma, 1));
        Assert.Equal(9, DecomposeCommand.RankForTolerance(sigma, 0));
    }

    // ---------------------------------------------------------------- errors

    private void AssertFails(string expectedInMessage, params string[] args)
    {
        string outPath = PathOf("fail.npz");
        var (exit, _, err) = Run([.. args, "--out", outPath]);
        Assert.NotEqual(0, exit);
        Assert.False(File.Exists(outPath), "no output file on failure");
        Assert.Empty(Directory.GetFiles(_dir.FullName, "*.tmp*"));
        Assert.Contains(expectedInMessage, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void BadInputFilesFailWithTheirNameAndWriteNothing()
    {
        var w = RandomMatrix.Gaussian<double>(8, 6, 1);
        string good = Save("good.npy", w);

        string missing = PathOf("missing.npy");
        AssertFails(missing, "svd", "--input", missing, "--rank", "2");

        string magic = PathOf("magic.npy");
        File.WriteAllBytes(magic, [.. "NOTNUMPY file contents"u8]);
        AssertFails(magic, "svd", "--input", magic, "--rank", "2");

        string truncated = PathOf("truncated.npy");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length - 10)]);
        AssertFails(truncated, "id", "--input", truncated, "--rank", "2");

        string ints = PathOf("ints.npy");
        Npy.Write(ints, NpyArray.FromInt64([1, 2, 3, 4], [2, 2]));
        AssertFails(ints, "cur", "--input", ints, "--rank", "1");

        string nan = PathOf("nan.npy");
        var bad = w.Clone();
        bad[3, 2] = double.NaN;
        Npy.Write(nan, NpyArray.FromMatrix(bad));
        AssertFails(nan, "deim", "--input", nan);

        string inf = PathOf("inf.npy");
        bad[3, 2] = double.PositiveInfinity;
        Npy.Write(inf, NpyArray.FromMatrix(bad));
        AssertFails(inf, "svd", "--input", inf, "--rank", "1");

        string vector = PathOf("vector.npy");
        Npy.Write(vector, NpyArray.FromVector<double>([1, 2, 3]));
        AssertFails(vector, "svd", "--input", vector, "--rank", "1");

        string cube = PathOf("cube.npy");
        Npy.Write(cube, NpyArray.Wrap(new float[24], [2, 3, 4]));
        AssertFails(cube, "id", "--input", cube, "--rank", "1");
    }

    [Fact]
    public void ContradictoryOrMissingOptionsFailWithTheFileNameAndWriteNothing()
    {
        var w = RandomMatrix.Gaussian<double>(8, 6, 1);
        string input = Save("w.npy", w);
        string badGram = Save("g5.npy", Matrix<double>.Identity(5));
        AssertFails(input, "svd", "--input", input, "--rank", "2", "--tolerance", "0.1");
        AssertFails(input, "id", "--input", input, "--rank", "2", "--tolerance", "0.1");
        AssertFails(input, "svd", "--input", input);
        AssertFails(input, "id", "--input", input);
        AssertFails(input, "svd", "--input", input, "--rank", "2", "--variant", "whitened");
        AssertFails(input, "svd", "--input", input, "--rank", "2", "--variant", "asvd");
        AssertFails(input, "cur", "--input", input, "--variant", "activation");
        AssertFails(input, "cur", "--input", input, "--variant", "diag");
        AssertFails(badGram, "svd", "--input", input, "--rank", "2", "--variant", "whitened", "--gram", badGram);
        AssertFails(badGram, "cur", "--input", input, "--rank", "2", "--variant", "activation", "--gram", badGram);
        AssertFails(badGram, "id", "--input", input, "--rank", "2", "--variant", "gram", "--gram", badGram);
        AssertFails(input, "svd", "--input", input, "--rank", "7");
        AssertFails(input, "cur", "--input", input, "--rank", "0");
        AssertFails(input, "deim", "--input", input, "--rank", "2", "--tolerance", "0.5");
        string wide = Save("wide.npy", RandomMatrix.Gaussian<double>(3, 5, 2));
        AssertFails(wide, "deim", "--input", wide);
    }

    [Fact]
    public void AFailedRunLeavesAnExistingOutputUntouched()
    {
        string input = Save("w.npy", RandomMatrix.Gaussian<double>(8, 6, 1));
        string outPath = PathOf("keep.npz");
        File.WriteAllText(outPath, "previous");
        var (exit, _, err) = Run("svd", "--input", input, "--rank", "2", "--variant", "whitened", "--out", outPath);
        Assert.NotEqual(0, exit);
        Assert.Contains(input, err);
        Assert.Equal("previous", File.ReadAllText(outPath));
    }

    [Fact]
    public void ReaderAndInputFailuresAreExpectedErrorsButBugsAreNot()
    {
        Assert.True(Whittle.Cli.CliErrors.IsExpected(new FileNotFoundException("x")));
        Assert.True(Whittle.Cli.CliErrors.IsExpected(new InvalidDataException("x")));
        Assert.True(Whittle.Cli.CliErrors.IsExpected(new EndOfStreamException("x")));
        Assert.True(Whittle.Cli.CliErrors.IsExpected(new NotSupportedException("x")));
        Assert.True(Whittle.Cli.CliErrors.IsExpected(new System.Text.DecoderFallbackException("x")));
        Assert.True(Whittle.Cli.CliErrors.IsExpected(new NotPositiveDefiniteException(2, -1.0)));
        Assert.False(Whittle.Cli.CliErrors.IsExpected(new NullReferenceException()));
        Assert.False(Whittle.Cli.CliErrors.IsExpected(new InvalidOperationException()));
    }
}
