#!/usr/bin/env bash
# Wall time and peak RSS of every step a user takes with a large model, on a synthetic Llama checkpoint (seeded random
# weights, real shapes, bf16 safetensors): write the checkpoint, import it, compress it with each method (id and
# whitened-svd at 0.8 of the parameters, curing at its defaults; 64 calibration sequences of 128 tokens), and evaluate
# each result against the original on 16 other sequences. Every step runs under /usr/bin/time -v; the table goes to
# stdout and to $WORK/scale-$PRESET.md.
#
#   scripts/bench_scale.sh                                  # tinyllama-1.1b
#   PRESET=llama2-7b scripts/bench_scale.sh                 # needs ~13 GB (checkpoint) + 27 GB (ONNX) + 22 GB per result on disk
#   METHODS="id" STEPS="compress eval" scripts/bench_scale.sh
#   WEIGHT_TYPE=float32 scripts/bench_scale.sh              # matrices in float32 (twice the disk) instead of bfloat16
#   PRESET=llama2-7b DISCARD=1 NICE=19 scripts/bench_scale.sh   # delete the checkpoint's weights after the import and
#                                                            # each result after its eval (~45 GB at most for 7 B)
#
# The build is copied to $WORK/bin first, so the tree can be rebuilt while a long run goes on.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-tinyllama-1.1b}
METHODS=${METHODS:-"id whitened-svd curing"}
STEPS=${STEPS:-"checkpoint import compress eval"}
WORK=${WORK:-/tmp/whittle-scale}
EXTRA=${EXTRA:-}
DISCARD=${DISCARD:-0}
WEIGHT_TYPE=${WEIGHT_TYPE:-checkpoint}   # import hf --weight-type: checkpoint keeps the synthetic checkpoint's bfloat16
NICE=${NICE:-0}
mkdir -p "$WORK/logs"
dotnet build -c Release src/Whittle.Cli >/dev/null
rm -rf "$WORK/bin" && cp -r src/Whittle.Cli/bin/Release/net10.0 "$WORK/bin"
W="dotnet $WORK/bin/whittle.dll"
TABLE="$WORK/scale-$PRESET.md"
has() { [[ " $STEPS " == *" $1 "* ]]; }

# step NAME COMMAND…: runs the command under /usr/bin/time -v, appends a row (wall seconds, peak RSS GiB) to the table.
step() {
  local name=$1; shift
  local log="$WORK/logs/$PRESET.$name.log"
  if ! nice -n "$NICE" /usr/bin/time -v "$@" > "$log" 2>&1; then
    echo "step '$name' failed; see $log" >&2
    tail -5 "$log" >&2
    printf '| %s | failed | - |\n' "$name" | tee -a "$TABLE"
    return 1
  fi
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident" "$log" | awk '{printf "%.2f", $NF/1048576}')
  printf '| %s | %.0f | %s |\n' "$name" "$wall" "$rss" | tee -a "$TABLE"
}

{
  echo "$PRESET on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(date -u +%Y-%m-%d); commit $(git rev-parse --short HEAD)"
  echo
  echo "| step | wall s | peak RSS GiB |"
  echo "|---|---|---|"
} | tee "$TABLE"

CKPT="$WORK/$PRESET"
ONNX="$WORK/$PRESET.onnx"
has checkpoint && step checkpoint $W bench checkpoint --preset "$PRESET" --out "$CKPT" --force
if has eval && [ ! -f "$WORK/eval.npy" ]; then
  # 16 × 128 random token ids as an int64 .npy (written by hand: numpy may not be installed)
  python3 - "$WORK/eval.npy" <<'PY'
import random, struct, sys
rng = random.Random(1)
header = "{'descr': '<i8', 'fortran_order': False, 'shape': (16, 128), }"
header += " " * (63 - (10 + len(header)) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack("<2048q", *[rng.randrange(32000) for _ in range(2048)]))
PY
fi
has import && step import $W import hf --model "$CKPT" --out "$ONNX" --weight-type "$WEIGHT_TYPE"
# the calibration and evaluation token files stay; the weights are no longer needed once imported
[ "$DISCARD" = 1 ] && has import && rm -f "$CKPT"/*.safetensors
for method in $METHODS; do
  budget=(--keep-params 0.8 --budget-scope model)  # 0.8 of the whole model, as the README figures
  [ "$method" = curing ] && budget=()
  has compress && step "compress $method" $W compress --model "$ONNX" --method "$method" --calib "$CKPT/calib.npy" --calib-count 64 \
    "${budget[@]}" --out "$WORK/$PRESET.$method.onnx" --report "$WORK/$PRESET.$method.json" $EXTRA
  has eval && step "eval $method" $W eval --model "$WORK/$PRESET.$method.onnx" --reference "$ONNX" --data "$WORK/eval.npy" --batch-size 4 \
    --json "$WORK/$PRESET.$method.eval.json"
  [ "$DISCARD" = 1 ] && rm -f "$WORK/$PRESET.$method.onnx" "$WORK/$PRESET.$method.onnx.data"
done
