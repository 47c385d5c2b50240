/*
 * crucible/kernels.h - the freestanding integer kernel library.
 *
 * These kernels DEFINE what a quantised crucible graph computes: the host's
 * reference interpreter runs them, every MCU firmware compiles the same
 * source (installed under <datadir>/crucible/kernels/), and FPGA RTL
 * implements the same arithmetic. Digital targets must match them bit for
 * bit. docs/integer-semantics.md writes the arithmetic out with a worked
 * example.
 *
 * Freestanding: the sources use only <stdint.h> and <stddef.h>. No malloc,
 * no libc calls (not even memcpy), no floating point anywhere. A compiler
 * may still call its own runtime helpers (libgcc: __aeabi_lmul, __divsi3,
 * ...). Nothing keeps state; every function is reentrant.
 *
 * Semantics follow the TFLite int8 quantisation specification, which
 * TFLite Micro and CMSIS-NN implement bit-exactly:
 *   real = scale * (q - zero_point)
 *   - activations int8 with a zero point (zp) per tensor;
 *   - weights int8 (or int4 / ternary / binary, below) symmetric (zero
 *     point 0) with one scale per output channel;
 *   - bias int32 with scale = input_scale * weight_scale[channel], zp 0;
 *   - accumulation in int32 (two's complement, wrapping mod 2^32: this
 *     library never overflows into undefined behaviour);
 *   - requantisation of an int32 accumulator by crk_mbqm() with a Q31
 *     multiplier and a shift the host computes from
 *     input_scale * weight_scale / output_scale (see "Multipliers");
 *   - saturation to [act_min, act_max], which is also how fused ReLU
 *     (act_min = output zp) and ReLU6 (act_max = quantised 6.0) are done.
 *
 * Layouts follow crucible's IR: activations NCHW (row-major, batch
 * outermost), conv weights [O, I/groups, kh, kw], dense weights [M, K].
 *
 * Multipliers. The host (which has floats) turns a positive real factor
 * r into (mult, shift) with r ~= mult * 2^(shift - 31), mult in
 * [2^30, 2^31) (mult = 0, shift = 0 for r = 0): frexp(r) = (f, e),
 * mult = round(f * 2^31) (if that is 2^31: mult = 2^30, e += 1),
 * shift = e. Shifts must lie in [-31, 31]. This is TFLite's
 * QuantizeMultiplier; the kernels only ever see the integers.
 *
 * Return values: functions returning int give CRK_OK (0) or CRK_EINVAL
 * (a NULL pointer, a dimension < 1, a clamp range outside int8, a group
 * count that does not divide the channels, ...). On CRK_EINVAL nothing
 * has been written.
 */
#ifndef CRUCIBLE_KERNELS_H
#define CRUCIBLE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the arithmetic. Bumped whenever any kernel could produce
 * a different bit anywhere; a target compiled against another version is
 * not bit-exact with this reference. crk_version() returns the value the
 * library was compiled with. */
#define CRK_VERSION 1
int crk_version(void);

enum { CRK_OK = 0, CRK_EINVAL = -1 };

/* ---- fixed-point primitives (gemmlowp / TFLite definitions) ------------ */

/* Saturating rounding doubling high multiply: the int32 nearest to
 * a * b / 2^31, ties rounded toward +infinity; the single overflowing case
 * a == b == INT32_MIN gives INT32_MAX. Exactly: with p = (int64)a * b,
 * nudge = p >= 0 ? 2^30 : 1 - 2^30, result = (p + nudge) / 2^31 with C
 * division (truncating toward zero). */
int32_t crk_srdhm(int32_t a, int32_t b);

/* Rounding divide by a power of two: x / 2^exponent rounded to nearest,
 * ties away from zero (gemmlowp RoundingDivideByPOT). exponent is normally
 * 0..31; exponent <= 0 returns x, exponent >= 32 returns the exact rounded
 * value (0, or -1 for INT32_MIN at 32). */
int32_t crk_rdivpot(int32_t x, int exponent);

/* Multiply by quantised multiplier (TFLite MultiplyByQuantizedMultiplier,
 * the double-rounding form): with left = max(shift, 0), right =
 * max(-shift, 0):
 *   crk_rdivpot(crk_srdhm(x * 2^left, mult), right)
 * where x * 2^left wraps mod 2^32 (the host keeps it in range).
 * shift in [-31, 31]. Approximates x * mult * 2^(shift - 31). */
int32_t crk_mbqm(int32_t x, int32_t mult, int shift);

/* The usual output stage: clamp(crk_mbqm(acc, mult, shift) + out_zp,
 * act_min, act_max), with the addition saturating in int32. */
int8_t crk_requant_one(int32_t acc, int32_t mult, int shift, int32_t out_zp,
                       int32_t act_min, int32_t act_max);

