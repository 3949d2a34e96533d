#!/usr/bin/env bash
# lowrank on KL to the original (the default) against the labels' cross-entropy, and compact mode's shared threshold
# across tolerances (issue 20): the image fixtures, held-out agreement with the original. Prints one line per run.
#
#   scripts/lowrank_tolerance.sh [OUT_DIR]      # default /tmp/whittle-lowrank-tolerance; ~10 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/whittle-lowrank-tolerance}
MODELS=${MODELS:-"vgg resnet"}
mkdir -p "$OUT"
dotnet build -c Release src/Whittle.Cli >/dev/null
W="dotnet $PWD/src/Whittle.Cli/bin/Release/net10.0/whittle.dll"
FM=fixtures/fashion-mnist
runs() {
  echo "lossless-kl|--mode lossless"
  echo "lossless-labels|--mode lossless --loss task"
  for t in 0.005 0.01 0.02 0.05; do echo "compact-$t|--mode compact --relative-tolerance $t"; done
}
for model in $MODELS; do
  runs | while IFS='|' read -r name flags; do
    tag="$model.$name"
    if [ ! -f "$OUT/$tag.json" ]; then
      # shellcheck disable=SC2086
      $W compress --model $FM/$model.onnx --method lowrank $flags --calib $FM/calib-images-idx3-ubyte.gz --calib-labels $FM/calib-labels-idx1-ubyte.gz \
        --calib-count 512 --eval $FM/heldout-images-idx3-ubyte.gz --eval-labels $FM/heldout-labels-idx1-ubyte.gz \
        --out "$OUT/$tag.onnx" --report "$OUT/$tag.json.tmp" > "$OUT/$tag.log" 2>&1 && mv "$OUT/$tag.json.tmp" "$OUT/$tag.json" || { echo "$tag failed: $(tail -1 "$OUT/$tag.log")"; continue; }
      rm -f "$OUT/$tag".*onnx
    fi
    /usr/bin/python3 - "$OUT/$tag.json" "$tag" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
rep, ev = r["report"], r["evaluation"]
d = rep["details"]
print(f"{sys.argv[2]:28s} params {rep['after']['parameters'] / rep['before']['parameters']:.3f}  "
      f"accuracy {100 * ev['model']['accuracy']:.2f} % (orig. {100 * ev['reference']['accuracy']:.2f} %)  "
      f"agreement {100 * ev['comparison']['agreement']:.2f} %  KL {ev['comparison']['meanKl']:.4g}  loss {d['loss']}  "
      f"threshold {d['threshold']:.4g}  shared t {d.get('sharedThreshold')}  layers {d['layersFactorized']}/{d['layersConsidered']}  "
      f"{sum(t['seconds'] for t in rep['timings']):.0f} s")
PY
  done
done
