/* libFuzzer target: .npy and TensorProto .pb readers. */
#include <stdint.h>

#include "tensorio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    cr_array a;
    if (tio_load_mem(data, size, "fuzz.npy", &a, err, sizeof err) == 0) tio_free(&a);
    if (tio_load_mem(data, size, "fuzz.pb", &a, err, sizeof err) == 0) tio_free(&a);
    return 0;
}
