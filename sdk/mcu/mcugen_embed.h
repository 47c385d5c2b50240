/* mcugen_embed.h - private: the kernel library sources, embedded at build
 * time by embed.cmake (names relative to the firmware project). */
#ifndef MCUGEN_EMBED_H
#define MCUGEN_EMBED_H
#include <stddef.h>
typedef struct mcugen_file {
    const char *name;
    const char *text;
} mcugen_file;
extern const mcugen_file mcugen_kernel_files[];
extern const size_t mcugen_n_kernel_files;
#endif
