#!/usr/bin/env bash
# Peak memory and wall time of `whittle compress` on a synthetic Llama (random weights, real shapes), as a new user runs
# it: id and whitened-svd at 0.8 of the parameters, 64 calibration sequences of 128 tokens. Each run is measured by
# /usr/bin/time -v; with BASELINE set to another build's whittle.dll the two builds alternate run by run (the machine is
# shared and noisy: compare in one run, side by side).
#
#   scripts/bench_harness.sh                          # this checkout, preset llama-134m, 1 round
#   ROUNDS=2 BASELINE=/path/to/whittle.dll scripts/bench_harness.sh
#   PRESET=tinyllama-1.1b METHODS="whitened-svd" scripts/bench_harness.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-llama-134m}
METHODS=${METHODS:-"id whitened-svd"}
ROUNDS=${ROUNDS:-1}
WORK=${WORK:-/tmp/whittle-bench-harness}
EXTRA=${EXTRA:-}
mkdir -p "$WORK"
dotnet build -c Release src/Whittle.Cli >/dev/null
NEW="$PWD/src/Whittle.Cli/bin/Release/net10.0/whittle.dll"
if [ ! -f "$WORK/$PRESET.onnx" ]; then
  dotnet "$NEW" bench checkpoint --preset "$PRESET" --out "$WORK/$PRESET" --force
  dotnet "$NEW" import hf --model "$WORK/$PRESET" --out "$WORK/$PRESET.onnx"
fi
builds=("new=$NEW")
[ -n "${BASELINE:-}" ] && builds=("baseline=$BASELINE" "${builds[@]}")
printf '| round | build | method | wall s | peak RSS GiB | params kept |\n|---|---|---|---|---|---|\n'
for round in $(seq 1 "$ROUNDS"); do
  for method in $METHODS; do
    for b in "${builds[@]}"; do
      name=${b%%=*}; dll=${b#*=}
      log="$WORK/$name.$method.$round.log"
      /usr/bin/time -v dotnet "$dll" compress --model "$WORK/$PRESET.onnx" --method "$method" --calib "$WORK/$PRESET/calib.npy" \
        --calib-count 64 --keep-params 0.8 --out "$WORK/$name.$method.onnx" --report "$WORK/$name.$method.$round.json" $EXTRA > "$log" 2>&1
      wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
      rss=$(grep "Maximum resident" "$log" | awk '{printf "%.2f", $NF/1048576}')
      kept=$(python3 -c "import json,sys; r=json.load(open('$WORK/$name.$method.$round.json'))['results'][0]['report']; print(f\"{r['after']['parameters']/r['before']['parameters']:.3f}\")")
      printf '| %s | %s | %s | %s | %s | %s |\n' "$round" "$name" "$method" "$wall" "$rss" "$kept"
    done
  done
done
