#!/usr/bin/env bash
# Low-rank acceptance figures (issue 10), every figure from `whittle compress` and `whittle eval` runs made here:
#   Fashion-MNIST MLP / VGG / ResNet fixtures — joint low-rank factorization, lossless and compact (tolerance 0 and a
#     small one, graph order and largest-first), calibrated on the fixtures' 1,000 training images and evaluated on their 2,000 held-out test images;
#     plus lossless with selection data the model never trained on (test images 2000–2999, disjoint from the held-out
#     2,000), where the first-order term can be negative;
#   GPT-2 / Llama byte-level fixtures — plain SVD, ASVD and whitened SVD at 80 % of the parameters, calibrated on
#     windows of the training text and evaluated on the held-out text (split as fixtures/text/fixtures.json says);
#   ONNX Runtime latency of every factorized model against its original (whittle eval --reference, same run).
#
#   scripts/fetch_data.sh && scripts/lowrank_acceptance.sh [OUT]      # OUT defaults to /tmp/whittle-lowrank-acceptance
#   SECTIONS=text scripts/lowrank_acceptance.sh OUT                   # rerun one part (images, text); REPEATS=100 latency runs
#
# Needs the .NET SDK, fixtures/ (helper/fixtures), data/moby-dick.txt and Debian's python3 (numpy) for the two
# small data files it cuts. Runs for ~40 minutes on 2 cores. Prints Markdown tables (scripts/lowrank_summary.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/whittle-lowrank-acceptance}
mkdir -p "$OUT"
dotnet build -c Release src/Whittle.Cli >/dev/null
W() { dotnet run -c Release --no-build --project src/Whittle.Cli -- "$@"; }
FM=fixtures/fashion-mnist
TX=fixtures/text
REPEATS=${REPEATS:-100}
SECTIONS=${SECTIONS:-images,text}

# Selection data the models never saw: Fashion-MNIST test images 2000–2999 (the held-out set is test images 0–1999).
/usr/bin/python3 - "$OUT" <<'EOF'
import gzip, sys, numpy as np
out, src = sys.argv[1], '/usr/share/datasets/fashion-mnist/'
def read(name, offset): return np.frombuffer(gzip.open(src + name).read(), dtype=np.uint8, offset=offset)
def write(name, a, dims):
    with gzip.open(f'{out}/{name}', 'wb') as f:
        f.write(bytes([0, 0, 8, dims])); f.write(np.array(a.shape, dtype='>i4').tobytes()); f.write(a.tobytes())
images = read('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28)
labels = read('t10k-labels-idx1-ubyte.gz', 8)
write('unseen-images-idx3-ubyte.gz', images[2000:3000], 3)
write('unseen-labels-idx1-ubyte.gz', labels[2000:3000], 1)
EOF

if [[ ,$SECTIONS, == *,images,* ]]; then
CALIB=(--calib "$FM/calib-images-idx3-ubyte.gz" --calib-labels "$FM/calib-labels-idx1-ubyte.gz" --calib-count 1000)
UNSEEN=(--calib "$OUT/unseen-images-idx3-ubyte.gz" --calib-labels "$OUT/unseen-labels-idx1-ubyte.gz" --calib-count 1000)
HELDOUT=(--eval "$FM/heldout-images-idx3-ubyte.gz" --eval-labels "$FM/heldout-labels-idx1-ubyte.gz")
for m in mlp vgg resnet; do
    [ -f "$FM/$m.onnx" ] || { echo "skip $m: $FM/$m.onnx missing" >&2; continue; }
    run() { local name=$1; shift; W compress --model "$FM/$m.onnx" --method lowrank "$@" "${HELDOUT[@]}" --out "$OUT/$m.$name.onnx" --report "$OUT/$m.$name.json" >"$OUT/$m.$name.log" 2>&1
            W eval --model "$OUT/$m.$name.onnx" --reference "$FM/$m.onnx" --data "$FM/heldout-images-idx3-ubyte.gz" --labels "$FM/heldout-labels-idx1-ubyte.gz" \
                --repeats "$REPEATS" --json "$OUT/$m.$name.eval.json" >/dev/null; }
    run lossless --mode lossless "${CALIB[@]}"
    run compact --mode compact "${CALIB[@]}"
    run compact-lf --mode compact --order largest-first "${CALIB[@]}"
    run compact-0.005 --mode compact --loss-tolerance 0.005 "${CALIB[@]}"
    run compact-0.005-lf --mode compact --loss-tolerance 0.005 --order largest-first "${CALIB[@]}"
    run lossless-unseen --mode lossless "${UNSEEN[@]}"
done
fi

if [[ ,$SECTIONS, != *,text,* ]]; then
    :
elif [ -f "$TX/fixtures.json" ] && [ -f data/moby-dick.txt ]; then
    # The text split of fixtures/text/fixtures.json: train bytes [0, cut), held-out [cut, end).
    CUT=$(/usr/bin/python3 -c "import json; print(json.load(open('$TX/fixtures.json'))['data']['heldout_bytes'][0])")
    head -c "$CUT" data/moby-dick.txt > "$OUT/train.txt"
    tail -c +"$((CUT + 1))" data/moby-dick.txt > "$OUT/heldout.txt"
    for m in gpt2 llama; do
        [ -f "$TX/$m.onnx" ] || { echo "skip $m: $TX/$m.onnx missing" >&2; continue; }
        for method in svd asvd whitened-svd; do
            W compress --model "$TX/$m.onnx" --method "$method" --keep-params 0.8 --calib "$OUT/train.txt" --calib-count 256 --window 128 \
                --eval "$OUT/heldout.txt" --out "$OUT/$m.$method.onnx" --report "$OUT/$m.$method.json" >"$OUT/$m.$method.log" 2>&1
            W eval --model "$OUT/$m.$method.onnx" --reference "$TX/$m.onnx" --text "$OUT/heldout.txt" --window 128 --count 64 \
                --repeats "$REPEATS" --json "$OUT/$m.$method.eval.json" >/dev/null
        done
    done
else
    echo "skip the language models: $TX/fixtures.json or data/moby-dick.txt (scripts/fetch_data.sh) missing" >&2
fi

/usr/bin/python3 scripts/lowrank_summary.py "$OUT"
