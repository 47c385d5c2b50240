/* libFuzzer target: the JSON parser used for package manifests. */
#include <stdint.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    jv *v = jv_parse((const char *)data, size, err, sizeof err);
    jv_free(v);
    return 0;
}
