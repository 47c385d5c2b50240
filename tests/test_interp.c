/* test_interp.c - shape inference and the reference interpreter: graphs are
 * built with the ir.h API and checked against values computed by hand or
 * by naive loops written independently here. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "interp.h"
#include "ir.h"
#include "runner.h"
#include "tensorio.h"

/* ---- helpers ---- */
static uint32_t g_seed = 12345;
static float frand(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) & 0xffff) / 32768.0f - 1.0f + 1.0f / 65536.0f;
}
static void fill_rand(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = frand();
}

static int32_t tens(cr_graph *g, const char *name, int32_t dt, int rank, ...)
{
    int64_t d[CRUCIBLE_MAX_RANK] = {0};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) d[i] = va_arg(ap, int64_t);
    va_end(ap);
    char err[256];
    int32_t t = ir_add_tensor(g, name, dt, rank, d, err, sizeof err);
    if (t < 0) fprintf(stderr, "    add_tensor %s: %s\n", name, err);
    return t;
}
#define F32 CRUCIBLE_DT_F32
#define D(x) ((int64_t)(x))

static int32_t cst(cr_graph *g, int32_t t, const void *data)
{
    size_t bytes = ir_dtype_bytes(g->tensors[t].dtype, ir_numel(&g->tensors[t]));
    char err[256];
    if (ir_set_data(g, t, data, bytes, err, sizeof err)) {
        fprintf(stderr, "    set_data: %s\n", err);
        return -1;
    }
    return t;
}

static int32_t node(cr_graph *g, const char *op, const char *name, int n_in,
                    const int32_t *in, int32_t out)
{
    char err[256];
    int32_t r = ir_add_node(g, ir_op_from_name(op), name, (uint32_t)n_in, in,
                            1, &out, err, sizeof err);
    if (r < 0) fprintf(stderr, "    add_node %s: %s\n", name, err);
    return r;
}

static void arr_init(cr_array *a, int32_t dt, int rank, const int64_t *dims,
                     void *data)
{
    memset(a, 0, sizeof *a);
    a->dtype = dt;
    a->rank = rank;
    uint64_t e = 1;
    for (int i = 0; i < rank; i++) {
        a->dims[i] = dims[i];
        e *= (uint64_t)dims[i];
    }
    a->data = data;
    a->bytes = (size_t)e * ir_dtype_bits(dt) / 8;
}

/* Validates g, runs it on the graph inputs' shapes with the given data
 * pointers (in order), and returns output 0 in *out. */
static int run(cr_graph *g, void **data, cr_array *out, char *err,
               size_t errlen)
{
    int rc = ir_validate(g, err, errlen);
    if (rc) return rc;
    cr_array in[8];
    for (size_t i = 0; i < g->n_inputs; i++) {
        const cr_tensor *t = &g->tensors[g->inputs[i]];
        arr_init(&in[i], t->dtype, t->rank, t->dims, data[i]);
    }
    return interp_run(g, in, g->n_inputs, out, err, errlen);
}

static int feq(float a, float b) { return memcmp(&a, &b, 4) == 0; }

/* ---- dense / matmul ---- */
TEST(test_interp_dense)
{
    cr_graph *g = ir_new();
    float W[4 * 3], b[4], x[2 * 3];
    fill_rand(W, 12);
    fill_rand(b, 4);
    fill_rand(x, 6);
    int32_t tx = tens(g, "x", F32, 2, D(2), D(3));
    int32_t tw = cst(g, tens(g, "W", F32, 2, D(4), D(3)), W);
    int32_t tb = cst(g, tens(g, "b", F32, 1, D(4)), b);
    int32_t ty = tens(g, "y", F32, 2, D(2), D(4));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t ins[3] = {tx, tw, tb};
    CHECK(node(g, "dense", "fc", 3, ins, ty) >= 0);
    cr_array out;
    char err[512];
    void *d[1] = {x};
    int rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(out.dtype == F32 && out.rank == 2 && out.dims[0] == 2 &&
          out.dims[1] == 4);
    const float *y = out.data;
    for (int n = 0; n < 2; n++)
        for (int m = 0; m < 4; m++) {
            float acc = 0.0f;
            for (int k = 0; k < 3; k++) acc += x[n * 3 + k] * W[m * 3 + k];
            acc += b[m];
            CHECK(feq(y[n * 4 + m], acc));
        }
    /* a hand-computed case */
    tio_free(&out);
    ir_free(g);
    g = ir_new();
    float W2[2 * 2] = {1, 2, 3, 4}, x2[2] = {1, -1}, b2[2] = {0.5f, -0.5f};
    tx = tens(g, "x", F32, 2, D(1), D(2));
    tw = cst(g, tens(g, "W", F32, 2, D(2), D(2)), W2);
    tb = cst(g, tens(g, "b", F32, 1, D(2)), b2);
    ty = tens(g, "y", F32, 2, D(1), D(2));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t ins2[3] = {tx, tw, tb};
    node(g, "dense", "fc", 3, ins2, ty);
    d[0] = x2;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(((float *)out.data)[0] == -0.5f && ((float *)out.data)[1] == -1.5f);
    tio_free(&out);
    ir_free(g);
    return TEST_PASS;
}

static int matmul_case(int ra, const int64_t *da, int rb, const int64_t *db,
                       int ro, const int64_t *dout)
{
    cr_graph *g = ir_new();
    int64_t z[8] = {0};
    char err[512];
    int32_t ta = ir_add_tensor(g, "a", F32, ra, da, err, sizeof err);
    int32_t tb = ir_add_tensor(g, "b", F32, rb, db, err, sizeof err);
    int32_t ty = ir_add_tensor(g, "y", F32, ro, z, err, sizeof err);
    ir_mark_input(g, ta);
    ir_mark_input(g, tb);
    ir_mark_output(g, ty);
    int32_t ins[2] = {ta, tb};
    node(g, "matmul", "mm", 2, ins, ty);
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    CHECK(g->tensors[ty].rank == ro);
    for (int i = 0; i < ro; i++) CHECK(g->tensors[ty].dims[i] == dout[i]);
    size_t na = ir_numel(&g->tensors[ta]), nb = ir_numel(&g->tensors[tb]);
    float *A = malloc(na * 4), *B = malloc(nb * 4);
    fill_rand(A, na);
    fill_rand(B, nb);
    void *d[2] = {A, B};
    cr_array out;
    int rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* independent: promote to rank 8 with explicit broadcasting */
    int64_t pa[8], pb[8], po[8];
    int64_t R = ra >= 2 ? da[ra - 2] : 1, K = da[ra - 1];
    int64_t C = rb >= 2 ? db[rb - 1] : 1;
    for (int i = 0; i < 6; i++) {
        int ia = i - (6 - (ra > 2 ? ra - 2 : 0));
        int ib = i - (6 - (rb > 2 ? rb - 2 : 0));
        pa[i] = ia >= 0 ? da[ia] : 1;
        pb[i] = ib >= 0 ? db[ib] : 1;
        po[i] = pa[i] > pb[i] ? pa[i] : pb[i];
    }
    const float *Y = out.data;
    size_t oi = 0;
    int64_t idx[6];
    for (idx[0] = 0; idx[0] < po[0]; idx[0]++)
    for (idx[1] = 0; idx[1] < po[1]; idx[1]++)
    for (idx[2] = 0; idx[2] < po[2]; idx[2]++)
    for (idx[3] = 0; idx[3] < po[3]; idx[3]++)
    for (idx[4] = 0; idx[4] < po[4]; idx[4]++)
    for (idx[5] = 0; idx[5] < po[5]; idx[5]++) {
        int64_t offa = 0, offb = 0;
        for (int i = 0; i < 6; i++) {
            offa = offa * pa[i] + (pa[i] == 1 ? 0 : idx[i]);
            offb = offb * pb[i] + (pb[i] == 1 ? 0 : idx[i]);
        }
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < K; k++)
                    acc += A[offa * R * K + r * K + k] *
                           B[offb * K * C + k * C + c];
                CHECK(feq(Y[oi], acc));
                oi++;
            }
    }
    CHECK(oi == tio_numel(&out));
    tio_free(&out);
    free(A);
    free(B);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_matmul)
{
    int64_t a1[] = {2, 1, 3, 4}, b1[] = {3, 4, 5}, o1[] = {2, 3, 3, 5};
    CHECK(matmul_case(4, a1, 3, b1, 4, o1) == TEST_PASS);
    int64_t a2[] = {4}, b2[] = {2, 4, 3}, o2[] = {2, 3};
    CHECK(matmul_case(1, a2, 3, b2, 2, o2) == TEST_PASS);
    int64_t a3[] = {2, 3, 4}, b3[] = {4}, o3[] = {2, 3};
    CHECK(matmul_case(3, a3, 1, b3, 2, o3) == TEST_PASS);
    int64_t a4[] = {5}, b4[] = {5}, o4[] = {0};
    CHECK(matmul_case(1, a4, 1, b4, 0, o4) == TEST_PASS);
    int64_t a5[] = {3, 7}, b5[] = {7, 2}, o5[] = {3, 2};
    CHECK(matmul_case(2, a5, 2, b5, 2, o5) == TEST_PASS);
    return TEST_PASS;
}

/* ---- conv2d ---- */
typedef struct convcfg {
    int N, C, H, W, O, KH, KW, sh, sw, pt, pl, pb, pr, dh, dw, group, bias;
} convcfg;

