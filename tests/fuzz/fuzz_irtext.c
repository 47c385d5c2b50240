/* libFuzzer target: the IR text parser (and print/parse idempotence). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    cr_graph *g = ir_parse((const char *)data, size, "fuzz", err, sizeof err);
    if (!g) return 0;
    jbuf a;
    jb_init(&a);
    ir_print(g, &a);
    cr_graph *g2 = ir_parse(a.s, a.len, "again", err, sizeof err);
    if (!g2) abort(); /* printed text must always parse */
    jbuf b;
    jb_init(&b);
    ir_print(g2, &b);
    if (a.len != b.len || memcmp(a.s, b.s, a.len)) abort(); /* round trip */
    jb_free(&a);
    jb_free(&b);
    ir_free(g);
    ir_free(g2);
    return 0;
}
