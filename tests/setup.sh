#!/usr/bin/env bash
# tests/setup.sh [BUILD_DIR] [CMAKE_ARGS...]
# Installs what crucible needs on Debian 12 (when run as root and something
# is missing), then configures and builds BUILD_DIR (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true

PKGS=(build-essential cmake ninja-build pkg-config libarchive-dev libinih-dev
      protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata ngspice
      gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-riscv64-unknown-elf
      picolibc-riscv64-unknown-elf qemu-system-arm qemu-system-misc
      python3-numpy python3-onnx)
# (python3-numpy / python3-onnx: test-data generation and the independent
# numpy forward passes the tests compare against; never used by crucible)
# fpga-verilog: simulators and the iCE40 flow (Yosys, nextpnr, icepack)
PKGS+=(iverilog verilator yosys nextpnr-ice40 fpga-icestorm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

echo "== configuring $BUILD"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
echo "== building $BUILD"
cmake --build "$BUILD" -j"$(nproc)"
