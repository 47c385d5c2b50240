/* mcu_riscv.c - the mcu-riscv target plugin: a thin wrapper around the shared MCU code
 * generator (sdk/mcu, crucible/mcugen.h). Boards: the INI files in boards/. */
#include <crucible/crucible.h>
#include <crucible/mcugen.h>

#include <stdio.h>
#include <string.h>

static const mcugen_default defaults[] = {
    {"board", "arch", "rv32"},
    {"board", "flash_bytes", "4194304"},
    {"board", "ram_bytes", "4194304"},
    {"toolchain", "prefix", "riscv64-unknown-elf-"},
    {"toolchain", "cflags", "-march=rv32imac -mabi=ilp32 -Os"},
    {"toolchain", "debian_package", "gcc-riscv64-unknown-elf"},
    {"link", "flash_origin", "0x80000000"},
    {"link", "flash_length", "0x400000"},
    {"link", "ram_origin", "0x80400000"},
    {"link", "ram_length", "0x400000"},
    {"emulator", "qemu", "qemu-system-riscv32"},
    {"emulator", "machine", "virt"},
    {"emulator", "flags", "-bios none"},
    {"emulator", "debian_package", "qemu-system-misc"},
    {NULL, NULL, NULL}};



static const mcugen_target mt = {"mcu-riscv", defaults, NULL};

MCUGEN_PLUGIN(mcu_riscv, mt, "mcu-riscv", "RISC-V MCU (rv32)",
              "int8 firmware for rv32 microcontrollers (plain Makefile + linker script), verified bit-exact in qemu-system-riscv32",
              921600.0);