static int conv_case(const convcfg *c)
{
    int OH = (c->H + c->pt + c->pb - ((c->KH - 1) * c->dh + 1)) / c->sh + 1;
    int OW = (c->W + c->pl + c->pr - ((c->KW - 1) * c->dw + 1)) / c->sw + 1;
    int icg = c->C / c->group, ocg = c->O / c->group;
    size_t nx = (size_t)c->N * c->C * c->H * c->W;
    size_t nw = (size_t)c->O * icg * c->KH * c->KW;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(c->O * 4);
    fill_rand(x, nx);
    fill_rand(w, nw);
    fill_rand(b, (size_t)c->O);
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 4, D(c->N), D(c->C), D(c->H), D(c->W));
    int32_t tw = cst(g, tens(g, "w", F32, 4, D(c->O), D(icg), D(c->KH),
                             D(c->KW)), w);
    int32_t tb = cst(g, tens(g, "b", F32, 1, D(c->O)), b);
    int32_t ty = tens(g, "y", F32, 4, D(0), D(0), D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t ins[3] = {tx, tw, tb};
    int32_t nd = node(g, "conv2d", "conv", c->bias ? 3 : 2, ins, ty);
    int64_t st[2] = {c->sh, c->sw}, pads[4] = {c->pt, c->pl, c->pb, c->pr},
            dil[2] = {c->dh, c->dw};
    ir_attr_ints(g, nd, "strides", 2, st);
    ir_attr_ints(g, nd, "pads", 4, pads);
    ir_attr_ints(g, nd, "dilations", 2, dil);
    ir_attr_int(g, nd, "group", c->group);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    CHECK(g->tensors[ty].dims[0] == c->N && g->tensors[ty].dims[1] == c->O &&
          g->tensors[ty].dims[2] == OH && g->tensors[ty].dims[3] == OW);
    void *d[1] = {x};
    cr_array out;
    int rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* independent reference: explicitly zero-padded copy of x */
    int PH = c->H + c->pt + c->pb, PW = c->W + c->pl + c->pr;
    float *xp = calloc((size_t)c->N * c->C * PH * PW, 4);
    for (int n = 0; n < c->N; n++)
        for (int ch = 0; ch < c->C; ch++)
            for (int h = 0; h < c->H; h++)
                for (int ww = 0; ww < c->W; ww++)
                    xp[((n * c->C + ch) * PH + h + c->pt) * PW + ww + c->pl] =
                        x[((n * c->C + ch) * c->H + h) * c->W + ww];
    const float *y = out.data;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    int gi = o / ocg;
                    float acc = 0.0f;
                    for (int i = 0; i < icg; i++)
                        for (int kh = 0; kh < c->KH; kh++)
                            for (int kw = 0; kw < c->KW; kw++)
                                acc += xp[((n * c->C + gi * icg + i) * PH +
                                           oh * c->sh + kh * c->dh) * PW +
                                          ow * c->sw + kw * c->dw] *
                                       w[((o * icg + i) * c->KH + kh) * c->KW +
                                         kw];
                    if (c->bias) acc += b[o];
                    float got = y[((n * c->O + o) * OH + oh) * OW + ow];
                    CHECK_MSG(feq(got, acc), "conv at %d,%d,%d,%d: %g vs %g",
                              n, o, oh, ow, (double)got, (double)acc);
                }
    free(xp);
    free(x);
    free(w);
    free(b);
    tio_free(&out);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_conv2d)
{
    static const convcfg cases[] = {
        /* N C H W  O KH KW sh sw pt pl pb pr dh dw group bias */
        {1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},
        {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 3, 9, 8, 5, 3, 2, 2, 3, 1, 0, 2, 1, 1, 1, 1, 1},
        {1, 2, 9, 9, 3, 3, 3, 1, 2, 2, 2, 2, 2, 2, 3, 1, 1},
        {1, 4, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},
        {2, 6, 8, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 6, 1}, /* depthwise */
        {1, 4, 8, 8, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 4, 0}, /* dw x2 */
        {1, 1, 28, 28, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(conv_case(&cases[i]) == TEST_PASS, "case %zu", i);
    return TEST_PASS;
}

TEST(test_interp_conv_transpose2d)
{
    /* N C H W, w [C, O/g, K, K], stride, pad, dil, outpad, group */
    static const int cases[][11] = {
        {1, 2, 3, 3, 3, 3, 2, 1, 1, 1, 1},
        {2, 4, 4, 5, 2, 3, 2, 0, 1, 0, 2},
        {1, 2, 3, 4, 2, 2, 3, 1, 2, 2, 1},
        {1, 1, 2, 2, 1, 3, 1, 0, 1, 0, 1},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int *c = cases[ci];
        int N = c[0], C = c[1], H = c[2], W = c[3], ocg = c[4], K = c[5];
        int s = c[6], p = c[7], dl = c[8], op = c[9], G = c[10];
        int O = ocg * G, icg = C / G;
        int OH = s * (H - 1) + op + (K - 1) * dl + 1 - 2 * p;
        int OW = s * (W - 1) + op + (K - 1) * dl + 1 - 2 * p;
        size_t nx = (size_t)N * C * H * W, nw = (size_t)C * ocg * K * K;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), b[16];
        fill_rand(x, nx);
        fill_rand(w, nw);
        fill_rand(b, 16);
        cr_graph *g = ir_new();
        int32_t tx = tens(g, "x", F32, 4, D(N), D(C), D(H), D(W));
        int32_t tw = cst(g, tens(g, "w", F32, 4, D(C), D(ocg), D(K), D(K)), w);
        int32_t tb = cst(g, tens(g, "b", F32, 1, D(O)), b);
        int32_t ty = tens(g, "y", F32, 4, D(0), D(0), D(0), D(0));
        ir_mark_input(g, tx);
        ir_mark_output(g, ty);
        int32_t ins[3] = {tx, tw, tb};
        int32_t nd = node(g, "conv_transpose2d", "deconv", 3, ins, ty);
        int64_t st[2] = {s, s}, pads[4] = {p, p, p, p}, dil[2] = {dl, dl},
                opd[2] = {op, op};
        ir_attr_ints(g, nd, "strides", 2, st);
        ir_attr_ints(g, nd, "pads", 4, pads);
        ir_attr_ints(g, nd, "dilations", 2, dil);
        ir_attr_ints(g, nd, "output_padding", 2, opd);
        ir_attr_int(g, nd, "group", G);
        char err[512];
        CHECK(ir_validate(g, err, sizeof err) == 0);
        CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
        CHECK(g->tensors[ty].dims[1] == O && g->tensors[ty].dims[2] == OH &&
              g->tensors[ty].dims[3] == OW);
        void *d[1] = {x};
        cr_array out;
        int rc = run(g, d, &out, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        /* independent scatter form (different order: compare with tol) */
        double *ref = calloc((size_t)N * O * OH * OW, sizeof(double));
        for (int n = 0; n < N; n++)
            for (int ch = 0; ch < C; ch++)
                for (int h = 0; h < H; h++)
                    for (int ww = 0; ww < W; ww++)
                        for (int j = 0; j < ocg; j++)
                            for (int kh = 0; kh < K; kh++)
                                for (int kw = 0; kw < K; kw++) {
                                    int oh = h * s - p + kh * dl;
                                    int ow = ww * s - p + kw * dl;
                                    if (oh < 0 || oh >= OH || ow < 0 ||
                                        ow >= OW)
                                        continue;
                                    int o = (ch / icg) * ocg + j;
                                    ref[((n * O + o) * OH + oh) * OW + ow] +=
                                        (double)x[((n * C + ch) * H + h) * W +
                                                  ww] *
                                        w[((ch * ocg + j) * K + kh) * K + kw];
                                }
        const float *y = out.data;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++)
                for (int i = 0; i < OH * OW; i++) {
                    double r = ref[(n * O + o) * OH * OW + i] + b[o];
                    CHECK_MSG(fabs(y[(n * O + o) * OH * OW + i] - r) < 1e-5,
                              "case %zu", ci);
                }
        free(ref);
        free(x);
        free(w);
        tio_free(&out);
        ir_free(g);
    }
    return TEST_PASS;
}

/* ---- elementwise ---- */
static int bin_case(const char *op, int32_t dt, int ra, const int64_t *da,
                    const void *a, int rb, const int64_t *db, const void *b,
                    int ro, const int64_t *dout, const void *want)
{
    cr_graph *g = ir_new();
    char err[512];
    int64_t z[8] = {0};
    int32_t ta = ir_add_tensor(g, "a", dt, ra, da, err, sizeof err);
    int32_t tb = ir_add_tensor(g, "b", dt, rb, db, err, sizeof err);
    int32_t ty = ir_add_tensor(g, "y", dt, ro, z, err, sizeof err);
    ir_mark_input(g, ta);
    ir_mark_input(g, tb);
    ir_mark_output(g, ty);
    int32_t ins[2] = {ta, tb};
    node(g, op, "op", 2, ins, ty);
    void *d[2] = {(void *)a, (void *)b};
    cr_array out;
    int rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(out.rank == ro);
    for (int i = 0; i < ro; i++) CHECK(out.dims[i] == dout[i]);
    CHECK_MSG(memcmp(out.data, want, out.bytes) == 0, "%s values", op);
    tio_free(&out);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_broadcast)
{
    int64_t d23[] = {2, 3}, d3[] = {3}, d21[] = {2, 1}, d13[] = {1, 3};
    float a[] = {1, 2, 3, 4, 5, 6}, b[] = {10, 20, 30};
    float add[] = {11, 22, 33, 14, 25, 36};
    CHECK(bin_case("add", F32, 2, d23, a, 1, d3, b, 2, d23, add) == 0);
    float sub[] = {-9, -18, -27, -6, -15, -24};
    CHECK(bin_case("sub", F32, 2, d23, a, 1, d3, b, 2, d23, sub) == 0);
    float c[] = {1, 2}, e[] = {10, 20, 30};
    float mul[] = {10, 20, 30, 20, 40, 60};
    CHECK(bin_case("mul", F32, 2, d21, c, 2, d13, e, 2, d23, mul) == 0);
    float dv[] = {1.0f / 10, 1.0f / 20, 1.0f / 30, 2.0f / 10, 2.0f / 20,
                  2.0f / 30};
    CHECK(bin_case("div", F32, 2, d21, c, 2, d13, e, 2, d23, dv) == 0);
    float pw[] = {1, 8, 27, 64, 125, 216}, three[] = {3};
    int64_t d1[] = {1};
    CHECK(bin_case("pow", F32, 2, d23, a, 1, d1, three, 2, d23, pw) == 0);
    float mx[] = {10, 20, 30, 10, 20, 30};
    CHECK(bin_case("max", F32, 2, d23, a, 1, d3, b, 2, d23, mx) == 0);
    int32_t ia[] = {1, -2, 3, INT32_MAX, 5, -7}, ib[] = {2, 2, -2};
    int32_t iadd[] = {3, 0, 1, INT32_MIN + 1, 7, -9}; /* wraps */
    CHECK(bin_case("add", CRUCIBLE_DT_I32, 2, d23, ia, 1, d3, ib, 2, d23,
                   iadd) == 0);
    int32_t idiv[] = {0, -1, -1, INT32_MAX / 2, 2, 3}; /* toward zero */
    CHECK(bin_case("div", CRUCIBLE_DT_I32, 2, d23, ia, 1, d3, ib, 2, d23,
                   idiv) == 0);
    int64_t la[] = {5, -6}, lb[] = {3}, lmin[] = {3, -6};
    int64_t d2[] = {2};
    CHECK(bin_case("min", CRUCIBLE_DT_I64, 1, d2, la, 1, d1, lb, 1, d2,
                   lmin) == 0);

    /* incompatible shapes: a clear shape-inference error */
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 2, D(2), D(3));
    int32_t tz = tens(g, "z", F32, 1, D(4));
    int32_t ty = tens(g, "y", F32, 2, D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_input(g, tz);
    ir_mark_output(g, ty);
    int32_t ins[2] = {tx, tz};
    node(g, "add", "plus", 2, ins, ty);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "node plus (add)") &&
                  test_contains(err, "[2,3]") && test_contains(err, "[4]"),
              "%s", err);
    ir_free(g);

    /* integer division by zero is an error, not UB */
    int32_t zb[] = {1, 0, 1};
    g = ir_new();
    tx = tens(g, "a", CRUCIBLE_DT_I32, 2, D(2), D(3));
    tz = tens(g, "b", CRUCIBLE_DT_I32, 1, D(3));
    ty = tens(g, "y", CRUCIBLE_DT_I32, 2, D(2), D(3));
    ir_mark_input(g, tx);
    ir_mark_input(g, tz);
    ir_mark_output(g, ty);
    node(g, "div", "d", 2, (int32_t[]){tx, tz}, ty);
    cr_array out;
    void *dd[2] = {ia, zb};
    CHECK(run(g, dd, &out, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "division by zero"), "%s", err);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_max_min_variadic)
{
    cr_graph *g = ir_new();
    int32_t a = tens(g, "a", F32, 1, D(3));
    int32_t b = tens(g, "b", F32, 2, D(2), D(1));
    int32_t c = tens(g, "c", F32, 0);
    int32_t y = tens(g, "y", F32, 2, D(0), D(0));
    ir_mark_input(g, a);
    ir_mark_input(g, b);
    ir_mark_input(g, c);
    ir_mark_output(g, y);
    node(g, "min", "m", 3, (int32_t[]){a, b, c}, y);
    float va[] = {1, 5, NAN}, vb[] = {4, 0}, vc[] = {3};
    void *d[3] = {va, vb, vc};
    cr_array out;
    char err[512];
    int rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    const float *o = out.data;
    CHECK(out.rank == 2 && out.dims[0] == 2 && out.dims[1] == 3);
    CHECK(o[0] == 1 && o[1] == 3 && isnan(o[2]));
    CHECK(o[3] == 0 && o[4] == 0 && isnan(o[5]));
    tio_free(&out);
    ir_free(g);
    return TEST_PASS;
}

static int unary(const char *op, const float *x, int n, float *y,
                 void (*attrs)(cr_graph *, int32_t))
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 1, D(n));
    int32_t ty = tens(g, "y", F32, 1, D(n));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t nd = node(g, op, "u", 1, &tx, ty);
    if (attrs) attrs(g, nd);
    void *d[1] = {(void *)x};
    cr_array out;
    char err[512];
    int rc = run(g, d, &out, err, sizeof err);
    if (rc) {
        fprintf(stderr, "    %s: %s\n", op, err);
        ir_free(g);
        return -1;
    }
    memcpy(y, out.data, (size_t)n * 4);
    tio_free(&out);
    ir_free(g);
    return 0;
}

