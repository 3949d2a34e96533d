#!/usr/bin/env bash
# Latency of aligned and unaligned sizes (issue 20): whitened SVD at 0.8 of the parameters on the GPT-2 and Llama
# fixtures, id at 0.5 of the MACs on the VGG fixture, each with --align 16 and --align 1; `whittle eval` against the
# original, model and reference alternating, REPEATS timed runs per batch size (medians). Prints one line per model.
#
#   scripts/aligned_latency.sh [OUT_DIR]        # default /tmp/whittle-aligned-latency; ~10 min on 2 cores
#   THREADS=1 scripts/aligned_latency.sh        # ONNX Runtime on one intra-op thread (default: one per core)
# Models already in OUT_DIR are measured again, not recompressed (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/whittle-aligned-latency}
REPEATS=${REPEATS:-300}
mkdir -p "$OUT"
dotnet build -c Release src/Whittle.Cli >/dev/null
W="dotnet $PWD/src/Whittle.Cli/bin/Release/net10.0/whittle.dll"
FM=fixtures/fashion-mnist
TX=fixtures/text
for align in 16 1; do
  for model in gpt2 llama; do
    [ -f "$OUT/$model.a$align.onnx" ] || $W compress --model $TX/$model.onnx --method whitened-svd --keep-params 0.8 --align $align --calib $TX/calib-excerpt.txt --calib-count 64 \
      --window 128 --out "$OUT/$model.a$align.onnx" > /dev/null
    $W eval --model "$OUT/$model.a$align.onnx" --reference $TX/$model.onnx --text $TX/heldout-excerpt.txt --count 16 --window 128 \
      --repeats "$REPEATS" ${THREADS:+--threads $THREADS} --json "$OUT/$model.a$align.json" > /dev/null
  done
  [ -f "$OUT/vgg.a$align.onnx" ] || $W compress --model $FM/vgg.onnx --method id --keep-macs 0.5 --align $align --calib $FM/calib-images-idx3-ubyte.gz --calib-count 512 \
    --out "$OUT/vgg.a$align.onnx" > /dev/null
  $W eval --model "$OUT/vgg.a$align.onnx" --reference $FM/vgg.onnx --data $FM/heldout-images-idx3-ubyte.gz --count 256 \
    --repeats "$REPEATS" ${THREADS:+--threads $THREADS} --json "$OUT/vgg.a$align.json" > /dev/null
done
for f in "$OUT"/*.json; do /usr/bin/python3 scripts/latency_summary.py "$f"; done
