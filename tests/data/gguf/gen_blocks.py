#!/usr/bin/python3
"""gen_blocks.py - writes dequant.gguf, the test vectors for the gguf
plugin's dequantisation (tests/test_gguf.c) and for its metadata reader.

Run with Debian's python (numpy):  /usr/bin/python3 gen_blocks.py

Independence from the C code: for every type this script draws the
*logical* contents of each block (the quantised integers, the 6-bit scales
and mins, the half-precision super-block scales) with a seeded generator,
packs them into bytes the way a quantiser lays them out (the encoder side
of the ggml block formats, not the decoder the plugin implements), and
computes the expected float32 values straight from the logical contents
with numpy, in float32, in the order the format defines
(d * scale * q - dmin * min).

The file (GGUF v3, written here without any GGUF library) holds:
  - metadata of every value type, arrays, nested arrays, an empty array,
    and general.alignment = 64;
  - for each type T a tensor "T" (the packed blocks) and "T.expected"
    (F32, the same shape) with the expected values.
"""
import os
import struct

import numpy as np

F32 = np.float32
rng = np.random.default_rng(20240601)

GGML = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7,
        "Q8_0": 8, "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13,
        "Q6_K": 14, "Q8_K": 15, "BF16": 30}


def half(x):
    """A random-ish f16 value and its float32."""
    h = np.float16(x)
    return h.tobytes(), F32(h)


def rand_half(scale=0.05):
    return half(rng.normal() * scale)


# ---- 32-element types ---------------------------------------------------
def q4_0():
    db, d = rand_half()
    L = rng.integers(0, 16, 32)
    qs = bytes(int(L[j] | (L[j + 16] << 4)) for j in range(16))
    y = (L - 8).astype(F32) * d
    return db + qs, y


def q4_1():
    db, d = rand_half()
    mb, m = rand_half(0.5)
    L = rng.integers(0, 16, 32)
    qs = bytes(int(L[j] | (L[j + 16] << 4)) for j in range(16))
    y = L.astype(F32) * d + m
    return db + mb + qs, y


def pack_q5(L):
    qh = 0
    qs = bytearray(16)
    for j in range(16):
        a, b = int(L[j]), int(L[j + 16])
        qs[j] = (a & 0xF) | ((b & 0xF) << 4)
        qh |= ((a >> 4) & 1) << j
        qh |= ((b >> 4) & 1) << (j + 16)
    return struct.pack("<I", qh) + bytes(qs)


def q5_0():
    db, d = rand_half()
    L = rng.integers(0, 32, 32)
    y = (L - 16).astype(F32) * d
    return db + pack_q5(L), y


def q5_1():
    db, d = rand_half()
    mb, m = rand_half(0.5)
    L = rng.integers(0, 32, 32)
    y = L.astype(F32) * d + m
    return db + mb + pack_q5(L), y


def q8_0():
    db, d = rand_half()
    q = rng.integers(-128, 128, 32)
    y = q.astype(F32) * d
    return db + q.astype(np.int8).tobytes(), y


# ---- 256-element super-blocks -----------------------------------------------
def pack_2bit(L):
    """Four 2-bit planes per 128 values: byte l of each half holds
    L[l], L[l+32], L[l+64], L[l+96] at shifts 0, 2, 4, 6."""
    out = bytearray(64)
    for j in range(0, 256, 128):
        for l in range(32):
            out[j // 4 + l] = (int(L[j + l]) | int(L[j + l + 32]) << 2 |
                               int(L[j + l + 64]) << 4 |
                               int(L[j + l + 96]) << 6)
    return bytes(out)


def q2_k():
    sc = rng.integers(0, 16, 16)
    mn = rng.integers(0, 16, 16)
    L = rng.integers(0, 4, 256)
    db, d = rand_half(0.02)
    mb, dmin = rand_half(0.02)
    scales = bytes(int(sc[j] | (mn[j] << 4)) for j in range(16))
    blk = scales + pack_2bit(L) + db + mb
    sub = np.arange(256) // 16
    dl = d * sc.astype(F32)
    ml = dmin * mn.astype(F32)
    y = dl[sub] * L.astype(F32) - ml[sub]
    return blk, y