static void clip_attrs(cr_graph *g, int32_t nd)
{
    ir_attr_float(g, nd, "min", -1.0);
    ir_attr_float(g, nd, "max", 2.0);
}
static void leaky_attrs(cr_graph *g, int32_t nd)
{
    ir_attr_float(g, nd, "alpha", 0.5);
}

TEST(test_interp_unary)
{
    const float x[] = {-3, -0.5f, 0, 0.25f, 1, 4};
    float y[6];
    CHECK(unary("relu", x, 6, y, NULL) == 0);
    CHECK(y[0] == 0 && y[1] == 0 && y[3] == 0.25f && y[5] == 4);
    CHECK(unary("leaky_relu", x, 6, y, NULL) == 0);
    CHECK(feq(y[0], 0.01f * -3.0f) && y[5] == 4);
    CHECK(unary("leaky_relu", x, 6, y, leaky_attrs) == 0);
    CHECK(y[0] == -1.5f && y[1] == -0.25f);
    CHECK(unary("clip", x, 6, y, clip_attrs) == 0);
    CHECK(y[0] == -1 && y[1] == -0.5f && y[5] == 2);
    CHECK(unary("clip", x, 6, y, NULL) == 0);
    CHECK(y[0] == -3 && y[5] == 4);
    CHECK(unary("sigmoid", x, 6, y, NULL) == 0);
    for (int i = 0; i < 6; i++) CHECK(feq(y[i], 1.0f / (1.0f + expf(-x[i]))));
    CHECK(y[2] == 0.5f);
    CHECK(unary("tanh", x, 6, y, NULL) == 0);
    CHECK(feq(y[4], tanhf(1.0f)));
    CHECK(unary("hard_sigmoid", x, 6, y, NULL) == 0);
    CHECK(y[0] == 0 && y[2] == 0.5f && feq(y[4], 0.2f * 1.0f + 0.5f) &&
          y[5] == 1);
    CHECK(unary("hard_swish", x, 6, y, NULL) == 0);
    CHECK(y[0] == 0 && y[2] == 0 && y[5] == 4);
    CHECK(feq(y[4], 1.0f * (1.0f / 6.0f + 0.5f)));
    CHECK(unary("exp", x, 6, y, NULL) == 0);
    CHECK(feq(y[4], expf(1.0f)) && y[2] == 1);
    CHECK(unary("abs", x, 6, y, NULL) == 0);
    CHECK(y[0] == 3 && y[5] == 4);
    CHECK(unary("neg", x, 6, y, NULL) == 0);
    CHECK(y[0] == 3 && y[5] == -4);
    const float p[] = {1, 4, 0.25f, 9};
    CHECK(unary("sqrt", p, 4, y, NULL) == 0);
    CHECK(y[0] == 1 && y[1] == 2 && y[2] == 0.5f && y[3] == 3);
    CHECK(unary("log", p, 4, y, NULL) == 0);
    CHECK(y[0] == 0 && feq(y[1], logf(4.0f)));

    /* prelu with a per-channel slope [C,1,1] */
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 4, D(1), D(2), D(1), D(2));
    float sl[] = {0.5f, 2.0f};
    int32_t ts = cst(g, tens(g, "s", F32, 3, D(2), D(1), D(1)), sl);
    int32_t ty = tens(g, "y", F32, 4, D(1), D(2), D(1), D(2));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "prelu", "pr", 2, (int32_t[]){tx, ts}, ty);
    float xv[] = {-2, 3, -2, 3};
    void *d[1] = {xv};
    cr_array out;
    char err[512];
    CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
    float *o = out.data;
    CHECK(o[0] == -1 && o[1] == 3 && o[2] == -4 && o[3] == 3);
    tio_free(&out);
    ir_free(g);
    return TEST_PASS;
}

/* ---- softmax ---- */
TEST(test_interp_softmax)
{
    for (int lg = 0; lg < 2; lg++) {
        cr_graph *g = ir_new();
        int32_t tx = tens(g, "x", F32, 3, D(2), D(3), D(4));
        int32_t ty = tens(g, "y", F32, 3, D(2), D(3), D(4));
        ir_mark_input(g, tx);
        ir_mark_output(g, ty);
        int32_t nd = node(g, lg ? "log_softmax" : "softmax", "sm", 1, &tx, ty);
        ir_attr_int(g, nd, "axis", 1);
        float x[24];
        fill_rand(x, 24);
        x[0] = 100.0f; /* exp overflow without the max subtraction */
        void *d[1] = {x};
        cr_array out;
        char err[512];
        CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
        const float *y = out.data;
        for (int a = 0; a < 2; a++)
            for (int i = 0; i < 4; i++) {
                double s = 0, m = -1e30;
                for (int c = 0; c < 3; c++)
                    m = fmax(m, x[(a * 3 + c) * 4 + i]);
                for (int c = 0; c < 3; c++)
                    s += exp(x[(a * 3 + c) * 4 + i] - m);
                double tot = 0;
                for (int c = 0; c < 3; c++) {
                    double want = exp(x[(a * 3 + c) * 4 + i] - m) / s;
                    float v = y[(a * 3 + c) * 4 + i];
                    CHECK(isfinite(v));
                    if (lg) {
                        CHECK(fabs(v - log(want)) < 1e-5);
                        tot += exp(v);
                    } else {
                        CHECK(fabs(v - want) < 1e-6);
                        tot += v;
                    }
                }
                CHECK(fabs(tot - 1.0) < 1e-5);
            }
        tio_free(&out);
        ir_free(g);
    }
    return TEST_PASS;
}

/* ---- pooling ---- */
static int pool_graph(const char *op, int H, int W, const float *x,
                      const int64_t *kernel, const int64_t *strides,
                      const int64_t *pads, int ceil_mode, int cip,
                      cr_array *out, char *err, size_t errlen)
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 4, D(1), D(1), D(H), D(W));
    int32_t ty = tens(g, "y", F32, 4, D(0), D(0), D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t nd = node(g, op, "pool", 1, &tx, ty);
    if (kernel) ir_attr_ints(g, nd, "kernel", 2, kernel);
    if (strides) ir_attr_ints(g, nd, "strides", 2, strides);
    if (pads) ir_attr_ints(g, nd, "pads", 4, pads);
    if (ceil_mode) ir_attr_int(g, nd, "ceil_mode", 1);
    if (cip) ir_attr_int(g, nd, "count_include_pad", 1);
    void *d[1] = {(void *)x};
    int rc = run(g, d, out, err, errlen);
    ir_free(g);
    return rc;
}

TEST(test_interp_pool)
{
    float x[25];
    for (int i = 0; i < 25; i++) x[i] = (float)i;
    int64_t k2[] = {2, 2}, s2[] = {2, 2}, k3[] = {3, 3};
    cr_array out;
    char err[512];
    /* floor: 2x2 */
    CHECK_MSG(pool_graph("max_pool2d", 5, 5, x, k2, s2, NULL, 0, 0, &out, err,
                         sizeof err) == 0, "%s", err);
    CHECK(out.dims[2] == 2 && out.dims[3] == 2);
    float *y = out.data;
    CHECK(y[0] == 6 && y[1] == 8 && y[2] == 16 && y[3] == 18);
    tio_free(&out);
    /* ceil_mode: 3x3, the last window is partial */
    CHECK_MSG(pool_graph("max_pool2d", 5, 5, x, k2, s2, NULL, 1, 0, &out, err,
                         sizeof err) == 0, "%s", err);
    CHECK(out.dims[2] == 3 && out.dims[3] == 3);
    y = out.data;
    CHECK(y[2] == 9 && y[6] == 21 && y[8] == 24);
    tio_free(&out);
    CHECK_MSG(pool_graph("avg_pool2d", 5, 5, x, k2, s2, NULL, 1, 0, &out, err,
                         sizeof err) == 0, "%s", err);
    y = out.data;
    CHECK(y[0] == (0 + 1 + 5 + 6) / 4.0f);
    CHECK(y[2] == (4 + 9) / 2.0f && y[8] == 24);
    tio_free(&out);
    /* ceil_mode with pads: the window that would start in the end padding
     * is dropped (5x5 input, k2 s2 pad 1: 3 not 4 positions) */
    int64_t p1[] = {1, 1, 1, 1};
    CHECK_MSG(pool_graph("max_pool2d", 5, 5, x, k2, s2, p1, 1, 0, &out, err,
                         sizeof err) == 0, "%s", err);
    CHECK(out.dims[2] == 3 && out.dims[3] == 3);
    tio_free(&out);
    /* avg with padding: count_include_pad 0 and 1 */
    int64_t s1[] = {1, 1};
    CHECK_MSG(pool_graph("avg_pool2d", 5, 5, x, k3, s1, p1, 0, 0, &out, err,
                         sizeof err) == 0, "%s", err);
    CHECK(out.dims[2] == 5 && out.dims[3] == 5);
    y = out.data;
    CHECK(y[0] == (0 + 1 + 5 + 6) / 4.0f);
    CHECK(y[12] == (6 + 7 + 8 + 11 + 12 + 13 + 16 + 17 + 18) / 9.0f);
    tio_free(&out);
    CHECK_MSG(pool_graph("avg_pool2d", 5, 5, x, k3, s1, p1, 0, 1, &out, err,
                         sizeof err) == 0, "%s", err);
    y = out.data;
    CHECK(y[0] == (0 + 1 + 5 + 6) / 9.0f);
    tio_free(&out);
    /* a kernel bigger than the padded input is a clear error */
    int64_t k9[] = {9, 1};
    CHECK(pool_graph("max_pool2d", 5, 5, x, k9, NULL, NULL, 0, 0, &out, err,
                     sizeof err) != 0);
    CHECK_MSG(test_contains(err, "node pool (max_pool2d)") &&
                  test_contains(err, "kernel"), "%s", err);
    CHECK(pool_graph("max_pool2d", 5, 5, x, NULL, NULL, NULL, 0, 0, &out, err,
                     sizeof err) != 0);
    CHECK_MSG(test_contains(err, "kernel"), "%s", err);

    /* global pools */
    for (int mx = 0; mx < 2; mx++) {
        cr_graph *g = ir_new();
        int32_t tx = tens(g, "x", F32, 4, D(2), D(3), D(2), D(2));
        int32_t ty = tens(g, "y", F32, 4, D(0), D(0), D(0), D(0));
        ir_mark_input(g, tx);
        ir_mark_output(g, ty);
        node(g, mx ? "global_max_pool" : "global_avg_pool", "gp", 1, &tx, ty);
        void *d[1] = {x};
        CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
        CHECK(out.rank == 4 && out.dims[0] == 2 && out.dims[1] == 3 &&
              out.dims[2] == 1 && out.dims[3] == 1);
        y = out.data;
        for (int c = 0; c < 6; c++)
            CHECK(y[c] == (mx ? 4.0f * c + 3 : (16.0f * c + 6) / 4.0f));
        tio_free(&out);
        ir_free(g);
    }
    return TEST_PASS;
}

