using System.CommandLine;
using System.Diagnostics;
using System.Numerics;
using Spectre.Console;
using Whittle.Decompositions;
using Whittle.IO;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;

namespace Whittle.Cli.Commands;

/// <summary>
/// <c>whittle decompose id|deim|cur|svd --input M.npy … --out OUT.npz</c>: one matrix decomposition of a NumPy
/// matrix, written as an .npz archive.
/// </summary>
/// <remarks>
/// The input is a 2-D float32 or float64 .npy array (C or Fortran order); the computation runs in the file's precision and
/// the outputs have that dtype (indices are int64). --gram files are converted to the input's precision. Every failure
/// (missing or malformed file, non-finite value, wrong shape, contradictory options) prints one line naming the file and
/// what was expected, returns exit code 1, and writes nothing: the archive is written (atomically) only after success.
/// <list type="bullet">
/// <item><c>id</c>: column interpolative decomposition Z ≈ Z[:, indices]·T → <c>indices</c>, <c>T</c>.</item>
/// <item><c>deim</c>: DEIM rows of a basis (the input, or its top-K left singular vectors) → <c>indices</c>.</item>
/// <item><c>cur</c>: CURing's CUR decomposition (DeimCur) → <c>rows</c>, <c>cols</c>, <c>C</c>, <c>U</c>, <c>R</c>.</item>
/// <item><c>svd</c>: rank-k approximation Ŵ = U·diag(S)·Vt (plain, ASVD or whitened) → <c>U</c>, <c>S</c>, <c>Vt</c>.</item>
/// </list>
/// </remarks>
internal static class DecomposeCommand
{
    /// <summary>The command, printing to the process console (summary to stdout via Spectre, errors to stderr).</summary>
    internal static Command Create() => Create(console: null, error: null);

    /// <summary>The command, printing the summary to <paramref name="console"/> and one-line errors to <paramref name="error"/>
    /// (defaults: <see cref="AnsiConsole.Console"/> and <see cref="Console.Error"/>).</summary>
    internal static Command Create(IAnsiConsole? console, TextWriter? error)
    {
        var io = new Io(console, error);
        var cmd = new Command("decompose", "Decompose one matrix read from a .npy file and write the factors to an .npz archive.");
        cmd.Subcommands.Add(CreateId(io));
        cmd.Subcommands.Add(CreateDeim(io));
        cmd.Subcommands.Add(CreateCur(io));
        cmd.Subcommands.Add(CreateSvd(io));
        return cmd;
    }

    private sealed record Io(IAnsiConsole? ConsoleOverride, TextWriter? ErrorOverride)
    {
        public IAnsiConsole Console => ConsoleOverride ?? AnsiConsole.Console;
        public TextWriter Error => ErrorOverride ?? System.Console.Error;
    }

    // ------------------------------------------------------------------ shared options

    private sealed class Common
    {
        public readonly Option<FileInfo> Input = new("--input", "-i") { Description = "The input matrix: a 2-D float32 or float64 .npy file.", Required = true };
        public readonly Option<FileInfo> Out = new("--out", "-o") { Description = "The .npz archive to write (replaced atomically).", Required = true };
        public readonly Option<FileInfo?> Gram = new("--gram") { Description = "The Gram matrix G = XᵀX (.npy, n × n) of the inputs X of the layer." };
        public readonly Option<int> Seed = new("--seed") { Description = "Seed of the randomized parts (sketches, truncated SVD).", DefaultValueFactory = _ => 0 };

        public Option<string> Variant(string description, params string[] names)
        {
            var o = new Option<string>("--variant") { Description = description, DefaultValueFactory = _ => names[0] };
            o.AcceptOnlyFromAmong(names);
            return o;
        }

        public void AddTo(Command cmd)
        {
            cmd.Options.Add(Input);
            cmd.Options.Add(Out);
            cmd.Options.Add(Gram);
            cmd.Options.Add(Seed);
        }
    }

    private static Option<int?> RankOption(string description) => new("--rank", "-k") { Description = description };

