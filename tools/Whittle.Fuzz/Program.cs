// whittle's fuzz harness (issue 19): malformed inputs of every kind the CLI reads, run through its own entry point in
// this process. Every case is one mutation of a valid seed; its outcome is a clean error, accepted, or a defect
// (crash, hang, over-memory, leftover, escape). Exit code 1 when any case is a defect.
//
//   dotnet run -c Release --project tools/Whittle.Fuzz -- [--cases 2000] [--seed 1] [--from 0] [--kinds onnx,npz] [--deadline 20]
//                                                      [--work DIR] [--report fuzz.json]
//
// Case n of a seed is the same whatever else runs, so a long run can be split into processes: --from 25000 --cases 25000
// runs cases 25000–49999 (their tables add up to one run's).

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Whittle.Fuzz;

int cases = 2000, seed = 1, from = 0;
double deadline = 20;
string[] kinds = Generators.Kinds;
string? work = null, report = null;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    switch (args[i])
    {
        case "--cases": cases = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--seed": seed = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--from": from = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--deadline": deadline = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--kinds": kinds = Next().Split(','); break;
        case "--work": work = Next(); break;
        case "--report": report = Next(); break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; see the header of tools/Whittle.Fuzz/Program.cs");
            return 2;
    }
}

string root = work ?? Path.Combine(Path.GetTempPath(), $"fuzz-{Environment.ProcessId}");
Directory.CreateDirectory(root);
var seeds = Seeds.Create(AppContext.BaseDirectory, Path.Combine(root, "seeds"));
var generators = new Generators(seeds);
var runner = new CaseRunner(TimeSpan.FromSeconds(deadline), workingSetLimit: 6L << 30);
var results = new List<CaseResult>();
var clock = Stopwatch.StartNew();
for (int n = from; n < from + cases; n++)
{
    // Each case has its own generator seed, so any one can be replayed alone (--from n --cases 1). Not HashCode.Combine:
    // it is seeded per process, so the same seed would give other cases in every run.
    var rng = new Random(unchecked(seed * 1_000_003 + n));
    string kind = kinds[n % kinds.Length];
    string folder = Directory.CreateDirectory(Path.Combine(root, $"case-{n:D6}")).FullName;
    var c = generators.Make(kind, rng, folder);
    var r = runner.Run(c);
    results.Add(r);
    if (r.IsDefect) Console.WriteLine($"[{r.Outcome}] case {n} {c.Kind}: {c.Mutation}\n  whittle {string.Join(' ', c.Args)}\n  {r.Detail.Split('\n')[0]}");
    if (!r.IsDefect && r.Outcome != Outcome.Hang)
        try { Directory.Delete(folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    if ((n + 1 - from) % 500 == 0) Console.WriteLine($"{n + 1 - from} cases, {clock.Elapsed.TotalSeconds:F0} s");
}

Console.WriteLine();
Console.WriteLine($"{cases} cases (from case {from}), seed {seed}, {clock.Elapsed.TotalSeconds:F0} s");
Console.WriteLine($"{"kind",-14} {"cases",6} {"clean",6} {"named",6} {"accepted",8} {"crash",6} {"hang",5} {"memory",6} {"leftover",8} {"escape",6}");
foreach (var group in results.GroupBy(r => r.Case.Kind).Append(results.GroupBy(_ => "all").First()))
{
    int Count(Outcome o) => group.Count(r => r.Outcome == o);
    Console.WriteLine($"{group.Key,-14} {group.Count(),6} {Count(Outcome.CleanError),6} {group.Count(r => r.Outcome == Outcome.CleanError && r.NamesTheFile),6} {Count(Outcome.Accepted),8} "
        + $"{Count(Outcome.Crash),6} {Count(Outcome.Hang),5} {Count(Outcome.OverMemory),6} {Count(Outcome.Leftover),8} {Count(Outcome.Escape),6}");
}
var unnamed = results.Where(r => r.Outcome == Outcome.CleanError && !r.NamesTheFile).Take(10).ToList();
if (unnamed.Count > 0)
{
    Console.WriteLine("\nClean errors that do not name the file (first 10):");
    foreach (var r in unnamed) Console.WriteLine($"  {r.Case.Kind} ({r.Case.Mutation}): {r.Detail}");
}
if (report is not null)
    File.WriteAllText(report, JsonSerializer.Serialize(results.Select(r => new
    {
        r.Case.Kind, r.Case.Mutation, r.Case.Args, Outcome = r.Outcome.ToString(), r.Detail, r.Seconds, r.NamesTheFile,
    }), new JsonSerializerOptions { WriteIndented = true }));
if (work is null && results.All(r => !r.IsDefect)) Directory.Delete(root, recursive: true);
return results.Any(r => r.IsDefect) ? 1 : 0;
