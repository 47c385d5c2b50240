/* fv_gen.c - analysis of an int8 graph into hardware layers, the cost
 * model, and generation of the per-model RTL, memory images, testbench,
 * constraints and scripts. */
#include "fv_int.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- graph helpers ------------------------------------------------------ */
static int consumers(const crucible_graph_view *g, int32_t t, int32_t *first)
{
    int n = 0;
    *first = -1;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == t) {
                if (!n) *first = (int32_t)i;
                n++;
            }
    return n;
}

static int is_q31(const crucible_node_view *n)
{
    const crucible_attr_view *a = crucible_node_attr(n, "rounding");
    return a && a->type == CRUCIBLE_ATTR_STRING && a->s && !strcmp(a->s, "fixed_q31");
}

static int per_tensor_i8(const crucible_tensor_view *t)
{
    return t && t->dtype == CRUCIBLE_DT_I8 && t->quant_count == 1;
}

/* TFLite QuantizeMultiplier (same rule as the host's interp_q.c). */
int fv_multiplier(double r, int32_t *mult, int32_t *shift)
{
    *mult = 0;
    *shift = 0;
    if (!(r >= 0.0) || !isfinite(r)) return -1;
    if (r == 0.0) return 0;
    int e = 0;
    double f = frexp(r, &e);
    int64_t q = (int64_t)round(f * 2147483648.0);
    if (q == ((int64_t)1 << 31)) {
        q /= 2;
        e++;
    }
    if (e < -31) return 0;
    if (e > 31) return -1;
    *mult = (int32_t)q;
    *shift = e;
    return 0;
}

/* TFLite quantised activation bound, as the host computes it. */
static int32_t q_bound(float f, float scale, int32_t zp)
{
    float v = roundf(f / scale);
    double d = (double)v + (double)zp;
    if (!(d >= -128.0)) return d != d ? zp : -128;
    if (d > 127.0) return 127;
    return (int32_t)d;
}

static float attr_f(const crucible_node_view *n, const char *name, float dflt)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a) return dflt;
    if (a->type == CRUCIBLE_ATTR_FLOAT) return (float)a->f;
    if (a->type == CRUCIBLE_ATTR_INT) return (float)a->i;
    return dflt;
}

static void act_range(const crucible_graph_view *g, const crucible_node_view *n,
                      float s, int32_t zp, int32_t *lo, int32_t *hi)
{
    float fmin = attr_f(n, "min", n->op == CRUCIBLE_OP_RELU ? 0.0f : -INFINITY);
    float fmax = attr_f(n, "max", INFINITY);
    if (n->op == CRUCIBLE_OP_CLIP)
        for (uint32_t k = 1; k < 3 && k < n->n_inputs; k++) {
            const crucible_tensor_view *t = crucible_graph_tensor(g, n->inputs[k]);
            if (t && t->data && t->dtype == CRUCIBLE_DT_F32 && t->data_bytes == 4) {
                float v;
                memcpy(&v, t->data, 4);
                if (k == 1) fmin = v;
                else fmax = v;
            }
        }
    *lo = fmin == -INFINITY ? -128 : q_bound(fmin, s, zp);
    *hi = fmax == INFINITY ? 127 : q_bound(fmax, s, zp);
}

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), CRUCIBLE_E_UNSUPPORTED)

/* Checks the chain starting at dense node di and fills L (without the
 * parallelism). Allocation-free. */
