#!/usr/bin/env bash
# id pruning's bisection schedule against its sensitivity schedule (each unit's error mapped onto its measured effect on
# the output) on the trained fixtures and stories260K, held-out figures (README, "Sensitivity schedule").
#   scripts/sensitivity_schedule.sh            # all models
#   MODELS="vgg resnet" scripts/sensitivity_schedule.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/whittle-sensitivity}
MODELS=${MODELS:-"vgg resnet llama gpt2 stories260K"}
mkdir -p "$OUT"
source scripts/fixture_models.sh
for m in $MODELS; do
  case $m in
    vgg) variants=("--keep-macs 0.5,0.7" "--keep-macs 0.5,0.7 --align 16") ;;
    resnet) variants=("--keep-macs 0.5,0.7" "--keep-macs 0.5,0.6,0.7 --prune all,stream") ;;
    *) variants=("--keep-params 0.8,0.6") ;;
  esac
  for v in "${variants[@]}"; do
    for schedule in bisection sensitivity; do
      # shellcheck disable=SC2046,SC2086
      $W compress --method id $(fixture_data "$m" 512) $v --budget-scope model --schedule $schedule --out "$OUT/$m.onnx" 2>&1 \
        | grep "│ keep" | awk -F'│' -v m="$m" -v v="$v" -v s="$schedule" '{ gsub(/ +/, " "); print m " | " v " | " s " |" $2 "| MACs" $6 "| accuracy or ppl" $8 "| agreement" $9 "| KL" $10 "| " $12 " s" }'
    done
  done
done
