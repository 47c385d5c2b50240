/* libFuzzer target: the GGUF reader and dequantisation (plugins/gguf),
 * compiled in directly; the reader has no host dependencies. */
#include <stdint.h>
#include <stdlib.h>

#include "../../plugins/gguf/gguf_read.c"
#include "../../plugins/gguf/gguf_quant.c"

/* Visits every value, nested arrays included (depth is bounded by the
 * reader's GGUF_MAX_DEPTH). */
static void visit(const gguf_value *v)
{
    uint64_t u;
    int64_t i;
    double d;
    int b;
    size_t len;
    (void)gguf_value_u64(v, &u);
    (void)gguf_value_i64(v, &i);
    (void)gguf_value_f64(v, &d);
    (void)gguf_value_bool(v, &b);
    (void)gguf_value_str(v, &len);
    if (v->type != GGUF_T_ARRAY) return;
    gguf_value e;
    (void)gguf_array_get(v, 0, &e);
    (void)gguf_array_get(v, v->n ? v->n - 1 : 0, &e);
    gguf_iter it;
    gguf_iter_init(&it, v);
    while (gguf_iter_next(&it, &e)) visit(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    gguf_file *f = NULL;
    if (gguf_open_mem(data, size, NULL, NULL, &f, err, sizeof err)) return 0;
    for (size_t k = 0; k < gguf_n_kv(f); k++) {
        const gguf_kv *kv = gguf_kv_at(f, k);
        visit(&kv->v);
        (void)gguf_find_kv(f, kv->key);
    }
    for (size_t k = 0; k < gguf_n_tensors(f); k++) {
        const gguf_tensor *t = gguf_tensor_at(f, k);
        (void)gguf_find_tensor(f, t->name);
        const gguf_type_info *ti = gguf_type(t->type);
        if (!ti || !ti->dequant || t->n_elems > (1u << 16)) continue;
        float *y = malloc(t->n_elems * sizeof(float) + 4);
        if (y) gguf_dequantize(t->type, t->data, t->n_bytes, y, t->n_elems);
        free(y);
    }
    gguf_close(f);
    return 0;
}
