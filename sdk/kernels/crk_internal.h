/*
 * crk_internal.h - helpers shared by the kernel sources (not installed as
 * a public header; embedded with the sources). Freestanding: only
 * <stdint.h> and <stddef.h>, through crucible/kernels.h.
 */
#ifndef CRK_INTERNAL_H
#define CRK_INTERNAL_H

#include <crucible/kernels.h>

/* Loops that look like memcpy/memset may be turned into library calls by
 * GCC's loop distribution even with -ffreestanding; the kernels must not
 * call libc, so the few plain copy loops opt out. */
#if defined(__GNUC__) && !defined(__clang__)
#define CRK_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CRK_NO_LIBCALLS
#endif

/* Hot helpers are inlined even at -Os (the MCU firmware's default). */
#if defined(__GNUC__)
#define CRK_INLINE static inline __attribute__((always_inline))
#else
#define CRK_INLINE static inline
#endif

/* uint32 -> int32 by two's complement, without implementation-defined
 * conversions. Compiles to nothing. */
static inline int32_t crk_i_s32(uint32_t u)
{
    if (u & 0x80000000u) return -(int32_t)(~u) - 1;
    return (int32_t)u;
}

/* Wrapping int32 arithmetic (mod 2^32). */
static inline int32_t crk_i_add(int32_t a, int32_t b)
{
    return crk_i_s32((uint32_t)a + (uint32_t)b);
}
static inline int32_t crk_i_sub(int32_t a, int32_t b)
{
    return crk_i_s32((uint32_t)a - (uint32_t)b);
}
static inline int32_t crk_i_mul(int32_t a, int32_t b)
{
    return crk_i_s32((uint32_t)a * (uint32_t)b);
}
/* x * 2^s mod 2^32, s >= 0. */
static inline int32_t crk_i_shl(int32_t x, int s)
{
    if (s >= 32) return 0;
    return crk_i_s32((uint32_t)x << s);
}

static inline int32_t crk_i_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Valid int8 clamp range? */
static inline int crk_i_range_ok(int32_t lo, int32_t hi)
{
    return lo >= -128 && hi <= 127 && lo <= hi;
}

static inline int crk_i_zp_ok(int32_t zp)
{
    return zp >= -128 && zp <= 127;
}

static inline int crk_i_shift_ok(int32_t s)
{
    return s >= -31 && s <= 31;
}

/* A window geometry whose index arithmetic stays inside int32:
 * in + pad_before + pad_after <= INT32_MAX and dilation*(kernel-1) <=
 * INT32_MAX, with at least one output (crk_out_dim). */
static inline int crk_i_geom_ok(int32_t in, int32_t kernel, int32_t stride,
                                int32_t dilation, int32_t pb, int32_t pa)
{
    if (crk_out_dim(in, kernel, stride, dilation, pb, pa) < 1) return 0;
    uint32_t span = (uint32_t)in + (uint32_t)pb + (uint32_t)pa;
    uint32_t k1 = (uint32_t)kernel - 1u;
    if (span > (uint32_t)INT32_MAX) return 0;
    return k1 == 0 || (uint32_t)dilation <= (uint32_t)INT32_MAX / k1;
}

/* Requantisation without argument checks (the callers validated). */
static inline int8_t crk_i_requant(int32_t acc, int32_t mult, int shift,
                                   int32_t out_zp, int32_t lo, int32_t hi)
{
    int32_t v = crk_mbqm(acc, mult, shift);
    /* v + out_zp, saturating: exact whenever it matters, as the clamp
     * range lies inside int8. */
    if (out_zp > 0 && v > INT32_MAX - out_zp) v = INT32_MAX;
    else if (out_zp < 0 && v < INT32_MIN - out_zp) v = INT32_MIN;
    else v += out_zp;
    return (int8_t)crk_i_clamp(v, lo, hi);
}

/* Weight element e of a packed tensor (see kernels.h). */
static inline int32_t crk_i_wget(const uint8_t *w, crk_wfmt fmt, size_t e)
{
    switch (fmt) {
    case CRK_W_I8:
        return (int32_t)w[e] - (int32_t)((w[e] & 0x80u) << 1);
    case CRK_W_I4: {
        uint32_t nib = (uint32_t)(w[e >> 1] >> ((e & 1u) * 4u)) & 0xFu;
        return (int32_t)nib - (int32_t)((nib & 0x8u) << 1);
    }
    case CRK_W_TERNARY: {
        uint32_t code = (uint32_t)(w[e >> 2] >> ((e & 3u) * 2u)) & 0x3u;
        return code == 1u ? 1 : (code == 3u ? -1 : 0);
    }
    case CRK_W_BINARY:
        return ((w[e >> 3] >> (e & 7u)) & 1u) ? 1 : -1;
    }
    return 0;
}

/* sum_k w[k] * x[k] for k < n (int8 x int8, wrapping int32 as uint32),
 * unrolled for small MCUs: immediate offsets, one pointer step per four
 * products. */
CRK_INLINE uint32_t crk_i_dot_i8(const int8_t *w, const int8_t *x,
                                    int32_t n)
{
    uint32_t acc = 0;
    if (n == 3) /* the common 3-wide kernel row */
        return (uint32_t)((int32_t)w[0] * x[0] + (int32_t)w[1] * x[1] +
                          (int32_t)w[2] * x[2]);
    for (; n >= 4; n -= 4, w += 4, x += 4)
        acc += (uint32_t)((int32_t)w[0] * x[0] + (int32_t)w[1] * x[1] +
                          (int32_t)w[2] * x[2] + (int32_t)w[3] * x[3]);
    for (; n > 0; n--) acc += (uint32_t)((int32_t)*w++ * *x++);
    return acc;
}

