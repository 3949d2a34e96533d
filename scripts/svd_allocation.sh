#!/usr/bin/env bash
# Global against uniform rank allocation of the SVD baselines (issue 20): every trained fixture and the real
# stories260K, --keep-params 0.8,0.6 of the compressible parameters, held-out figures; scripts/svd_allocation_summary.py
# prints the table.
#
#   scripts/svd_allocation.sh [OUT_DIR]      # default /tmp/whittle-svd-allocation; ~10 min on 2 cores
#   MODELS="vgg llama" METHODS="whitened-svd" ALLOCATIONS="global uniform" scripts/svd_allocation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/whittle-svd-allocation}
MODELS=${MODELS:-"mlp vgg resnet gpt2 llama stories260K"}
METHODS=${METHODS:-"whitened-svd"}
ALLOCATIONS=${ALLOCATIONS:-"uniform global global-align1"}
mkdir -p "$OUT"
dotnet build -c Release src/Whittle.Cli >/dev/null
W="dotnet $PWD/src/Whittle.Cli/bin/Release/net10.0/whittle.dll"
FM=fixtures/fashion-mnist
TX=fixtures/text
if [[ " $MODELS " == *" stories260K "* && ! -f "$OUT/stories260K.onnx" ]]; then
  $W import llama2c --model ../shared/models/stories260K/stories260K.bin --tokenizer ../shared/models/stories260K/tok512.bin --out "$OUT/stories260K.onnx"
fi
data() {
  case $1 in
    mlp|vgg|resnet) echo "--model $FM/$1.onnx --calib $FM/calib-images-idx3-ubyte.gz --calib-labels $FM/calib-labels-idx1-ubyte.gz --calib-count 512 \
                          --eval $FM/heldout-images-idx3-ubyte.gz --eval-labels $FM/heldout-labels-idx1-ubyte.gz" ;;
    gpt2|llama) echo "--model $TX/$1.onnx --calib $TX/calib-excerpt.txt --calib-count 64 --eval $TX/heldout-excerpt.txt --eval-count 64 --window 128" ;;
    stories260K) echo "--model $OUT/stories260K.onnx --calib $TX/calib-excerpt.txt --calib-count 64 --eval $TX/heldout-excerpt.txt --eval-count 64 --window 128" ;;
  esac
}
flags() {
  case $1 in
    uniform) echo "--allocation uniform" ;;
    global) echo "--allocation global" ;;
    global-align1) echo "--allocation global --align 1" ;;
  esac
}
for model in $MODELS; do
  for method in $METHODS; do
    for alloc in $ALLOCATIONS; do
      tag="$model.$method.$alloc"
      [ -f "$OUT/$tag.json" ] && continue
      echo "== $tag"
      # shellcheck disable=SC2046
      if ! $W compress $(data "$model") --method "$method" --keep-params 0.8,0.6 $(flags "$alloc") --seed 0 \
           --out "$OUT/$tag.onnx" --report "$OUT/$tag.json.tmp" > "$OUT/$tag.log" 2>&1; then
        echo "   failed: $(tail -1 "$OUT/$tag.log")"
        continue
      fi
      mv "$OUT/$tag.json.tmp" "$OUT/$tag.json"
      rm -f "$OUT/$tag".*onnx "$OUT/$tag".*onnx.data
    done
  done
done
python3 scripts/svd_allocation_summary.py "$OUT"
