#!/usr/bin/env bash
# Times Whittle's linear algebra and numpy/scipy (OpenBLAS + LAPACK) on the same matrices, one after
# the other, and prints them side by side. Extra arguments go to both (e.g. --sizes 1024 --repeats 3).
# Needs: apt-get install -y python3-numpy python3-scipy libopenblas0-pthread
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench-results}
mkdir -p "$out"
/usr/bin/python3 scripts/bench_openblas.py --json "$out/openblas.json" "$@"
dotnet run -c Release --project src/Whittle.Cli -- bench linalg --compare "$out/openblas.json" --json "$out/whittle.json" "$@"