/* ---- data movement ---- */
TEST(test_interp_reshape_transpose)
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 3, D(2), D(3), D(4));
    int32_t tr = tens(g, "r", F32, 3, D(0), D(0), D(0));
    int32_t tt = tens(g, "t", F32, 3, D(0), D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, tt);
    ir_mark_output(g, tr);
    int32_t n1 = node(g, "reshape", "rs", 1, &tx, tr);
    int64_t shp[] = {0, -1, 2};
    ir_attr_ints(g, n1, "shape", 3, shp);
    int32_t n2 = node(g, "transpose", "tp", 1, &tr, tt);
    int64_t perm[] = {1, 2, 0};
    ir_attr_ints(g, n2, "perm", 3, perm);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    CHECK(g->tensors[tr].dims[0] == 2 && g->tensors[tr].dims[1] == 6 &&
          g->tensors[tr].dims[2] == 2);
    CHECK(g->tensors[tt].dims[0] == 6 && g->tensors[tt].dims[1] == 2 &&
          g->tensors[tt].dims[2] == 2);
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)i;
    cr_array in, out[2];
    arr_init(&in, F32, 3, g->tensors[tx].dims, x);
    CHECK_MSG(interp_run(g, &in, 1, out, err, sizeof err) == 0, "%s", err);
    const float *y = out[0].data;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 2; c++)
                CHECK(y[(a * 2 + b) * 2 + c] == x[(c * 6 + a) * 2 + b]);
    CHECK(memcmp(out[1].data, x, sizeof x) == 0);
    CHECK(out[1].name && !strcmp(out[1].name, "r"));
    tio_free(&out[0]);
    tio_free(&out[1]);
    ir_free(g);

    /* default perm reverses; reshape that does not fit is an error */
    g = ir_new();
    tx = tens(g, "x", F32, 2, D(2), D(3));
    tt = tens(g, "t", F32, 2, D(3), D(2));
    tr = tens(g, "r", F32, 2, D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, tt);
    ir_mark_output(g, tr);
    node(g, "transpose", "tp", 1, &tx, tt);
    n1 = node(g, "reshape", "bad_reshape", 1, &tx, tr);
    int64_t shp2[] = {4, -1};
    ir_attr_ints(g, n1, "shape", 2, shp2);
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "node bad_reshape (reshape)"), "%s", err);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_concat_pad_slice)
{
    cr_graph *g = ir_new();
    int32_t ta = tens(g, "a", F32, 2, D(2), D(2));
    int32_t tb = tens(g, "b", F32, 2, D(2), D(1));
    int32_t tc = tens(g, "c", F32, 2, D(0), D(0));
    int32_t tp = tens(g, "p", F32, 2, D(0), D(0));
    int32_t tr = tens(g, "r", F32, 2, D(0), D(0));
    int32_t te = tens(g, "e", F32, 2, D(0), D(0));
    int32_t ts = tens(g, "s", F32, 2, D(0), D(0));
    ir_mark_input(g, ta);
    ir_mark_input(g, tb);
    ir_mark_output(g, tc);
    ir_mark_output(g, tp);
    ir_mark_output(g, tr);
    ir_mark_output(g, te);
    ir_mark_output(g, ts);
    int32_t n = node(g, "concat", "cat", 2, (int32_t[]){ta, tb}, tc);
    ir_attr_int(g, n, "axis", -1);
    n = node(g, "pad", "padc", 1, &tc, tp);
    int64_t pads[] = {1, 0, 0, 2};
    ir_attr_ints(g, n, "pads", 4, pads);
    ir_attr_float(g, n, "value", 9.0);
    n = node(g, "pad", "padr", 1, &tc, tr);
    int64_t pads2[] = {0, 2, 1, 1};
    ir_attr_ints(g, n, "pads", 4, pads2);
    ir_attr_string(g, n, "mode", "reflect");
    n = node(g, "pad", "pade", 1, &tc, te);
    ir_attr_ints(g, n, "pads", 4, pads2);
    ir_attr_string(g, n, "mode", "edge");
    n = node(g, "slice", "sl", 1, &tc, ts);
    int64_t st[] = {-1, 100}, en[] = {INT64_MIN, -100}, ax[] = {1, 0},
            sp[] = {-2, -1};
    ir_attr_ints(g, n, "starts", 2, st);
    ir_attr_ints(g, n, "ends", 2, en);
    ir_attr_ints(g, n, "axes", 2, ax);
    ir_attr_ints(g, n, "steps", 2, sp);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    float a[] = {1, 2, 4, 5}, b[] = {3, 6};
    cr_array in[2], out[5];
    arr_init(&in[0], F32, 2, g->tensors[ta].dims, a);
    arr_init(&in[1], F32, 2, g->tensors[tb].dims, b);
    CHECK_MSG(interp_run(g, in, 2, out, err, sizeof err) == 0, "%s", err);
    /* c = [[1,2,3],[4,5,6]] */
    float wc[] = {1, 2, 3, 4, 5, 6};
    CHECK(out[0].dims[0] == 2 && out[0].dims[1] == 3);
    CHECK(memcmp(out[0].data, wc, sizeof wc) == 0);
    float wp[] = {9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9};
    CHECK(out[1].dims[0] == 3 && out[1].dims[1] == 5);
    CHECK(memcmp(out[1].data, wp, sizeof wp) == 0);
    float wr[] = {3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2};
    CHECK(out[2].dims[0] == 3 && out[2].dims[1] == 6);
    CHECK(memcmp(out[2].data, wr, sizeof wr) == 0);
    float we[] = {1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6, 4, 4, 4, 5, 6, 6};
    CHECK(memcmp(out[3].data, we, sizeof we) == 0);
    /* rows reversed from the last, columns from the last with step -2 */
    float ws[] = {6, 4, 3, 1};
    CHECK_MSG(out[4].dims[0] == 2 && out[4].dims[1] == 2, "%lld %lld",
              (long long)out[4].dims[0], (long long)out[4].dims[1]);
    CHECK(memcmp(out[4].data, ws, sizeof ws) == 0);
    for (int i = 0; i < 5; i++) tio_free(&out[i]);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_gather_reduce)
{
    for (int i64 = 0; i64 < 2; i64++) {
        cr_graph *g = ir_new();
        int32_t tx = tens(g, "x", F32, 2, D(3), D(2));
        int32_t ti = tens(g, "i", i64 ? CRUCIBLE_DT_I64 : CRUCIBLE_DT_I32, 2,
                          D(2), D(2));
        int32_t ty = tens(g, "y", F32, 3, D(0), D(0), D(0));
        int32_t tz = tens(g, "z", F32, 3, D(0), D(0), D(0));
        ir_mark_input(g, tx);
        ir_mark_input(g, ti);
        ir_mark_output(g, ty);
        ir_mark_output(g, tz);
        node(g, "gather", "ga", 2, (int32_t[]){tx, ti}, ty);
        int32_t n = node(g, "gather", "gb", 2, (int32_t[]){tx, ti}, tz);
        ir_attr_int(g, n, "axis", 1);
        float x[] = {1, 2, 3, 4, 5, 6};
        int64_t idx64[] = {0, -1, 1, 0};
        int32_t idx32[] = {0, -1, 1, 0};
        char err[512];
        CHECK(ir_validate(g, err, sizeof err) == 0);
        /* axis 1 has size 2: -1 -> 1 is fine */
        cr_array in[2], out[2];
        arr_init(&in[0], F32, 2, g->tensors[tx].dims, x);
        arr_init(&in[1], g->tensors[ti].dtype, 2, g->tensors[ti].dims,
                 i64 ? (void *)idx64 : (void *)idx32);
        CHECK_MSG(interp_run(g, in, 2, out, err, sizeof err) == 0, "%s", err);
        CHECK(out[0].rank == 3 && out[0].dims[0] == 2 && out[0].dims[2] == 2);
        float wy[] = {1, 2, 5, 6, 3, 4, 1, 2};
        CHECK(memcmp(out[0].data, wy, sizeof wy) == 0);
        CHECK(out[1].rank == 3 && out[1].dims[0] == 3 && out[1].dims[1] == 2);
        float wz[] = {1, 2, 2, 1, 3, 4, 4, 3, 5, 6, 6, 5};
        CHECK(memcmp(out[1].data, wz, sizeof wz) == 0);
        tio_free(&out[0]);
        tio_free(&out[1]);
        /* an index out of range is reported */
        idx64[0] = 3;
        idx32[0] = 3;
        CHECK(interp_run(g, in, 2, out, err, sizeof err) != 0);
        CHECK_MSG(test_contains(err, "out of range"), "%s", err);
        ir_free(g);
    }

    /* reductions over [2,3,2] */
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = (float)(i * i % 7) - 2.5f;
    const char *ops[] = {"reduce_sum", "reduce_mean", "reduce_max"};
    for (int oi = 0; oi < 3; oi++)
        for (int keep = 0; keep < 2; keep++) {
            cr_graph *g = ir_new();
            int32_t tx = tens(g, "x", F32, 3, D(2), D(3), D(2));
            int32_t ty = tens(g, "y", F32, keep ? 3 : 1, D(0), D(0), D(0));
            int32_t ta = tens(g, "all", F32, keep ? 3 : 0, D(0), D(0), D(0));
            ir_mark_input(g, tx);
            ir_mark_output(g, ty);
            ir_mark_output(g, ta);
            int32_t n = node(g, ops[oi], "r", 1, &tx, ty);
            int64_t axes[] = {0, -1};
            ir_attr_ints(g, n, "axes", 2, axes);
            ir_attr_int(g, n, "keepdims", keep);
            n = node(g, ops[oi], "rall", 1, &tx, ta);
            ir_attr_int(g, n, "keepdims", keep);
            char err[512];
            CHECK(ir_validate(g, err, sizeof err) == 0);
            CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
            cr_array in, out[2];
            arr_init(&in, F32, 3, g->tensors[tx].dims, x);
            CHECK_MSG(interp_run(g, &in, 1, out, err, sizeof err) == 0, "%s",
                      err);
            CHECK(out[0].rank == (keep ? 3 : 1));
            CHECK(out[0].dims[keep ? 1 : 0] == 3);
            CHECK(out[1].rank == (keep ? 3 : 0) && tio_numel(&out[1]) == 1);
            const float *y = out[0].data;
            for (int j = 0; j < 3; j++) {
                float acc = 0.0f, m = x[j * 2];
                for (int a = 0; a < 2; a++)
                    for (int c = 0; c < 2; c++) {
                        float v = x[(a * 3 + j) * 2 + c];
                        acc += v;
                        if (v > m) m = v;
                    }
                float want = oi == 0 ? acc : oi == 1 ? acc / 4.0f : m;
                CHECK(feq(y[j], want));
            }
            float acc = 0.0f, m = x[0];
            for (int i = 0; i < 12; i++) {
                acc += x[i];
                if (x[i] > m) m = x[i];
            }
            float want = oi == 0 ? acc : oi == 1 ? acc / 12.0f : m;
            CHECK(feq(*(float *)out[1].data, want));
            tio_free(&out[0]);
            tio_free(&out[1]);
            ir_free(g);
        }
    return TEST_PASS;
}

