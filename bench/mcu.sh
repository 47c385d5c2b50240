#!/bin/sh
# bench/mcu.sh - MCU firmware figures, measured: for each model and each
# architecture (Cortex-M0+ = mcu-rp2040, rv32imac = mcu-riscv), compile
# with instruction counting on, run bit-exact in QEMU, and print flash,
# code, RAM, arena vs peak live vs naive, measured stack, instructions per
# inference and per MAC (docs/mcu.md has the table and the method).
#
#   bench/mcu.sh [BUILD_DIR]        (default: build)
#
# Needs the cross-compilers and QEMU (gcc-arm-none-eabi, qemu-system-arm,
# gcc-riscv64-unknown-elf, qemu-system-misc); /usr/bin/python3 (numpy,
# onnx) only to read the JSON reports and to convert mnist8's inputs.
set -u
cd "$(dirname "$0")/.."
B=${1:-build}/bin/crucible
SH=../shared/models
OUT=$(mktemp -d /tmp/crucible-bench-mcu.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
CFG=$OUT/count.ini
printf '[target.mcu-rp2040]\ncount_instructions = true\n[target.mcu-riscv]\ncount_instructions = true\n' > "$CFG"
[ -x "$B" ] || { echo "bench/mcu.sh: $B not built" >&2; exit 1; }

# mnist8_cntk's test inputs are float pixels 0..255; with --io int8 the
# firmware takes the quantiser's int8 input (scale 1, zero point -128, as
# the quantiser reports for these inputs): q = round(x) - 128
M8=$SH/onnx/mnist8_cntk
M8IN=""
if [ -d "$M8" ]; then
  for i in 0 1 2; do
    /usr/bin/python3 -c "import sys, numpy as np, onnx; from onnx import numpy_helper
t = numpy_helper.to_array(onnx.load_tensor(sys.argv[1]))
np.save(sys.argv[2], np.clip(np.round(t) - 128, -128, 127).astype(np.int8))" \
      "$M8/test_data_set_$i/input_0.pb" "$OUT/m8_in_$i.npy" && M8IN="$M8IN $OUT/m8_in_$i.npy"
  done
fi

# name | model | extra compile arguments
MODELS="digits-mlp|docs/examples/digits/mlp/model.onnx|--quant int8 --calib docs/examples/digits/test-x-mlp.npy --io int8 --samples 8
digits-cnn|docs/examples/digits/cnn/model.onnx|--quant int8 --calib docs/examples/digits/test-x-cnn.npy --io int8 --samples 8
mnist8_cntk|$SH/onnx/mnist8_cntk/model.onnx|--quant int8 --calib $SH/onnx/mnist8_cntk/test_data_set_0/input_0.pb $SH/onnx/mnist8_cntk/test_data_set_1/input_0.pb $SH/onnx/mnist8_cntk/test_data_set_2/input_0.pb --io int8 --input$M8IN
atmega_mnist14|$SH/onnx/atmega_mnist14/model.onnx|--quant int8 --calib $SH/onnx/atmega_mnist14/test_data_set_0/input_0.pb $SH/onnx/atmega_mnist14/test_data_set_1/input_0.pb $SH/onnx/atmega_mnist14/test_data_set_2/input_0.pb --io int8 --input $SH/onnx/atmega_mnist14/test_data_set_0/input_0.pb $SH/onnx/atmega_mnist14/test_data_set_1/input_0.pb $SH/onnx/atmega_mnist14/test_data_set_2/input_0.pb
hello_world_int8|$SH/tflite/hello_world_int8/model.tflite|--input $SH/tflite/hello_world_int8/test_data_set_0/input_0.npy $SH/tflite/hello_world_int8/test_data_set_1/input_0.npy $SH/tflite/hello_world_int8/test_data_set_2/input_0.npy
micro_speech|$SH/tflite/micro_speech_quantized/model.tflite|--input $SH/tflite/micro_speech_quantized/test_data_set_0/input_0.npy $SH/tflite/micro_speech_quantized/test_data_set_1/input_0.npy"

echo "$MODELS" | while IFS='|' read -r name model args; do
  [ -f "$model" ] || { echo "$name: SKIPPED ($model absent)" >> "$OUT/rows"; continue; }
  for t in mcu-rp2040 mcu-riscv; do
    # shellcheck disable=SC2086
    "$B" compile "$model" --target $t $args --config "$CFG" --json \
      -o "$OUT/$name.$t.tptpkg" > "$OUT/$name.$t.json" 2> "$OUT/$name.$t.err"
    /usr/bin/python3 - "$name" "$t" "$OUT/$name.$t.json" "$OUT/$name.$t.err" >> "$OUT/rows" <<'PY'
import json, sys
name, t, jf, ef = sys.argv[1:5]
arch = {"mcu-rp2040": "M0+", "mcu-riscv": "rv32imac"}[t]
try:
    d = json.load(open(jf))
except Exception:
    err = [l for l in open(ef) if "cannot build" in l or "error" in l.lower()]
    print(f"{name:16} {arch:8} not built: {(err[0].strip() if err else 'see log')[:150]}")
    sys.exit(0)
st = {s["step"]: s for s in d["verification"]["steps"]}
sz = st.get("size", {}).get("metrics", {})
run = st.get("run", {})
cnt = st.get("count", {}).get("metrics", {})
ok = "bit-exact" if run.get("verdict") == "pass" else "FAIL " + run.get("message", "")[:60]
# instructions inside the conv / dense kernel functions (MAC loops, window
# clipping, per-output bookkeeping; not the requantisation helpers)
fn = cnt.get("functions", {})
kern = sum(v for k, v in fn.items() if k.startswith(("win_dot", "crk_i_dot2", "crk_conv2d", "crk_fully_connected", "dot_row")))
kpm = kern / sz["macs"] if sz.get("macs") else 0
ram_other = sz.get("ram_bytes", 0) - sz.get("arena_bytes", 0) - sz.get("stack_bytes", 0)
print(f"{name:16} {arch:8} {sz.get('macs',0):>8} {sz.get('flash_bytes',0):>7} {sz.get('code_bytes',0):>6} "
      f"{sz.get('const_bytes',0):>7} {sz.get('ram_bytes',0):>6} {sz.get('arena_bytes',0):>6} "
      f"{sz.get('peak_live_bytes',0):>6} {sz.get('naive_bytes',0):>6} {run.get('metrics',{}).get('stack_used',-1):>6} "
      f"{ram_other:>6} {cnt.get('instructions',0):>10} {cnt.get('instr_per_mac',0):>8.2f} {kpm:>8.2f}  {ok} "
      f"({run.get('metrics',{}).get('samples',0)} samples)")
PY
  done
done
printf '%-16s %-8s %8s %7s %6s %7s %6s %6s %6s %6s %6s %6s %10s %8s %8s  %s\n' model arch MACs flash code consts RAM arena peak naive stack other instr instr/MAC kern/MAC result
cat "$OUT/rows"
echo "(flash = text+rodata+data of the verification ELF incl. harness and samples; code = sum of function sizes;"
echo " consts = weights, biases, multipliers; RAM = data+bss = arena + reserved stack + other; stack = measured use;"
echo " instr = instructions executed by model_run on sample 0, counted in QEMU's exec trace;"
echo " kern/MAC = of those, the ones inside the conv/dense kernel functions (MAC loops, window clipping,"
echo " per-output bookkeeping; requantisation helpers excluded), per MAC)"