    private static Option<double?> ToleranceOption(string description) => new("--tolerance") { Description = description };

    /// <summary>Runs <paramref name="body"/>, turning expected failures into one line on the error writer and exit code 1.
    /// Messages that do not name a file already get the input file's path in front.</summary>
    private static int Guard(Io io, ParseResult parse, Common common, Func<string, int> body)
    {
        string input = parse.GetValue(common.Input)!.FullName;
        try
        {
            return body(input);
        }
        catch (Exception ex) when (CliErrors.IsExpected(ex))
        {
            string message = ex.Message.ReplaceLineEndings(" ");
            bool namesFile = message.Contains(input, StringComparison.Ordinal)
                || parse.GetValue(common.Gram) is { } g && message.Contains(g.FullName, StringComparison.Ordinal);
            io.Error.WriteLine($"error: {(namesFile ? "" : input + ": ")}{message}");
            return 1;
        }
    }

    // ------------------------------------------------------------------ id

    private static Command CreateId(Io io)
    {
        var common = new Common();
        var variant = common.Variant(
            "cpqr: column-pivoted QR of Z; gram: pivoted Cholesky of ZᵀZ (from --gram, or computed); gaussian-sketch / countsketch: " +
            "CPQR of a random row sketch S·Z (--sketch-rows).", "cpqr", "gram", "gaussian-sketch", "countsketch");
        var rank = RankOption("Keep k columns.");
        var tolerance = ToleranceOption("Keep the fewest columns meeting this relative tolerance (see --tolerance-kind).");
        var kind = new Option<string>("--tolerance-kind")
        {
            Description = "diagonal: |r_{k+1,k+1}| ≤ ε·|r_11|; residual: ‖Z − Z[:, I]·T‖_F ≤ ε·‖Z‖_F.",
            DefaultValueFactory = _ => "diagonal",
        };
        kind.AcceptOnlyFromAmong("diagonal", "residual");
        var sketchRows = new Option<int?>("--sketch-rows")
        {
            Description = "Rows s of the sketch. Default: 2k + 10 with --rank k (k + 10 suffices for a Gaussian sketch; CountSketch needs " +
                "more), h + 10 with --tolerance (the rank can reach h, the number of columns).",
        };
        var cmd = new Command("id", "Column interpolative decomposition Z ≈ Z[:, indices]·T of an activation matrix Z (rows = samples, " +
            "columns = neurons). Writes indices (int64, pivot order) and T (k × h).") { variant, rank, tolerance, kind, sketchRows };
        common.AddTo(cmd);
        cmd.SetAction(parse => Guard(io, parse, common, input =>
        {
            string v = parse.GetValue(variant)!;
            var options = new IdOptions(parse.GetValue(rank), parse.GetValue(tolerance),
                parse.GetValue(kind) == "residual" ? IdTolerance.RelativeResidual : IdTolerance.RelativeDiagonal);
            RequireRankOrTolerance(input, options.Rank, options.Tolerance);
            var gramFile = parse.GetValue(common.Gram);
            if (gramFile is not null && v != "gram")
                throw new ArgumentException($"{input}: --gram is used only by --variant gram (as ZᵀZ), not by --variant {v}.");
            var job = new IdJob(v, options, gramFile?.FullName, parse.GetValue(sketchRows), parse.GetValue(common.Seed));
            return Dispatch(io, input, parse.GetValue(common.Out)!.FullName, job);
        }));
        return cmd;
    }

