#!/usr/bin/env bash
# tests/run-tests.sh [--sanitize] [FILTER...]
# The test command from the README: installs what is missing (as root),
# builds with warnings as errors, and runs the declared test list. With
# --sanitize the same suite runs in a separate ASan/UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build
ARGS=(-DCRUCIBLE_WERROR=ON)
if [ "${1:-}" = "--sanitize" ]; then
  shift
  BUILD=build-asan
  ARGS+=(-DCRUCIBLE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
bash tests/setup.sh "$BUILD" "${ARGS[@]}"
echo "== running tests ($BUILD)"
"$BUILD/tests/crucible-tests" "$@"