int fv_chain(const crucible_graph_view *g, uint32_t di, fv_layer *L, char *why,
             size_t why_len)
{
    const crucible_node_view *d = g->nodes[di];
    memset(L, 0, offsetof(fv_layer, mult));
    L->dense = di;
    L->act = UINT32_MAX;
    if (d->op != CRUCIBLE_OP_DENSE)
        return WHY("op %s: fpga-verilog builds integer dense layers only "
                   "(conv2d, pooling and add engines are not implemented yet)",
                   d->op_name);
    if (d->n_inputs < 2 || d->n_outputs != 1)
        return WHY("dense %s needs inputs (x, W[, b])", d->name);
    const crucible_tensor_view *x = crucible_graph_tensor(g, d->inputs[0]);
    const crucible_tensor_view *w = crucible_graph_tensor(g, d->inputs[1]);
    const crucible_tensor_view *b =
        d->n_inputs > 2 ? crucible_graph_tensor(g, d->inputs[2]) : NULL;
    const crucible_tensor_view *acc = crucible_graph_tensor(g, d->outputs[0]);
    if (!x || !w || !acc) return WHY("dense %s: missing tensors", d->name);
    if (!per_tensor_i8(x))
        return WHY("dense %s: input %s must be i8 quantised per tensor (float "
                   "graphs: quantise first, crucible compile --quant int8)",
                   d->name, x->name);
    if (w->dtype != CRUCIBLE_DT_I8 || !w->data || w->rank != 2)
        return WHY("dense %s: weights %s must be a constant i8 [M, K] (i4, "
                   "ternary and binary engines are not implemented yet)",
                   d->name, w->name);
    for (uint32_t c = 0; c < w->quant_count; c++)
        if (w->zero_points[c] != 0)
            return WHY("dense %s: weight zero point %d (channel %u) must be 0",
                       d->name, (int)w->zero_points[c], c);
    if (!w->quant_count) return WHY("dense %s: weights carry no scales", d->name);
    uint64_t nx = crucible_tensor_numel(x);
    L->K = (int32_t)w->dims[1];
    L->M = (int32_t)w->dims[0];
    if (nx != (uint64_t)L->K)
        return WHY("dense %s: batch %llu: the RTL runs one sample of %d values "
                   "at a time (batch 1)", d->name,
                   (unsigned long long)(L->K ? nx / (uint64_t)L->K : 0), L->K);
    if (L->K > 65535 || L->M > 1024)
        return WHY("dense %s: %d x %d exceeds the engine limits (K <= 65535, "
                   "M <= 1024)", d->name, L->M, L->K);
    if (b && (b->dtype != CRUCIBLE_DT_I32 || !b->data ||
              crucible_tensor_numel(b) != (uint64_t)L->M))
        return WHY("dense %s: bias %s must be a constant i32 [%d]", d->name,
                   b->name, L->M);
    L->in_t = d->inputs[0];
    L->in_zp = x->zero_points[0];
    L->w = (const int8_t *)w->data;
    L->bias = b ? (const int32_t *)b->data : NULL;
    int32_t rqi;
    if (consumers(g, d->outputs[0], &rqi) != 1 ||
        g->nodes[rqi]->op != CRUCIBLE_OP_REQUANTIZE || !is_q31(g->nodes[rqi]))
        return WHY("dense %s: its i32 result must feed exactly one requantize "
                   "{rounding=\"fixed_q31\"} (float_rne requantisation has no "
                   "RTL)", d->name);
    const crucible_node_view *rq = g->nodes[rqi];
    const crucible_tensor_view *y = crucible_graph_tensor(g, rq->outputs[0]);
    if (!per_tensor_i8(y))
        return WHY("requantize %s: output must be i8 per tensor", rq->name);
    if (acc->quant_count != w->quant_count && acc->quant_count != 1)
        return WHY("requantize %s: accumulator scales do not line up with "
                   "the weights'", rq->name);
    L->rq = (uint32_t)rqi;
    L->out_t = rq->outputs[0];
    L->out_zp = y->zero_points[0];
    act_range(g, rq, y->scales[0], L->out_zp, &L->lo, &L->hi);
    int32_t ai;
    if (consumers(g, L->out_t, &ai) == 1 &&
        (g->nodes[ai]->op == CRUCIBLE_OP_RELU || g->nodes[ai]->op == CRUCIBLE_OP_CLIP)) {
        const crucible_node_view *a = g->nodes[ai];
        const crucible_tensor_view *z = crucible_graph_tensor(g, a->outputs[0]);
        if (!is_q31(a) || !per_tensor_i8(z) || z->scales[0] != y->scales[0] ||
            z->zero_points[0] != y->zero_points[0])
            return WHY("%s %s: only a fixed_q31 clamp with its input's scale and "
                       "zero point can be fused", a->op_name, a->name);
        int32_t lo, hi;
        act_range(g, a, z->scales[0], z->zero_points[0], &lo, &hi);
        if (lo > L->hi || hi < L->lo)
            return WHY("%s %s: clamp [%d, %d] is disjoint from [%d, %d]",
                       a->op_name, a->name, lo, hi, L->lo, L->hi);
        if (lo > L->lo) L->lo = lo;
        if (hi < L->hi) L->hi = hi;
        L->act = (uint32_t)ai;
        L->out_t = a->outputs[0];
    }
    if (L->lo > L->hi) return WHY("requantize %s: empty clamp range", rq->name);
    return CRUCIBLE_OK;
}