    private sealed record IdJob(string Variant, IdOptions Options, string? Gram, int? SketchRows, int Seed) : IJob
    {
        public Outcome Run<T>(Matrix<T> z, string input) where T : unmanaged, IFloatingPointIeee754<T>
        {
            int n = z.Rows, h = z.Cols;
            if (Options.Rank is int k && (k < 0 || k > h))
                throw new ArgumentException($"{input}: --rank {k} is out of range; expected 0..{h} (the number of columns of the {n}×{h} matrix).");
            InterpolativeDecomposition<T> id;
            string how;
            switch (Variant)
            {
                case "gram":
                    var g = Gram is null ? Blas.Gram<T>(z) : ReadSquare<T>(Gram, h, $"ZᵀZ for the {n}×{h} input {input}");
                    id = InterpolativeDecompositions.FromGram(g.View, Options);
                    how = Gram is null ? "pivoted Cholesky of ZᵀZ" : "pivoted Cholesky of the given ZᵀZ";
                    break;
                case "gaussian-sketch" or "countsketch":
                    int s = SketchRows ?? (Options.Rank is int r ? 2 * r + 10 : h + 10);
                    if (s < 1) throw new ArgumentException($"{input}: --sketch-rows {s}: expected at least 1.");
                    var kind = Variant == "countsketch" ? SketchKind.CountSketch : SketchKind.Gaussian;
                    id = InterpolativeDecompositions.FromSketch(z.View, s, kind, Seed, Options);
                    how = $"CPQR of a {s}-row {kind} sketch";
                    break;
                default:
                    id = InterpolativeDecompositions.Compute(z.View, Options);
                    how = "column-pivoted QR";
                    break;
            }
            double norm = MatrixNorms.Frobenius(z.View);
            double error = norm == 0 ? 0 : id.Error(z.View) / norm;
            return new Outcome(
                [new("indices", Indices(id.Indices)), new("T", NpyArray.FromMatrix(id.Interpolation))],
                [
                    $"ID ({how}): {n}×{h} → k = {id.Rank} columns{(id.UsedPseudoInverse ? " (R11 numerically singular: pseudo-inverse used)" : "")}",
                    $"|r_k+1,k+1| / |r_11| = {id.DiagonalRatio:0.000e+00}, estimated ‖R22‖_F / ‖·‖_F = {id.RelativeResidual:0.000e+00}",
                    $"‖Z − Z[:, I]·T‖_F / ‖Z‖_F = {error:0.000e+00}",
                ]);
        }
    }

    // ------------------------------------------------------------------ deim

    private static Command CreateDeim(Io io)
    {
        var common = new Common();
        var variant = common.Variant("reference: the CURing code's single-row deflation; textbook: Chaturantabut–Sorensen; qdeim: pivoted QR of Uᵀ.",
            "reference", "textbook", "qdeim");
        var rank = RankOption("Use the top-K left singular vectors of the input as the basis (randomized SVD, --seed) instead of the input itself.");
        var tolerance = ToleranceOption("Use the top-K left singular vectors, K the smallest with sqrt(Σ_{j>K} σ_j²) ≤ E·sqrt(Σ σ_j²) (dense SVD).");
        var cmd = new Command("deim", "DEIM row selection from an n × r basis (n ≥ r). Writes indices (int64, selection order).") { variant, rank, tolerance };
        common.AddTo(cmd);
        cmd.SetAction(parse => Guard(io, parse, common, input =>
        {
            if (parse.GetValue(rank) is not null && parse.GetValue(tolerance) is not null)
                throw new ArgumentException($"{input}: give at most one of --rank and --tolerance, not both.");
            if (parse.GetValue(common.Gram) is not null)
                throw new ArgumentException($"{input}: deim does not use --gram.");
            var job = new DeimJob(ParseDeim(parse.GetValue(variant)!), parse.GetValue(rank), parse.GetValue(tolerance), parse.GetValue(common.Seed));
            return Dispatch(io, input, parse.GetValue(common.Out)!.FullName, job);
        }));
        return cmd;
    }

