#!/bin/sh
# run-oot.sh BUILD_DIR - the out-of-tree plugin test.
#
# Proves that a third party can build a plugin from the INSTALLED SDK alone
# and that the already-built host loads and runs it:
#
#   1. cmake --install BUILD_DIR into a temporary prefix;
#   2. copy tests/oot/ to a temporary directory (nothing from the source
#      tree is used after this: no -I into the repository);
#   3. build sample-target with its Makefile (pkg-config crucible-sdk) and
#      sample-cmake with CMake (find_package(crucible-sdk)), with
#      PKG_CONFIG_LIBDIR / CMAKE_PREFIX_PATH pointing at the prefix only;
#   4. run BUILD_DIR/bin/crucible --plugin-dir TMP/plugins plugins --json
#      and check both are loaded; compile a tiny IR model for each and
#      check the package with `crucible inspect`.
#
# Prints each step; exits non-zero with a message naming the failed step.
# CR_TEST_KEEP=1 keeps the temporary directory.
set -u

die() {
    echo "run-oot: FAILED: $*" >&2
    exit 1
}
step() { echo "run-oot: $*"; }

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"
REPO=$(cd "$(dirname "$0")/.." && pwd)
CRUCIBLE=$BUILD_DIR/bin/crucible
[ -x "$CRUCIBLE" ] || die "$CRUCIBLE not found: build the host first"
for tool in cmake pkg-config make cc; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found on PATH"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/crucible-oot.XXXXXX") || die "mktemp"
cleanup() {
    if [ -n "${CR_TEST_KEEP:-}" ]; then
        echo "run-oot: kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
PREFIX=$TMP/prefix
PLUGINS=$TMP/plugins
mkdir -p "$PLUGINS" "$TMP/src" "$TMP/out" "$TMP/work" || die "mkdir"

# Every build below must get its headers from the prefix, never from here.
no_repo_paths() { # FILE WHAT
    if grep -q "$REPO/sdk" "$1"; then
        grep "$REPO/sdk" "$1" | head -3 >&2
        die "$2 used the source tree ($REPO/sdk) instead of the installed SDK"
    fi
}

# ---- 1. install the SDK ---------------------------------------------------
step "installing $BUILD_DIR into $PREFIX"
cmake --install "$BUILD_DIR" --prefix "$PREFIX" >"$TMP/install.log" 2>&1 ||
    { cat "$TMP/install.log" >&2; die "cmake --install"; }
[ -f "$PREFIX/include/crucible/crucible.h" ] ||
    die "the install has no include/crucible/crucible.h"
PC=$(find "$PREFIX" -name crucible-sdk.pc | head -n 1)
[ -n "$PC" ] || die "the install has no crucible-sdk.pc"
PCDIR=$(dirname "$PC")
CMCONFIG=$(find "$PREFIX" -name crucible-sdk-config.cmake | head -n 1)
[ -n "$CMCONFIG" ] || die "the install has no crucible-sdk-config.cmake"
step "installed: $PC, $CMCONFIG"

# ---- 2. sources, copied away from the repository -------------------------
cp -R "$REPO/tests/oot/sample-target" "$REPO/tests/oot/sample-cmake" \
    "$TMP/src/" || die "copying tests/oot"
rm -rf "$TMP/src/sample-target/sample_target.so" "$TMP/src/sample-cmake/build"

# ---- 3a. Makefile + pkg-config -------------------------------------------
# PKG_CONFIG_LIBDIR replaces the default search path: only the prefix.
PKG_CONFIG_LIBDIR=$PCDIR
PKG_CONFIG_PATH=$PCDIR
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH
PKG_CONFIG=pkg-config
INC=$(pkg-config --variable=includedir crucible-sdk) ||
    die "pkg-config cannot read $PC"
case "$INC" in
"$PREFIX"/*) ;;
*)
    # The .pc file has the configure-time prefix baked in; pkg-config can
    # derive the prefix from the .pc file's location instead.
    echo "run-oot: NOTE: crucible-sdk.pc is not relocatable (includedir=$INC" \
        "after installing into $PREFIX); using pkg-config --define-prefix." \
        "Fix: make sdk/crucible-sdk.pc.in derive prefix from \${pcfiledir}."
    PKG_CONFIG="pkg-config --define-prefix"
    INC=$($PKG_CONFIG --variable=includedir crucible-sdk)
    case "$INC" in
    "$PREFIX"/*) ;;
    *) die "pkg-config gives includedir=$INC, outside $PREFIX" ;;
    esac
    ;;
esac
step "pkg-config --cflags crucible-sdk: $($PKG_CONFIG --cflags crucible-sdk)"
step "building sample-target with make"
(cd "$TMP/src/sample-target" &&
    make PKG_CONFIG="$PKG_CONFIG" PLUGIN_DIR="$PLUGINS" all install) \
    >"$TMP/make.log" 2>&1 || { cat "$TMP/make.log" >&2; die "make (sample-target)"; }
cat "$TMP/make.log"
no_repo_paths "$TMP/make.log" "make"
[ -f "$PLUGINS/sample_target.so" ] || die "make install did not install sample_target.so"

# ---- 3b. CMake + find_package --------------------------------------------
step "building sample-cmake with CMake (CMAKE_PREFIX_PATH=$PREFIX)"
cmake -S "$TMP/src/sample-cmake" -B "$TMP/src/sample-cmake/build" \
    -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_FIND_USE_CMAKE_SYSTEM_PATH=OFF \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$TMP/cmake.log" 2>&1 ||
    { cat "$TMP/cmake.log" >&2; die "cmake configure (sample-cmake)"; }
grep -q "^crucible-sdk_DIR:PATH=$PREFIX/" \
    "$TMP/src/sample-cmake/build/CMakeCache.txt" ||
    die "find_package(crucible-sdk) did not use $PREFIX"
cmake --build "$TMP/src/sample-cmake/build" >>"$TMP/cmake.log" 2>&1 ||
    { cat "$TMP/cmake.log" >&2; die "cmake --build (sample-cmake)"; }
no_repo_paths "$TMP/src/sample-cmake/build/compile_commands.json" "CMake"
cmake --install "$TMP/src/sample-cmake/build" >>"$TMP/cmake.log" 2>&1 ||
    { cat "$TMP/cmake.log" >&2; die "cmake --install (sample-cmake)"; }
SC=$(find "$PREFIX" -name sample_cmake.so | head -n 1)
[ -n "$SC" ] || die "cmake --install put sample_cmake.so nowhere under $PREFIX"
step "installed $SC (crucible_sdk_PLUGIN_DIR)"
cp "$SC" "$PLUGINS/" || die "cp sample_cmake.so"

# ---- 4. the already-built host --------------------------------------------
unset PKG_CONFIG_LIBDIR PKG_CONFIG_PATH
step "$CRUCIBLE --plugin-dir $PLUGINS plugins --json"
"$CRUCIBLE" --plugin-dir "$PLUGINS" plugins --json >"$TMP/plugins.json" \
    2>"$TMP/plugins.err" || { cat "$TMP/plugins.err" >&2; die "crucible plugins"; }
# One record per line: {"id":...,"status":...}
sed 's/},{/}\n{/g' "$TMP/plugins.json" >"$TMP/plugins.txt"
for id in com.example.sample-target com.example.sample-cmake; do
    rec=$(grep "\"id\":\"$id\"" "$TMP/plugins.txt")
    [ -n "$rec" ] || { cat "$TMP/plugins.json" >&2; die "$id is not listed"; }
    case "$rec" in
    *'"status":"loaded"'*) step "$id: loaded" ;;
    *) echo "$rec" >&2; die "$id is not loaded" ;;
    esac
done

cat >"$TMP/work/tiny.crir" <<'EOF'
crucible-ir 1
graph tiny
tensor x : f32[1, 3]
tensor w : f32[2, 3] = [0.5, -1, 2, 1, 1, 1]
tensor y : f32[1, 2]
node fc : dense(x, w, _) -> (y)
inputs (x)
outputs (y)
EOF

# compile_and_inspect ID ARTIFACT [EXTRA ARGS...]
compile_and_inspect() {
    id=$1
    art=$2
    shift 2
    pkg=$TMP/out/$id.tptpkg
    step "crucible compile tiny.crir --target $id $* -o $pkg"
    (cd "$TMP/work" && "$CRUCIBLE" --plugin-dir "$PLUGINS" compile tiny.crir \
        --target "$id" "$@" -o "$pkg") >"$TMP/compile.log" 2>&1 ||
        { cat "$TMP/compile.log" >&2; die "compile for $id"; }
    cat "$TMP/compile.log"
    [ -f "$pkg" ] || die "compile for $id wrote no package"
    step "crucible inspect $pkg"
    "$CRUCIBLE" inspect "$pkg" >"$TMP/inspect.log" 2>&1 ||
        { cat "$TMP/inspect.log" >&2; die "inspect of the $id package"; }
    cat "$TMP/inspect.log"
    grep -q "targets/$id/$art" "$TMP/inspect.log" ||
        die "the $id package has no targets/$id/$art"
}
compile_and_inspect com.example.sample-target hello.txt
grep -q "sample-check" "$TMP/compile.log" ||
    die "the sample-check verification step was not reported"
# The CMake sample has no verify slot: without --no-verify its step would
# be SKIPPED and the exit status 1.
compile_and_inspect com.example.sample-cmake ops.txt --no-verify

step "OK: both out-of-tree plugins built from the installed SDK, loaded and ran"
exit 0