/* The multipliers of layer L (after fv_chain). */
int fv_mults(const crucible_graph_view *g, fv_layer *L, char *why, size_t why_len)
{
    const crucible_node_view *d = g->nodes[L->dense];
    const crucible_tensor_view *x = crucible_graph_tensor(g, d->inputs[0]);
    const crucible_tensor_view *w = crucible_graph_tensor(g, d->inputs[1]);
    const crucible_tensor_view *acc = crucible_graph_tensor(g, d->outputs[0]);
    const crucible_tensor_view *y =
        crucible_graph_tensor(g, g->nodes[L->rq]->outputs[0]);
    for (int32_t m = 0; m < L->M; m++) {
        uint32_t cw = w->quant_count > 1 ? (uint32_t)m : 0;
        uint32_t ca = acc->quant_count > 1 ? (uint32_t)m : 0;
        double s = (double)x->scales[0] * (double)w->scales[cw];
        if (acc->quant_count && (float)s != acc->scales[ca])
            return WHY("dense %s: accumulator scale %u is %.9g, not x_scale * "
                       "w_scale = %.9g", d->name, ca, (double)acc->scales[ca],
                       (double)(float)s);
        int32_t sh;
        if (fv_multiplier(s / (double)y->scales[0], &L->mult[m], &sh))
            return WHY("dense %s: factor %g is not a Q31 multiplier", d->name,
                       s / (double)y->scales[0]);
        L->shift[m] = sh;
    }
    return CRUCIBLE_OK;
}

/* ---- cost model --------------------------------------------------------- */
/* Exact cycle count of the engine's FSM (see fv_dense_rtl): per group of P
 * outputs K MAC cycles, 1 drain, P issue cycles and the requantisation
 * pipeline's latency; plus one start cycle per layer. */
