#!/usr/bin/env bash
# Times Whittle and numpy/scipy (OpenBLAS + LAPACK) on the same matrices, one after the other, and prints
# them side by side.
#   scripts/bench_vs_openblas.sh [linalg] [args]   dense linear algebra (whittle bench linalg)
#   scripts/bench_vs_openblas.sh decompose [args]  ID, CUR by DEIM, whitened SVD (whittle bench decompose)
# Extra arguments go to both (e.g. --sizes 1024 --repeats 3).
# Needs: apt-get install -y python3-numpy python3-scipy libopenblas0-pthread
set -euo pipefail
cd "$(dirname "$0")/.."
mode=linalg
if [[ "${1:-}" == linalg || "${1:-}" == decompose ]]; then mode=$1; shift; fi
out=${BENCH_OUT:-bench-results}
mkdir -p "$out"
# Under some hypervisors OpenBLAS's CPU detection fails (it reports "Prescott" and runs SSE3 kernels at a
# fifth of the machine's speed); name the core type from the CPU flags so the yardstick is fair.
if [[ -z "${OPENBLAS_CORETYPE:-}" ]]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(detected)}"
if [[ $mode == decompose ]]; then
  /usr/bin/python3 scripts/bench_openblas.py --decompose --json "$out/openblas-decompose.json" "$@"
  dotnet run -c Release --project src/Whittle.Cli -- bench decompose --compare "$out/openblas-decompose.json" --json "$out/whittle-decompose.json" "$@"
else
  /usr/bin/python3 scripts/bench_openblas.py --json "$out/openblas.json" "$@"
  dotnet run -c Release --project src/Whittle.Cli -- bench linalg --compare "$out/openblas.json" --json "$out/whittle.json" "$@"
fi