    private sealed record DeimJob(DeimVariant Variant, int? Rank, double? Tolerance, int Seed) : IJob
    {
        public Outcome Run<T>(Matrix<T> a, string input) where T : unmanaged, IFloatingPointIeee754<T>
        {
            int n = a.Rows, c = a.Cols;
            Matrix<T> basis;
            string source;
            if (Rank is int k)
            {
                if (k < 1 || k > Math.Min(n, c))
                    throw new ArgumentException($"{input}: --rank {k} is out of range; expected 1..{Math.Min(n, c)} for the {n}×{c} matrix.");
                basis = TruncatedSvd.Compute<T>(a, k, new TruncatedSvdOptions(Seed: Seed)).U;
                source = $"top {k} left singular vectors of the {n}×{c} input";
            }
            else if (Tolerance is double e)
            {
                CheckTolerance(input, e);
                var svd = Svd.Compute<T>(a);
                int kk = Math.Max(1, RankForTolerance(svd.S, e));
                basis = svd.U.Slice(0, 0, n, kk).ToMatrix();
                source = $"top {kk} left singular vectors of the {n}×{c} input (tolerance {e:G3})";
            }
            else
            {
                if (c > n || c == 0)
                    throw new ArgumentException($"{input}: expected a basis n × r with n ≥ r ≥ 1, got {n}×{c}; pass --rank K to use the top-K left singular vectors instead.");
                basis = a;
                source = $"the {n}×{c} basis";
            }
            int[] p = Deim.SelectRows(basis.View, Variant);
            var sub = Matrix<T>.Create(p.Length, basis.Cols, (i, j) => basis[p[i], j]);
            var sigma = Svd.SingularValues<T>(sub);
            double smallest = double.CreateTruncating(sigma[^1]);
            return new Outcome(
                [new("indices", Indices(p))],
                [$"DEIM ({Variant}) on {source}: {p.Length} rows", $"error constant ‖(PᵀU)⁻¹‖₂ = {(smallest > 0 ? 1 / smallest : double.PositiveInfinity):0.000e+00}"]);
        }
    }

    // ------------------------------------------------------------------ cur

    private static Command CreateCur(Io io)
    {
        var common = new Common();
        var variant = common.Variant("The core U: pinv: C⁺·W·R⁺ (the paper's); activation: argmin ‖(W − CUR)·Xᵀ‖_F (needs --gram); " +
            "diag: C⁺·(W·D)·(R·D)⁺, D = diag(sqrt(G_jj)) (needs --gram).", "pinv", "activation", "diag");
        var deim = new Option<string>("--deim") { Description = "The DEIM variant selecting rows and columns.", DefaultValueFactory = _ => "reference" };
        deim.AcceptOnlyFromAmong("reference", "textbook", "qdeim");
        var rank = RankOption("Rows and columns r to keep. Default: CURing's min(256, break-even rank).");
        var cmd = new Command("cur", "CURing's CUR decomposition W ≈ C·U·R of a weight matrix (out × in): DEIM on the top-r singular vectors of " +
            "W, or of the WANDA scores |W_ij|·sqrt(G_jj) with --gram. Writes rows, cols (int64), C, U, R.") { variant, deim, rank };
        common.AddTo(cmd);
        cmd.SetAction(parse => Guard(io, parse, common, input =>
        {
            var core = parse.GetValue(variant) switch { "activation" => CurCore.Activation, "diag" => CurCore.Diagonal, _ => CurCore.PseudoInverse };
            var gramFile = parse.GetValue(common.Gram);
            if (core != CurCore.PseudoInverse && gramFile is null)
                throw new ArgumentException($"{input}: --variant {parse.GetValue(variant)} needs --gram G.npy, the n × n Gram matrix XᵀX of the layer's inputs.");
            var job = new CurJob(core, ParseDeim(parse.GetValue(deim)!), parse.GetValue(rank), gramFile?.FullName, parse.GetValue(common.Seed));
            return Dispatch(io, input, parse.GetValue(common.Out)!.FullName, job);
        }));
        return cmd;
    }

