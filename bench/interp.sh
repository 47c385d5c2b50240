#!/usr/bin/env bash
# bench/interp.sh [BUILD_DIR] - reference interpreter speed: mean time per
# inference over 200 runs for the bundled and shared models. Prints a table
# (figures, not a pass/fail test).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}/bin/crucible
S=../shared/models/onnx
D=docs/examples/digits
printf '%-44s %8s %14s\n' MODEL NODES "MS/INFERENCE"
row() {
  local model=$1 input=$2
  [ -f "$model" ] || { printf '%-44s %8s %14s\n' "$model" - "SKIPPED (absent)"; return; }
  local nodes ms
  nodes=$($B --json ir "$model" 2>/dev/null | sed -n 's/.*"nodes":\([0-9]*\).*/\1/p')
  ms=$($B run "$model" --input "$input" --time 200 2>&1 >/dev/null | sed -n 's/.*: \([0-9.]*\) ms per inference.*/\1/p')
  printf '%-44s %8s %14s\n' "${model#../shared/models/}" "$nodes" "${ms:-FAILED (see crucible run)}"
}
row $S/mnist8_cntk/model.onnx $S/mnist8_cntk/test_data_set_0/input_0.pb
row $S/atmega_mnist14/model.onnx $S/atmega_mnist14/test_data_set_0/input_0.pb
row $S/tfl_hello_world_keras2onnx/model.onnx $S/tfl_hello_world_keras2onnx/test_data_set_0/input_0.pb
row $D/mlp/model.onnx $D/mlp/test_data_set_0/input_0.pb
row $D/cnn/model.onnx $D/cnn/test_data_set_0/input_0.pb
