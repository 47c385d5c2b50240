#!/usr/bin/python3
"""requant.py - re-encode a GGUF file's F32 matrices as Q8_0, Q4_0 or Q4_1,
for tests/test_gguf.c (test_gguf_block_quant_reference).

    requant.py IN.gguf OUT.gguf q8_0|q4_0|q4_1

Every metadata pair is copied byte for byte; every 2-D F32 tensor whose rows
are whole blocks of 32 is quantised; everything else is copied as it is.
The encodings follow the GGUF specification's block layouts (written from
../shared/models/gguf/gguf-spec.md, not from llama.cpp's code):

  Q8_0  34 bytes: f16 d, 32 x i8 q                  x = d * q
  Q4_0  18 bytes: f16 d, 16 bytes of nibbles        x = d * (q - 8)
  Q4_1  20 bytes: f16 d, f16 m, 16 bytes of nibbles x = d * q + m
  (nibbles: element j is the low nibble of byte j, element j + 16 the high)

Any valid encoding serves the test: crucible and the numpy reference both
read the encoded file, so they must agree on it.
"""
import struct
import sys

import numpy as np

TYPE = {"q8_0": 8, "q4_0": 2, "q4_1": 3}
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


class R:
    def __init__(self, d):
        self.d, self.o = d, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def skip_value(self, t):
        if t == 8:
            n = self.take("<Q")
            self.o += n
        elif t == 9:
            et, n = self.take("<I"), self.take("<Q")
            for _ in range(n):
                self.skip_value(et)
        else:
            self.o += SIZES[t]


def enc(x, kind):
    """x: float32 [rows, n] with n % 32 == 0 -> bytes"""
    b = x.reshape(-1, 32).astype(np.float64)
    out = bytearray()
    if kind == "q8_0":
        amax = np.abs(b).max(axis=1)
        d = (amax / 127.0).astype(np.float16)
        inv = np.where(d != 0, 1.0 / np.where(d != 0, d.astype(np.float64), 1), 0)
        q = np.clip(np.rint(b * inv[:, None]), -127, 127).astype(np.int8)
        for i in range(len(b)):
            out += d[i].tobytes() + q[i].tobytes()
        return bytes(out)
    if kind == "q4_0":
        idx = np.abs(b).argmax(axis=1)
        mx = b[np.arange(len(b)), idx]
        d = (mx / -8.0).astype(np.float16)
        df = d.astype(np.float64)
        inv = np.where(df != 0, 1.0 / np.where(df != 0, df, 1), 0)
        q = np.clip(np.floor(b * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
        for i in range(len(b)):
            out += d[i].tobytes() + bytes((q[i][:16] | (q[i][16:] << 4)).tolist())
        return bytes(out)
    mn, mx = b.min(axis=1), b.max(axis=1)
    d = ((mx - mn) / 15.0).astype(np.float16)
    m = mn.astype(np.float16)
    df = d.astype(np.float64)
    inv = np.where(df != 0, 1.0 / np.where(df != 0, df, 1), 0)
    q = np.clip(np.rint((b - m.astype(np.float64)[:, None]) * inv[:, None]),
                0, 15).astype(np.uint8)
    for i in range(len(b)):
        out += d[i].tobytes() + m[i].tobytes() + bytes((q[i][:16] | (q[i][16:] << 4)).tolist())
    return bytes(out)


def main():
    src, dst, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    data = open(src, "rb").read()
    r = R(data)
    assert data[:4] == b"GGUF"
    r.o = 4
    version, nt, nkv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kv_start = r.o
    align = 32
    for _ in range(nkv):
        kl = r.take("<Q")
        key = data[r.o:r.o + kl].decode()
        r.o += kl
        t = r.take("<I")
        if key == "general.alignment":
            align = struct.unpack_from("<I", data, r.o)[0]
        r.skip_value(t)
    kv_bytes = data[kv_start:r.o]
    infos = []
    for _ in range(nt):
        nl = r.take("<Q")
        name = data[r.o:r.o + nl]
        r.o += nl
        nd = r.take("<I")
        dims = [r.take("<Q") for _ in range(nd)]
        typ, off = r.take("<I"), r.take("<Q")
        infos.append((name, dims, typ, off))
    base = (r.o + align - 1) // align * align
    head = bytearray(b"GGUF" + struct.pack("<IQQ", version, nt, nkv) + kv_bytes)
    blobs = []
    for name, dims, typ, off in infos:
        n = int(np.prod(dims))
        if typ == 0 and len(dims) == 2 and dims[0] % 32 == 0:
            x = np.frombuffer(data, "<f4", n, base + off)
            raw, typ = enc(x, kind), TYPE[kind]
        else:
            per = {0: 4, 1: 2}[typ]
            raw = data[base + off:base + off + n * per]
        blobs.append((name, dims, typ, raw))
    body, offs = bytearray(), []
    for name, dims, typ, raw in blobs:
        offs.append(len(body))
        body += raw
        body += b"\0" * ((-len(body)) % align)
    for (name, dims, typ, raw), off in zip(blobs, offs):
        head += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
        head += b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", typ, off)
    head += b"\0" * ((-len(head)) % align)
    with open(dst, "wb") as f:
        f.write(bytes(head) + bytes(body))


if __name__ == "__main__":
    main()