    private sealed record CurJob(CurCore Core, DeimVariant Deim, int? Rank, string? Gram, int Seed) : IJob
    {
        public Outcome Run<T>(Matrix<T> w, string input) where T : unmanaged, IFloatingPointIeee754<T>
        {
            int m = w.Rows, n = w.Cols;
            int r = Rank ?? Cur.Rank(m, n, 256);
            if (Rank is null && r == 0)
                throw new ArgumentException($"{input}: no rank saves parameters for a {m}×{n} matrix; pass --rank to choose one.");
            if (r < 1 || r > Math.Min(m, n))
                throw new ArgumentException($"{input}: --rank {r} is out of range; expected 1..{Math.Min(m, n)} for the {m}×{n} matrix.");
            var g = Gram is null ? null : ReadSquare<T>(Gram, n, $"XᵀX for the {m}×{n} weight {input}");
            var cur = DeimCur.Compute(w.View, new DeimCurOptions(r, Deim, Core, Seed), g?.View);
            long dense = (long)m * n;
            return new Outcome(
                [
                    new("rows", Indices(cur.Rows)), new("cols", Indices(cur.Cols)),
                    new("C", NpyArray.FromMatrix(cur.C)), new("U", NpyArray.FromMatrix(cur.U)), new("R", NpyArray.FromMatrix(cur.R)),
                ],
                [
                    $"CUR ({Deim} DEIM{(g is null ? "" : ", WANDA-weighted selection")}, {Core} core): {m}×{n} → r = {r}",
                    $"parameters {cur.ParameterCount} of {dense} ({100.0 * cur.ParameterCount / dense:F1} %), ‖W − C·U·R‖_F / ‖W‖_F = {cur.RelativeError(w.View):0.000e+00}",
                ]);
        }
    }

    // ------------------------------------------------------------------ svd

    private static Command CreateSvd(Io io)
    {
        var common = new Common();
        var variant = common.Variant("plain: truncated SVD of W; asvd: SVD of W·diag(a^α), a = sqrt(G_jj) (needs --gram); whitened: SVD-LLM, " +
            "SVD of W·S with G = S·Sᵀ (needs --gram).", "plain", "asvd", "whitened");
        var rank = RankOption("Keep k singular triplets.");
        var tolerance = ToleranceOption("Keep the smallest k with sqrt(Σ_{j>k} σ_j²) ≤ E·sqrt(Σ σ_j²), σ those of the decomposed matrix " +
            "(W, W·diag(a^α) or W·S: for whitened, E bounds the relative output error on the calibration data).");
        var alpha = new Option<double>("--alpha") { Description = "ASVD exponent α.", DefaultValueFactory = _ => 0.5 };
        var cmd = new Command("svd", "Rank-k approximation Ŵ = U·diag(S)·Vt of a weight matrix (out × in). Writes U (m × k), S (k), Vt (k × n). " +
            "For asvd and whitened, S are the singular values of the scaled matrix and Vt carries the unscaling (its rows are not orthonormal).")
        {
            variant, rank, tolerance, alpha,
        };
        common.AddTo(cmd);
        cmd.SetAction(parse => Guard(io, parse, common, input =>
        {
            string v = parse.GetValue(variant)!;
            RequireRankOrTolerance(input, parse.GetValue(rank), parse.GetValue(tolerance));
            var gramFile = parse.GetValue(common.Gram);
            if (v != "plain" && gramFile is null)
                throw new ArgumentException($"{input}: --variant {v} needs --gram G.npy, the n × n Gram matrix XᵀX of the layer's inputs.");
            if (v == "plain" && gramFile is not null)
                throw new ArgumentException($"{input}: --variant plain does not use --gram; choose --variant asvd or whitened.");
            var job = new SvdJob(v, parse.GetValue(rank), parse.GetValue(tolerance), gramFile?.FullName, parse.GetValue(alpha));
            return Dispatch(io, input, parse.GetValue(common.Out)!.FullName, job);
        }));
        return cmd;
    }