def q3_k():
    Ls = rng.integers(0, 64, 16)          # 6-bit scales, value Ls - 32
    L = rng.integers(0, 8, 256)           # 3-bit quants, value L - 4
    db, d = rand_half(0.02)
    scales = bytearray(12)
    for j in range(16):
        l = int(Ls[j])
        if j < 8:
            scales[j] = l & 0xF
        else:
            scales[j - 8] |= (l & 0xF) << 4
        scales[j % 4 + 8] |= (l >> 4) << (2 * (j // 4))
    hmask = bytearray(32)
    low = L.copy()
    for j in range(256):
        if L[j] > 3:
            hmask[j % 32] |= 1 << (j // 32)
            low[j] -= 4
    blk = bytes(hmask) + pack_2bit(low) + bytes(scales) + db
    sub = np.arange(256) // 16
    dl = d * (Ls - 32).astype(F32)
    y = dl[sub] * (L - 4).astype(F32)
    return blk, y


def pack_k4_scales(ls, lm):
    s = bytearray(12)
    for j in range(8):
        a, m = int(ls[j]), int(lm[j])
        if j < 4:
            s[j] = a
            s[j + 4] = m
        else:
            s[j + 4] = (a & 0xF) | ((m & 0xF) << 4)
            s[j - 4] |= (a >> 4) << 6
            s[j] |= (m >> 4) << 6
    return bytes(s)


def q4_k():
    ls = rng.integers(0, 64, 8)
    lm = rng.integers(0, 64, 8)
    L = rng.integers(0, 16, 256)
    db, d = rand_half(0.02)
    mb, dmin = rand_half(0.02)
    qs = bytearray(128)
    for g in range(4):
        for l in range(32):
            qs[32 * g + l] = int(L[64 * g + l]) | int(L[64 * g + l + 32]) << 4
    blk = db + mb + pack_k4_scales(ls, lm) + bytes(qs)
    sub = np.arange(256) // 32
    y = (d * ls.astype(F32))[sub] * L.astype(F32) - (dmin * lm.astype(F32))[sub]
    return blk, y


def q5_k():
    ls = rng.integers(0, 64, 8)
    lm = rng.integers(0, 64, 8)
    L = rng.integers(0, 32, 256)
    db, d = rand_half(0.02)
    mb, dmin = rand_half(0.02)
    qh = bytearray(32)
    ql = bytearray(128)
    m1, m2 = 1, 2
    for g in range(4):
        for j in range(32):
            l1, l2 = int(L[64 * g + j]), int(L[64 * g + j + 32])
            if l1 > 15:
                l1 -= 16
                qh[j] |= m1
            if l2 > 15:
                l2 -= 16
                qh[j] |= m2
            ql[32 * g + j] = l1 | (l2 << 4)
        m1 <<= 2
        m2 <<= 2
    blk = db + mb + pack_k4_scales(ls, lm) + bytes(qh) + bytes(ql)
    sub = np.arange(256) // 32
    y = (d * ls.astype(F32))[sub] * L.astype(F32) - (dmin * lm.astype(F32))[sub]
    return blk, y


def q6_k():
    L = rng.integers(0, 64, 256)         # value L - 32
    sc = rng.integers(-128, 128, 16)
    db, d = rand_half(0.01)
    ql = bytearray(128)
    qh = bytearray(64)
    for h in range(2):
        j = 128 * h
        for l in range(32):
            a, b, c, e = (int(L[j + l]), int(L[j + l + 32]),
                          int(L[j + l + 64]), int(L[j + l + 96]))
            ql[64 * h + l] = (a & 0xF) | ((c & 0xF) << 4)
            ql[64 * h + l + 32] = (b & 0xF) | ((e & 0xF) << 4)
            qh[32 * h + l] = (a >> 4) | (b >> 4) << 2 | (c >> 4) << 4 | \
                (e >> 4) << 6
    blk = bytes(ql) + bytes(qh) + sc.astype(np.int8).tobytes() + db
    sub = np.arange(256) // 16
    y = (d * sc.astype(F32))[sub] * (L - 32).astype(F32)
    return blk, y


def q8_k():
    d = F32(rng.normal() * 0.01)
    q = rng.integers(-128, 128, 256)
    bsums = q.reshape(16, 16).sum(axis=1).astype(np.int16)
    blk = d.tobytes() + q.astype(np.int8).tobytes() + bsums.tobytes()
    return blk, q.astype(F32) * d


# ---- plain types -------------------------------------------------------------------
def plain_f32(n):
    x = (rng.normal(size=n) * 10).astype(F32)
    x[:4] = [0.0, -0.0, np.inf, -1e-38]
    return x.tobytes(), x


def plain_f16(n):
    bits = rng.integers(0, 1 << 16, n).astype(np.uint16)
    special = [0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF,
               0xFBFF, 0x7C00, 0xFC00, 0x3C00, 0x7E00, 0x3555]
    bits[:len(special)] = special
    return bits.tobytes(), bits.view(np.float16).astype(F32)


def plain_bf16(n):
    bits = rng.integers(0, 1 << 16, n).astype(np.uint16)
    bits[:6] = [0x0000, 0x8000, 0x3F80, 0x7F80, 0xFF80, 0x0001]
    return bits.tobytes(), (bits.astype(np.uint32) << 16).view(F32)


def blocks(fn, nb):
    raw, vals = b"", []
    for _ in range(nb):
        r, v = fn()
        raw += r
        vals.append(np.asarray(v, dtype=F32))
    return raw, np.concatenate(vals)


# ---- a GGUF v3 writer -------------------------------------------------------------------
def s_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
          7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def s_val(t, v):
    if t in SCALAR:
        return struct.pack(SCALAR[t], v)
    if t == 8:
        return s_str(v)
    et, items = v
    out = struct.pack("<IQ", et, len(items))
    for it in items:
        out += s_val(et, it)
    return out


def write_gguf(path, kvs, tensors, alignment):
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for k, t, v in kvs:
        out += s_str(k) + struct.pack("<I", t) + s_val(t, v)
    off, data = 0, bytearray()
    for name, dims, gtype, raw in tensors:
        out += s_str(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gtype, len(data))
        data += raw
        data += b"\0" * ((-len(data)) % alignment)
    out += b"\0" * ((-len(out)) % alignment)
    out += data
    with open(path, "wb") as f:
        f.write(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    tensors = []

    def add(name, gtype, raw, expected, dims):
        tensors.append((name, dims, GGML[gtype], raw))
        tensors.append((name + ".expected", dims, GGML["F32"],
                        expected.astype(F32).tobytes()))

    for name, fn in (("F32", plain_f32), ("F16", plain_f16),
                     ("BF16", plain_bf16)):
        raw, y = fn(64)
        add(name, name, raw, y, [64])
    for name, fn in (("Q4_0", q4_0), ("Q4_1", q4_1), ("Q5_0", q5_0),
                     ("Q5_1", q5_1), ("Q8_0", q8_0)):
        raw, y = blocks(fn, 4)
        add(name, name, raw, y, [64, 2])
    for name, fn in (("Q2_K", q2_k), ("Q3_K", q3_k), ("Q4_K", q4_k),
                     ("Q5_K", q5_k), ("Q6_K", q6_k), ("Q8_K", q8_k)):
        raw, y = blocks(fn, 2)
        add(name, name, raw, y, [256, 2])

    kvs = [
        ("general.architecture", 8, "test"),
        ("general.name", 8, "dequantisation vectors"),
        ("general.alignment", 4, 64),
        ("test.u8", 0, 200), ("test.i8", 1, -100), ("test.u16", 2, 60000),
        ("test.i16", 3, -30000), ("test.u32", 4, 4000000000),
        ("test.i32", 5, -2000000000), ("test.f32", 6, 1.5),
        ("test.bool", 7, True), ("test.string", 8, "h\u00e9llo \u2581"),
        ("test.u64", 10, 2**63 + 5), ("test.i64", 11, -(2**62)),
        ("test.f64", 12, -2.25),
        ("test.array.i32", 9, (5, [1, -2, 3])),
        ("test.array.string", 9, (8, ["a", "bc", ""])),
        ("test.array.bool", 9, (7, [True, False, True])),
        ("test.array.empty", 9, (6, [])),
        ("test.array.nested", 9, (9, [(2, [1, 2]), (2, [3]), (2, [])])),
        ("test.array.nested_str", 9, (9, [(8, ["x"]), (8, ["y", "z"])])),
    ]
    write_gguf(os.path.join(here, "dequant.gguf"), kvs, tensors, 64)


if __name__ == "__main__":
    main()
