#!/usr/bin/env bash
# tests/main-job.sh - the main job from the README: build crucible, compile
# the bundled example model for every target that is built, verify each
# artifact in real tools, write and inspect the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh build
BIN=build/bin/crucible
OUT=${OUT:-build/out}
mkdir -p "$OUT"
MODEL=docs/examples/tiny-mlp.crir

echo "== plugins"
$BIN plugins
echo "== the example model's IR (docs/examples/tiny-mlp.crir)"
$BIN --json ir "$MODEL"
TARGETS=$($BIN plugins | awk '$2 ~ /target/ && $5 == "loaded" {print $1}')
if [ -z "$TARGETS" ]; then echo "no target plugins were built" >&2; exit 1; fi
echo "== targets: $TARGETS"
status=0
for t in $TARGETS; do
  echo "== compile $MODEL --target $t"
  if $BIN compile "$MODEL" --target "$t" --samples 8 -o "$OUT/tiny-mlp.$t.tptpkg"; then
    $BIN inspect "$OUT/tiny-mlp.$t.tptpkg"
  else
    status=1
  fi
done
[ $status = 0 ] && echo "== main job: all targets compiled, verified and packaged (see $OUT)"
exit $status
