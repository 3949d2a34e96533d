#!/usr/bin/env bash
# Every method at matched sizes on the trained fixtures and the real stories260K (issue 20's comparison): keep 0.8 and
# 0.6 of the whole model's parameters where a method takes a budget (`--budget-scope model`), lowrank compact at a 1 %
# relative tolerance, CURing in 2 blocks, slice (language models) unaligned; held-out figures and batch-1 latency against the original.
# scripts/compare_methods_summary.py prints the table.
#
#   scripts/compare_methods.sh [OUT_DIR]        # default /tmp/whittle-compare; ~30 min on 2 cores
#   MODELS="vgg llama" METHODS="id whitened-svd" scripts/compare_methods.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/whittle-compare}
MODELS=${MODELS:-"vgg resnet gpt2 llama stories260K"}
METHODS=${METHODS:-"id id-sensitivity magnitude whitened-svd whitened-svd-global whitened-svd-uniform lowrank curing slice"}
mkdir -p "$OUT"
source scripts/fixture_models.sh
flags() {
  local image=0; [[ $1 == vgg || $1 == resnet ]] && image=1
  case $2 in
    id|magnitude) if ((image)); then echo "--method $2 --keep-params 0.8,0.6 --budget-scope model --prune all,stream";
                  else echo "--method $2 --keep-params 0.8,0.6 --budget-scope model"; fi ;;
    id-sensitivity) if ((image)); then echo "--method id --schedule sensitivity --keep-params 0.8,0.6 --budget-scope model --prune all,stream";
                    else echo "--method id --schedule sensitivity --keep-params 0.8,0.6 --budget-scope model"; fi ;;
    whitened-svd) echo "--method whitened-svd --keep-params 0.8,0.6 --budget-scope model" ;;
    slice) if ((image)); then return 1; fi; echo "--method slice --keep-params 0.8,0.6 --budget-scope model --align 1" ;;
    whitened-svd-global) echo "--method whitened-svd --allocation global --keep-params 0.8,0.6 --budget-scope model" ;;
    whitened-svd-uniform) echo "--method whitened-svd --allocation uniform --keep-params 0.8,0.6 --budget-scope model" ;;
    lowrank) echo "--method lowrank --mode compact" ;;
    curing) if ((image)); then return 1; fi; echo "--method curing --layers 2 --max-rank 16" ;;
  esac
}
for model in $MODELS; do
  for method in $METHODS; do
    f=$(flags "$model" "$method") || continue
    # shellcheck disable=SC2046,SC2086
    compress_to_report "$model.$method" $(fixture_data "$model") $f --seed 0
  done
done
python3 scripts/compare_methods_summary.py "$OUT"