/* ---- weight formats ------------------------------------------------------
 * Weight element e of a tensor (its row-major index) sits at bit offset
 * e * bits of the data, bytes little-endian, low bits first; rows are NOT
 * padded to a byte boundary. All formats are symmetric (zero point 0) and
 * use the same per-output-channel (mult, shift) as int8:
 *   CRK_W_I8       8 bits, int8.
 *   CRK_W_I4       4 bits, two's complement -8..7; two per byte, element
 *                  2j in the low nibble of byte j.
 *   CRK_W_TERNARY  2 bits: 00 = 0, 01 = +1, 11 = -1 (10 is not produced
 *                  by crucible and decodes as 0); four per byte, element
 *                  4j in bits 0-1 of byte j.
 *   CRK_W_BINARY   1 bit: 1 = +1, 0 = -1; eight per byte, element 8j in
 *                  bit 0 of byte j.
 * These are crucible's IR dtypes I8, I4, TERNARY, BINARY. */
typedef enum crk_wfmt {
    CRK_W_I8 = 0,
    CRK_W_I4 = 1,
    CRK_W_TERNARY = 2,
    CRK_W_BINARY = 3
} crk_wfmt;

/* Element `index` of packed weights, as an int in -128..127. */
int32_t crk_weight_get(const void *weights, crk_wfmt fmt, size_t index);
/* Bytes needed for n elements of fmt (rounded up). */
size_t crk_weight_bytes(crk_wfmt fmt, size_t n);

/* ---- fully connected ------------------------------------------------------
 * input [batches, in_features] int8, weights [out_features, in_features]
 * in `wfmt`, bias [out_features] int32 (NULL: no bias), output
 * [batches, out_features] int8. For each n, m:
 *   acc = bias[m] + sum_k w[m,k] * (x[n,k] - input_zp)      (int32)
 *   y[n,m] = crk_requant_one(acc, mult[c], shift[c], output_zp,
 *                            act_min, act_max)
 * with c = m when per_channel, else c = 0. The sum runs k = 0, 1, ...
 * (order is irrelevant: int32 addition wraps, so it is associative). */
typedef struct crk_fc_params {
    int32_t batches;
    int32_t in_features;   /* K */
    int32_t out_features;  /* M */
    int32_t input_zp;      /* -128..127 */
    int32_t output_zp;     /* -128..127 */
    int32_t act_min;       /* -128 <= act_min <= act_max <= 127 */
    int32_t act_max;
    int32_t per_channel;   /* 1: mult/shift have M entries; 0: one entry */
    const int32_t *mult;
    const int32_t *shift;
} crk_fc_params;

int crk_fully_connected(const crk_fc_params *p, const int8_t *input,
                        const void *weights, crk_wfmt wfmt,
                        const int32_t *bias, int8_t *output);

/* Output size of a sliding window along one axis:
 *   floor((in + pad_before + pad_after - dilation*(kernel-1) - 1) / stride) + 1
 * or 0 when that is < 1 or an argument is out of range. (ceil_mode is
 * obtained by the caller by enlarging pad_after.) */
int32_t crk_out_dim(int32_t in, int32_t kernel, int32_t stride,
                    int32_t dilation, int32_t pad_before, int32_t pad_after);

/* ---- conv2d ----------------------------------------------------------------
 * input [batches, in_ch, in_h, in_w] int8; weights [out_ch, in_ch/groups,
 * kernel_h, kernel_w] in `wfmt`; bias [out_ch] int32 or NULL; output
 * [batches, out_ch, out_h, out_w] with out_h/out_w from crk_out_dim().
 * groups == in_ch with out_ch = in_ch * k is depthwise (multiplier k).
 * Output channel o belongs to group g = o / (out_ch/groups), which reads
 * input channels g*(in_ch/groups) + ci. For each n, o, oy, ox:
 *   acc = bias[o] + sum over ci, ky, kx with
 *           iy = oy*stride_h - pad_top  + ky*dilation_h,
 *           ix = ox*stride_w - pad_left + kx*dilation_w inside the input
 *         of w[o,ci,ky,kx] * (x[n, g*cin_g+ci, iy, ix] - input_zp)
 *   y = crk_requant_one(acc, mult[c], shift[c], output_zp, act_min, act_max)
 * Taps outside the input contribute nothing (padding holds real 0, i.e.
 * the value input_zp). */
typedef struct crk_conv_params {
    int32_t batches, in_ch, in_h, in_w;
    int32_t out_ch, kernel_h, kernel_w;
    int32_t groups;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t input_zp, output_zp;
    int32_t act_min, act_max;
    int32_t per_channel;   /* 1: mult/shift have out_ch entries */
    const int32_t *mult;
    const int32_t *shift;
} crk_conv_params;

