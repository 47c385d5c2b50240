#!/usr/bin/env bash
# bench/fpga.sh [BUILD_DIR]: fpga-verilog figures for the int8-mlp example at
# several parallelism levels (prints a table; not a timed test).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
M=plugins/fpga-verilog/examples/int8-mlp.crir
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
printf '%-8s %-10s %-10s %-8s %-6s %-5s %-5s %-10s %-8s\n' parallel cycles estimate mac_eff LCs DSP BRAM fmax_MHz tool_s
for p in 1 2 4; do
  printf '[target.fpga-verilog]\nparallel = %s\n' "$p" > "$T/c.ini"
  out=$("$B/bin/crucible" compile "$M" --target fpga-verilog --board icebreaker \
        --config "$T/c.ini" --json -o "$T/x.tptpkg" 2>&1 || true)
  cyc=$(grep -o '"cycles":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
  est=$(grep -o '"cycles_estimate":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
  lc=$(grep -o '"lc":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
  dsp=$(grep -o '"dsp":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
  bram=$(grep -o '"bram":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
  fmax=$(grep -o '"fmax_mhz":[0-9.]*' <<<"$out" | head -1 | cut -d: -f2)
  ys=$(grep -o '"yosys_s":[0-9.]*' <<<"$out" | head -1 | cut -d: -f2)
  np=$(grep -o '"nextpnr_s":[0-9.]*' <<<"$out" | head -1 | cut -d: -f2)
  if [ -z "$cyc" ]; then
    printf '%-8s %s\n' "$p" "$(grep -o 'DSPs[^.]*\|divide[^.]*' <<<"$out" | head -1)"; continue
  fi
  eff=$(awk -v c="$cyc" -v p="$p" 'BEGIN{printf "%.3f", (16*8+8*4)/(c*p)}')
  tool=$(awk -v a="${ys:-0}" -v b="${np:-0}" 'BEGIN{printf "%.1f", a+b}')
  printf '%-8s %-10s %-10s %-8s %-6s %-5s %-5s %-10s %-8s\n' "$p" "$cyc" "$est" "$eff" "$lc" "$dsp" "$bram" "$fmax" "$tool"
done
