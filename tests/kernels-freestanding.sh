#!/bin/sh
# kernels-freestanding.sh - proves that sdk/kernels/ is freestanding C.
#
# Compiles every kernel source for a Cortex-M0+ (arm-none-eabi-gcc) and an
# RV32IMAC (riscv64-unknown-elf-gcc) with -ffreestanding -nostdlib, links
# each architecture's objects into one relocatable object (ld -r), and
# checks with nm that the only undefined symbols are compiler runtime
# (libgcc) helpers. Also checks that the sources include nothing but
# <stdint.h>/<stddef.h> (and the kernels' own headers) and use no floating
# point types. Prints the text size per architecture.
#
# Installs gcc-arm-none-eabi and gcc-riscv64-unknown-elf (Debian) when they
# are missing and we are root. Exit status: 0 ok, 1 a check failed,
# 77 the toolchains are absent and cannot be installed (a skip).
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${CRUCIBLE_SOURCE_DIR:-$(dirname "$here")}
kdir=$src/sdk/kernels
inc=$src/sdk/include
fail=0

ls "$kdir"/*.c >/dev/null 2>&1 || { echo "no kernel sources in $kdir"; exit 1; }

# ---- source checks (no toolchain needed) ----------------------------------
bad=$(grep -n '^[[:space:]]*#[[:space:]]*include' "$kdir"/*.c "$kdir"/*.h \
        "$inc/crucible/kernels.h" |
      grep -v -e '<stdint\.h>' -e '<stddef\.h>' -e '<crucible/kernels\.h>' \
              -e '"crk_internal\.h"')
if [ -n "$bad" ]; then
    echo "FAIL: kernel sources include more than stdint.h/stddef.h:"
    echo "$bad"
    fail=1
fi
# ---- toolchains ------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
if ! have arm-none-eabi-gcc || ! have riscv64-unknown-elf-gcc; then
    if [ "$(id -u)" = 0 ] && have apt-get; then
        echo "installing gcc-arm-none-eabi gcc-riscv64-unknown-elf ..."
        export DEBIAN_FRONTEND=noninteractive
        if ! { apt-get update -qq &&
               apt-get install -y -qq --no-install-recommends \
                   gcc-arm-none-eabi gcc-riscv64-unknown-elf; } \
               >/tmp/crucible-kernels-apt.log 2>&1; then
            tail -5 /tmp/crucible-kernels-apt.log
            echo "SKIP: could not install the cross toolchains"
            exit 77
        fi
    else
        echo "SKIP: arm-none-eabi-gcc / riscv64-unknown-elf-gcc absent and not root"
        exit 77
    fi
fi

# floating point types or literals, comments stripped by the preprocessor
for f in "$kdir"/*.c "$kdir"/*.h "$inc/crucible/kernels.h"; do
    bad=$(arm-none-eabi-gcc -fpreprocessed -dD -E -P -x c "$f" 2>/dev/null |
          grep -n -E '\b(float|double|_Complex)\b|(^|[^0-9A-Za-z_.])[0-9]+\.|\.[0-9]|\b[0-9]+[eE][-+]?[0-9]')
    if [ -n "$bad" ]; then
        echo "FAIL: floating point in $f:"
        echo "$bad"
        fail=1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/crk-freestanding.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# The INTEGER libgcc helpers the compilers may call: ARM EABI division,
# 64-bit multiply/shift/compare, Thumb-1 switch tables, and the generic
# __<op><si|di>N helpers. Float helpers (__aeabi_fadd, __addsf3, ...) and
# the EABI memory helpers (__aeabi_memcpy) are NOT on the list.
helper_re='^(__aeabi_(u?idiv|u?idivmod|u?ldivmod|lmul|llsl|llsr|lasr|u?lcmp)|__gnu_thumb1_case_[a-z0-9]+|__(mul|div|udiv|mod|umod|udivmod|ashl|ashr|lshr|neg|cmp|ucmp|clz|ctz|ffs|popcount|parity|bswap)(si|di)[0-9])$'

check_arch() { # name cc "ld args" nm size cflags...
    name=$1 cc=$2 ld=$3 nm=$4 size=$5
    shift 5
    objs=
    for f in "$kdir"/*.c; do
        o=$tmp/$name-$(basename "$f" .c).o
        if ! "$cc" "$@" -ffreestanding -nostdlib -O2 -std=c11 -Wall -Wextra \
               -Werror -I"$inc" -c "$f" -o "$o"; then
            echo "FAIL: $name: $cc could not compile $(basename "$f")"
            fail=1
            return
        fi
        objs="$objs $o"
    done
    # shellcheck disable=SC2086
    if ! $ld -r -o "$tmp/$name-kernels.o" $objs; then
        echo "FAIL: $name: ld -r failed"
        fail=1
        return
    fi
    undef=$("$nm" -u "$tmp/$name-kernels.o" | awk '{print $NF}' | sort -u)
    others=$(printf '%s\n' "$undef" | grep -v -E "$helper_re" | grep -v '^$')
    helpers=$(printf '%s\n' "$undef" | grep -E "$helper_re" | tr '\n' ' ')
    if [ -n "$others" ]; then
        echo "FAIL: $name: undefined symbols that are not libgcc helpers:"
        echo "$others"
        fail=1
    fi
    text=$("$size" "$tmp/$name-kernels.o" | awk 'NR == 2 {print $1}')
    echo "$name: text $text bytes; libgcc helpers used: ${helpers:-none}"
}

check_arch cortex-m0plus arm-none-eabi-gcc arm-none-eabi-ld arm-none-eabi-nm \
    arm-none-eabi-size -mcpu=cortex-m0plus -mthumb
check_arch rv32imac riscv64-unknown-elf-gcc "riscv64-unknown-elf-ld -m elf32lriscv" \
    riscv64-unknown-elf-nm riscv64-unknown-elf-size -march=rv32imac -mabi=ilp32

if [ "$fail" = 0 ]; then
    echo "kernels-freestanding: OK"
else
    echo "kernels-freestanding: FAILED"
fi
exit "$fail"