    private sealed record SvdJob(string Variant, int? Rank, double? Tolerance, string? Gram, double Alpha) : IJob
    {
        public Outcome Run<T>(Matrix<T> w, string input) where T : unmanaged, IFloatingPointIeee754<T>
        {
            int m = w.Rows, n = w.Cols, full = Math.Min(m, n);
            if (Rank is int k0 && (k0 < 0 || k0 > full))
                throw new ArgumentException($"{input}: --rank {k0} is out of range; expected 0..{full} for the {m}×{n} matrix.");
            if (Tolerance is double e) CheckTolerance(input, e);
            var g = Gram is null ? null : ReadSquare<T>(Gram, n, $"XᵀX for the {m}×{n} weight {input}");
            int computeRank = Rank ?? full;
            var factors = Variant switch
            {
                "asvd" => LowRank.ActivationAware<T>(w, RmsFromGram(g!), computeRank, Alpha),
                "whitened" => LowRank.Whitened<T>(w, g!, computeRank),
                _ => LowRank.Svd<T>(w, computeRank),
            };
            int k = Rank ?? RankForTolerance(factors.SingularValues, Tolerance!.Value);
            var (u, s, vt) = ToSvd(factors, k);
            double tail = 0, total = 0;
            for (int j = factors.SingularValues.Length - 1; j >= 0; j--)
            {
                double sj = double.CreateTruncating(factors.SingularValues[j]);
                total += sj * sj;
                if (j >= k) tail += sj * sj;
            }
            string what = Variant switch { "asvd" => "‖(W − Ŵ)·diag(a^α)‖_F / ‖W·diag(a^α)‖_F", "whitened" => "‖(W − Ŵ)·Xᵀ‖_F / ‖W·Xᵀ‖_F", _ => "‖W − Ŵ‖_F / ‖W‖_F" };
            return new Outcome(
                [new("U", NpyArray.FromMatrix(u)), new("S", NpyArray.FromVector<T>(s)), new("Vt", NpyArray.FromMatrix(vt))],
                [
                    $"SVD ({factors.Method}): {m}×{n} → k = {k}, parameters {(long)k * (m + n)} of {(long)m * n}",
                    $"{what} = {(total == 0 ? 0 : Math.Sqrt(tail / total)):0.000e+00}",
                ]);
        }

        /// <summary>U = L/√σ, Vt = R/√σ column- and row-wise (σ = 0 leaves zeros), so U·diag(σ)·Vt = L·R.</summary>
        private static (Matrix<T> U, T[] S, Matrix<T> Vt) ToSvd<T>(LowRankFactors<T> f, int k) where T : unmanaged, IFloatingPointIeee754<T>
        {
            int m = f.L.Rows, n = f.R.Cols;
            var u = new Matrix<T>(m, k);
            var vt = new Matrix<T>(k, n);
            var s = new T[k];
            for (int j = 0; j < k; j++)
            {
                s[j] = f.SingularValues[j];
                if (!(s[j] > T.Zero)) continue;
                T root = T.Sqrt(s[j]);
                for (int i = 0; i < m; i++) u[i, j] = f.L[i, j] / root;
                var src = f.R.Row(j);
                var dst = vt.Row(j);
                for (int c = 0; c < n; c++) dst[c] = src[c] / root;
            }
            return (u, s, vt);
        }
    }

    // ------------------------------------------------------------------ plumbing

    /// <summary>A decomposition job, generic in the precision of the input file.</summary>
    private interface IJob
    {
        Outcome Run<T>(Matrix<T> input, string inputPath) where T : unmanaged, IFloatingPointIeee754<T>;
    }

    /// <summary>The arrays to write and the summary lines to print.</summary>
    private sealed record Outcome(IReadOnlyList<KeyValuePair<string, NpyArray>> Arrays, IReadOnlyList<string> Summary);

