/* libFuzzer target: the TFLite frontend's FlatBuffers reader, model
 * decoder and checks (plugins/tflite/fb.c, tfl_model.c), and the lowering
 * of whatever decodes (tfl_lower*.c) into a real host graph, which is then
 * validated and shape-inferred. The plugin sources are compiled in here,
 * so the target needs no shared object. */
#include <stdint.h>
#include <stdlib.h>

#include "../../plugins/tflite/fb.c"
#include "../../plugins/tflite/tfl_model.c"
#include "../../plugins/tflite/tfl_ops.c"
#include "../../plugins/tflite/tfl_lower.c"
#include "../../plugins/tflite/tfl_lower_ops.c"

#include "interp.h"
#include "ir.h"

static void *fz_realloc(void *ud, void *p, size_t old, size_t n)
{
    (void)ud;
    (void)old;
    if (!n) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tfl_arena a;
    tfl_arena_init(&a, fz_realloc, NULL, ((size_t)64 << 20) + 16 * size);
    tfl_model m;
    char err[1024];
    if (tfl_model_parse(data, size, &a, &m, err, sizeof err) == 0) {
        cr_graph *g = ir_new();
        if (g) {
            ir_builder_ctx bctx;
            memset(&bctx, 0, sizeof bctx);
            bctx.g = g;
            crucible_ir_builder b;
            ir_builder_init(&b, &bctx);
            uint32_t unsup = 0;
            if (tfl_lower(&m, size, &a, &b, err, sizeof err, &unsup) == 0 &&
                ir_validate(g, err, sizeof err) == 0)
                ir_infer_shapes(g, err, sizeof err);
            ir_free(g);
        }
    }
    tfl_arena_free(&a);
    return 0;
}
