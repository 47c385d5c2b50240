#!/usr/bin/env bash
# tests/main-job.sh - the main job from the README: build crucible, measure
# the bundled example models' accuracy with the reference interpreter,
# compile each example for every target plugin that is built, verify each
# artifact in real tools, write and inspect the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh build
BIN=build/bin/crucible
OUT=${OUT:-build/out}
mkdir -p "$OUT"
D=docs/examples/digits

echo "== plugins"
$BIN plugins
TARGETS=$($BIN plugins | awk '$2 ~ /target/ && $5 == "loaded" {print $1}')
HAVE_ONNX=$($BIN plugins | awk '$1 == "onnx" && $5 == "loaded" {print "yes"}')
if [ -z "$TARGETS" ]; then echo "no target plugins were built" >&2; exit 1; fi

MODELS=(docs/examples/tiny-mlp.crir)
declare -A CALIB
if [ "$HAVE_ONNX" = yes ]; then
  echo "== accuracy of the bundled digits models (reference interpreter, 360 held-out digits)"
  $BIN accuracy $D/mlp/model.onnx --inputs $D/test-x-mlp.npy --labels $D/test-y.npy
  $BIN accuracy $D/cnn/model.onnx --inputs $D/test-x-cnn.npy --labels $D/test-y.npy
  echo "   (training script, docs/examples/digits/accuracy.json: mlp $(grep -A4 '"mlp"' $D/accuracy.json | grep -o '"float_test_accuracy": [0-9.]*' | cut -d' ' -f2), cnn $(grep -A4 '"cnn"' $D/accuracy.json | grep -o '"float_test_accuracy": [0-9.]*' | cut -d' ' -f2))"
  MODELS+=($D/mlp/model.onnx $D/cnn/model.onnx)
  CALIB[$D/mlp/model.onnx]=$D/test-x-mlp.npy
  CALIB[$D/cnn/model.onnx]=$D/test-x-cnn.npy
else
  echo "== onnx frontend not built: digits models skipped"
fi

echo "== targets: $(echo $TARGETS)"
status=0
for m in "${MODELS[@]}"; do
  name=$(echo "$m" | sed 's#docs/examples/##; s#/model.onnx##; s#\.crir##; s#/#-#g')
  for t in $TARGETS; do
    echo "== compile $m --target $t"
    log="$OUT/$name.$t.log"
    if $BIN compile "$m" --target "$t" --samples 8 -o "$OUT/$name.$t.tptpkg" 2>&1 | tee "$log"; then
      $BIN inspect "$OUT/$name.$t.tptpkg" | tail -1
    elif grep -q "pre-flight failed" "$log" && [ -n "${CALIB[$m]:-}" ]; then
      # an integer target (MCU, FPGA): quantise the float model to int8 with
      # 100 calibration rows, int8 interface, and compile that
      echo "   retrying for $t with the int8-quantised model (integer targets)"
      if $BIN compile "$m" --target "$t" --samples 8 --quant int8 --calib "${CALIB[$m]}" \
            --calib-samples 100 --io int8 -o "$OUT/$name-int8.$t.tptpkg" 2>&1 | tee "$log"; then
        $BIN inspect "$OUT/$name-int8.$t.tptpkg" | tail -1
      elif grep -q "pre-flight failed" "$log"; then
        echo "   not built: $t refuses the int8 model in pre-flight (reasons above)"
      else
        status=1
      fi
    elif grep -q "pre-flight failed" "$log"; then
      # the target said in pre-flight that it cannot build this model (not a
      # failure of the job: e.g. the analog target takes dense layers only)
      echo "   not built: $t refuses this model in pre-flight (reasons above)"
    else
      status=1
    fi
  done
done
# Real third-party models with their own test inputs (../shared/models).
SH=../shared/models
if [ -d $SH ]; then
  real() { # model target inputs...
    local m=$1 t=$2; shift 2
    echo "== compile $m --target $t (real test inputs)"
    $BIN compile "$m" --target "$t" --input "$@" \
      -o "$OUT/shared-$(basename "$(dirname "$m")").$t.tptpkg" || status=1
  }
  for t in $TARGETS; do
    case $t in
      cpu-c) real $SH/onnx/mnist8_cntk/model.onnx cpu-c $SH/onnx/mnist8_cntk/test_data_set_*/input_0.pb ;;
      mcu-*|fpga-verilog) real $SH/tflite/hello_world_int8/model.tflite $t $SH/tflite/hello_world_int8/test_data_set_*/input_0.npy ;;
    esac
  done
else
  echo "== SKIPPED: real models ($SH absent)"
fi
# spice: the digits MLP on 40 real test rows with E96 1 % parts (agreement,
# power, drift analysis), and its drift predictor checked in ngspice.
if [[ " $TARGETS " == *" spice "* ]] && [ "$HAVE_ONNX" = yes ]; then
  S=$OUT/spice-rows; mkdir -p $S
  /usr/bin/python3 -c "import numpy as np; x = np.load('$D/test-x-mlp.npy').astype(np.float32); [np.save('$S/s%03d.npy' % i, x[i:i + 1]) for i in range(40)]"
  printf '[target.spice]\ninput.min = 0\ninput.max = 1\n' > $S/digits.ini
  echo "== compile $D/mlp/model.onnx --target spice --board e96-1pct (40 test rows), then crucible drift --verify"
  $BIN compile $D/mlp/model.onnx --target spice --board e96-1pct --config $S/digits.ini \
    --input $S/s0*.npy -o $OUT/digits-mlp.spice-e96.tptpkg || status=1
  $BIN drift $OUT/digits-mlp.spice-e96.tptpkg --temp 85 --age 10y --tolerance 2% --verify \
    --max-error 5% || status=1
fi
[ $status = 0 ] && echo "== main job: every example compiled, verified and packaged for every target that accepts it (see $OUT)"
exit $status
