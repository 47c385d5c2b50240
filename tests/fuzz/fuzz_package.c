/* libFuzzer target: reading a .tptpkg (ZIP via libarchive + manifest). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "package.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/crucible-fuzz-%d.tptpkg", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    jbuf h, j;
    jb_init(&h);
    jb_init(&j);
    char err[512];
    (void)pkg_inspect(path, &h, &j, err, sizeof err);
    jb_free(&h);
    jb_free(&j);
    unlink(path);
    return 0;
}