/* Two dot products sharing their input, for two output channels / rows:
 * *pa0 += sum w[k] * (x[k] - zp), *pa1 += sum v[k] * (x[k] - zp), k < n
 * (wrapping, as uint32). */
#if defined(__GNUC__) && defined(__thumb__) && !defined(__thumb2__)
/* ARMv6-M (Cortex-M0/M0+): GCC spills the C loop's variables; by hand it
 * is 9 instructions per 2 products (10 with a zero point, added negated
 * from a high register): one index counting down, register-offset signed
 * byte loads. Thumb-1 inline assembly is in divided syntax (GCC's
 * default). Same arithmetic as the C version. CRK_I_DOT2_M0 is the loop
 * (n >= 1; a0, a1 uint32_t lvalues), for use inside small functions
 * whose registers are free (conv.c); crk_i_dot2_i8 wraps it out of line. */
#define CRK_I_DOT2_M0(W_, V_, X_, N_, ZP_, A0_, A1_)                               \
    do {                                                                  \
        int32_t i_ = (N_) - 1, t0_, t1_, nz_ = -(ZP_);                      \
        if (nz_)                                                          \
            __asm__("1:\n\t"                                              \
                    "ldrsb %[t0], [%[x], %[i]]\n\t"                       \
                    "add   %[t0], %[nz]\n\t"                              \
                    "ldrsb %[t1], [%[w], %[i]]\n\t"                       \
                    "mul   %[t1], %[t0]\n\t"                              \
                    "add   %[a0], %[t1]\n\t"                              \
                    "ldrsb %[t1], [%[v], %[i]]\n\t"                       \
                    "mul   %[t1], %[t0]\n\t"                              \
                    "add   %[a1], %[t1]\n\t"                              \
                    "sub   %[i], #1\n\t"                                  \
                    "bpl   1b"                                            \
                    : [i] "+l"(i_), [t0] "=&l"(t0_), [t1] "=&l"(t1_),     \
                      [a0] "+r"(A0_), [a1] "+r"(A1_)                        \
                    : [x] "l"(X_), [w] "l"(W_), [v] "l"(V_), [nz] "h"(nz_)   \
                    : "cc", "memory");                                    \
        else                                                              \
            __asm__("1:\n\t"                                              \
                    "ldrsb %[t0], [%[x], %[i]]\n\t"                       \
                    "ldrsb %[t1], [%[w], %[i]]\n\t"                       \
                    "mul   %[t1], %[t0]\n\t"                              \
                    "add   %[a0], %[t1]\n\t"                              \
                    "ldrsb %[t1], [%[v], %[i]]\n\t"                       \
                    "mul   %[t1], %[t0]\n\t"                              \
                    "add   %[a1], %[t1]\n\t"                              \
                    "sub   %[i], #1\n\t"                                  \
                    "bpl   1b"                                            \
                    : [i] "+l"(i_), [t0] "=&l"(t0_), [t1] "=&l"(t1_),     \
                      [a0] "+r"(A0_), [a1] "+r"(A1_)                        \
                    : [x] "l"(X_), [w] "l"(W_), [v] "l"(V_)                  \
                    : "cc", "memory");                                    \
    } while (0)

static __attribute__((noinline, unused)) void
crk_i_dot2_i8(const int8_t *w, const int8_t *v, const int8_t *x, int32_t n,
              int32_t zp, uint32_t *pa0, uint32_t *pa1)
{
    uint32_t a0 = *pa0, a1 = *pa1;
    if (n <= 0) return;
    CRK_I_DOT2_M0(w, v, x, n, zp, a0, a1);
    *pa0 = a0;
    *pa1 = a1;
}
#else
/* Unrolled: immediate offsets, one pointer step per four taps, the
 * 3-wide kernel row in one piece. */
CRK_INLINE void crk_i_dot2_i8(const int8_t *w, const int8_t *v,
                              const int8_t *x, int32_t n, int32_t zp,
                              uint32_t *pa0, uint32_t *pa1)
{
    uint32_t a0 = *pa0, a1 = *pa1;
    if (n == 3) {
        int32_t x0 = x[0] - zp, x1 = x[1] - zp, x2 = x[2] - zp;
        *pa0 = a0 + (uint32_t)(w[0] * x0 + w[1] * x1 + w[2] * x2);
        *pa1 = a1 + (uint32_t)(v[0] * x0 + v[1] * x1 + v[2] * x2);
        return;
    }
    for (; n >= 4; n -= 4, w += 4, v += 4, x += 4) {
        int32_t x0 = x[0] - zp, x1 = x[1] - zp, x2 = x[2] - zp,
                x3 = x[3] - zp;
        a0 += (uint32_t)(w[0] * x0 + w[1] * x1 + w[2] * x2 + w[3] * x3);
        a1 += (uint32_t)(v[0] * x0 + v[1] * x1 + v[2] * x2 + v[3] * x3);
    }
    for (; n > 0; n--) {
        int32_t xa = *x++ - zp;
        a0 += (uint32_t)(*w++ * xa);
        a1 += (uint32_t)(*v++ * xa);
    }
    *pa0 = a0;
    *pa1 = a1;
}
#endif

static inline int crk_i_wfmt_ok(crk_wfmt fmt)
{
    return fmt == CRK_W_I8 || fmt == CRK_W_I4 || fmt == CRK_W_TERNARY ||
           fmt == CRK_W_BINARY;
}

#endif