/* ---- cast and quantisation ---- */
TEST(test_interp_cast_quant)
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 1, D(8));
    int32_t t8 = tens(g, "c8", CRUCIBLE_DT_I8, 1, D(8));
    int32_t tu = tens(g, "cu8", CRUCIBLE_DT_U8, 1, D(8));
    int32_t t32 = tens(g, "c32", CRUCIBLE_DT_I32, 1, D(8));
    int32_t tb = tens(g, "back", F32, 1, D(8));
    ir_mark_input(g, tx);
    ir_mark_output(g, t8);
    ir_mark_output(g, tu);
    ir_mark_output(g, t32);
    ir_mark_output(g, tb);
    int32_t n = node(g, "cast", "c1", 1, &tx, t8);
    ir_attr_string(g, n, "to", "i8");
    n = node(g, "cast", "c2", 1, &tx, tu);
    ir_attr_string(g, n, "to", "u8");
    n = node(g, "cast", "c3", 1, &tx, t32);
    ir_attr_string(g, n, "to", "i32");
    n = node(g, "cast", "c4", 1, &t32, tb);
    ir_attr_string(g, n, "to", "f32");
    float x[] = {1.9f, -1.9f, 300.0f, -300.0f, NAN, 3e9f, -0.5f, 127.5f};
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    cr_array in, out[4];
    arr_init(&in, F32, 1, g->tensors[tx].dims, x);
    CHECK_MSG(interp_run(g, &in, 1, out, err, sizeof err) == 0, "%s", err);
    int8_t w8[] = {1, -1, 127, -128, 0, 127, 0, 127};
    uint8_t wu[] = {1, 0, 255, 0, 0, 255, 0, 127};
    int32_t w32[] = {1, -1, 300, -300, 0, INT32_MAX, 0, 127};
    float wb[] = {1, -1, 300, -300, 0, 2147483648.0f, 0, 127};
    CHECK(memcmp(out[0].data, w8, 8) == 0);
    CHECK(memcmp(out[1].data, wu, 8) == 0);
    CHECK(memcmp(out[2].data, w32, 32) == 0);
    CHECK(memcmp(out[3].data, wb, 32) == 0);
    for (int i = 0; i < 4; i++) tio_free(&out[i]);
    ir_free(g);

    /* quantize / dequantize per tensor, round half to even */
    g = ir_new();
    tx = tens(g, "x", F32, 2, D(2), D(4));
    int32_t tq = tens(g, "q", CRUCIBLE_DT_I8, 2, D(2), D(4));
    int32_t td = tens(g, "d", F32, 2, D(2), D(4));
    int32_t tq2 = tens(g, "q2", CRUCIBLE_DT_U8, 2, D(2), D(4));
    int32_t td2 = tens(g, "d2", F32, 2, D(2), D(4));
    float sc = 0.5f;
    int32_t zp = 1;
    CHECK(ir_set_quant(g, tq, -1, 1, &sc, &zp, err, sizeof err) == 0);
    float sc2[] = {0.5f, 2.0f};
    int32_t zp2[] = {128, 10};
    CHECK(ir_set_quant(g, tq2, 0, 2, sc2, zp2, err, sizeof err) == 0);
    ir_mark_input(g, tx);
    ir_mark_output(g, tq);
    ir_mark_output(g, td);
    ir_mark_output(g, tq2);
    ir_mark_output(g, td2);
    node(g, "quantize", "qz", 1, &tx, tq);
    node(g, "dequantize", "dq", 1, &tq, td);
    node(g, "quantize", "qz2", 1, &tx, tq2);
    node(g, "dequantize", "dq2", 1, &tq2, td2);
    /* x/0.5: 0.5, 1.5, 2.5, -0.5, 1000, -1000, 3.0, -2.5 */
    float xq[] = {0.25f, 0.75f, 1.25f, -0.25f, 500.0f, -500.0f, 1.5f, -1.25f};
    CHECK(ir_validate(g, err, sizeof err) == 0);
    arr_init(&in, F32, 2, g->tensors[tx].dims, xq);
    CHECK_MSG(interp_run(g, &in, 1, out, err, sizeof err) == 0, "%s", err);
    int8_t wq[] = {0 + 1, 2 + 1, 2 + 1, 0 + 1, 127, -128, 3 + 1, -2 + 1};
    CHECK(memcmp(out[0].data, wq, 8) == 0);
    const float *d = out[1].data;
    for (int i = 0; i < 8; i++) CHECK(d[i] == 0.5f * (float)(wq[i] - 1));
    /* per axis 0: row 0 scale .5 zp 128; row 1 scale 2 zp 10 */
    uint8_t wq2[] = {128, 130, 130, 128, 255, 0, 11, 9};
    CHECK_MSG(memcmp(out[2].data, wq2, 8) == 0, "%u %u %u %u %u %u %u %u",
              ((uint8_t *)out[2].data)[0], ((uint8_t *)out[2].data)[1],
              ((uint8_t *)out[2].data)[2], ((uint8_t *)out[2].data)[3],
              ((uint8_t *)out[2].data)[4], ((uint8_t *)out[2].data)[5],
              ((uint8_t *)out[2].data)[6], ((uint8_t *)out[2].data)[7]);
    d = out[3].data;
    CHECK(d[0] == 0 && d[1] == 1 && d[4] == 490.0f && d[6] == 2.0f &&
          d[7] == -2.0f);
    for (int i = 0; i < 4; i++) tio_free(&out[i]);
    ir_free(g);
    return TEST_PASS;
}

/* ---- integer kernels and requantize ---- */
static int32_t qtens(cr_graph *g, int32_t t, int32_t axis, uint32_t n,
                     const float *s, const int32_t *z)
{
    char err[256];
    if (ir_set_quant(g, t, axis, n, s, z, err, sizeof err)) {
        fprintf(stderr, "    set_quant: %s\n", err);
        return -1;
    }
    return t;
}
#define I32 CRUCIBLE_DT_I32
#define I8 CRUCIBLE_DT_I8
#define U8 CRUCIBLE_DT_U8

static int i32_eq(const cr_array *a, const int32_t *want, size_t n)
{
    if (a->dtype != I32 || a->bytes != 4 * n) return 0;
    for (size_t i = 0; i < n; i++) {
        int32_t v;
        memcpy(&v, (const char *)a->data + 4 * i, 4);
        if (v != want[i]) {
            fprintf(stderr, "    element %zu: got %d, want %d\n", i, (int)v,
                    (int)want[i]);
            return 0;
        }
    }
    return 1;
}

TEST(test_interp_int_kernels)
{
    char err[512];
    cr_array out;
    float one = 1.0f, ones[3] = {1, 1, 1};

    /* matmul u8 x i8: a per tensor zp 10, b per column (axis 1) zps 1, -2 */
    cr_graph *g = ir_new();
    int32_t ta = qtens(g, tens(g, "a", U8, 2, D(2), D(3)), -1, 1, &one,
                       (int32_t[]){10});
    int8_t bv[6] = {1, -2, 3, 0, -128, 127};
    int32_t tb = qtens(g, cst(g, tens(g, "b", I8, 2, D(3), D(2)), bv), 1, 2,
                       ones, (int32_t[]){1, -2});
    int32_t ty = tens(g, "y", I32, 2, D(0), D(0));
    ir_mark_input(g, ta);
    ir_mark_output(g, ty);
    node(g, "matmul", "mm", 2, (int32_t[]){ta, tb}, ty);
    uint8_t av[6] = {10, 12, 7, 255, 0, 11};
    void *d[1] = {av};
    int rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* ac = [[0,2,-3],[245,-10,1]], bc = [[0,0],[2,2],[-129,129]] */
    CHECK(out.rank == 2 && out.dims[0] == 2 && out.dims[1] == 2);
    CHECK(i32_eq(&out, (int32_t[]){391, -383, -149, 109}, 4));
    tio_free(&out);
    ir_free(g);

    /* batched, broadcast, no quantisation parameters (zero point 0) */
    g = ir_new();
    ta = tens(g, "a", U8, 3, D(2), D(1), D(2));
    uint8_t b2[2] = {5, 6};
    tb = cst(g, tens(g, "b", U8, 2, D(2), D(1)), b2);
    ty = tens(g, "y", I32, 3, D(2), D(1), D(1));
    ir_mark_input(g, ta);
    ir_mark_output(g, ty);
    node(g, "matmul", "mm", 2, (int32_t[]){ta, tb}, ty);
    uint8_t a2[4] = {1, 2, 3, 4};
    d[0] = a2;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(i32_eq(&out, (int32_t[]){17, 39}, 2));
    tio_free(&out);
    ir_free(g);

    /* int32 wrap-around: 0 - INT32_MIN = 2^31; 3 * 2^31 = 2^31 (mod 2^32) */
    g = ir_new();
    ta = qtens(g, tens(g, "a", U8, 2, D(1), D(3)), -1, 1, &one,
               (int32_t[]){INT32_MIN});
    uint8_t b3[6] = {1, 1, 1, 1, 1, 0};
    tb = cst(g, tens(g, "b", U8, 2, D(3), D(2)), b3);
    ty = tens(g, "y", I32, 2, D(1), D(2));
    ir_mark_input(g, ta);
    ir_mark_output(g, ty);
    node(g, "matmul", "mm", 2, (int32_t[]){ta, tb}, ty);
    uint8_t a3[3] = {0, 0, 0};
    d[0] = a3;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(i32_eq(&out, (int32_t[]){INT32_MIN, 0}, 2));
    tio_free(&out);
    ir_free(g);

    /* dense: x i8 zp -1 ([1,2,2] flattened), W u8 per row zps 0, 100, 255,
     * i32 bias; the last column wraps past INT32_MAX */
    g = ir_new();
    int32_t tx = qtens(g, tens(g, "x", I8, 3, D(1), D(2), D(2)), -1, 1, &one,
                       (int32_t[]){-1});
    uint8_t wv[6] = {1, 2, 100, 110, 255, 0};
    int32_t tw = qtens(g, cst(g, tens(g, "W", U8, 2, D(3), D(2)), wv), 0, 3,
                       ones, (int32_t[]){0, 100, 255});
    int32_t biasv[3] = {1000, -5, INT32_MAX};
    int32_t tbias = cst(g, tens(g, "b", I32, 1, D(3)), biasv);
    ty = tens(g, "y", I32, 2, D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "dense", "fc", 3, (int32_t[]){tx, tw, tbias}, ty);
    int8_t xv[4] = {-1, 0, 5, -128}; /* xc = [[0,1],[6,-127]] */
    d[0] = xv;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* Wc = [[1,2],[0,10],[0,-255]] */
    CHECK(out.dims[0] == 2 && out.dims[1] == 3);
    CHECK(i32_eq(&out, (int32_t[]){1002, 5, INT32_MAX - 255, 752, -1275,
                                   -2147451264},
                 6));
    tio_free(&out);
    ir_free(g);

    /* conv2d: x u8 zp 1, pads 1 (padding acts as the zero point), w per
     * output channel zps 0 and 3, bias; channel 0 is ONNX's
     * test_convinteger_with_padding */
    g = ir_new();
    tx = qtens(g, tens(g, "x", U8, 4, D(1), D(1), D(3), D(3)), -1, 1, &one,
               (int32_t[]){1});
    uint8_t cw[8] = {1, 1, 1, 1, 4, 3, 3, 2};
    float two[2] = {1, 1};
    tw = qtens(g, cst(g, tens(g, "w", U8, 4, D(2), D(1), D(2), D(2)), cw), 0,
               2, two, (int32_t[]){0, 3});
    int32_t cb[2] = {100, -100};
    tbias = cst(g, tens(g, "b", I32, 1, D(2)), cb);
    ty = tens(g, "y", I32, 4, D(0), D(0), D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t nc = node(g, "conv2d", "conv", 3, (int32_t[]){tx, tw, tbias}, ty);
    ir_attr_ints(g, nc, "pads", 4, (int64_t[]){1, 1, 1, 1});
    uint8_t cx[9] = {2, 3, 4, 5, 6, 7, 8, 9, 10};
    d[0] = cx;
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    CHECK(g->tensors[ty].dims[1] == 2 && g->tensors[ty].dims[3] == 4);
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    static const int32_t conv_want[32] = {
        101, 103, 105, 103, 105, 112, 116, 109,
        111, 124, 128, 115, 107, 115, 117, 109,
        -101, -102, -103, -100, -104, -104, -104, -97,
        -107, -104, -104, -94, -100, -93, -92, -91};
    CHECK(i32_eq(&out, conv_want, 32));
    tio_free(&out);

    /* a declared non-i32 output is refused, as is an f32 weight */
    g->tensors[ty].dtype = U8;
    rc = run(g, d, &out, err, sizeof err);
    CHECK(rc == CRUCIBLE_E_UNSUPPORTED);
    CHECK_MSG(test_contains(err, "node conv (conv2d)") &&
                  test_contains(err, "produces i32"),
              "%s", err);
    ir_free(g);

    /* integer conv_transpose2d has no integer form */
    g = ir_new();
    tx = tens(g, "x", U8, 4, D(1), D(1), D(2), D(2));
    uint8_t tw1[1] = {1};
    tw = cst(g, tens(g, "w", U8, 4, D(1), D(1), D(1), D(1)), tw1);
    ty = tens(g, "y", I32, 4, D(1), D(1), D(2), D(2));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "conv_transpose2d", "ct", 2, (int32_t[]){tx, tw}, ty);
    d[0] = a2;
    CHECK(run(g, d, &out, err, sizeof err) == CRUCIBLE_E_UNSUPPORTED);
    CHECK_MSG(test_contains(err, "node ct (conv_transpose2d)"), "%s", err);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_requantize)
{
    char err[512];
    cr_array out;
    void *d[1];

    /* i32 -> u8: m = 0.5 / 1, zp 10: ties to even, saturation */
    cr_graph *g = ir_new();
    float s_half = 0.5f, s_one = 1.0f;
    int32_t tx = qtens(g, tens(g, "acc", I32, 1, D(8)), -1, 1, &s_half,
                       (int32_t[]){0});
    int32_t ty = qtens(g, tens(g, "y", U8, 1, D(0)), -1, 1, &s_one,
                       (int32_t[]){10});
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t nd = node(g, "requantize", "rq", 1, &tx, ty);
    int32_t x1[8] = {1, 3, 5, -1, -3, 1000, -1000, 0};
    d[0] = x1;
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    CHECK(g->tensors[ty].dims[0] == 8);
    int rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* 0.5 1.5 2.5 -0.5 -1.5 500 -500 0 -> 0 2 2 -0 -2 500 -500 0, + 10 */
    static const uint8_t w1[8] = {10, 12, 12, 10, 8, 255, 0, 10};
    CHECK(out.dtype == U8 && memcmp(out.data, w1, 8) == 0);
    tio_free(&out);
    /* the same with rounding = "float_rne" spelled out */
    ir_attr_string(g, nd, "rounding", "float_rne");
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0 && memcmp(out.data, w1, 8) == 0, "%s", err);
    tio_free(&out);
    /* fixed_q31 (TFLite): m = 0.5 is (2^30, 0); srdhm rounds ties toward
     * +infinity: 1 2 3 0 -1 500 -500 0, + 10, saturated to u8 */
    ir_attr_string(g, nd, "rounding", "fixed_q31");
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    rc = run(g, d, &out, err, sizeof err);
    static const uint8_t w1q[8] = {11, 12, 13, 10, 9, 255, 0, 10};
    CHECK_MSG(rc == 0 && memcmp(out.data, w1q, 8) == 0, "%s", err);
    tio_free(&out);
    ir_attr_string(g, nd, "rounding", "bogus");
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "rounding"), "%s", err);
    ir_free(g);

    /* per channel in (axis 1: 0.25, 3), per tensor out i8 (2, zp -3):
     * m = 0.125 and 1.5 */
    g = ir_new();
    tx = qtens(g, tens(g, "acc", I32, 3, D(1), D(2), D(2)), 1, 2,
               (float[]){0.25f, 3.0f}, (int32_t[]){0, 0});
    float s_two = 2.0f;
    ty = qtens(g, tens(g, "y", I8, 3, D(1), D(2), D(2)), -1, 1, &s_two,
               (int32_t[]){-3});
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "requantize", "rq", 1, &tx, ty);
    int32_t x2[4] = {4, -12, 1, 100}; /* 0.5 -1.5 | 1.5 150 */
    d[0] = x2;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    static const int8_t w2[4] = {-3, -5, -1, 127};
    CHECK(out.dtype == I8 && memcmp(out.data, w2, 4) == 0);
    tio_free(&out);
    ir_free(g);

    /* u8 (zp 128) -> i8 (zp 0), and a per-axis output */
    g = ir_new();
    tx = qtens(g, tens(g, "u", U8, 1, D(3)), -1, 1, &s_one, (int32_t[]){128});
    ty = qtens(g, tens(g, "y", I8, 1, D(3)), -1, 1, &s_one, (int32_t[]){0});
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "requantize", "rq", 1, &tx, ty);
    uint8_t x3[3] = {0, 128, 255};
    d[0] = x3;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    static const int8_t w3[3] = {-128, 0, 127};
    CHECK(memcmp(out.data, w3, 3) == 0);
    tio_free(&out);
    ir_free(g);
    g = ir_new();
    tx = qtens(g, tens(g, "acc", I32, 1, D(2)), -1, 1, &s_one, (int32_t[]){0});
    ty = qtens(g, tens(g, "y", U8, 1, D(2)), 0, 2, (float[]){1.0f, 4.0f},
               (int32_t[]){0, 100});
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "requantize", "rq", 1, &tx, ty);
    int32_t x4[2] = {7, 10}; /* 7 / 1, 10 / 4 = 2.5 -> 2 */
    d[0] = x4;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(((uint8_t *)out.data)[0] == 7 && ((uint8_t *)out.data)[1] == 102);
    tio_free(&out);
    ir_free(g);

    /* the multiply is f32: m = 0.7f / 0.3f = 2.33333325f; for q = -2999999
     * the exact product is -6999997.428..., but its f32 rounding is the
     * tie -6999997.5, which goes to the even -6999998 (a double evaluation
     * would give -6999997) */
    g = ir_new();
    float s07 = 0.7f, s03 = 0.3f;
    tx = qtens(g, tens(g, "acc", I32, 1, D(4)), -1, 1, &s07, (int32_t[]){0});
    ty = qtens(g, tens(g, "y", I32, 1, D(4)), -1, 1, &s03, (int32_t[]){0});
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "requantize", "rq", 1, &tx, ty);
    int32_t x5[4] = {-2999999, 3, -3, 2147483647};
    d[0] = x5;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    /* 3 * 2.33333325 = 6.99999976 -> 7; INT32_MAX saturates */
    CHECK(i32_eq(&out, (int32_t[]){-6999998, 7, -7, INT32_MAX}, 4));
    tio_free(&out);
    ir_free(g);

    /* missing parameters name the tensor */
    g = ir_new();
    tx = tens(g, "acc", I32, 1, D(2));
    ty = qtens(g, tens(g, "y", U8, 1, D(2)), -1, 1, &s_one, (int32_t[]){0});
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "requantize", "rq", 1, &tx, ty);
    d[0] = x4;
    CHECK(run(g, d, &out, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "node rq (requantize): tensor acc has no "
                                 "quantisation parameters"),
              "%s", err);
    ir_free(g);
    return TEST_PASS;
}

