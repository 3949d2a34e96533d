# Shared by the comparison scripts (source it from the repository root after setting OUT and MODELS): builds the CLI,
# sets W (the command), imports stories260K into $OUT when MODELS names it, and defines
#   fixture_data MODEL [IMAGE_CALIB_COUNT] [IMAGE_EVAL_COUNT]
# which prints the model, calibration and held-out flags of a trained fixture or stories260K (images: all 2,000 held-out
# unless a count is given; text: 64 calibration and 64 held-out windows of 128 bytes; stories260K-own: the model's own
# sampled stories), and
#   compress_to_report TAG COMPRESS_ARGS…
# which runs `whittle compress` into the report $OUT/TAG.json (log $OUT/TAG.log, models deleted) unless it exists.
dotnet build -c Release src/Whittle.Cli >/dev/null
W="dotnet $PWD/src/Whittle.Cli/bin/Release/net10.0/whittle.dll"
FM=fixtures/fashion-mnist
TX=fixtures/text
if [[ " $MODELS " == *" stories260K"* && ! -f "$OUT/stories260K.onnx" ]]; then
  $W import llama2c --model ../shared/models/stories260K/stories260K.bin --tokenizer ../shared/models/stories260K/tok512.bin --out "$OUT/stories260K.onnx"
fi
fixture_data() {
  local text="--calib $TX/calib-excerpt.txt --calib-count 64 --eval $TX/heldout-excerpt.txt --eval-count 64 --window 128"
  case $1 in
    mlp|vgg|resnet) echo "--model $FM/$1.onnx --calib $FM/calib-images-idx3-ubyte.gz --calib-labels $FM/calib-labels-idx1-ubyte.gz --calib-count ${2:-512} \
                          --eval $FM/heldout-images-idx3-ubyte.gz --eval-labels $FM/heldout-labels-idx1-ubyte.gz${3:+ --eval-count $3}" ;;
    gpt2|llama) echo "--model $TX/$1.onnx $text" ;;
    stories260K) echo "--model $OUT/stories260K.onnx $text" ;;
    # stories260K on stories it wrote itself (scripts/stories_samples.cs): its own domain, not English prose
    stories260K-own) echo "--model $OUT/stories260K.onnx --calib $TX/stories-calib.txt --calib-count 64 --eval $TX/stories-heldout.txt --eval-count 64 \
                          --window 128 --doc-separator blank-line" ;;
  esac
}
compress_to_report() {
  local tag=$1; shift
  [ -f "$OUT/$tag.json" ] && return 0
  echo "== $tag"
  if ! $W compress "$@" --out "$OUT/$tag.onnx" --report "$OUT/$tag.json.tmp" > "$OUT/$tag.log" 2>&1; then
    echo "   failed: $(tail -1 "$OUT/$tag.log")"
    return 0
  fi
  mv "$OUT/$tag.json.tmp" "$OUT/$tag.json"
  rm -f "$OUT/$tag".*onnx "$OUT/$tag".*onnx.data "$OUT/$tag.onnx"
}