int crk_conv2d(const crk_conv_params *p, const int8_t *input,
               const void *weights, crk_wfmt wfmt, const int32_t *bias,
               int8_t *output);

/* ---- pooling (int8; input and output share scale and zero point) -------
 * input [batches, channels, in_h, in_w], output [batches, channels, out_h,
 * out_w] (crk_out_dim). Window taps iy = oy*stride_h - pad_top +
 * ky*dilation_h (same for x); taps outside the input are skipped.
 *   max: y = clamp(max over taps, act_min, act_max).
 *   avg: sum = sum over taps (int32), count = number of taps inside
 *        (TFLite); with count_include_pad, padded taps add pad_value (the
 *        zero point) to sum and count = kernel_h*kernel_w. Then
 *        y = clamp(sum > 0 ? (sum + count/2) / count
 *                           : (sum - count/2) / count, act_min, act_max)
 *        with C division (truncating): rounding half away from zero.
 * A window with no tap inside the input (possible only with large pads or
 * dilation gaps; TFLite rejects it) gives clamp(-128) for max and
 * clamp(pad_value) for avg. */
typedef struct crk_pool_params {
    int32_t batches, channels, in_h, in_w;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;  /* 1 for plain pooling */
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t act_min, act_max;
    int32_t count_include_pad;       /* avg only */
    int32_t pad_value;               /* avg with count_include_pad */
} crk_pool_params;

int crk_max_pool2d(const crk_pool_params *p, const int8_t *input,
                   int8_t *output);
int crk_avg_pool2d(const crk_pool_params *p, const int8_t *input,
                   int8_t *output);

/* ---- broadcasting binary ops -----------------------------------------------
 * Shapes are given at rank 4 (pad on the left with 1s). Each input dim
 * equals the output dim or is 1 (numpy broadcasting). Element order is
 * row-major over the output. */
typedef struct crk_bcast4 {
    int32_t out[4];
    int32_t a[4];
    int32_t b[4];
} crk_bcast4;

/* add / sub (TFLite int8 Add / Sub):
 *   a' = crk_mbqm((a - a_zp) * 2^left_shift, a_mult, a_shift)
 *   b' = crk_mbqm((b - b_zp) * 2^left_shift, b_mult, b_shift)
 *   y  = clamp(crk_mbqm(a' +- b', out_mult, out_shift) + out_zp,
 *              act_min, act_max)
 * Host: left_shift = 20; m = 2 * max(sa, sb); a factor sa/m, b factor
 * sb/m (both <= 1/2), out factor m / (2^20 * s_out). */
typedef struct crk_add_params {
    int32_t a_zp, b_zp, out_zp;
    int32_t left_shift;   /* 0..30; 20 for int8 */
    int32_t a_mult, a_shift;
    int32_t b_mult, b_shift;
    int32_t out_mult, out_shift;
    int32_t act_min, act_max;
} crk_add_params;

int crk_add_i8(const crk_add_params *p, const crk_bcast4 *shape,
               const int8_t *a, const int8_t *b, int8_t *out);
int crk_sub_i8(const crk_add_params *p, const crk_bcast4 *shape,
               const int8_t *a, const int8_t *b, int8_t *out);

/* mul (TFLite int8 Mul):
 *   y = clamp(crk_mbqm((a - a_zp) * (b - b_zp), out_mult, out_shift)
 *             + out_zp, act_min, act_max)
 * Host: out factor sa * sb / s_out. */
typedef struct crk_mul_params {
    int32_t a_zp, b_zp, out_zp;
    int32_t out_mult, out_shift;
    int32_t act_min, act_max;
} crk_mul_params;

int crk_mul_i8(const crk_mul_params *p, const crk_bcast4 *shape,
               const int8_t *a, const int8_t *b, int8_t *out);

/* ---- requantise ------------------------------------------------------------
 * The tensor is viewed as [outer, channels, inner] (per-tensor: channels
 * may be anything with per_channel = 0). Element (o, c, i) uses
 * mult[c], shift[c] when per_channel, else mult[0], shift[0].
 *   i32 -> i8: y = clamp(crk_mbqm(x, m, s) + output_zp, act_min, act_max)
 *   i8 -> i8:  y = clamp(crk_mbqm(x - input_zp, m, s) + output_zp, ...)
 * (TFLite Requantize). */
typedef struct crk_requant_params {
    int32_t outer, channels, inner;
    int32_t input_zp;     /* i8 -> i8 only */
    int32_t output_zp;
    int32_t act_min, act_max;
    int32_t per_channel;
    const int32_t *mult;
    const int32_t *shift;
} crk_requant_params;