/* ---- shape inference, errors, unsupported ---- */
TEST(test_shape_infer_conv_errors)
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 4, D(1), D(3), D(8), D(8));
    float w[4 * 2 * 3 * 3] = {0};
    int32_t tw = cst(g, tens(g, "w", F32, 4, D(4), D(2), D(3), D(3)), w);
    int32_t ty = tens(g, "y", F32, 4, D(0), D(0), D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t nd = node(g, "conv2d", "conv1", 2, (int32_t[]){tx, tw}, ty);
    ir_attr_int(g, nd, "group", 2);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(!strcmp(err, "node conv1 (conv2d): input channels 3 do not "
                           "match weight in_ch*group 4"),
              "%s", err);
    ir_free(g);

    /* declared output shape that disagrees */
    g = ir_new();
    tx = tens(g, "x", F32, 4, D(1), D(4), D(8), D(8));
    tw = cst(g, tens(g, "w", F32, 4, D(4), D(2), D(3), D(3)), w);
    ty = tens(g, "y", F32, 4, D(1), D(4), D(8), D(8));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    nd = node(g, "conv2d", "conv1", 2, (int32_t[]){tx, tw}, ty);
    ir_attr_int(g, nd, "group", 2);
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "node conv1 (conv2d)") &&
                  test_contains(err, "[1,4,6,6]") &&
                  test_contains(err, "[1,4,8,8]"),
              "%s", err);
    /* fixing pads makes it consistent */
    int64_t pads[] = {1, 1, 1, 1};
    ir_attr_ints(g, nd, "pads", 4, pads);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    /* bad attributes are reported, not trusted */
    int64_t bad[] = {0, 1};
    ir_attr_ints(g, nd, "strides", 2, bad);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "strides"), "%s", err);
    int64_t huge[] = {INT64_MAX, 1};
    ir_attr_ints(g, nd, "strides", 2, huge);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    int64_t one[] = {1, 1}, hugedil[] = {INT32_MAX, INT32_MAX};
    ir_attr_ints(g, nd, "strides", 2, one);
    ir_attr_ints(g, nd, "dilations", 2, hugedil);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "kernel extent"), "%s", err);
    ir_free(g);

    /* partially unknown (dim 0) outputs are filled; chains propagate */
    g = ir_new();
    tx = tens(g, "x", F32, 4, D(2), D(4), D(8), D(8));
    tw = cst(g, tens(g, "w", F32, 4, D(4), D(2), D(3), D(3)), w);
    ty = tens(g, "y", F32, 4, D(2), D(0), D(0), D(0));
    int32_t tp = tens(g, "p", F32, 4, D(0), D(0), D(0), D(0));
    int32_t tf = tens(g, "f", F32, 2, D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, tf);
    nd = node(g, "conv2d", "conv1", 2, (int32_t[]){tx, tw}, ty);
    ir_attr_int(g, nd, "group", 2);
    int32_t np = node(g, "max_pool2d", "pool", 1, &ty, tp);
    int64_t k2[] = {2, 2}, s2[] = {2, 2};
    ir_attr_ints(g, np, "kernel", 2, k2);
    ir_attr_ints(g, np, "strides", 2, s2);
    int32_t nr = node(g, "reshape", "flat", 1, &tp, tf);
    int64_t shp[] = {0, -1};
    ir_attr_ints(g, nr, "shape", 2, shp);
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    CHECK(g->tensors[ty].dims[1] == 4 && g->tensors[ty].dims[2] == 6);
    CHECK(g->tensors[tp].dims[2] == 3 && g->tensors[tp].dims[3] == 3);
    CHECK(g->tensors[tf].dims[0] == 2 && g->tensors[tf].dims[1] == 36);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_unsupported_node)
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 1, D(4));
    int32_t tu = tens(g, "u", F32, 1, D(4));
    int32_t ty = tens(g, "y", F32, 1, D(4));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t nd = node(g, "unsupported", "weird1", 1, &tx, tu);
    ir_attr_string(g, nd, "source_op", "NonMaxSuppression");
    ir_attr_string(g, nd, "reason", "dynamic output shape");
    node(g, "relu", "r", 1, &tu, ty);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    /* shape inference skips it */
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    float x[4] = {0};
    void *d[1] = {x};
    cr_array out;
    CHECK(run(g, d, &out, err, sizeof err) == CRUCIBLE_E_UNSUPPORTED);
    CHECK_MSG(!strcmp(err, "node weird1: op NonMaxSuppression is not "
                           "supported (dynamic output shape)"),
              "%s", err);
    CHECK(out.data == NULL);
    ir_free(g);

    /* requantize without quantisation parameters: a clear error */
    g = ir_new();
    tx = tens(g, "x", CRUCIBLE_DT_I8, 1, D(4));
    ty = tens(g, "y", CRUCIBLE_DT_I8, 1, D(4));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "requantize", "rq", 1, &tx, ty);
    int8_t q[4] = {0};
    d[0] = q;
    CHECK(run(g, d, &out, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "node rq (requantize)"), "%s", err);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_inputs_and_run_all)
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 2, D(0), D(3)); /* batch unknown */
    float bv[3] = {1, 2, 3};
    int32_t tb = cst(g, tens(g, "b", F32, 1, D(3)), bv);
    int32_t ts = tens(g, "s", F32, 2, D(0), D(3));
    int32_t ty = tens(g, "y", F32, 2, D(0), D(3));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "add", "a", 2, (int32_t[]){tx, tb}, ts);
    node(g, "relu", "r", 1, &ts, ty);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    float x[6] = {-5, 0, 1, 2, -3, -4};
    int64_t dims[2] = {2, 3};
    cr_array in, out;
    arr_init(&in, F32, 2, dims, x);
    cr_array *vals = calloc(g->n_tensors, sizeof *vals);
    CHECK_MSG(interp_run_all(g, &in, 1, vals, err, sizeof err) == 0, "%s",
              err);
    CHECK(vals[tb].data && ((float *)vals[tb].data)[2] == 3);
    CHECK(vals[tx].data && vals[tx].data != (void *)x);
    const float *s = vals[ts].data, *y = vals[ty].data;
    CHECK(s[0] == -4 && s[5] == -1 && y[0] == 0 && y[3] == 3 && y[5] == 0);
    CHECK(vals[ts].dims[0] == 2 && !strcmp(vals[ts].name, "s"));
    for (size_t i = 0; i < g->n_tensors; i++) tio_free(&vals[i]);
    free(vals);

    /* wrong dtype / shape / count */
    in.dtype = CRUCIBLE_DT_I32;
    CHECK(interp_run(g, &in, 1, &out, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "input x") && test_contains(err, "f32[0,3]"),
              "%s", err);
    in.dtype = F32;
    in.dims[1] = 2;
    in.bytes = 16;
    CHECK(interp_run(g, &in, 1, &out, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "f32[2,2]"), "%s", err);
    CHECK(interp_run(g, &in, 0, &out, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "1 inputs"), "%s", err);
    /* any batch works */
    float x1[3] = {1, -2, 0};
    in.dims[0] = 1;
    in.dims[1] = 3;
    in.data = x1;
    in.bytes = 12;
    CHECK_MSG(interp_run(g, &in, 1, &out, err, sizeof err) == 0, "%s", err);
    CHECK(out.dims[0] == 1 && ((float *)out.data)[0] == 2 &&
          ((float *)out.data)[1] == 0 && ((float *)out.data)[2] == 3);
    tio_free(&out);
    ir_free(g);
    return TEST_PASS;
}

