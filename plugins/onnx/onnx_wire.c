/*
 * onnx_wire.c - protobuf wire-format checks done before protobuf-c sees a
 * file: the score() sniff of the first bytes, and a pre-scan that bounds
 * the nesting depth of the schema's recursive messages (a graph inside an
 * attribute inside a node inside a graph..., and nested TypeProtos), since
 * protobuf-c's unpacker recurses without a limit.
 *
 * Wire format: each field is a varint tag (field_number << 3 | wire_type)
 * followed by a varint (type 0), 8 bytes (1), a varint length and that many
 * bytes (2) or 4 bytes (5). Types 3 and 4 (groups) do not occur in ONNX.
 */
#include "onnx_int.h"

#include <string.h>

/* Reads a varint at *p (< end). 0 ok, -1 truncated or too long. */
static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Skips the value of a field of wire type wt. 0 ok, -1 malformed. */
static int skip_value(const uint8_t **p, const uint8_t *end, unsigned wt,
                      const uint8_t **sub, size_t *sublen)
{
    uint64_t v;
    *sub = NULL;
    switch (wt) {
    case 0: return rd_varint(p, end, &v);
    case 1:
        if (end - *p < 8) return -1;
        *p += 8;
        return 0;
    case 5:
        if (end - *p < 4) return -1;
        *p += 4;
        return 0;
    case 2:
        if (rd_varint(p, end, &v)) return -1;
        if (v > (uint64_t)(end - *p)) return -1;
        *sub = *p;
        *sublen = (size_t)v;
        *p += v;
        return 0;
    default: return -1;
    }
}

/* ---- score ----------------------------------------------------------------*/
/* Expected wire type of each ModelProto field, -1 unknown field. */
static int model_field_wt(uint64_t f)
{
    switch (f) {
    case 1: case 5: return 0;
    case 2: case 3: case 4: case 6: case 7: case 8: case 14: case 20:
    case 25: return 2;
    default: return -1;
    }
}

int ox_wire_score(const uint8_t *head, size_t n)
{
    const uint8_t *p = head, *end = head + n;
    uint64_t tag, v;
    /* exporters write ir_version (field 1, varint) first */
    if (n < 4 || head[0] != 0x08) return 0;
    p++;
    if (rd_varint(&p, end, &v) || v < 1 || v > 64) return 0;
    int fields = 1, known = 0;
    while (p < end) {
        if (rd_varint(&p, end, &tag)) break; /* head cut mid-field: fine */
        uint64_t f = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        int want = model_field_wt(f);
        if (want < 0 || (unsigned)want != wt) return 0;
        if (wt == 2) {
            if (rd_varint(&p, end, &v)) break;
            if (v > (uint64_t)(end - p)) {
                known += f == 7 || f == 8 || f == 2;
                fields++;
                break; /* continues beyond the head */
            }
            p += v;
        } else if (rd_varint(&p, end, &v)) {
            break;
        }
        fields++;
        known += f == 7 || f == 8 || f == 2;
    }
    if (fields >= 2 && known) return 90;
    return fields >= 2 ? 70 : 0;
}

/* ---- depth pre-scan -------------------------------------------------------*/
enum {
    M_SKIP, M_MODEL, M_GRAPH, M_NODE, M_ATTR, M_VALUEINFO, M_TYPE, M_TYPE_SEQ,
    M_TYPE_MAP, M_TYPE_OPT, M_TRAINING, M_FUNCTION
};

/* Message type of field f of a message of type m (only the fields that can
 * lead back into a recursive message matter). */
static int child_type(int m, uint64_t f)
{
    switch (m) {
    case M_MODEL:
        return f == 7 ? M_GRAPH : f == 20 ? M_TRAINING : f == 25 ? M_FUNCTION
                                                                : M_SKIP;
    case M_GRAPH:
        if (f == 1) return M_NODE;
        if (f == 11 || f == 12 || f == 13) return M_VALUEINFO;
        return M_SKIP;
    case M_NODE: return f == 5 ? M_ATTR : M_SKIP;
    case M_ATTR:
        if (f == 6 || f == 11) return M_GRAPH;
        if (f == 14 || f == 15) return M_TYPE;
        return M_SKIP;
    case M_VALUEINFO: return f == 2 ? M_TYPE : M_SKIP;
    case M_TYPE:
        return f == 4 ? M_TYPE_SEQ : f == 5 ? M_TYPE_MAP : f == 9 ? M_TYPE_OPT
                                                                : M_SKIP;
    case M_TYPE_SEQ: case M_TYPE_OPT: return f == 1 ? M_TYPE : M_SKIP;
    case M_TYPE_MAP: return f == 2 ? M_TYPE : M_SKIP;
    case M_TRAINING: return (f == 1 || f == 2) ? M_GRAPH : M_SKIP;
    case M_FUNCTION: return f == 7 ? M_NODE : M_SKIP;
    default: return M_SKIP;
    }
}

/* Recursion is bounded by OX_MAX_DEPTH. */
static int scan(const uint8_t *p, const uint8_t *end, int type, int depth)
{
    if (depth > OX_MAX_DEPTH) return 1;
    while (p < end) {
        uint64_t tag;
        if (rd_varint(&p, end, &tag)) return -1;
        unsigned wt = (unsigned)(tag & 7);
        if ((tag >> 3) == 0) return -1;
        const uint8_t *sub;
        size_t sublen = 0;
        if (skip_value(&p, end, wt, &sub, &sublen)) return -1;
        if (!sub) continue;
        int ct = child_type(type, tag >> 3);
        if (ct == M_SKIP) continue;
        int r = scan(sub, sub + sublen, ct, depth + 1);
        if (r) return r;
    }
    return 0;
}

int ox_wire_depth_ok(const uint8_t *buf, size_t n)
{
    return scan(buf, buf + n, M_MODEL, 0);
}
