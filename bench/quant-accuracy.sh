#!/usr/bin/env bash
# bench/quant-accuracy.sh [BUILD_DIR] - test-set accuracy of the bundled
# digits models in float and after post-training quantisation (int8, int4,
# ternary, binary weights; int8 activations), all measured by crucible:
# `crucible quant -o` writes the quantised IR, `crucible accuracy` runs it
# in the reference interpreter. Prints the Markdown table recorded in
# docs/quantisation.md.
#
# Calibration: only the test split is bundled, so the first $CALIB (100)
# test rows calibrate the activation ranges and the accuracy is reported
# on all 360 test rows (the 100 included). METHOD=minmax|percentile
# (default percentile, 99.99 %).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}/bin/crucible
D=docs/examples/digits
CALIB=${CALIB:-100}
METHOD=${METHOD:-percentile}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

correct() { # model.(onnx|crir) mlp|cnn
  "$B" --json accuracy "$1" --inputs "$D/test-x-$2.npy" --labels "$D/test-y.npy" |
    sed -n 's/.*"correct":\([0-9]*\).*/\1/p'
}
cell() { # correct
  awk -v c="$1" 'BEGIN { printf "%d/360 = %.2f%%", c, 100 * c / 360 }'
}

echo "$("$B" --version | head -1); calibration: first $CALIB test rows, $METHOD"
echo
echo "| model | float | int8 | int4 | ternary | binary |"
echo "|---|---|---|---|---|---|"
for m in mlp cnn; do
  row="| digits-$m | $(cell "$(correct "$D/$m/model.onnx" "$m")")"
  for q in int8 int4 ternary binary; do
    "$B" -q quant "$D/$m/model.onnx" --calib "$D/test-x-$m.npy" \
      --samples "$CALIB" --quant "$q" --method "$METHOD" \
      -o "$TMP/$m-$q.crir" > "$TMP/$m-$q.txt"
    row="$row | $(cell "$(correct "$TMP/$m-$q.crir" "$m")")"
  done
  echo "$row |"
done

echo
echo "--quant mixed (per-layer formats from a config; other layers int8):"
echo
echo "| model | layers | accuracy |"
echo "|---|---|---|"
mixed() { # mlp|cnn "description" ini-text
  printf '%b' "$3" > "$TMP/mixed.ini"
  "$B" -q quant "$D/$1/model.onnx" --calib "$D/test-x-$1.npy" --samples "$CALIB" \
    --quant mixed --config "$TMP/mixed.ini" --method "$METHOD" \
    -o "$TMP/$1-mixed.crir" > /dev/null
  echo "| digits-$1 | $2 | $(cell "$(correct "$TMP/$1-mixed.crir" "$1")") |"
}
mixed mlp "/0/Gemm ternary, /2/Gemm int8" '[layer./0/gemm]\nquant = ternary\n'
mixed mlp "/0/Gemm int8, /2/Gemm ternary" '[layer./2/gemm]\nquant = ternary\n'
mixed cnn "/3/Conv ternary" '[layer./3/conv]\nquant = ternary\n'
mixed cnn "/0/Conv, /3/Conv int4" '[layer./0/conv]\nquant = int4\n[layer./3/conv]\nquant = int4\n'
