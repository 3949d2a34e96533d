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
source scripts/fixture_models.sh
flags() {
  case $1 in
    uniform) echo "--allocation uniform" ;;
    global) echo "--allocation global" ;;
    global-align1) echo "--allocation global --align 1" ;;
    sensitivity) echo "--allocation sensitivity" ;;
    auto) echo "--allocation auto" ;;
  esac
}
for model in $MODELS; do
  for method in $METHODS; do
    for alloc in $ALLOCATIONS; do
      # shellcheck disable=SC2046
      compress_to_report "$model.$method.$alloc" $(fixture_data "$model") --method "$method" --keep-params 0.8,0.6 $(flags "$alloc") --seed 0
    done
  done
done
python3 scripts/svd_allocation_summary.py "$OUT"
