/*
 * gguf_quant.c - the ggml tensor types: sizes (for validating data
 * ranges) and dequantisation of the common ones to float32.
 *
 * Block layouts (all little-endian; "f16" is an IEEE half; QK = 32 for
 * the simple types, QK_K = 256 for the k-quants, which group 256 values
 * in a super-block of 8 or 16 sub-blocks with their own scales):
 *
 *   Q4_0  18 B: f16 d; u8 qs[16]           x = (nibble - 8) * d
 *               low nibbles are elements 0..15, high nibbles 16..31
 *   Q4_1  20 B: f16 d, m; u8 qs[16]        x = nibble * d + m
 *   Q5_0  22 B: f16 d; u8 qh[4]; u8 qs[16] x = (nibble | bit << 4) - 16) * d
 *               bit j of the u32 qh is the fifth bit of element j
 *   Q5_1  24 B: f16 d, m; u8 qh[4]; qs[16] x = (nibble | bit << 4) * d + m
 *   Q8_0  34 B: f16 d; i8 qs[32]           x = q * d
 *   Q2_K  84 B: u8 scales[16]; u8 qs[64]; f16 d, dmin
 *               16 sub-blocks of 16; scale byte: low nibble scale, high
 *               nibble min; x = d * sc * q2 - dmin * mn
 *   Q3_K 110 B: u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d
 *               16 six-bit signed scales (minus 32) packed in 12 bytes;
 *               x = d * sc * (q2 - (hmask bit ? 0 : 4))
 *   Q4_K 144 B: f16 d, dmin; u8 scales[12]; u8 qs[128]
 *               8 sub-blocks of 32 with 6-bit scale and min packed in
 *               12 bytes; x = d * sc * q4 - dmin * mn
 *   Q5_K 176 B: f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
 *               as Q4_K with a fifth bit from qh
 *   Q6_K 210 B: u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d
 *               x = d * sc * (q6 - 32)
 *   Q8_K 292 B: f32 d; i8 qs[256]; i16 bsums[16]   x = q * d
 *
 * The code is ours, written from these layouts; tests/data/gguf/
 * gen_blocks.py computes the same values independently with numpy.
 */
#include "gguf_read.h"

#include <string.h>

#define QK 32
#define QK_K 256

/* Sizes of every type GGUF files carry. Removed ids (4, 5, 31-33, 36-38)
 * stay NULL: such a tensor is refused as an unknown type. */
static const gguf_type_info k_types[GGML_T_COUNT_] = {
    [GGML_T_F32] = {"F32", 1, 4, 1},
    [GGML_T_F16] = {"F16", 1, 2, 1},
    [GGML_T_Q4_0] = {"Q4_0", QK, 18, 1},
    [GGML_T_Q4_1] = {"Q4_1", QK, 20, 1},
    [GGML_T_Q5_0] = {"Q5_0", QK, 22, 1},
    [GGML_T_Q5_1] = {"Q5_1", QK, 24, 1},
    [GGML_T_Q8_0] = {"Q8_0", QK, 34, 1},
    [GGML_T_Q8_1] = {"Q8_1", QK, 36, 0},
    [GGML_T_Q2_K] = {"Q2_K", QK_K, 84, 1},
    [GGML_T_Q3_K] = {"Q3_K", QK_K, 110, 1},
    [GGML_T_Q4_K] = {"Q4_K", QK_K, 144, 1},
    [GGML_T_Q5_K] = {"Q5_K", QK_K, 176, 1},
    [GGML_T_Q6_K] = {"Q6_K", QK_K, 210, 1},
    [GGML_T_Q8_K] = {"Q8_K", QK_K, 292, 1},
    [GGML_T_IQ2_XXS] = {"IQ2_XXS", QK_K, 66, 0},
    [GGML_T_IQ2_XS] = {"IQ2_XS", QK_K, 74, 0},
    [GGML_T_IQ3_XXS] = {"IQ3_XXS", QK_K, 98, 0},
    [GGML_T_IQ1_S] = {"IQ1_S", QK_K, 50, 0},
    [GGML_T_IQ4_NL] = {"IQ4_NL", QK, 18, 0},
    [GGML_T_IQ3_S] = {"IQ3_S", QK_K, 110, 0},
    [GGML_T_IQ2_S] = {"IQ2_S", QK_K, 82, 0},
    [GGML_T_IQ4_XS] = {"IQ4_XS", QK_K, 136, 0},
    [GGML_T_I8] = {"I8", 1, 1, 0},
    [GGML_T_I16] = {"I16", 1, 2, 0},
    [GGML_T_I32] = {"I32", 1, 4, 0},
    [GGML_T_I64] = {"I64", 1, 8, 0},
    [GGML_T_F64] = {"F64", 1, 8, 0},
    [GGML_T_IQ1_M] = {"IQ1_M", QK_K, 56, 0},
    [GGML_T_BF16] = {"BF16", 1, 2, 1},
    [GGML_T_TQ1_0] = {"TQ1_0", QK_K, 54, 0},
    [GGML_T_TQ2_0] = {"TQ2_0", QK_K, 66, 0},
    [GGML_T_MXFP4] = {"MXFP4", QK, 17, 0},
};

const gguf_type_info *gguf_type(uint32_t type)
{
    if (type >= GGML_T_COUNT_ || !k_types[type].name) return NULL;
    return &k_types[type];
}

/* ---- scalars ------------------------------------------------------------------*/
static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float gguf_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0x1f) { /* infinity, NaN (payload kept) */
        bits = sign | 0x7f800000u | (m << 13);
    } else if (e) { /* normal: rebias 15 -> 127 */
        bits = sign | ((e + 112u) << 23) | (m << 13);
    } else if (!m) { /* signed zero */
        bits = sign;
    } else { /* subnormal m * 2^-24: normalise */
        uint32_t sh = 0;
        while (!(m & 0x400u)) {
            m <<= 1;
            sh++;
        }
        bits = sign | ((113u - sh) << 23) | ((m & 0x3ffu) << 13);
    }
    return bits_f32(bits);
}

float gguf_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

static float f16at(const uint8_t *p)
{
    return gguf_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* ---- simple 32-element blocks ---------------------------------------------------*/
static void deq_q4_0(const uint8_t *b, float *y)
{
    float d = f16at(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((int)(qs[j] & 0xf) - 8) * d;
        y[j + 16] = (float)((int)(qs[j] >> 4) - 8) * d;
    }
}

static void deq_q4_1(const uint8_t *b, float *y)
{
    float d = f16at(b), m = f16at(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0xf) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void deq_q5_0(const uint8_t *b, float *y)
{
    float d = f16at(b);
    uint32_t qh = le32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0xf) | (int)(((qh >> j) & 1u) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = (float)(lo - 16) * d;
        y[j + 16] = (float)(hi - 16) * d;
    }
}

static void deq_q5_1(const uint8_t *b, float *y)
{
    float d = f16at(b), m = f16at(b + 2);
    uint32_t qh = le32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0xf) | (int)(((qh >> j) & 1u) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = (float)lo * d + m;
        y[j + 16] = (float)hi * d + m;
    }
}

