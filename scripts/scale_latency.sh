#!/usr/bin/env bash
# Batch-1 latency against MACs on a synthetic Llama with real shapes (random weights: latency depends on the shapes
# only): whitened SVD at 0.8 of the parameters and id at 0.5 of the MACs, each with --align 16 and --align 1;
# `whittle eval` against the original, alternating, REPEATS timed runs per batch size (medians). One line per model.
#
#   scripts/scale_latency.sh                              # llama-134m (dim 576, 30 layers, FFN 1536), ~15 min on 2 cores
#   THREADS=1 PRESET=llama-134m scripts/scale_latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-llama-134m}
WORK=${WORK:-/tmp/whittle-scale-latency}
REPEATS=${REPEATS:-20}
mkdir -p "$WORK"
dotnet build -c Release src/Whittle.Cli >/dev/null
rm -rf "$WORK/bin" && cp -r src/Whittle.Cli/bin/Release/net10.0 "$WORK/bin"
W="dotnet $WORK/bin/whittle.dll"
CKPT="$WORK/$PRESET"
if [ ! -f "$WORK/$PRESET.onnx" ]; then
  $W bench checkpoint --preset "$PRESET" --out "$CKPT" --force > /dev/null
  $W import hf --model "$CKPT" --out "$WORK/$PRESET.onnx" > /dev/null
fi
variants=("whitened-svd --keep-params 0.8 --align 16" "whitened-svd --keep-params 0.8 --align 1"
          "id --keep-macs 0.5 --align 16" "id --keep-macs 0.5 --align 1")
for v in "${variants[@]}"; do
  name=$(echo "$v" | awk '{print $1 "." $3 ".a" $5}')
  # shellcheck disable=SC2086
  [ -f "$WORK/$name.onnx" ] || $W compress --model "$WORK/$PRESET.onnx" --method $v --budget-scope model --calib "$CKPT/calib.npy" \
    --calib-count 16 --out "$WORK/$name.onnx" > /dev/null
  $W eval --model "$WORK/$name.onnx" --reference "$WORK/$PRESET.onnx" --data "$CKPT/calib.npy" --count 4 --batch-size 4 \
    --repeats "$REPEATS" ${THREADS:+--threads $THREADS} --json "$WORK/$name.json" > /dev/null
  /usr/bin/python3 scripts/latency_summary.py "$WORK/$name.json" "$v"
done