/* An mnist-8-sized CNN: must run well under 100 ms. */
TEST(test_interp_mnist_speed)
{
    cr_graph *g = ir_new();
    static float w1[8 * 1 * 5 * 5], b1[8], w2[16 * 8 * 5 * 5], b2[16],
        w3[256 * 10], b3[10], x[28 * 28];
    fill_rand(w1, sizeof w1 / 4);
    fill_rand(b1, 8);
    fill_rand(w2, sizeof w2 / 4);
    fill_rand(b2, 16);
    fill_rand(w3, sizeof w3 / 4);
    fill_rand(b3, 10);
    fill_rand(x, 28 * 28);
    int32_t tx = tens(g, "x", F32, 4, D(1), D(1), D(28), D(28));
    int32_t tw1 = cst(g, tens(g, "w1", F32, 4, D(8), D(1), D(5), D(5)), w1);
    int32_t tb1 = cst(g, tens(g, "b1", F32, 1, D(8)), b1);
    int32_t tw2 = cst(g, tens(g, "w2", F32, 4, D(16), D(8), D(5), D(5)), w2);
    int32_t tb2 = cst(g, tens(g, "b2", F32, 1, D(16)), b2);
    int32_t tw3 = cst(g, tens(g, "w3", F32, 2, D(256), D(10)), w3);
    int32_t tb3 = cst(g, tens(g, "b3", F32, 2, D(1), D(10)), b3);
    int32_t t[9];
    char nm[8];
    for (int i = 0; i < 9; i++) {
        snprintf(nm, sizeof nm, "t%d", i);
        t[i] = tens(g, nm, F32, 4, D(0), D(0), D(0), D(0));
    }
    t[7] = tens(g, "flat", F32, 2, D(0), D(0));
    t[8] = tens(g, "mm", F32, 2, D(0), D(0));
    int32_t ty = tens(g, "y", F32, 2, D(1), D(10));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int64_t p2[] = {2, 2, 2, 2}, k2[] = {2, 2}, k3[] = {3, 3}, shp[] = {1, 256};
    int32_t n = node(g, "conv2d", "c1", 3, (int32_t[]){tx, tw1, tb1}, t[0]);
    ir_attr_ints(g, n, "pads", 4, p2);
    node(g, "relu", "r1", 1, &t[0], t[1]);
    n = node(g, "max_pool2d", "p1", 1, &t[1], t[2]);
    ir_attr_ints(g, n, "kernel", 2, k2);
    ir_attr_ints(g, n, "strides", 2, k2);
    n = node(g, "conv2d", "c2", 3, (int32_t[]){t[2], tw2, tb2}, t[3]);
    ir_attr_ints(g, n, "pads", 4, p2);
    node(g, "relu", "r2", 1, &t[3], t[4]);
    n = node(g, "max_pool2d", "p2", 1, &t[4], t[5]);
    ir_attr_ints(g, n, "kernel", 2, k3);
    ir_attr_ints(g, n, "strides", 2, k3);
    n = node(g, "reshape", "rs", 1, &t[5], t[7]);
    ir_attr_ints(g, n, "shape", 2, shp);
    node(g, "matmul", "mm", 2, (int32_t[]){t[7], tw3}, t[8]);
    node(g, "add", "badd", 2, (int32_t[]){t[8], tb3}, ty);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK_MSG(ir_infer_shapes(g, err, sizeof err) == 0, "%s", err);
    CHECK(g->tensors[t[5]].dims[1] == 16 && g->tensors[t[5]].dims[2] == 4);
    cr_array in, out;
    arr_init(&in, F32, 4, g->tensors[tx].dims, x);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_MSG(interp_run(g, &in, 1, &out, err, sizeof err) == 0, "%s", err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    fprintf(stderr, "    mnist-sized CNN: %.2f ms\n", ms);
    CHECK(out.dims[0] == 1 && out.dims[1] == 10);
    CHECK(ms < 100.0);
    tio_free(&out);
    ir_free(g);
    return TEST_PASS;
}

/* ---- language-model ops: rms_norm, rope, silu, kv_write, attention ---- */
static int near(float got, double want, double tol)
{
    return fabs((double)got - want) <= tol;
}

TEST(test_interp_rms_norm)
{
    /* rows [3, 4] and [0, 0]: mean of squares 12.5 and 0 */
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 2, D(2), D(2));
    float w[2] = {1.0f, 2.0f};
    int32_t tw = cst(g, tens(g, "w", F32, 1, D(2)), w);
    int32_t ty = tens(g, "y", F32, 2, D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t n = node(g, "rms_norm", "rn", 2, (int32_t[]){tx, tw}, ty);
    ir_attr_float(g, n, "eps", 1e-5);
    float x[4] = {3, 4, 0, 0};
    cr_array out;
    char err[512];
    void *d[1] = {x};
    CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
    const float *y = out.data;
    /* 1 / sqrt(12.50001) = 0.282842599 */
    CHECK(near(y[0], 3 * 0.2828425990, 1e-6) && near(y[1], 8 * 0.2828425990, 1e-6));
    CHECK(y[2] == 0.0f && y[3] == 0.0f);
    /* bit-exact with the documented order */
    float ss = 0.0f;
    ss = ss + 3.0f * 3.0f;
    ss = ss + 4.0f * 4.0f;
    const float inv = 1.0f / sqrtf(ss / 2.0f + 1e-5f);
    CHECK(feq(y[0], (3.0f * inv) * 1.0f) && feq(y[1], (4.0f * inv) * 2.0f));
    tio_free(&out);
    ir_free(g);

    /* no weight; eps 1 */
    g = ir_new();
    tx = tens(g, "x", F32, 1, D(2));
    ty = tens(g, "y", F32, 1, D(2));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    n = node(g, "rms_norm", "rn", 1, &tx, ty);
    ir_attr_float(g, n, "eps", 1.0);
    float x2[2] = {1, 1};
    d[0] = x2;
    CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
    y = out.data;
    CHECK(near(y[0], 1.0 / sqrt(2.0), 1e-7) && near(y[1], 1.0 / sqrt(2.0), 1e-7));
    tio_free(&out);
    ir_free(g);

    /* a weight of the wrong size is a shape error */
    g = ir_new();
    tx = tens(g, "x", F32, 2, D(1), D(3));
    tw = cst(g, tens(g, "w", F32, 1, D(2)), w);
    ty = tens(g, "y", F32, 2, D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "rms_norm", "rn", 2, (int32_t[]){tx, tw}, ty);
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "weight must have shape [3]"), "%s", err);
    ir_free(g);
    return TEST_PASS;
}

/* rope of x [1, H, 4] at position p with the given attributes. */
static int rope_run(const float *x, int64_t heads, int32_t p, int n_rot,
                    const char *mode, double scale, float *y, char *err,
                    size_t errlen)
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 3, D(1), heads, D(4));
    int32_t tp = tens(g, "p", CRUCIBLE_DT_I32, 1, D(1));
    int32_t ty = tens(g, "y", F32, 3, D(0), D(0), D(0));
    ir_mark_input(g, tx);
    ir_mark_input(g, tp);
    ir_mark_output(g, ty);
    int32_t n = node(g, "rope", "rope", 2, (int32_t[]){tx, tp}, ty);
    if (n_rot) ir_attr_int(g, n, "n_rot", n_rot);
    if (mode) ir_attr_string(g, n, "mode", mode);
    if (scale != 1.0) ir_attr_float(g, n, "freq_scale", scale);
    ir_attr_float(g, n, "freq_base", 10000.0);
    cr_array out;
    void *d[2] = {(void *)x, &p};
    int rc = run(g, d, &out, err, errlen);
    if (!rc) {
        memcpy(y, out.data, out.bytes);
        tio_free(&out);
    }
    ir_free(g);
    return rc;
}

TEST(test_interp_rope)
{
    char err[512];
    float y[8];
    /* pairs (0,1) at angle p * 10000^0 = 1, (2,3) at 10000^(-1/2) = 0.01 */
    const float x[8] = {1, 0, 0, 1, 2, 0, 0, 0};
    CHECK_MSG(rope_run(x, 2, 1, 0, NULL, 1.0, y, err, sizeof err) == 0, "%s", err);
    CHECK(near(y[0], cos(1.0), 1e-6) && near(y[1], sin(1.0), 1e-6));
    CHECK(near(y[2], -sin(0.01), 1e-7) && near(y[3], cos(0.01), 1e-6));
    CHECK(near(y[4], 2 * cos(1.0), 1e-6) && near(y[5], 2 * sin(1.0), 1e-6));
    CHECK(y[6] == 0.0f && y[7] == 0.0f);
    /* the documented float order, bit for bit */
    const float ang1 = 1.0f * powf(10000.0f, -(2.0f / 4.0f));
    CHECK(feq(y[2], 0.0f * cosf(ang1) - 1.0f * sinf(ang1)));
    /* position 0 is the identity */
    CHECK(rope_run(x, 2, 0, 0, NULL, 1.0, y, err, sizeof err) == 0);
    CHECK(memcmp(y, x, sizeof x) == 0);
    /* neox: pairs (0,2) and (1,3) */
    CHECK(rope_run(x, 2, 1, 0, "neox", 1.0, y, err, sizeof err) == 0);
    CHECK(near(y[0], cos(1.0), 1e-6) && near(y[2], sin(1.0), 1e-6));
    CHECK(near(y[1], -sin(0.01), 1e-7) && near(y[3], cos(0.01), 1e-6));
    /* n_rot 2: dims 2, 3 pass through */
    CHECK(rope_run(x, 2, 1, 2, NULL, 1.0, y, err, sizeof err) == 0);
    CHECK(near(y[0], cos(1.0), 1e-6) && y[2] == 0.0f && y[3] == 1.0f);
    /* linear scaling: position 2 with freq_scale 0.5 is position 1 */
    float y1[8];
    CHECK(rope_run(x, 2, 2, 0, NULL, 0.5, y, err, sizeof err) == 0);
    CHECK(rope_run(x, 2, 1, 0, NULL, 1.0, y1, err, sizeof err) == 0);
    CHECK(memcmp(y, y1, sizeof y) == 0);
    /* attribute errors */
    CHECK(rope_run(x, 2, 1, 3, NULL, 1.0, y, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "must be even"), "%s", err);
    CHECK(rope_run(x, 2, 1, 6, NULL, 1.0, y, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "n_rot = 6 is outside 2..4"), "%s", err);
    CHECK(rope_run(x, 2, 1, 0, "gptj", 1.0, y, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "mode must be"), "%s", err);
    return TEST_PASS;
}

TEST(test_interp_silu)
{
    cr_graph *g = ir_new();
    int32_t tx = tens(g, "x", F32, 1, D(5));
    int32_t ty = tens(g, "y", F32, 1, D(0));
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "silu", "s", 1, &tx, ty);
    float x[5] = {0, 1, -1, 20, -100};
    cr_array out;
    char err[512];
    void *d[1] = {x};
    CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
    const float *y = out.data;
    CHECK(y[0] == 0.0f);
    CHECK(near(y[1], 0.7310585786, 1e-7) && near(y[2], -0.2689414214, 1e-7));
    CHECK(near(y[3], 20.0, 1e-5) && near(y[4], 0.0, 1e-30));
    CHECK(feq(y[1], 1.0f * (1.0f / (1.0f + expf(-1.0f)))));
    tio_free(&out);
    ir_free(g);
    return TEST_PASS;
}