int crk_requantize_i32_i8(const crk_requant_params *p, const int32_t *in,
                          int8_t *out);
int crk_requantize_i8_i8(const crk_requant_params *p, const int8_t *in,
                         int8_t *out);

/* ---- activations -----------------------------------------------------------
 * Clamp (ReLU: lo = zp; ReLU6: hi = quantised 6; in == out allowed). */
int crk_clamp_i8(const int8_t *in, int8_t *out, size_t n, int32_t lo,
                 int32_t hi);

/* Table lookup: out[i] = table[in[i] + 128]. The host builds the 256
 * entries (e.g. sigmoid: table[j] = clamp(round(sigmoid(s_in*(j-128-zp_in))
 * / s_out) + zp_out)); the kernel only applies it. in == out allowed. */
void crk_lut_i8(const int8_t *in, int8_t *out, size_t n,
                const int8_t table[256]);

/* ---- softmax ---------------------------------------------------------------
 * TFLite's int8 reference softmax (gemmlowp fixed point), over the middle
 * axis of [outer, depth, inner] (NCHW channel softmax: outer = N,
 * depth = C, inner = H*W; last-axis softmax: inner = 1). Output int8 with
 * scale 1/256 and zero point -128. Per row, with max = the row maximum and
 * d = x - max (<= 0):
 *   d <  diff_min: y = -128
 *   d >= diff_min: e = exp(d * beta * s_in) in Q0.31, computed as
 *     exp_on_negative_values(srdhm(d * 2^input_beta_left_shift,
 *                                  input_beta_multiplier) as Q5.26);
 *     sum of rdivpot(e, 12) over the row (Q12.19);
 *     reciprocal of the sum by gemmlowp's one_over_one_plus_x
 *     (Newton-Raphson, 3 steps) with num_bits_over_unit;
 *     y = clamp(rdivpot(srdhm(recip, e), num_bits_over_unit + 23) - 128).
 * Host: real = min(beta * s_in * 2^(31-5), 2^31 - 1); (mult, left_shift) =
 * the multiplier of real (shift >= 0); diff_min = -floor((2^5 - 1) *
 * 2^(31-5) / 2^left_shift). docs/integer-semantics.md has every step. */
typedef struct crk_softmax_params {
    int32_t outer, depth, inner;
    int32_t input_beta_multiplier;
    int32_t input_beta_left_shift;  /* 0..31 */
    int32_t diff_min;               /* <= 0 */
} crk_softmax_params;

int crk_softmax_i8(const crk_softmax_params *p, const int8_t *in,
                   int8_t *out);

/* The fixed-point pieces of the softmax, public so that other
 * implementations (RTL, SIMD) can be checked against them value by value:
 *   crk_exp_on_negative_values: a = real * 2^26 (Q5.26), real <= 0;
 *     returns exp(real) * 2^31 (Q0.31; INT32_MAX for a = 0) - gemmlowp's
 *     exp_on_negative_values for 5 integer bits.
 *   crk_one_over_one_plus_x: a = x * 2^31 (Q0.31), x in [0, 1); returns
 *     1 / (1 + x) * 2^31 (Q0.31, saturated to INT32_MAX) - gemmlowp's
 *     one_over_one_plus_x_for_x_in_0_1. */
int32_t crk_exp_on_negative_values(int32_t a);
int32_t crk_one_over_one_plus_x(int32_t a);

/* ---- data movement (index maps; any element size) ------------------------ */

/* Reshape is the identity on row-major data: copies `bytes` bytes.
 * in == out is allowed (nothing moves); otherwise they must not overlap. */
void crk_reshape(const void *in, void *out, size_t bytes);

/* Transpose of a rank 1..4 tensor: out dims[i] = in_dims[perm[i]] and
 * out[j0..j(r-1)] = in[i] with i[perm[k]] = j[k]. in and out must not
 * overlap. */
int crk_transpose(const void *in, void *out, size_t elem_size, int32_t rank,
                  const int32_t *in_dims, const int32_t *perm);

/* Concatenation along the middle axis of [outer, axis, inner] (axis =
 * concat axis, outer = product of the dims before it, inner = after it).
 * Input i has axis_dim entries along the axis. An input with requant = 0
 * is copied unchanged (same scale and zero point as the output); else
 *   y = clamp(crk_mbqm(x - zp, mult, shift) + out_zp, -128, 127)
 * with mult/shift from s_in / s_out. */
typedef struct crk_concat_input {
    const int8_t *data;
    int32_t axis_dim;
    int32_t requant;
    int32_t zp, mult, shift;
} crk_concat_input;

int crk_concat_i8(const crk_concat_input *inputs, int32_t n_inputs,
                  int32_t outer, int32_t inner, int32_t out_zp, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif
