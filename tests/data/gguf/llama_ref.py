#!/usr/bin/python3
"""llama_ref.py - an independent llama forward pass in numpy, for
tests/test_gguf.c (test_gguf_llama_reference).

Written from the architecture description (LLaMA: RMSNorm pre-norm,
rotary position embedding on query and key, grouped-query causal
self-attention, SwiGLU feed-forward, final RMSNorm and a linear head) and
the GGUF specification, not from crucible's C code. It has its own
minimal GGUF reader (Debian ships no `gguf` Python module) and computes in
float64, so its result is the exact-arithmetic reference that crucible's
f32 interpreter is compared with.

    llama_ref.py MODEL.gguf --ids 1,2,3 -n 32 --out-json R.json --out-logits R.npy

Feeds the prompt ids one at a time (a KV cache, as a decoder does), then
decodes greedily (argmax, lowest id on ties) for n steps or until EOS.
R.json: {"ids": [generated ids]}; R.npy: float32 [steps, n_vocab], the
logits from which each generated id was chosen.

Facts used (from the GGUF spec and the llama conversion scripts' documented
behaviour):
  * a GGUF tensor's dims are listed fastest-varying first: a matrix with
    dims (n_in, n_out) is stored as n_out rows of n_in values, i.e. the
    PyTorch nn.Linear weight W [out, in]; y = W @ x.
  * llama q/k weights in GGUF are permuted at conversion (the `permute`
    in the spec's LLaMA section) so that rotary embedding rotates adjacent
    pairs (x[2i], x[2i+1]) of each head by angle pos * base^(-2i/n_rot).
  * query head h uses key/value head h // (n_head / n_head_kv).
"""
import argparse
import json
import struct
import sys

import numpy as np

# ---- a minimal GGUF reader -------------------------------------------------------------
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
          7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1, GGML_Q8_0 = 0, 1, 2, 3, 8


def dequant_blocks(data, off, count, typ):
    """Q8_0 / Q4_0 / Q4_1 blocks of 32 (GGUF spec layouts) -> float64."""
    nb = count // 32
    size = {GGML_Q8_0: 34, GGML_Q4_0: 18, GGML_Q4_1: 20}[typ]
    raw = np.frombuffer(data, np.uint8, nb * size, off).reshape(nb, size)
    d = raw[:, 0:2].copy().view("<f2").astype(np.float64)          # [nb, 1]
    if typ == GGML_Q8_0:
        q = raw[:, 2:].copy().view(np.int8).astype(np.float64)
        return (q * d).reshape(-1)
    qs = raw[:, 4:] if typ == GGML_Q4_1 else raw[:, 2:]
    # element j: low nibble of byte j; element j + 16: its high nibble
    q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.float64)
    if typ == GGML_Q4_0:
        return ((q - 8.0) * d).reshape(-1)
    m = raw[:, 2:4].copy().view("<f2").astype(np.float64)
    return (q * d + m).reshape(-1)


class Reader:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.o:self.o + n]
        self.o += n
        return s.decode("utf-8", "replace")

    def value(self, t):
        if t in SCALAR:
            return self.take(SCALAR[t])
        if t == 8:
            return self.string()
        if t == 9:
            et = self.take("<I")
            n = self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError("unknown GGUF value type %d" % t)