static void deq_q8_0(const uint8_t *b, float *y)
{
    float d = f16at(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* ---- k-quants (256-element super-blocks) -------------------------------------------*/
static void deq_q2_k(const uint8_t *b, float *y)
{
    const uint8_t *sc = b, *qs = b + 16;
    float d = f16at(b + 80), dmin = f16at(b + 82);
    /* two halves of 128; in each, 4 bit-planes (shift 0,2,4,6) over 32
     * bytes; each plane holds two sub-blocks of 16 */
    int s = 0;
    for (int half = 0; half < 2; half++) {
        const uint8_t *q = qs + 32 * half;
        for (int shift = 0; shift < 8; shift += 2) {
            for (int part = 0; part < 2; part++, s++) {
                float dl = d * (float)(sc[s] & 0xf);
                float ml = dmin * (float)(sc[s] >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
            }
        }
    }
}

/* Q3_K: scale i is 6 bits: the low 4 from byte i (i < 8) or the high
 * nibble of byte i - 8, the high 2 from byte 8 + i % 4 at bit 2 * (i / 4). */
static void q3k_scales(const uint8_t *s12, int sc[16])
{
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? (s12[i] & 0xf) : (s12[i - 8] >> 4);
        int hi = (s12[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = (lo | hi << 4) - 32;
    }
}

static void deq_q3_k(const uint8_t *b, float *y)
{
    const uint8_t *hmask = b, *qs = b + 32;
    int sc[16];
    q3k_scales(b + 96, sc);
    float d = f16at(b + 108);
    int s = 0;
    unsigned bit = 0; /* hmask bit: 0..7 */
    for (int half = 0; half < 2; half++) {
        const uint8_t *q = qs + 32 * half;
        for (int shift = 0; shift < 8; shift += 2, bit++) {
            for (int part = 0; part < 2; part++, s++) {
                float dl = d * (float)sc[s];
                for (int l = 0; l < 16; l++) {
                    int k = 16 * part + l;
                    int v = (q[k] >> shift) & 3;
                    if (!((hmask[k] >> bit) & 1)) v -= 4;
                    *y++ = dl * (float)v;
                }
            }
        }
    }
}

/* Q4_K / Q5_K: scale and min j (0..7), six bits each, in 12 bytes. */
static void k4_scale_min(const uint8_t *q, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void deq_q4_k(const uint8_t *b, float *y)
{
    float d = f16at(b), dmin = f16at(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    for (int g = 0; g < 4; g++, q += 32) { /* 64 values per 32 bytes */
        int sc, mn;
        k4_scale_min(scales, 2 * g, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        k4_scale_min(scales, 2 * g + 1, &sc, &mn);
        float d2 = d * (float)sc, m2 = dmin * (float)mn;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xf) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
    }
}

static void deq_q5_k(const uint8_t *b, float *y)
{
    float d = f16at(b), dmin = f16at(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    for (int g = 0; g < 4; g++, ql += 32) {
        int sc, mn;
        k4_scale_min(scales, 2 * g, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        k4_scale_min(scales, 2 * g + 1, &sc, &mn);
        float d2 = d * (float)sc, m2 = dmin * (float)mn;
        unsigned b1 = 2u * (unsigned)g, b2 = b1 + 1;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)((ql[l] & 0xf) + (((qh[l] >> b1) & 1) << 4)) -
                   m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)((ql[l] >> 4) + (((qh[l] >> b2) & 1) << 4)) -
                   m2;
    }
}

static void deq_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16at(b + 208);
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

static void deq_q8_k(const uint8_t *b, float *y)
{
    float d = bits_f32(le32(b));
    for (int j = 0; j < QK_K; j++) y[j] = (float)(int8_t)b[4 + j] * d;
}

int gguf_dequantize(uint32_t type, const void *src, size_t src_bytes,
                    float *dst, uint64_t n)
{
    const gguf_type_info *ti = gguf_type(type);
    if (!ti || !ti->dequant) return CRUCIBLE_E_UNSUPPORTED;
    if (n % ti->block) return CRUCIBLE_E_INVALID;
    uint64_t nb = n / ti->block;
    if (nb > src_bytes / ti->bytes) return CRUCIBLE_E_INVALID;
    if (!n) return CRUCIBLE_OK; /* an empty tensor has no data pointer */
    const uint8_t *s = src;
    void (*blk)(const uint8_t *, float *) = NULL;
    switch (type) {
    case GGML_T_F32:
        memcpy(dst, s, (size_t)n * 4);
        return CRUCIBLE_OK;
    case GGML_T_F16:
        for (uint64_t i = 0; i < n; i++) dst[i] = f16at(s + 2 * i);
        return CRUCIBLE_OK;
    case GGML_T_BF16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = gguf_bf16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        return CRUCIBLE_OK;
    case GGML_T_Q4_0: blk = deq_q4_0; break;
    case GGML_T_Q4_1: blk = deq_q4_1; break;
    case GGML_T_Q5_0: blk = deq_q5_0; break;
    case GGML_T_Q5_1: blk = deq_q5_1; break;
    case GGML_T_Q8_0: blk = deq_q8_0; break;
    case GGML_T_Q2_K: blk = deq_q2_k; break;
    case GGML_T_Q3_K: blk = deq_q3_k; break;
    case GGML_T_Q4_K: blk = deq_q4_k; break;
    case GGML_T_Q5_K: blk = deq_q5_k; break;
    case GGML_T_Q6_K: blk = deq_q6_k; break;
    case GGML_T_Q8_K: blk = deq_q8_k; break;
    default: return CRUCIBLE_E_UNSUPPORTED;
    }
    for (uint64_t i = 0; i < nb; i++)
        blk(s + i * ti->bytes, dst + i * ti->block);
    return CRUCIBLE_OK;
}
