#!/usr/bin/env bash
# bench/spice.sh [BUILD_DIR] [SAMPLES] [DRIFT_SAMPLES]: spice target figures
# for the bundled digits MLP (prints tables; not a timed test):
#   - top-1 agreement with the float reference on the test split (SAMPLES
#     rows, default all 360), ideal board and e96-1pct board, ngspice time
#     per inference, component counts, static power, settling, energy;
#   - the drift analysis (DRIFT_SAMPLES rows, default 40, 3 trials) and the
#     drift predictor against ngspice on held-out (temperature, age,
#     tolerance, seed) conditions: error as % of the drift, speed-up;
#   - the digits CNN (NC rows with E96 parts, default 60; env NC).
# Needs ngspice and /usr/bin/python3 with numpy (test-data and JSON helper).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
N=${2:-360}
ND=${3:-40}
C="$B/bin/crucible"
PY=/usr/bin/python3
D=docs/examples/digits
command -v ngspice >/dev/null || { echo "SKIPPED: ngspice not found (apt-get install ngspice)"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
$PY - "$D/test-x-mlp.npy" "$T" "$N" <<'EOF'
import sys, numpy as np
x = np.load(sys.argv[1]).astype(np.float32)
for i in range(int(sys.argv[3])):
    np.save("%s/s%03d.npy" % (sys.argv[2], i), x[i:i + 1])
EOF
INPUTS=$(ls "$T"/s*.npy)
printf '[target.spice]\ninput.min = 0\ninput.max = 1\ndrift.samples = %s\ndrift.seeds = 3\n' "$ND" > "$T/d.ini"

j() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

echo "== digits MLP (64 -> 32 relu -> 10), $N test rows, $(ngspice -v 2>/dev/null | grep -o 'ngspice-[0-9]*' | head -1)"
printf '%-10s %-7s %-10s %-11s %-11s %-10s %-22s %-9s %-9s %-11s %-10s\n' board run top-1 max_err_fs ngspice_s ms/inf "resistors/opamps/diodes" power_W settle_us energy_J compile_s
for board in ideal e96-1pct pcm; do
  t0=$(date +%s.%N)
  "$C" compile "$D/mlp/model.onnx" --target spice --board "$board" --config "$T/d.ini" \
      -o "$T/$board.tptpkg" --input $INPUTS > "$T/$board.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  if [ $rc -ne 0 ]; then echo "$board: compile failed (exit $rc):"; tail -5 "$T/$board.log"; continue; fi
  rm -rf "$T/x-$board"; "$C" extract "$T/$board.tptpkg" "$T/x-$board" >/dev/null 2>&1
  R="$T/x-$board/targets/spice/report.json"; G="$T/x-$board/targets/spice/design.json"
  comps=$(j "$G" "'%d/%d/%d' % (d['totals']['resistors'], d['totals']['opamps'], d['totals']['diodes'])")
  pw=$(j "$R" "'%.3g' % d['power']['static_w_mean'] if d.get('power') else '-'")
  st=$(j "$R" "'%.3g' % (d['power']['settle_s']*1e6) if d.get('power') and d['power']['settle_s'] is not None else '-'")
  en=$(j "$R" "'%.3g' % d['power']['energy_j'] if d.get('power') and d['power']['energy_j'] is not None else '-'")
  nruns=$(j "$R" "len(d['runs'])")
  for ((i = 0; i < nruns; i++)); do
    line=$(j "$R" "(lambda m: '%s %d/%d %.3f%% %.2f %.2f' % (m['components'], m['top1_matches'], m['samples'], 100*m['err_fs'], m['ngspice_seconds'], m['ms_per_sample']))(d['runs'][$i]['metrics'])")
    set -- $line
    printf '%-10s %-7s %-10s %-11s %-11s %-10s %-22s %-9s %-9s %-11s %-10s\n' "$board" "$1" "$2" "$3" "$4" "$5" "$comps" "$pw" "$st" "$en" \
      "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
  done
done

P="$T/e96-1pct.tptpkg"
[ -f "$P" ] || exit 1
echo
echo "== drift analysis (e96-1pct, $ND samples x 3 trials): $(j "$T/x-e96-1pct/targets/spice/report.json" "'%d ngspice runs in %.1f s' % (d['drift']['ngspice_runs'], d['drift']['ngspice_seconds'])")"
sed -n '/^axis/,/^$/p' "$T/x-e96-1pct/targets/spice/report.txt"
echo "== drift predictor vs ngspice on held-out conditions (crucible drift --verify)"
printf '%-6s %-8s %-6s %-5s %-9s %-9s %-11s %-11s %-10s %-12s %-10s %-9s\n' temp_C age tol seed top1_pred top1_ng drift_rms err_rms err/drift predictor_us ngspice_s speedup
worst=0
for cond in "-30 0 1% 1" "10 1w 1% 2" "40 1000h 1% 3" "60 1000h 2% 1" "70 3y 1% 2" "95 1d 0.5% 3" "115 5y 3% 1" "-20 6y 2% 2" "27 2y 4% 3" "100 30d 0.2% 1"; do
  set -- $cond
  "$C" drift "$P" --temp "$1" --age "$2" --tolerance "$3" --seed "$4" --verify --json > "$T/q.json" 2>"$T/q.err" || { echo "$cond: $(cat "$T/q.err")"; continue; }
  row=$(j "$T/q.json" "'%d/%d %d/%d %.4g %.4g %.2f%% %.2f %.3f %.0fx' % (d['predicted']['top1_matches'], d['samples'], d['ngspice']['top1_matches'], d['samples'], d['ngspice']['drift_rms'], d['predictor_error']['rms'], 100*d['predictor_error']['of_predicted_drift_rms'], 1e6*d['predicted']['seconds'], d['ngspice']['seconds'], d['predictor_error']['speedup'])")
  r=$(j "$T/q.json" "'%.4f' % d['predictor_error']['of_predicted_drift_rms']")
  worst=$(awk -v a="$worst" -v b="$r" 'BEGIN{print (b>a)?b:a}')
  set -- $cond $row
  printf '%-6s %-8s %-6s %-5s %-9s %-9s %-11s %-11s %-10s %-12s %-10s %-9s\n' "$@"
done
echo "worst predictor error: $(awk -v w="$worst" 'BEGIN{printf "%.2f", 100*w}')% of the predicted rms drift (goal <= 5%)"

Q="$T/pcm.tptpkg"
if [ -f "$Q" ]; then
  echo
  echo "== PCM board: drift analysis ($ND samples x 3 trials)"
  sed -n '/^axis/,/^$/p' "$T/x-pcm/targets/spice/report.txt"
  echo "== PCM drift predictor vs ngspice on held-out conditions (tolerance = programming noise scale)"
  printf '%-6s %-8s %-6s %-5s %-9s %-9s %-11s %-11s %-10s %-12s %-10s %-9s\n' temp_C age prog seed top1_pred top1_ng drift_rms err_rms err/drift predictor_us ngspice_s speedup
  for cond in "27 12h 1 1" "40 3w 1 2" "27 3y 1 3" "70 2y 0.75 1" "10 100d 1.5 2" "27 5y 0.3 3"; do
    set -- $cond
    "$C" drift "$Q" --temp "$1" --age "$2" --tolerance "$3" --seed "$4" --verify --json > "$T/q.json" 2>"$T/q.err" || { echo "$cond: $(cat "$T/q.err")"; continue; }
    row=$(j "$T/q.json" "'%d/%d %d/%d %.4g %.4g %.2f%% %.2f %.3f %.0fx' % (d['predicted']['top1_matches'], d['samples'], d['ngspice']['top1_matches'], d['samples'], d['ngspice']['drift_rms'], d['predictor_error']['rms'], 100*d['predictor_error']['of_predicted_drift_rms'], 1e6*d['predicted']['seconds'], d['ngspice']['seconds'], d['predictor_error']['speedup'])")
    set -- $cond $row
    printf '%-6s %-8s %-6s %-5s %-9s %-9s %-11s %-11s %-10s %-12s %-10s %-9s\n' "$@"
  done
fi

echo
NC=${NC:-60}
echo "== digits CNN (conv2d unrolled, max-pool behavioural): ideal on $N rows, e96-1pct on $NC rows"
$PY - "$D/test-x-cnn.npy" "$T" "$N" <<'EOF'
import sys, numpy as np
x = np.load(sys.argv[1]).astype(np.float32)
for i in range(int(sys.argv[3])):
    np.save("%s/c%03d.npy" % (sys.argv[2], i), x[i:i + 1])
EOF
printf '[target.spice]\ninput.min = 0\ninput.max = 1\ndrift.samples = 4\ndrift.seeds = 1\n' > "$T/c.ini"
printf '%-10s %-7s %-10s %-11s %-11s %-10s %-22s %-9s %-10s\n' board run top-1 max_err_fs ngspice_s ms/inf "resistors/opamps/diodes" power_W compile_s
for board in ideal e96-1pct; do
  if [ "$board" = ideal ]; then CIN=$(ls "$T"/c*.npy); else CIN=$(ls "$T"/c*.npy | head -"$NC"); fi
  t0=$(date +%s.%N)
  "$C" compile "$D/cnn/model.onnx" --target spice --board "$board" --config "$T/c.ini" \
      -o "$T/cnn-$board.tptpkg" --input $CIN > "$T/cnn-$board.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  if [ $rc -ne 0 ]; then echo "CNN $board: compile failed (exit $rc):"; grep -A1 'FAIL' "$T/cnn-$board.log" | head -6; continue; fi
  rm -rf "$T/xc"; "$C" extract "$T/cnn-$board.tptpkg" "$T/xc" >/dev/null 2>&1
  R="$T/xc/targets/spice/report.json"; G="$T/xc/targets/spice/design.json"
  comps=$(j "$G" "'%d/%d/%d' % (d['totals']['resistors'], d['totals']['opamps'], d['totals']['diodes'])")
  pw=$(j "$R" "'%.3g' % d['power']['static_w_mean'] if d.get('power') else '-'")
  nruns=$(j "$R" "len(d['runs'])")
  for ((i = 0; i < nruns; i++)); do
    line=$(j "$R" "(lambda m: '%s %d/%d %.3f%% %.2f %.2f' % (m['components'], m['top1_matches'], m['samples'], 100*m['err_fs'], m['ngspice_seconds'], m['ms_per_sample']))(d['runs'][$i]['metrics'])")
    set -- $line
    printf '%-10s %-7s %-10s %-11s %-11s %-10s %-22s %-9s %-10s\n' "$board" "$1" "$2" "$3" "$4" "$5" "$comps" "$pw" \
      "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
  done
done
