#!/usr/bin/env bash
# tests/run-fuzz.sh [SECONDS]  - builds the libFuzzer targets in tests/fuzz/
# with clang (ASan + UBSan) and runs each for SECONDS (default 20), seeded
# from the project's own test data. Installs clang when run as root and it
# is missing. Exit 1 on any finding (the crashing input is kept in
# build-fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
if ! command -v clang >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
  else
    echo "SKIPPED: clang not found (install clang libclang-rt-14-dev)"; exit 1
  fi
fi
OUT=build-fuzz
mkdir -p "$OUT"
SRC="$(ls host/*.c | grep -v '/main.c$') $(ls sdk/kernels/*.c 2>/dev/null)"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -DCRUCIBLE_VERSION=\"fuzz\" \
  -DCRUCIBLE_SYSTEM_PLUGIN_REL=\"../lib/crucible/plugins\" \
  -DCRUCIBLE_SYSTEM_PLUGIN_DIR=\"/nonexistent\" -Isdk/include -Ihost \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
status=0
for f in tests/fuzz/fuzz_*.c; do
  name=$(basename "$f" .c)
  echo "== building $name"
  # shellcheck disable=SC2086
  clang $CFLAGS $f $SRC -o "$OUT/$name" $(pkg-config --libs libarchive inih) -ldl -lm
  corpus="$OUT/corpus-$name"
  mkdir -p "$corpus"
  case $name in
    fuzz_irtext) cp docs/examples/*.crir "$corpus/" 2>/dev/null || true ;;
    fuzz_tensorio) cp tests/data/tensorio/*.npy tests/data/tensorio/*.pb "$corpus/" 2>/dev/null || true ;;
    fuzz_json) echo '{"a":[1,2,{"b":"c\u00e9"}],"d":null}' > "$corpus/seed.json" ;;
    fuzz_package) ls build/out/*.tptpkg >/dev/null 2>&1 && cp build/out/*.tptpkg "$corpus/" || true ;;
    fuzz_tflite) find ../shared/models/tflite -name '*.tflite' -size -64k -exec cp {} "$corpus/" \; 2>/dev/null || true ;;
    fuzz_gguf) cp ../shared/models/gguf/edge-cases/*.gguf tests/data/gguf/*.gguf "$corpus/" 2>/dev/null || true ;;
  esac
  echo "== running $name for ${SECS}s"
  if ! (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1 "./$name" -max_total_time="$SECS" \
        -max_len=65536 -print_final_stats=1 "corpus-$name" 2>&1 | tail -4); then
    status=1
  fi
  if ls "$OUT"/crash-* "$OUT"/leak-* "$OUT"/timeout-* >/dev/null 2>&1; then
    echo "FINDING in $name: $(ls "$OUT"/crash-* "$OUT"/leak-* "$OUT"/timeout-* 2>/dev/null)"; status=1
  fi
done
exit $status
