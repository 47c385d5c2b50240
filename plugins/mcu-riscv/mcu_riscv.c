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

static int t_accept(void *s, const crucible_board *b, char *why, size_t n)
{
    (void)s;
    return mcugen_accept_board(&mt, b, why, n);
}
static int t_query(void *s, const crucible_query_ctx *c,
                   const crucible_graph_view *g, uint32_t node,
                   crucible_support *out)
{
    (void)s;
    return mcugen_query(&mt, c, g, node, out);
}
static int t_compile(void *s, const crucible_compile_ctx *c)
{
    return mcugen_compile(*(const crucible_host **)s, &mt, c);
}
static int t_verify(void *s, const crucible_verify_ctx *c)
{
    return mcugen_verify(*(const crucible_host **)s, &mt, c);
}

static const crucible_boundary uart = {sizeof(crucible_boundary),
                                       CRUCIBLE_LINK_UART, 921600.0, 8, 0.0};
static const crucible_boundary *const bounds[] = {&uart, NULL};
static const crucible_target target = {
    CRUCIBLE_HEADER(crucible_target), "int8 firmware for rv32 microcontrollers (plain Makefile + linker script), verified bit-exact in qemu-system-riscv32", bounds, t_accept, t_query,
    t_compile, t_verify};

static int p_init(const crucible_host *host, void **state)
{
    if (!host || !host->realloc || !host->log || !state)
        return CRUCIBLE_E_INVALID;
    const crucible_host **s = crucible_alloc(host, sizeof *s);
    if (!s) return CRUCIBLE_E_NOMEM;
    *s = host;
    *state = s;
    return CRUCIBLE_OK;
}
static void p_deinit(void *state)
{
    const crucible_host **s = state;
    if (s) crucible_free(*s, s, sizeof *s);
}
static const void *p_iface(void *state, const char *id)
{
    (void)state;
    return id && !strcmp(id, CRUCIBLE_IFACE_TARGET) ? &target : NULL;
}
static const char *const ifaces[] = {CRUCIBLE_IFACE_TARGET, NULL};

CRUCIBLE_EXPORT const crucible_plugin_entry mcu_riscv_entry
    __asm__(CRUCIBLE_ENTRY_SYMBOL) = {
    CRUCIBLE_HEADER(crucible_plugin_entry), CRUCIBLE_ABI_TAG, 0, "mcu-riscv", "RISC-V MCU (rv32)",
    MCUGEN_VERSION, "crucible", "int8 firmware for rv32 microcontrollers (plain Makefile + linker script), verified bit-exact in qemu-system-riscv32", ifaces, p_init, p_deinit, p_iface};