#define FV_RQ_LAT 7
double fv_layer_cycles(int32_t K, int32_t M, int32_t P)
{
    int32_t G = M / P;
    return (double)G * (K + 1 + P + FV_RQ_LAT) + 1.0;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void fv_layer_cost(int32_t K, int32_t M, int32_t P, int use_dsp, fv_cost *c)
{
    int64_t depth = (int64_t)(M / P) * K;
    c->cycles = fv_layer_cycles(K, M, P);
    /* weights: 4 kbit EBRs, 256 x 16 (or 512 x 8) */
    int64_t wb = (8 * P <= 8) ? ceil_div(depth, 512) : ceil_div(8 * P, 16) * ceil_div(depth, 256);
    int64_t pb = ceil_div(M, 128) * 3; /* bias, mult, shift */
    c->bram = wb + (M > 32 ? pb + 1 : 0);
    c->dsp = use_dsp ? P : 0;
    c->ff = 32 * P + 8 * P + 120;
    c->lut = 40 * P + (use_dsp ? 0 : 90 * P) + 150 + (M <= 32 ? 3 * M * 8 : 0);
}

/* The shared requantisation unit and top level. */
void fv_common_cost(int use_dsp, fv_cost *c)
{
    c->cycles = 2; /* start + output handshake */
    c->dsp = use_dsp ? 4 : 0;
    c->ff = 330;
    c->lut = 520 + (use_dsp ? 0 : 1100);
    c->bram = 0;
}

/* ---- text buffer -------------------------------------------------------- */
void fv_printf(fv_buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = b->data ? vsnprintf(b->data + b->len, room, fmt, ap) : -2;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (n >= 0 && ncap - b->len <= (size_t)n) ncap *= 2;
        char *p = b->host->realloc(b->host, b->data, b->cap, ncap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = ncap;
    }
}

void fv_buf_free(fv_buf *b)
{
    if (b->data) b->host->realloc(b->host, b->data, b->cap, 0);
    b->data = NULL;
    b->cap = b->len = 0;
}

static int aw(int64_t n) /* address bits for n entries */
{
    int w = 1;
    while (((int64_t)1 << w) < n) w++;
    return w;
}

/* One dense engine module. */
static void dense_rtl(fv_buf *b, int i, const fv_layer *L, int in_aw)
{
    int K = L->K, M = L->M, P = L->P, G = M / P;
    int kw = aw(K), gw = aw(G), pw = aw(P + 1), mw = aw(M), wa = aw((int64_t)G * K);
    fv_printf(b,
        "// layer %d: dense %d -> %d, %d parallel MAC lane(s), input zero point %d\n"
        "module cr_dense_%d (\n"
        "    input  wire        clk,\n    input  wire        rst,\n"
        "    input  wire        start,\n    output reg         done,\n"
        "    output wire [%d:0] x_addr,\n    input  wire [7:0]  x_data,\n"
        "    output wire        rq_valid,\n    output wire [31:0] rq_acc,\n"
        "    output wire [31:0] rq_mult,\n    output wire [4:0]  rq_lsh,\n"
        "    output wire [5:0]  rq_rsh,\n    output wire [15:0] rq_tag,\n"
        "    input  wire        res_valid,\n    input  wire [7:0]  res_data,\n"
        "    /* verilator lint_off UNUSEDSIGNAL */\n    input  wire [15:0] res_tag,\n    /* verilator lint_on UNUSEDSIGNAL */\n"
        "    input  wire [%d:0] o_addr,\n    output reg  [7:0]  o_data\n);\n",
        i, K, M, P, L->in_zp, i, in_aw - 1, mw - 1);
    fv_printf(b,
        "    localparam ST_IDLE = 3'd0, ST_MAC = 3'd1, ST_DRAIN = 3'd2, ST_RQ = 3'd3, ST_WAIT = 3'd4;\n"
        "    reg [%d:0] wrom [0:%d];\n    reg [31:0] brom [0:%d];\n"
        "    reg [31:0] mrom [0:%d];\n    reg [10:0] srom [0:%d];\n"
        "    reg [7:0]  obuf [0:%d];\n"
        "    initial begin\n"
        "        $readmemh(\"l%d_w.hex\", wrom);\n        $readmemh(\"l%d_b.hex\", brom);\n"
        "        $readmemh(\"l%d_m.hex\", mrom);\n        $readmemh(\"l%d_s.hex\", srom);\n"
        "    end\n",
        8 * P - 1, G * K - 1, M - 1, M - 1, M - 1, M - 1, i, i, i, i);
    fv_printf(b,
        "    reg [2:0]  st;\n    reg [%d:0] k;\n    reg [%d:0] g;\n    reg [%d:0] p;\n"
        "    reg [%d:0] nret;\n    reg [%d:0] wa;\n    reg [%d:0] ch;\n"
        "    reg        mac_v, clr, iss_v;\n    reg [%d:0] wq;\n"
        "    reg [31:0] accsel, bq, mq;\n    reg [10:0] sq;\n    reg [%d:0] chq;\n"
        "    wire [%d:0] accv;\n",
        kw - 1, gw - 1, pw - 1, pw - 1, wa - 1, mw - 1, 8 * P - 1, mw - 1, 32 * P - 1);
    fv_printf(b,
        "    wire signed [8:0] xc = $signed({x_data[7], x_data}) - $signed(9'h%03x);\n"
        "    genvar j;\n"
        "    generate\n        for (j = 0; j < %d; j = j + 1) begin : lane\n"
        "            wire signed [7:0]  wv = wq[8*j+7:8*j];\n"
        "            wire signed [16:0] pr = xc * wv;\n"
        "            reg [31:0] acc;\n"
        "            always @(posedge clk)\n"
        "                if (clr) acc <= 32'd0;\n"
        "                else if (mac_v) acc <= acc + {{15{pr[16]}}, pr};\n"
        "            assign accv[32*j+31:32*j] = acc;\n"
        "        end\n    endgenerate\n",
        (unsigned)(L->in_zp & 0x1ff), P);
    fv_printf(b,
        "    assign x_addr = k%s;\n"
        "    assign rq_valid = iss_v;\n    assign rq_acc = accsel + bq;\n    assign rq_mult = mq;\n"
        "    assign rq_lsh = sq[10:6];\n    assign rq_rsh = sq[5:0];\n"
        "    assign rq_tag = {%d'd0, chq};\n",
        in_aw > kw ? "" : "", 16 - mw);
    /* x_addr width: in_aw must equal kw (the producer's buffer has K entries) */
    fv_printf(b,
        "    always @(posedge clk) begin\n"
        "        wq <= wrom[wa];\n        o_data <= obuf[o_addr];\n"
        "        bq <= brom[ch];\n        mq <= mrom[ch];\n        sq <= srom[ch];\n"
        "        chq <= ch;\n        accsel <= accv[32*p +: 32];\n"
        
        "        if (res_valid && st != ST_IDLE) obuf[res_tag[%d:0]] <= res_data;\n"
        "    end\n",
        mw - 1);
    fv_printf(b,
        "    always @(posedge clk) begin\n"
        "        done <= 1'b0;\n        mac_v <= 1'b0;\n        clr <= 1'b0;\n        iss_v <= 1'b0;\n"
        "        if (res_valid && st != ST_IDLE) nret <= nret + 1'b1;\n"
        "        if (rst) begin\n            st <= ST_IDLE;\n            nret <= 0;\n        end else begin\n"
        "            case (st)\n"
        "            ST_IDLE: if (start) begin\n"
        "                st <= ST_MAC; k <= 0; g <= 0; wa <= 0; ch <= 0; nret <= 0; clr <= 1'b1;\n"
        "            end\n"
        "            ST_MAC: begin\n"
        "                mac_v <= 1'b1; wa <= wa + 1'b1;\n"
        "                if (k == %d'd%d) begin k <= 0; st <= ST_DRAIN; end else k <= k + 1'b1;\n"
        "            end\n"
        "            ST_DRAIN: begin st <= ST_RQ; p <= 0; end\n"
        "            ST_RQ: begin\n"
        "                iss_v <= 1'b1; ch <= ch + 1'b1;\n"
        "                if (p == %d'd%d) st <= ST_WAIT; else p <= p + 1'b1;\n"
        "            end\n"
        "            ST_WAIT: if (nret == %d'd%d) begin\n"
        "                nret <= 0; clr <= 1'b1;\n"
        "                if (g == %d'd%d) begin st <= ST_IDLE; done <= 1'b1; end\n"
        "                else begin g <= g + 1'b1; st <= ST_MAC; end\n"
        "            end\n"
        "            default: st <= ST_IDLE;\n"
        "            endcase\n        end\n    end\nendmodule\n\n",
        kw, K - 1, pw, P - 1, pw, P, gw, G - 1);
}

/* Memory images of layer i. */
void fv_layer_hex(const fv_layer *L, fv_buf *w, fv_buf *bb, fv_buf *m, fv_buf *s)
{
    int K = L->K, P = L->P, G = L->M / P;
    for (int g = 0; g < G; g++)
        for (int k = 0; k < K; k++) {
            for (int j = P - 1; j >= 0; j--)
                fv_printf(w, "%02x", (unsigned)(uint8_t)L->w[(size_t)(g * P + j) * (size_t)K + (size_t)k]);
            fv_printf(w, "\n");
        }
    for (int c = 0; c < L->M; c++) {
        int32_t sh = L->shift[c];
        unsigned lsh = sh > 0 ? (unsigned)sh : 0, rsh = sh > 0 ? 0 : (unsigned)-sh;
        fv_printf(bb, "%08x\n", L->bias ? (unsigned)L->bias[c] : 0u);
        fv_printf(m, "%08x\n", (unsigned)L->mult[c]);
        fv_printf(s, "%03x\n", (lsh << 6) | rsh);
    }
}

/* cr_core: input buffer, the layers in sequence, the shared requantiser,
 * and the output stream. */
void fv_core_rtl(fv_buf *b, const fv_design *D)
{
    uint32_t n = D->n;
    int K0 = D->in_bytes, MO = D->out_bytes;
    int iaw = aw(K0), oaw = aw(MO), cw = aw(n);
    fv_printf(b, "/* verilator lint_off DECLFILENAME */\n%s\n", fv_rtl_requant);
    for (uint32_t i = 0; i < n; i++)
        dense_rtl(b, (int)i, &D->L[i], aw(D->L[i].K));
    fv_printf(b,
        "// cr_core: byte stream in (valid/ready), %u layer(s) in sequence, byte\n"
        "// stream out; done pulses when the last output byte is taken.\n"
        "module cr_core (\n    input  wire       clk,\n    input  wire       rst,\n"
        "    input  wire [7:0] in_data,\n    input  wire       in_valid,\n"
        "    output wire       in_ready,\n    output wire [7:0] out_data,\n"
        "    output wire       out_valid,\n    input  wire       out_ready,\n"
        "    output reg        done\n);\n"
        "    localparam S_IN = 2'd0, S_RUN = 2'd1, S_OA = 2'd2, S_OV = 2'd3;\n"
        "    reg [1:0] st;\n    reg [%d:0] icnt;\n    reg [%d:0] ocnt;\n    reg [%d:0] cur;\n"
        "    reg [7:0] ibuf [0:%d];\n    reg [7:0] ibuf_q;\n    reg [%u:0] start;\n"
        "    wire [%u:0] ldone;\n"
        "    wire rq_v, res_v;\n    wire [7:0] res_d;\n    wire [15:0] res_t;\n",
        n, iaw - 1, oaw - 1, cw - 1, K0 - 1, n - 1, n - 1);
    for (uint32_t i = 0; i < n; i++) {
        const fv_layer *L = &D->L[i];
        fv_printf(b,
            "    wire [%d:0] l%u_xa;\n    wire [%d:0] l%u_oa;\n    wire [7:0] l%u_od;\n"
            "    wire l%u_v;\n    wire [31:0] l%u_acc, l%u_mult;\n    wire [4:0] l%u_lsh;\n"
            "    wire [5:0] l%u_rsh;\n    wire [15:0] l%u_tag;\n",
            aw(L->K) - 1, i, aw(L->M) - 1, i, i, i, i, i, i, i, i);
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *xd = i == 0 ? "ibuf_q" : NULL;
        char prev[32];
        if (!xd) {
            snprintf(prev, sizeof prev, "l%u_od", i - 1);
            xd = prev;
        }
        fv_printf(b,
            "    cr_dense_%u u_l%u (.clk(clk), .rst(rst), .start(start[%u]), .done(ldone[%u]),\n"
            "        .x_addr(l%u_xa), .x_data(%s), .rq_valid(l%u_v), .rq_acc(l%u_acc),\n"
            "        .rq_mult(l%u_mult), .rq_lsh(l%u_lsh), .rq_rsh(l%u_rsh), .rq_tag(l%u_tag),\n"
            "        .res_valid(res_v), .res_data(res_d), .res_tag(res_t),\n"
            "        .o_addr(l%u_oa), .o_data(l%u_od));\n",
            i, i, i, i, i, xd, i, i, i, i, i, i, i, i);
        if (i + 1 < n) fv_printf(b, "    assign l%u_oa = l%u_xa;\n", i, i + 1);
    }
    fv_printf(b, "    assign l%u_oa = ocnt;\n", n - 1);
    /* requantiser mux */
    fv_printf(b, "    reg [31:0] m_acc, m_mult;\n    reg [4:0] m_lsh;\n    reg [5:0] m_rsh;\n"
                 "    reg [7:0] m_zp, m_lo, m_hi;\n    reg [15:0] m_tag;\n"
                 "    always @(*) begin\n        case (cur)\n");
    for (uint32_t i = 0; i < n; i++) {
        const fv_layer *L = &D->L[i];
        fv_printf(b,
            "        %d'd%u: begin m_acc = l%u_acc; m_mult = l%u_mult; m_lsh = l%u_lsh; "
            "m_rsh = l%u_rsh; m_tag = l%u_tag; m_zp = 8'h%02x; m_lo = 8'h%02x; m_hi = 8'h%02x; end\n",
            cw, i, i, i, i, i, i, (unsigned)(uint8_t)L->out_zp,
            (unsigned)(uint8_t)L->lo, (unsigned)(uint8_t)L->hi);
    }
    fv_printf(b, "        default: begin m_acc = 32'd0; m_mult = 32'd0; m_lsh = 5'd0; m_rsh = 6'd0; "
                 "m_tag = 16'd0; m_zp = 8'd0; m_lo = 8'd0; m_hi = 8'd0; end\n"
                 "        endcase\n    end\n    assign rq_v = ");
    for (uint32_t i = 0; i < n; i++) fv_printf(b, "%sl%u_v", i ? " | " : "", i);
    fv_printf(b,
        ";\n    cr_requant u_rq (.clk(clk), .in_valid(rq_v), .in_acc(m_acc), .in_mult(m_mult),\n"
        "        .in_lsh(m_lsh), .in_rsh(m_rsh), .in_zp(m_zp), .in_lo(m_lo), .in_hi(m_hi),\n"
        "        .in_tag(m_tag), .out_valid(res_v), .out_data(res_d), .out_tag(res_t));\n"
        "    assign in_ready = (st == S_IN);\n    assign out_valid = (st == S_OV);\n"
        "    assign out_data = l%u_od;\n"
        "    always @(posedge clk) begin\n"
        "        ibuf_q <= ibuf[l0_xa];\n"
        "        if (in_valid && st == S_IN) ibuf[icnt] <= in_data;\n"
        "    end\n"
        "    always @(posedge clk) begin\n"
        "        done <= 1'b0;\n        start <= %u'd0;\n"
        "        if (rst) begin\n            st <= S_IN; icnt <= 0; ocnt <= 0; cur <= 0;\n"
        "        end else begin\n            case (st)\n"
        "            S_IN: if (in_valid) begin\n"
        "                if (icnt == %d'd%d) begin icnt <= 0; st <= S_RUN; cur <= 0; start <= %u'd1; end\n"
        "                else icnt <= icnt + 1'b1;\n            end\n"
        "            S_RUN: if (ldone[cur]) begin\n"
        "                if (cur == %d'd%u) begin st <= S_OA; ocnt <= 0; end\n"
        "                else begin cur <= cur + 1'b1; start <= %u'd1 << (cur + 1'b1); end\n"
        "            end\n"
        "            S_OA: st <= S_OV;\n"
        "            S_OV: if (out_ready) begin\n"
        "                if (ocnt == %d'd%d) begin st <= S_IN; done <= 1'b1; end\n"
        "                else begin ocnt <= ocnt + 1'b1; st <= S_OA; end\n"
        "            end\n"
        "            endcase\n        end\n    end\nendmodule\n",
        n - 1, n, iaw, K0 - 1, n, cw, n - 1, n, oaw, MO - 1);
}