def read_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    if data[:4] != b"GGUF":
        raise ValueError("not a GGUF file")
    r.o = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise ValueError("GGUF version %d" % version)
    n_tensors = r.take("<Q")
    n_kv = r.take("<Q")
    kv = {}
    for _ in range(n_kv):
        key = r.string()
        kv[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        dims = [r.take("<Q") for _ in range(nd)]
        typ = r.take("<I")
        off = r.take("<Q")
        infos.append((name, dims, typ, off))
    align = kv.get("general.alignment", 32)
    base = (r.o + align - 1) // align * align
    tensors = {}
    for name, dims, typ, off in infos:
        count = int(np.prod(dims))
        if typ == GGML_F32:
            a = np.frombuffer(data, "<f4", count, base + off)
        elif typ == GGML_F16:
            a = np.frombuffer(data, "<f2", count, base + off)
        elif typ in (GGML_Q8_0, GGML_Q4_0, GGML_Q4_1):
            a = dequant_blocks(data, base + off, count, typ)
        else:
            raise ValueError("tensor %s: type %d is not F32/F16/Q8_0/Q4_0/"
                             "Q4_1 (this reference reads only those)"
                             % (name, typ))
        # dims fastest-varying first -> numpy shape reversed
        tensors[name] = a.reshape(tuple(reversed(dims))).astype(np.float64)
    return kv, tensors


# ---- the model -------------------------------------------------------------------------
class Llama:
    def __init__(self, path, n_ctx):
        kv, t = read_gguf(path)
        arch = kv["general.architecture"]
        g = lambda k, d=None: kv.get(arch + "." + k, d)
        self.E = g("embedding_length")
        self.L = g("block_count")
        self.H = g("attention.head_count")
        self.Hkv = g("attention.head_count_kv", self.H)
        self.hd = self.E // self.H
        self.n_rot = g("rope.dimension_count", self.hd)
        self.base = g("rope.freq_base", 10000.0)
        self.eps = g("attention.layer_norm_rms_epsilon")
        self.t = t
        self.emb = t["token_embd.weight"]                 # [V, E]
        self.out = t.get("output.weight", self.emb)       # [V, E]
        self.eos = kv.get("tokenizer.ggml.eos_token_id", 2)
        self.n_ctx = n_ctx
        self.kc = np.zeros((self.L, n_ctx, self.Hkv, self.hd))
        self.vc = np.zeros((self.L, n_ctx, self.Hkv, self.hd))

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x) + self.eps) * w

    def rotate(self, x, pos):
        """x [heads, hd]: rotate pairs (2i, 2i+1), i < n_rot/2."""
        y = x.copy()
        i = np.arange(self.n_rot // 2)
        ang = pos * self.base ** (-2.0 * i / self.n_rot)
        c, s = np.cos(ang), np.sin(ang)
        a, b = x[:, 0:self.n_rot:2], x[:, 1:self.n_rot:2]
        y[:, 0:self.n_rot:2] = a * c - b * s
        y[:, 1:self.n_rot:2] = a * s + b * c
        return y

    def step(self, token, pos):
        t = self.t
        x = self.emb[token].copy()
        group = self.H // self.Hkv
        for l in range(self.L):
            p = "blk.%d." % l
            h = self.rmsnorm(x, t[p + "attn_norm.weight"])
            q = (t[p + "attn_q.weight"] @ h).reshape(self.H, self.hd)
            k = (t[p + "attn_k.weight"] @ h).reshape(self.Hkv, self.hd)
            v = (t[p + "attn_v.weight"] @ h).reshape(self.Hkv, self.hd)
            q = self.rotate(q, pos)
            k = self.rotate(k, pos)
            self.kc[l, pos] = k
            self.vc[l, pos] = v
            att = np.zeros((self.H, self.hd))
            for hh in range(self.H):
                kh = hh // group
                keys = self.kc[l, :pos + 1, kh]            # [pos+1, hd]
                s = keys @ q[hh] / np.sqrt(self.hd)
                s = np.exp(s - s.max())
                s /= s.sum()
                att[hh] = s @ self.vc[l, :pos + 1, kh]
            x = x + t[p + "attn_output.weight"] @ att.reshape(-1)
            h = self.rmsnorm(x, t[p + "ffn_norm.weight"])
            gate = t[p + "ffn_gate.weight"] @ h
            up = t[p + "ffn_up.weight"] @ h
            act = gate / (1.0 + np.exp(-gate))             # SiLU
            x = x + t[p + "ffn_down.weight"] @ (act * up)
        x = self.rmsnorm(x, t["output_norm.weight"])
        return self.out @ x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ids", required=True)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--out-json", required=True)
    ap.add_argument("--out-logits", required=True)
    a = ap.parse_args()
    ids = [int(v) for v in a.ids.split(",") if v]
    m = Llama(a.model, a.ctx)
    logits = None
    for pos, tok in enumerate(ids):
        logits = m.step(tok, pos)
    out_ids, steps = [], []
    pos = len(ids)
    while len(out_ids) < a.n:
        nxt = int(np.argmax(logits))  # first maximum: lowest id on ties
        out_ids.append(nxt)
        steps.append(logits.astype(np.float32))
        if nxt == m.eos or len(out_ids) == a.n or pos >= a.ctx:
            break
        logits = m.step(nxt, pos)
        pos += 1
    np.save(a.out_logits, np.stack(steps))
    with open(a.out_json, "w") as f:
        json.dump({"ids": out_ids}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
