/* fv_eng.c - generation of the per-layer engines and the core of
 * fpga-verilog (plain Verilog-2005).
 *
 * One engine per layer, all built on the same sequencer: it issues one tap
 * per cycle (address of the input value, weight word, first / last flags),
 * walking output-channel groups of P lanes, then output pixels, then the K
 * taps of one output; a 6-stage pipeline computes the input address (with
 * padding checks), reads input buffer and weight ROM, subtracts the input
 * zero point and multiplies (one SB_MAC16 or a LUT multiplier per lane),
 * and accumulates. On the last tap the P accumulators go to a shift
 * register and are issued one a cycle, with the bias, to the shared
 * requantiser while the lanes already accumulate the next outputs; so an
 * engine costs max(K, P) cycles per group of P outputs plus a constant
 * pipeline drain (fv_layer_cycles). Max pooling uses the same sequencer
 * and keeps a running maximum instead of the lanes. */
#include "fv_int.h"

#include <string.h>

static int aw(int64_t n) /* bits to hold 0..n-1 (at least 1) */
{
    int w = 1;
    while (((int64_t)1 << w) < n) w++;
    return w;
}


/* The engine of layer i. */
static void engine_rtl(fv_buf *b, int i, const fv_layer *L)
{
    const int pool = L->kind == FV_POOL;
    const int64_t P = L->P, K = L->K, HW = (int64_t)L->H * L->W;
    const int64_t NPIX = (int64_t)L->OH * L->OW;
    const int64_t NG = pool ? L->C : L->OC / P;
    const int64_t IN = (int64_t)L->C * HW, OUT = (int64_t)L->OC * NPIX;
    const int64_t ICPG = L->C / L->groups, GPG = (L->OC / L->groups) / P;
    const int spatial = pool || HW > 1 || L->KH * L->KW > 1;
    const int gapped = P > K;
    const int kw = aw(K), gw = aw(NG), xaw = aw(IN), obw = aw(OUT);
    const int oxw = aw(L->OW), oyw = aw(L->OH), waw = aw(NG * K), mw = aw(L->OC);
    const int pw = aw(P), gpw = aw(GPG), gapw = aw(P - K + 1);
    const int64_t pbmax = 2 * IN + 2 * (int64_t)(L->PT + L->SH + 1) * L->W +
                          2 * (int64_t)(L->PL + L->SW) + 8;
    const int AB = aw(pbmax) + 1;
    const int CW = aw(2 * (int64_t)(L->H + L->W + L->PT + L->PL + L->SH + L->SW +
                                    L->KH * L->DH + L->KW * L->DW) + 8) + 1;
    const int TQ = (AB - 1) + 2 * (CW - 1);
    const int64_t pb0 = (int64_t)L->PT * L->W + L->PL; /* -pb at the start */
    /* average pooling: sum, count and divider remainder widths */
    const int64_t KHW = (int64_t)L->KH * L->KW;
    const int SWD = 8 + aw(KHW + 1) + 1, CNW = aw(KHW + 1) + 1;
    const int RW = aw(129 * KHW + 2) + 2 > SWD + 1 ? aw(129 * KHW + 2) + 2 : SWD + 1;

    const char *wname = L->wbits == 8 ? "i8" : L->wbits == 4 ? "i4" : L->wbits == 2 ? "ternary" : "binary";
    fv_printf(b, "// layer %d: ", i);
    if (pool)
        fv_printf(b, "%s pool %dx%d stride %dx%d over %d x %dx%d -> %dx%d, clamp [%d, %d]\n",
                  L->avg ? (L->cip ? "average (count_include_pad)" : "average") : "max",
                  L->KH, L->KW, L->SH, L->SW, L->C, L->H, L->W, L->OH, L->OW, L->lo, L->hi);
    else if (spatial)
        fv_printf(b, "conv2d %d x %dx%d -> %d x %dx%d, kernel %dx%d, stride %dx%d, "
                  "pads %d/%d, %d group(s); %lld MAC lane(s) (%d on DSPs), input zp %d, %s weights\n",
                  L->C, L->H, L->W, L->OC, L->OH, L->OW, L->KH, L->KW, L->SH, L->SW,
                  L->PT, L->PL, L->groups, (long long)P, L->dsp_lanes, L->in_zp, wname);
    else
        fv_printf(b, "dense %d -> %d, %lld MAC lane(s) (%d on DSPs), input zp %d, %s weights\n",
                  L->C, L->OC, (long long)P, L->dsp_lanes, L->in_zp, wname);
    fv_printf(b,
        "module cr_eng_%d (\n"
        "    input  wire        clk,\n    input  wire        rst,\n"
        "    input  wire        start,\n    output reg         done,\n"
        "    output reg  [%d:0] x_addr,\n    input  wire [7:0]  x_data,\n",
        i, xaw - 1);
    if (!pool)
        fv_printf(b,
            "    output reg         rq_valid,\n    output reg  [31:0] rq_acc,\n"
            "    output reg  [31:0] rq_mult,\n    output reg  [4:0]  rq_lsh,\n"
            "    output reg  [5:0]  rq_rsh,\n    output reg  [7:0]  rq_zp,\n"
            "    output reg  [7:0]  rq_lo,\n    output reg  [7:0]  rq_hi,\n"
            "    output reg  [15:0] rq_tag,\n"
            "    input  wire        res_valid,\n    input  wire [7:0]  res_data,\n"
            "    /* verilator lint_off UNUSEDSIGNAL */\n"
            "    input  wire [15:0] res_tag,\n"
            "    /* verilator lint_on UNUSEDSIGNAL */\n");
    fv_printf(b,
        "    input  wire [%d:0] o_addr,\n    output reg  [7:0]  o_data\n);\n"
        "    /* verilator lint_off UNUSEDSIGNAL */\n"
        "    reg [7:0] obuf [0:%lld];\n"
        "    reg busy, run;\n    reg [%d:0] k;\n    reg [%d:0] g;\n    reg [%d:0] ob;\n"
        "    reg [%d:0] nret;\n"
        "    reg v1, f1, l1, v2, f2, l2, v3, f3, l3, v4, f4, l4;\n"
        "    reg [%d:0] ob1, ob2, ob3, ob4, ob5;\n"
        "    reg inb2, inb3;\n",
        obw - 1, (long long)OUT - 1, kw - 1, gw - 1, obw - 1, obw - 1, obw - 1);
    if (gapped) fv_printf(b, "    reg [%d:0] gap;\n    wire issue = run && gap == %d'd0;\n", gapw - 1, gapw);
    else fv_printf(b, "    wire issue = run;\n");
    fv_printf(b, "    wire klast = (k == %d'd%lld);\n", kw, (long long)K - 1);
    if (spatial) {
        fv_printf(b,
            "    reg [%d:0] ox;\n    reg [%d:0] oy;\n"
            "    reg signed [%d:0] pb, rb, cb, pb1;\n"
            "    reg signed [%d:0] iy0, ix0, iy1, ix1;\n"
            "    reg [%d:0] tq;\n"
            "    wire signed [%d:0] pa = pb1 + $signed({1'b0, tq[%d:%d]});\n"
            "    wire signed [%d:0] iy = iy1 + $signed({1'b0, tq[%d:%d]});\n"
            "    wire signed [%d:0] ix = ix1 + $signed({1'b0, tq[%d:0]});\n",
            oxw - 1, oyw - 1, AB - 1, CW - 1, TQ - 1, AB - 1, TQ - 1, 2 * (CW - 1),
            CW - 1, 2 * (CW - 1) - 1, CW - 1, CW - 1, CW - 2);
        if (!pool && GPG > 1 && GPG < NG) fv_printf(b, "    reg [%d:0] gi;\n", gpw - 1);
        /* tap table: {offset, dy, dx} of tap k */
        fv_printf(b, "    always @(posedge clk)\n        case (k)\n");
        int64_t khw = (int64_t)L->KH * L->KW;
        for (int64_t t = 0; t < K; t++) {
            int64_t ci = t / khw, ky = (t % khw) / L->KW, kx = t % L->KW;
            int64_t dy = ky * L->DH, dx = kx * L->DW;
            int64_t off = (pool ? 0 : ci * HW) + dy * L->W + dx;
            fv_printf(b, "        %d'd%lld: tq <= {%d'd%lld, %d'd%lld, %d'd%lld};\n",
                      kw, (long long)t, AB - 1, (long long)off, CW - 1, (long long)dy,
                      CW - 1, (long long)dx);
        }
        fv_printf(b, "        default: tq <= %d'd0;\n        endcase\n", TQ);
    } else {
        fv_printf(b, "    reg [%d:0] xa1;\n", xaw - 1);
    }
    if (!pool) {
        fv_printf(b,
            "    reg [%d:0] wrom [0:%lld];\n    reg [31:0] brom [0:%d];\n"
            "    reg [31:0] mrom [0:%d];\n    reg [10:0] srom [0:%d];\n"
            "    initial begin\n"
            "        $readmemh(\"l%d_w.hex\", wrom);\n        $readmemh(\"l%d_b.hex\", brom);\n"
            "        $readmemh(\"l%d_m.hex\", mrom);\n        $readmemh(\"l%d_s.hex\", srom);\n"
            "    end\n"
            "    reg [%d:0] wa, wbase, wa1, wa2;\n    reg [%d:0] oc, oc1, oc2, oc3, oc4, oc5;\n"
            "    reg [%d:0] gob;\n"
            "    reg [%d:0] wq, w4;\n    reg signed [8:0] xc4;\n    reg v5, f5, l5;\n"
            "    reg [%lld:0] shreg;\n    reg act, iv;\n    reg [%d:0] ij;\n"
            "    reg [%d:0] ich;\n    reg [%d:0] itag, tg2;\n"
            "    reg [31:0] sel, bq, mq;\n    reg [10:0] sq;\n",
            (int)(L->wbits * P - 1), (long long)(NG * K - 1), L->OC - 1, L->OC - 1,
            L->OC - 1, i, i, i, i, waw - 1, mw - 1, obw - 1, (int)(L->wbits * P - 1),
            (long long)(32 * P - 1), pw - 1, mw - 1, obw - 1);
        fv_printf(b, "    wire [%lld:0] accn;\n    wire fire = v5 && l5;\n", (long long)(32 * P - 1));
        const int WB = L->wbits;
        fv_printf(b, "    genvar j;\n    generate\n        for (j = 0; j < %lld; j = j + 1) begin : lane\n"
                     "            wire signed [%d:0] wv = w4[%d*j+%d:%d*j];\n"
                     "            reg signed [16:0] pr;\n            reg [31:0] acc;\n"
                     "            wire [16:0] xe = {{8{xc4[8]}}, xc4};\n",
                  (long long)P, WB - 1, WB, WB - 1, WB);
        if (WB == 2)
            fv_printf(b, "            // ternary: add, subtract or skip (no multiplier)\n"
                         "            always @(posedge clk) pr <= wv[0] ? (wv[1] ? -xe : xe) : 17'd0;\n");
        else if (WB == 1)
            fv_printf(b, "            // binary: +-x (no multiplier)\n"
                         "            always @(posedge clk) pr <= wv[0] ? xe : -xe;\n");
        else {
            fv_printf(b, "            if (j < %d) begin : dsp\n"
                         "                always @(posedge clk) pr <= xc4 * wv;\n"
                         "            end else begin : lut\n"
                         "                // shift-and-add (no $mul: stays out of the DSP blocks)\n"
                         "                wire [16:0] pp = ({17{wv[0]}} & xe)",
                      L->dsp_lanes);
            for (int t = 1; t < WB - 1; t++)
                fv_printf(b, " + (({17{wv[%d]}} & xe) << %d)", t, t);
            fv_printf(b, "\n                    - (({17{wv[%d]}} & xe) << %d);\n"
                         "                always @(posedge clk) pr <= pp;\n"
                         "            end\n", WB - 1, WB - 1);
        }
        fv_printf(b, "            assign accn[32*j+31:32*j] = (f5 ? 32'd0 : acc) + {{15{pr[16]}}, pr};\n"
                     "            always @(posedge clk) if (v5) acc <= accn[32*j+31:32*j];\n"
                     "        end\n    endgenerate\n");
    } else {
        fv_printf(b, "    reg [7:0] vv4, mx5;\n    reg fin5;\n");
        if (L->avg) {
            fv_printf(b, "    reg vin4, dv0;\n    reg signed [%d:0] sum5;\n    reg [%d:0] cnt5;\n"
                         "    wire [%d:0] sabs = sum5[%d] ? -sum5 : sum5;\n",
                      SWD - 1, CNW - 1, SWD - 1, SWD - 1);
            for (int t = 0; t <= 8; t++)
                fv_printf(b, "    reg dv%d_, dn%d, dz%d;\n    reg [%d:0] dr%d;\n    reg [%d:0] dc%d;\n"
                             "    reg [7:0] dq%d;\n    reg [%d:0] do%d;\n",
                          t, t, t, RW - 1, t, CNW - 1, t, t, obw - 1, t);
            fv_printf(b, "    wire signed [8:0] dres = dz8 ? $signed(9'h%03x) : (dn8 ? -$signed({1'b0, dq8}) : $signed({1'b0, dq8}));\n",
                      (unsigned)(L->in_zp & 0x1ff));
        }
    }
    /* pipeline */
    fv_printf(b, "    always @(posedge clk) begin\n        o_data <= obuf[o_addr];\n"
                 "        v1 <= !rst && issue; f1 <= (k == %d'd0); l1 <= klast; ob1 <= ob;\n"
                 "        v2 <= !rst && v1; f2 <= f1; l2 <= l1; ob2 <= ob1;\n"
                 "        v3 <= !rst && v2; f3 <= f2; l3 <= l2; ob3 <= ob2; inb3 <= inb2;\n"
                 "        v4 <= !rst && v3; f4 <= f3; l4 <= l3; ob4 <= ob3; ob5 <= ob4;\n",
              kw);
    if (spatial)
        fv_printf(b, "        pb1 <= pb; iy1 <= iy0; ix1 <= ix0;\n"
                     "        x_addr <= pa[%d:0];\n"
                     "        inb2 <= !iy[%d] && (iy < %d'sd%d) && !ix[%d] && (ix < %d'sd%d);\n",
                  xaw - 1, CW - 1, CW, L->H, CW - 1, CW, L->W);
    else
        fv_printf(b, "        xa1 <= k;\n        x_addr <= xa1;\n        inb2 <= 1'b1;\n");
    if (!pool) {
        fv_printf(b,
            "        wa1 <= wa; wa2 <= wa1; wq <= wrom[wa2]; w4 <= wq;\n"
            "        oc1 <= oc; oc2 <= oc1; oc3 <= oc2; oc4 <= oc3; oc5 <= oc4;\n"
            "        xc4 <= inb3 ? ($signed({x_data[7], x_data}) - $signed(9'h%03x)) : 9'sd0;\n"
            "        v5 <= !rst && v4; f5 <= f4; l5 <= l4;\n",
            (unsigned)(L->in_zp & 0x1ff));
        /* issue: accumulators of the finished outputs, one a cycle */
        fv_printf(b, "        if (fire) shreg <= accn;\n");
        if (P > 1) fv_printf(b, "        else if (act) shreg <= shreg >> 32;\n");
        fv_printf(b,
            "        if (fire) begin ich <= oc5; itag <= ob5; end\n"
            "        else if (act) begin ich <= ich + %d'd1; itag <= itag + %d'd%lld; end\n"
            "        sel <= shreg[31:0]; bq <= brom[ich]; mq <= mrom[ich]; sq <= srom[ich];\n"
            "        tg2 <= itag;\n"
            "        rq_acc <= iv ? sel + bq : 32'd0;\n        rq_mult <= iv ? mq : 32'd0;\n"
            "        rq_lsh <= iv ? sq[10:6] : 5'd0;\n        rq_rsh <= iv ? sq[5:0] : 6'd0;\n"
            "        rq_zp <= iv ? 8'h%02x : 8'h00;\n        rq_lo <= iv ? 8'h%02x : 8'h00;\n"
            "        rq_hi <= iv ? 8'h%02x : 8'h00;\n",
            mw, obw, (long long)NPIX, (unsigned)(uint8_t)L->out_zp,
            (unsigned)(uint8_t)L->lo, (unsigned)(uint8_t)L->hi);
        if (obw < 16) fv_printf(b, "        rq_tag <= iv ? {%d'd0, tg2} : 16'd0;\n", 16 - obw);
        else fv_printf(b, "        rq_tag <= iv ? tg2 : 16'd0;\n");
        fv_printf(b, "        if (res_valid && busy) obuf[res_tag[%d:0]] <= res_data;\n", obw - 1);
    } else {
        fv_printf(b,
            "        fin5 <= !rst && v4 && l4;\n");
        if (!L->avg)
            fv_printf(b,
            "        vv4 <= inb3 ? x_data : 8'h80;\n"
            "        if (v4 && (f4 || $signed(vv4) > $signed(mx5))) mx5 <= vv4;\n"
            "        if (fin5) obuf[ob5] <= ($signed(mx5) < $signed(8'h%02x)) ? 8'h%02x :\n"
            "            (($signed(mx5) > $signed(8'h%02x)) ? 8'h%02x : mx5);\n",
            (unsigned)(uint8_t)L->lo, (unsigned)(uint8_t)L->lo,
            (unsigned)(uint8_t)L->hi, (unsigned)(uint8_t)L->hi);
        else {
            /* sum and count of the window (padding: skipped, or the input
             * zero point with count_include_pad), then (|s| + n/2) / n by
             * an 8-stage restoring divider, the sign, the clamp */
            fv_printf(b,
                "        vv4 <= inb3 ? x_data : 8'h%02x;\n        vin4 <= %s;\n"
                "        if (v4) begin\n"
                "            sum5 <= (f4 ? %d'sd0 : sum5) + {{%d{vv4[7]}}, vv4};\n"
                "            cnt5 <= (f4 ? %d'd0 : cnt5) + {%d'd0, vin4};\n"
                "        end\n"
                "        dv0_ <= !rst && fin5; do0 <= ob5; dn0 <= sum5[%d]; dz0 <= (cnt5 == %d'd0);\n"
                "        dc0 <= cnt5; dr0 <= {%d'd0, sabs} + {%d'd0, cnt5[%d:1]}; dq0 <= 8'd0;\n",
                L->cip ? (unsigned)(uint8_t)L->in_zp : 0u, L->cip ? "1'b1" : "inb3",
                SWD, SWD - 8, CNW, CNW - 1, SWD - 1, CNW,
                RW - SWD, RW - (CNW - 1), CNW - 1);
            for (int t = 0; t < 8; t++) {
                int bit = 7 - t;
                fv_printf(b,
                    "        dv%d_ <= !rst && dv%d_; do%d <= do%d; dn%d <= dn%d; dz%d <= dz%d; dc%d <= dc%d;\n"
                    "        if ({8'd0, dr%d} >= ({%d'd0, dc%d} << %d)) begin\n"
                    "            dr%d <= dr%d - dc%d * %d'd%d; dq%d <= dq%d | 8'd%d;\n"
                    "        end else begin dr%d <= dr%d; dq%d <= dq%d; end\n",
                    t + 1, t, t + 1, t, t + 1, t, t + 1, t, t + 1, t,
                    t, RW + 8 - CNW, t, bit,
                    t + 1, t, t, RW, 1 << bit, t + 1, t, 1 << bit,
                    t + 1, t, t + 1, t);
            }
            fv_printf(b,
                "        if (dv8_) obuf[do8] <= (dres < $signed(9'h%03x)) ? 8'h%02x :\n"
                "            ((dres > $signed(9'h%03x)) ? 8'h%02x : dres[7:0]);\n",
                (unsigned)(L->lo & 0x1ff), (unsigned)(uint8_t)L->lo,
                (unsigned)(L->hi & 0x1ff), (unsigned)(uint8_t)L->hi);
        }
    }
    fv_printf(b, "    end\n");
    /* sequencer, issue control, completion */
    fv_printf(b, "    always @(posedge clk) begin\n        done <= 1'b0;\n"
                 "        if (rst) begin\n            run <= 1'b0; busy <= 1'b0;\n");
    if (!pool) fv_printf(b, "            act <= 1'b0; iv <= 1'b0; rq_valid <= 1'b0;\n");
    fv_printf(b, "        end else begin\n");
    if (!pool)
        fv_printf(b,
            "            iv <= act; rq_valid <= iv;\n"
            "            if (fire) begin act <= 1'b1; ij <= %d'd0; end\n"
            "            else if (act) begin ij <= ij + %d'd1; if (ij == %d'd%lld) act <= 1'b0; end\n"
            "            if (res_valid && busy) begin\n"
            "                nret <= nret + %d'd1;\n"
            "                if (nret == %d'd%lld) begin busy <= 1'b0; done <= 1'b1; end\n"
            "            end\n",
            pw, pw, pw, (long long)P - 1, obw, obw, (long long)OUT - 1);
    else
        fv_printf(b,
            "            if (%s && %s == %d'd%lld) begin busy <= 1'b0; done <= 1'b1; end\n",
            L->avg ? "dv8_" : "fin5", L->avg ? "do8" : "ob5", obw, (long long)OUT - 1);
    fv_printf(b,
        "            if (start) begin\n"
        "                run <= 1'b1; busy <= 1'b1; k <= %d'd0; g <= %d'd0; ob <= %d'd0; nret <= %d'd0;\n",
        kw, gw, obw, obw);
    if (gapped) fv_printf(b, "                gap <= %d'd0;\n", gapw);
    if (!pool) fv_printf(b, "                wa <= %d'd0; wbase <= %d'd0; oc <= %d'd0; gob <= %d'd0;\n",
                         waw, waw, mw, obw);
    if (spatial) {
        fv_printf(b, "                ox <= %d'd0; oy <= %d'd0; iy0 <= -%d'sd%d; ix0 <= -%d'sd%d;\n"
                     "                pb <= -%d'sd%lld; rb <= -%d'sd%lld; cb <= -%d'sd%lld;\n",
                  oxw, oyw, CW, L->PT, CW, L->PL, AB, (long long)pb0, AB,
                  (long long)pb0, AB, (long long)pb0);
        if (!pool && GPG > 1 && GPG < NG) fv_printf(b, "                gi <= %d'd0;\n", gpw);
    }
    fv_printf(b, "            end else if (run) begin\n");
    if (gapped) fv_printf(b, "                if (gap != %d'd0) gap <= gap - %d'd1;\n                else ", gapw, gapw);
    else fv_printf(b, "                ");
    fv_printf(b, "if (!klast) begin\n                    k <= k + %d'd1;%s\n"
                 "                end else begin\n                    k <= %d'd0;\n",
              kw, pool ? "" : " wa <= wa + 1'b1;", kw);
    if (gapped) fv_printf(b, "                    gap <= %d'd%lld;\n", gapw, (long long)(P - K));
    /* group advance text (shared by the spatial / dense paths) */
    char grp[2048];
    int gl = 0;
    if (NG == 1) /* one group: done after its last output */
        gl += snprintf(grp + gl, sizeof grp - (size_t)gl, "run <= 1'b0;\n");
    else
    gl += snprintf(grp + gl, sizeof grp - (size_t)gl,
                   "if (g == %d'd%lld) run <= 1'b0;\n%*selse begin\n%*s    g <= g + %d'd1;\n",
                   gw, (long long)NG - 1, spatial ? 28 : 20, "", spatial ? 28 : 20, "", gw);
    const char *ind = spatial ? "                                " : "                        ";
    if (!pool && NG > 1)
        gl += snprintf(grp + gl, sizeof grp - (size_t)gl,
                       "%swbase <= wbase + %d'd%lld; wa <= wbase + %d'd%lld; oc <= oc + %d'd%lld;\n"
                       "%sgob <= gob + %d'd%lld; ob <= gob + %d'd%lld;\n",
                       ind, waw, (long long)K, waw, (long long)K, mw, (long long)P, ind,
                       obw, (long long)(P * NPIX), obw, (long long)(P * NPIX));
    if (spatial && NG > 1) {
        int64_t step = pool ? HW : ICPG * HW;
        if (pool || GPG == 1)
            gl += snprintf(grp + gl, sizeof grp - (size_t)gl,
                           "%scb <= cb + %d'sd%lld; rb <= cb + %d'sd%lld; pb <= cb + %d'sd%lld;\n",
                           ind, AB, (long long)step, AB, (long long)step, AB, (long long)step);
        else if (GPG == NG)
            gl += snprintf(grp + gl, sizeof grp - (size_t)gl, "%srb <= cb; pb <= cb;\n", ind);
        else
            gl += snprintf(grp + gl, sizeof grp - (size_t)gl,
                           "%sif (gi == %d'd%lld) begin gi <= %d'd0; cb <= cb + %d'sd%lld; "
                           "rb <= cb + %d'sd%lld; pb <= cb + %d'sd%lld; end\n"
                           "%selse begin gi <= gi + %d'd1; rb <= cb; pb <= cb; end\n",
                           ind, gpw, (long long)GPG - 1, gpw, AB, (long long)step, AB,
                           (long long)step, AB, (long long)step, ind, gpw);
    }
    if (NG > 1)
        gl += snprintf(grp + gl, sizeof grp - (size_t)gl, "%.*send\n", spatial ? 28 : 20,
                       "                                        ");
    if (spatial) {
        fv_printf(b,
            "                    ob <= ob + %d'd1;%s\n"
            "                    if (ox != %d'd%d) begin ox <= ox + %d'd1; ix0 <= ix0 + %d'sd%d; pb <= pb + %d'sd%d; end\n"
            "                    else begin\n"
            "                        ox <= %d'd0; ix0 <= -%d'sd%d;\n"
            "                        if (oy != %d'd%d) begin\n"
            "                            oy <= oy + %d'd1; iy0 <= iy0 + %d'sd%d;\n"
            "                            rb <= rb + %d'sd%lld; pb <= rb + %d'sd%lld;\n"
            "                        end else begin\n"
            "                            oy <= %d'd0; iy0 <= -%d'sd%d;\n"
            "                            %s"
            "                        end\n                    end\n",
            obw, pool ? "" : " wa <= wbase;", oxw, L->OW - 1, oxw, CW, L->SW, AB, L->SW,
            oxw, CW, L->PL, oyw, L->OH - 1, oyw, CW, L->SH, AB,
            (long long)L->SH * L->W, AB, (long long)L->SH * L->W, oyw, CW, L->PT, grp);
    } else {
        fv_printf(b, "                    %s", grp);
    }
    fv_printf(b, "                end\n            end\n        end\n    end\n"
                 "    /* verilator lint_on UNUSEDSIGNAL */\nendmodule\n\n");
}