    /// <summary>Reads the input, runs the job in the file's precision, writes the archive (only on success) and prints the summary.</summary>
    private static int Dispatch(Io io, string input, string output, IJob job)
    {
        var sw = Stopwatch.StartNew();
        var array = Npy.Read(input);
        if (array.Rank != 2)
            throw new InvalidDataException($"{input}: expected a 2-D matrix, got an array of shape {ShapeText(array.Shape)}.");
        Outcome outcome;
        string dtype;
        switch (array.DType)
        {
            case NpyDType.Float32:
                outcome = job.Run(array.ToMatrix<float>(requireFinite: true), input);
                dtype = "float32";
                break;
            case NpyDType.Float64:
                outcome = job.Run(array.ToMatrix<double>(requireFinite: true), input);
                dtype = "float64";
                break;
            default:
                throw new InvalidDataException($"{input}: unsupported dtype {array.DType}; expected float32 or float64.");
        }
        double seconds = sw.Elapsed.TotalSeconds;
        Npz.Write(output, outcome.Arrays);
        var console = io.Console;
        console.MarkupLineInterpolated($"[bold]{Path.GetFileName(input)}[/] ({dtype}, {array.Shape[0]}×{array.Shape[1]})");
        foreach (var line in outcome.Summary) console.MarkupLineInterpolated($"  {line}");
        console.MarkupLineInterpolated($"  {seconds:F3} s; wrote [blue]{output}[/] ({string.Join(", ", outcome.Arrays.Select(a => $"{a.Key} {ShapeText(a.Value.Shape)}"))})");
        return 0;
    }

    /// <summary>Reads an n × n matrix (e.g. a Gram matrix) in precision T, with a message naming the file on any mismatch.</summary>
    private static Matrix<T> ReadSquare<T>(string path, int n, string expected) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var array = Npy.Read(path);
        if (array.Rank != 2 || array.Shape[0] != n || array.Shape[1] != n)
            throw new InvalidDataException($"{path}: expected a {n}×{n} matrix ({expected}), got shape {ShapeText(array.Shape)}.");
        if (array.DType is not (NpyDType.Float32 or NpyDType.Float64))
            throw new InvalidDataException($"{path}: unsupported dtype {array.DType}; expected float32 or float64.");
        return array.ToMatrix<T>(requireFinite: true);
    }

    private static void RequireRankOrTolerance(string input, int? rank, double? tolerance)
    {
        if (rank is not null && tolerance is not null)
            throw new ArgumentException($"{input}: give either --rank or --tolerance, not both.");
        if (rank is null && tolerance is null)
            throw new ArgumentException($"{input}: expected --rank K or --tolerance E (one of them).");
        if (tolerance is double e) CheckTolerance(input, e);
    }

    private static void CheckTolerance(string input, double e)
    {
        if (!double.IsFinite(e) || e < 0)
            throw new ArgumentException($"{input}: --tolerance {e}: expected a finite value ≥ 0.");
    }

    /// <summary>The smallest k with sqrt(Σ_{j≥k} σ_j²) ≤ e·sqrt(Σ σ_j²) (0-based j, so the kept σ are σ_0..σ_{k−1}).</summary>
    internal static int RankForTolerance<T>(IReadOnlyList<T> sigma, double e) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var suffix = new double[sigma.Count + 1];
        for (int j = sigma.Count - 1; j >= 0; j--)
        {
            double s = double.CreateTruncating(sigma[j]);
            suffix[j] = suffix[j + 1] + s * s;
        }
        double target = e * e * suffix[0];
        int k = 0;
        while (k < sigma.Count && suffix[k] > target) k++;
        return k;
    }

    /// <summary>a_j = sqrt(max(G_jj, 0)), proportional to the RMS of input feature j.</summary>
    private static T[] RmsFromGram<T>(Matrix<T> g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var a = new T[g.Rows];
        for (int j = 0; j < a.Length; j++) a[j] = T.Sqrt(T.Max(g[j, j], T.Zero));
        return a;
    }

    private static DeimVariant ParseDeim(string name) => name switch
    {
        "textbook" => DeimVariant.Textbook,
        "qdeim" => DeimVariant.QDeim,
        _ => DeimVariant.Reference,
    };

    private static NpyArray Indices(int[] indices) => NpyArray.FromInt64([.. indices.Select(i => (long)i)], [indices.Length]);

    private static string ShapeText(IReadOnlyList<int> shape) =>
        shape.Count == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
}