TEST(test_interp_kv_write)
{
    for (int i64 = 0; i64 < 2; i64++) {
        cr_graph *g = ir_new();
        int32_t tc = tens(g, "cache", F32, 2, D(4), D(2));
        int32_t tv = tens(g, "v", F32, 2, D(2), D(2));
        int32_t tp = tens(g, "p", i64 ? CRUCIBLE_DT_I64 : CRUCIBLE_DT_I32, 1, D(2));
        int32_t ty = tens(g, "y", F32, 2, D(0), D(0));
        ir_mark_input(g, tc);
        ir_mark_input(g, tv);
        ir_mark_input(g, tp);
        ir_mark_output(g, ty);
        node(g, "kv_write", "w", 3, (int32_t[]){tc, tv, tp}, ty);
        float c[8] = {1, 2, 3, 4, 5, 6, 7, 8}, v[4] = {10, 11, 12, 13};
        int32_t p32[2] = {2, 0};
        int64_t p64[2] = {2, 0};
        cr_array out;
        char err[512];
        void *d[3] = {c, v, i64 ? (void *)p64 : (void *)p32};
        CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
        const float want[8] = {12, 13, 3, 4, 10, 11, 7, 8};
        CHECK(out.rank == 2 && out.dims[0] == 4 &&
              memcmp(out.data, want, sizeof want) == 0);
        CHECK(c[0] == 1.0f); /* the input is not modified */
        tio_free(&out);
        /* the same position twice: the later row wins */
        p32[1] = p64[1] = 2;
        CHECK(run(g, d, &out, err, sizeof err) == 0);
        CHECK(((float *)out.data)[4] == 12.0f);
        tio_free(&out);
        /* outside the cache */
        p32[0] = p64[0] = 4;
        CHECK(run(g, d, &out, err, sizeof err) != 0);
        CHECK_MSG(test_contains(err, "position 4 is outside the cache (0..3)"),
                  "%s", err);
        ir_free(g);
    }
    /* values that do not fit a cache row */
    cr_graph *g = ir_new();
    int32_t tc = tens(g, "cache", F32, 2, D(4), D(2));
    int32_t tv = tens(g, "v", F32, 2, D(1), D(3));
    int32_t tp = tens(g, "p", CRUCIBLE_DT_I32, 1, D(1));
    int32_t ty = tens(g, "y", F32, 2, D(0), D(0));
    ir_mark_input(g, tc);
    ir_mark_input(g, tv);
    ir_mark_input(g, tp);
    ir_mark_output(g, ty);
    node(g, "kv_write", "w", 3, (int32_t[]){tc, tv, tp}, ty);
    char err[512];
    CHECK(ir_validate(g, err, sizeof err) == 0);
    CHECK(ir_infer_shapes(g, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "do not fit the rows of cache"), "%s", err);
    ir_free(g);
    return TEST_PASS;
}

/* attention(q [1, H, 2], k [3, Hkv, 2], v [3, Hkv, 1], pos) */
static int attn_run(int64_t H, int64_t Hkv, const float *q, const float *k,
                    const float *v, int32_t p, double scale, float *y,
                    char *err, size_t errlen)
{
    cr_graph *g = ir_new();
    int32_t tq = tens(g, "q", F32, 3, D(1), H, D(2));
    int32_t tk = tens(g, "k", F32, 3, D(3), Hkv, D(2));
    int32_t tv = tens(g, "v", F32, 3, D(3), Hkv, D(1));
    int32_t tp = tens(g, "p", CRUCIBLE_DT_I32, 1, D(1));
    int32_t ty = tens(g, "y", F32, 3, D(0), D(0), D(0));
    ir_mark_input(g, tq);
    ir_mark_input(g, tk);
    ir_mark_input(g, tv);
    ir_mark_input(g, tp);
    ir_mark_output(g, ty);
    int32_t n = node(g, "attention", "a", 4, (int32_t[]){tq, tk, tv, tp}, ty);
    if (scale > 0) ir_attr_float(g, n, "scale", scale);
    cr_array out;
    void *d[4] = {(void *)q, (void *)k, (void *)v, &p};
    int rc = run(g, d, &out, err, errlen);
    if (!rc) {
        memcpy(y, out.data, out.bytes);
        tio_free(&out);
    }
    ir_free(g);
    return rc;
}

TEST(test_interp_attention)
{
    char err[512];
    float y[4];
    const float ln3 = logf(3.0f);
    /* two query heads sharing one kv head; scale 1.
     * head 0: scores (0, ln 3) -> weights (1/4, 3/4) -> 4/4 + 3*8/4 = 7
     * head 1: scores (0, 0)    -> (1/2, 1/2)        -> 6
     * row 2 (v = 1000) is in the future and ignored */
    const float q[4] = {1, 0, 0, 1};
    const float k[6] = {0, 0, ln3, 0, 50, 50};
    const float v[3] = {4, 8, 1000};
    CHECK_MSG(attn_run(2, 1, q, k, v, 1, 1.0, y, err, sizeof err) == 0, "%s", err);
    CHECK(near(y[0], 7.0, 1e-5) && near(y[1], 6.0, 1e-6));
    /* position 0 sees only row 0 */
    CHECK(attn_run(2, 1, q, k, v, 0, 1.0, y, err, sizeof err) == 0);
    CHECK(y[0] == 4.0f && y[1] == 4.0f);
    /* default scale 1/sqrt(2): head 0 scores (0, ln3 / sqrt 2) */
    CHECK(attn_run(2, 1, q, k, v, 1, 0, y, err, sizeof err) == 0);
    double e = exp(log(3.0) / sqrt(2.0));
    CHECK(near(y[0], (4 + 8 * e) / (1 + e), 1e-5));
    /* GQA: 4 query heads over 2 kv heads: heads 0, 1 read kv 0; 2, 3 kv 1 */
    const float q4[8] = {1, 0, 1, 0, 1, 0, 1, 0};
    const float k2[12] = {0, 0, 0, 0, ln3, 0, 0, 0, 0, 0, 0, 0};
    const float v2[6] = {4, 100, 8, 200, 0, 0};
    float y4[4];
    CHECK(attn_run(4, 2, q4, k2, v2, 1, 1.0, y4, err, sizeof err) == 0);
    CHECK(near(y4[0], 7.0, 1e-5) && near(y4[1], 7.0, 1e-5));
    CHECK(near(y4[2], 150.0, 1e-4) && near(y4[3], 150.0, 1e-4));
    /* errors */
    CHECK(attn_run(2, 1, q, k, v, 3, 1.0, y, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "position 3 is outside the cache"), "%s", err);
    CHECK(attn_run(3, 2, q4, k2, v2, 1, 1.0, y4, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "H a multiple of Hkv"), "%s", err);
    return TEST_PASS;
}

/* Block-wise quantisation (GGUF Q8_0 / Q4_0 / Q4_1 weights): IR text round
 * trip, the scale index per element, zero / negative block scales and i4
 * input in dequantize, and the refusals. */
TEST(test_interp_block_quant)
{
    const char *d = test_tmpdir();
    char m[4200], x[4200], *out = NULL;
    snprintf(m, sizeof m, "%s/bq.crir", d);
    snprintf(x, sizeof x, "%s/x.npy", d);
    static const char model[] =
        "crucible-ir 1\n"
        "graph bq\n"
        "tensor w : i4[2, 6] quant(axis=1, block=4, scales=[0.5, -2, 0, 1.5], "
        "zero_points=[0, 1, 0, -8]) = [1, -2, 3, 7, -8, 0, 2, 2, 2, -3, 4, 5]\n"
        "tensor wf : f32[2, 6]\n"
        "tensor x : f32[1, 6]\n"
        "tensor y : f32[1, 2]\n"
        "node dq : dequantize(w) -> (wf)\n"
        "node d : dense(x, wf) -> (y)\n"
        "inputs (x)\n"
        "outputs (y)\n";
    CHECK(test_write(m, model) == 0);
    /* the printer writes the same text back */
    int rc = test_sh(&out, "'%s' ir '%s'", CR_CRUCIBLE_BIN, m);
    CHECK_MSG(rc == 0 && !strcmp(out, model), "exit %d:\n%s", rc, out);
    free(out);
    /* row 0: .5*(1,-2,3,7) = .5 -1 1.5 3.5, then -2*(-8-1) = 18, -2*(0-1) = 2
     * row 1: 0 * anything, then 1.5*(4+8) = 18, 1.5*(5+8) = 19.5 */
    rc = test_sh(&out, "/usr/bin/python3 -c \"import numpy as n; "
                       "n.save('%s', n.ones((1,6), n.float32))\" && "
                       "'%s' run '%s' --input '%s'",
                 x, CR_CRUCIBLE_BIN, m, x);
    if (rc && out && strstr(out, "numpy")) {
        free(out);
        SKIP("numpy is not importable by /usr/bin/python3");
    }
    CHECK_MSG(rc == 0 && test_contains(out, "24.5 37.5"), "exit %d: %s", rc,
              out);
    free(out);
    static const struct {
        const char *quant, *want;
    } bad[] = {
        {"quant(axis=1, block=4, scales=[1, 1, 1], zero_points=[0, 0, 0])",
         "3 block scales; blocks of 4 along axis 1 of this shape need 4"},
        {"quant(axis=1, block=0, scales=[1], zero_points=[0])",
         "quant block size 0 must be 1..1048576"},
        {"quant(axis=2, block=4, scales=[1, 1, 1, 1], zero_points=[0, 0, 0, 0])",
         "block quantisation axis 2 invalid for rank 2"},
        {"quant(axis=1, block=4, scales=elided(4), zero_points=elided(4))",
         "--weights"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "crucible-ir 1\ngraph b\ntensor w : i8[2, 6] %s\n"
                 "tensor y : i8[2, 6]\nnode r : relu(w) -> (y)\n"
                 "inputs (w)\noutputs (y)\n",
                 bad[i].quant);
        CHECK(test_write(m, text) == 0);
        rc = test_sh(&out, "'%s' ir '%s'", CR_CRUCIBLE_BIN, m);
        CHECK_MSG(rc != 0 && test_contains(out, bad[i].want),
                  "case %zu: exit %d: %s", i, rc, out);
        free(out);
    }
    /* elided constants are refused with the hint */
    CHECK(test_write(m, "crucible-ir 1\ngraph b\n"
                        "tensor w : f32[2] = elided(2)\ntensor y : f32[2]\n"
                        "node r : relu(w) -> (y)\noutputs (y)\n") == 0);
    rc = test_sh(&out, "'%s' ir '%s'", CR_CRUCIBLE_BIN, m);
    CHECK_MSG(rc != 0 && test_contains(out, "crucible ir --weights"),
              "exit %d: %s", rc, out);
    free(out);
    /* a block-quantised operand of an integer op is refused, not misread */
    CHECK(test_write(m, "crucible-ir 1\ngraph b\n"
                        "tensor x : i8[1, 4] quant(axis=-1, scales=[1], "
                        "zero_points=[0])\n"
                        "tensor w : i8[2, 4] quant(axis=1, block=2, "
                        "scales=[1, 1, 1, 1], zero_points=[0, 0, 0, 0]) = "
                        "[1, 2, 3, 4, 5, 6, 7, 8]\n"
                        "tensor y : i32[1, 2]\n"
                        "node d : dense(x, w) -> (y)\n"
                        "inputs (x)\noutputs (y)\n") == 0);
    rc = test_sh(&out, "/usr/bin/python3 -c \"import numpy as n; "
                       "n.save('%s', n.ones((1,4), n.int8))\" && "
                       "'%s' run '%s' --input '%s'",
                 x, CR_CRUCIBLE_BIN, m, x);
    CHECK_MSG(rc != 0 && test_contains(out, "only dequantize takes block-wise"),
              "exit %d: %s", rc, out);
    free(out);
    return TEST_PASS;
}
