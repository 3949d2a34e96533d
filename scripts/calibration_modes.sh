#!/usr/bin/env bash
# Sequential vs parallel calibration on every trained fixture and the real stories260K: every method at two budgets,
# held-out figures (scripts/calibration_modes_summary.py prints the table). Each (model, method, budget set) is
# compressed twice with the same data and seed, once per --calibration mode, and evaluated against the original.
#
#   scripts/calibration_modes.sh [OUT_DIR]        # default /tmp/whittle-calibration-modes; ~1-2 h on 2 cores
#   MODELS="vgg llama" METHODS="id whitened-svd" scripts/calibration_modes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/whittle-calibration-modes}
MODELS=${MODELS:-"mlp vgg resnet gpt2 llama stories260K"}
METHODS=${METHODS:-"id magnitude svd asvd whitened-svd curing lowrank"}
mkdir -p "$OUT"
source scripts/fixture_models.sh
data() { fixture_data "$1" 256 1000; }
# model, method → one "name|flags" line per budget set (two budgets, in one run where the method takes budgets)
budgets() {
  local image=0; [[ $1 == mlp || $1 == vgg || $1 == resnet ]] && image=1
  case $2 in
    id|magnitude) if ((image)); then echo "macs|--keep-macs 0.7,0.5"; else echo "params|--keep-params 0.9,0.8"; fi ;;
    svd|asvd|whitened-svd) if ((image)); then echo "params|--keep-params 0.8,0.6"; else echo "params|--keep-params 0.95,0.9"; fi ;;
    curing) if ((image)); then return; fi; echo "n1|--layers 1 --max-rank 16"; echo "n2|--layers 2 --max-rank 16" ;;
    lowrank) echo "lossless|--mode lossless"; echo "compact|--mode compact --loss-tolerance 0.01" ;;
  esac
}
for model in $MODELS; do
  for method in $METHODS; do
    budgets "$model" "$method" | while IFS='|' read -r name flags; do
      for mode in sequential parallel; do
        tag="$model.$method.$name.$mode"
        # shellcheck disable=SC2046,SC2086
        compress_to_report "$tag" $(data "$model") --method "$method" $flags --calibration "$mode" --seed 0 --chart "$OUT/$tag.png"
      done
    done
  done
done
python3 scripts/calibration_modes_summary.py "$OUT"