/* cr_core: input buffer, the layers in sequence, the shared requantiser,
 * and the output stream. */
void fv_core_rtl(fv_buf *b, const fv_design *D)
{
    uint32_t n = D->n;
    int K0 = D->in_bytes, MO = D->out_bytes;
    int iaw = aw(K0), oaw = aw(MO), cw = aw(n);
    fv_printf(b, "/* verilator lint_off DECLFILENAME */\n%s\n", fv_rtl_requant);
    for (uint32_t i = 0; i < n; i++) engine_rtl(b, (int)i, &D->L[i]);
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
        "    wire res_v;\n    wire [7:0] res_d;\n    wire [15:0] res_t;\n",
        n, iaw - 1, oaw - 1, cw - 1, K0 - 1, n - 1, n - 1);
    for (uint32_t i = 0; i < n; i++) {
        const fv_layer *L = &D->L[i];
        int64_t IN = (int64_t)L->C * L->H * L->W, OUT = (int64_t)L->OC * L->OH * L->OW;
        fv_printf(b, "    wire [%d:0] l%u_xa;\n    wire [%d:0] l%u_oa;\n    wire [7:0] l%u_od;\n",
                  aw(IN) - 1, i, aw(OUT) - 1, i, i);
        if (L->kind == FV_MAC)
            fv_printf(b, "    wire l%u_v;\n    wire [31:0] l%u_acc, l%u_mult;\n    wire [4:0] l%u_lsh;\n"
                         "    wire [5:0] l%u_rsh;\n    wire [7:0] l%u_zp, l%u_lo, l%u_hi;\n"
                         "    wire [15:0] l%u_tag;\n",
                      i, i, i, i, i, i, i, i, i);
    }
    for (uint32_t i = 0; i < n; i++) {
        char prev[32];
        if (i == 0) snprintf(prev, sizeof prev, "ibuf_q");
        else snprintf(prev, sizeof prev, "l%u_od", i - 1);
        fv_printf(b,
            "    cr_eng_%u u_l%u (.clk(clk), .rst(rst), .start(start[%u]), .done(ldone[%u]),\n"
            "        .x_addr(l%u_xa), .x_data(%s),\n",
            i, i, i, i, i, prev);
        if (D->L[i].kind == FV_MAC)
            fv_printf(b,
                "        .rq_valid(l%u_v), .rq_acc(l%u_acc), .rq_mult(l%u_mult), .rq_lsh(l%u_lsh),\n"
                "        .rq_rsh(l%u_rsh), .rq_zp(l%u_zp), .rq_lo(l%u_lo), .rq_hi(l%u_hi), .rq_tag(l%u_tag),\n"
                "        .res_valid(res_v), .res_data(res_d), .res_tag(res_t),\n",
                i, i, i, i, i, i, i, i, i);
        fv_printf(b, "        .o_addr(l%u_oa), .o_data(l%u_od));\n", i, i);
        if (i + 1 < n) fv_printf(b, "    assign l%u_oa = l%u_xa;\n", i, i + 1);
    }
    fv_printf(b, "    assign l%u_oa = ocnt;\n", n - 1);
    /* requantiser inputs: the engines drive zeros when idle, so an OR
     * merges them */
    static const char *const f[] = {"v", "acc", "mult", "lsh", "rsh", "zp", "lo", "hi", "tag"};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        fv_printf(b, "    wire %s m_%s = ",
                  k == 0 ? "" : k <= 2 ? "[31:0]" : k == 3 ? "[4:0]" : k == 4 ? "[5:0]"
                  : k <= 7 ? "[7:0]" : "[15:0]", f[k]);
        int any = 0;
        for (uint32_t i = 0; i < n; i++)
            if (D->L[i].kind == FV_MAC) {
                fv_printf(b, "%sl%u_%s", any ? " | " : "", i, f[k]);
                any = 1;
            }
        fv_printf(b, "%s;\n", any ? "" : "0");
    }
    fv_printf(b,
        "    cr_requant u_rq (.clk(clk), .in_valid(m_v), .in_acc(m_acc), .in_mult(m_mult),\n"
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
