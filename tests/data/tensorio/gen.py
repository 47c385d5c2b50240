#!/usr/bin/python3
"""Regenerates the tensorio test fixtures in this directory.

Run with Debian's python (numpy + onnx): /usr/bin/python3 gen.py
The C test (tests/test_tensorio.c) hard-codes the values written here.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def npy(name, arr, version=None):
    with open(path(name), "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


def pb(name, tensor):
    with open(path(name), "wb") as f:
        f.write(tensor.SerializeToString())


F32 = np.array([[-1.0, -0.5, 0.0], [0.5, 1.0, 1.5]], dtype=np.float32)
F64 = np.array([1.5, -2.25, 1e40, 0.1], dtype=np.float64)
F16 = np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16)
I8 = np.array([-128, -1, 0, 127], dtype=np.int8)
U8 = np.array([[0, 1], [254, 255]], dtype=np.uint8)
I16 = np.array([-32768, 7, 32767], dtype=np.int16)
I32 = ((np.arange(8) - 4) * 1000).astype(np.int32).reshape(2, 2, 2)
I64 = np.array([-1, 0, 2**40], dtype=np.int64)
BOOL = np.array([True, False, True, True, False])
PBF64 = np.array([0.1, -1e300, 2.5], dtype=np.float64)

# ---- npy -----------------------------------------------------------------
npy("f32_2x3.npy", F32)
npy("f32_2x3_v2.npy", F32, version=(2, 0))
npy("f32_2x3_v3.npy", F32, version=(3, 0))
npy("f64_4.npy", F64)
npy("f16_4.npy", F16)
npy("i8_4.npy", I8)
npy("u8_2x2.npy", U8)
npy("i16_3.npy", I16)
npy("i32_2x2x2.npy", I32)
npy("i64_scalar.npy", np.array(-(2**40), dtype=np.int64))
npy("bool_5.npy", BOOL)
npy("f32_be.npy", np.array([1.0, 2.0, -3.5], dtype=">f4"))
npy("i32_be.npy", np.array([1, -2, 100000], dtype=">i4"))
npy("f32_0x3.npy", np.zeros((0, 3), dtype=np.float32))
npy("f32_rank8.npy", np.arange(4, dtype=np.float32).reshape(1, 2, 1, 1, 1, 1, 1, 2))
# refused
npy("bad_fortran.npy", np.asfortranarray(F32))
npy("bad_u16.npy", np.array([1, 2, 3], dtype="<u2"))
npy("bad_structured.npy", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]))
npy("bad_rank9.npy", np.zeros((1,) * 9, dtype=np.float32))

# ---- TensorProto ---------------------------------------------------------
pb("f32_raw.pb", numpy_helper.from_array(F32, name="x"))
pb("f32_typed.pb", helper.make_tensor("y", TensorProto.FLOAT, [2, 2], [1, 2, 3, 4.5]))
pb("f64_typed.pb", helper.make_tensor("d", TensorProto.DOUBLE, [3], PBF64.tolist()))
pb("f64_raw.pb", numpy_helper.from_array(PBF64, name="d"))
pb("i64_typed.pb", helper.make_tensor("l", TensorProto.INT64, [3], I64.tolist()))
pb("i64_raw.pb", numpy_helper.from_array(I64, name="l"))
pb("i32_typed.pb", helper.make_tensor("i", TensorProto.INT32, [2], [-5, 7]))
pb("i8_typed.pb", helper.make_tensor("b", TensorProto.INT8, [3], [-128, 127, 3]))
pb("u8_raw.pb", numpy_helper.from_array(U8, name="u"))
pb("u8_typed.pb", helper.make_tensor("u", TensorProto.UINT8, [2, 2], U8.flatten().tolist()))
pb("i16_raw.pb", numpy_helper.from_array(I16, name="h"))
pb("bool_typed.pb", helper.make_tensor("q", TensorProto.BOOL, [5], BOOL.tolist()))
pb("bool_raw.pb", numpy_helper.from_array(BOOL, name="q"))
pb("f16_typed.pb", helper.make_tensor("e", TensorProto.FLOAT16, [4], F16.astype(np.float32).tolist()))
pb("f16_raw.pb", numpy_helper.from_array(F16, name="e"))
pb("f32_scalar.pb", numpy_helper.from_array(np.array(3.25, dtype=np.float32), name="s"))
pb("f32_0x3.pb", numpy_helper.from_array(np.zeros((0, 3), dtype=np.float32), name="z"))
# refused
pb("bad_string.pb", helper.make_tensor("t", TensorProto.STRING, [1], [b"hi"]))
pb("bad_uint16.pb", numpy_helper.from_array(np.array([1, 2], dtype=np.uint16), name="w"))
ext = numpy_helper.from_array(np.zeros(2, dtype=np.float32), name="ext")
ext.ClearField("raw_data")
ext.data_location = TensorProto.EXTERNAL
entry = ext.external_data.add()
entry.key, entry.value = "location", "weights.bin"
pb("bad_external.pb", ext)
seg = numpy_helper.from_array(np.zeros(2, dtype=np.float32), name="seg")
seg.segment.begin, seg.segment.end = 0, 2
pb("bad_segment.pb", seg)
t = TensorProto()
t.dims.extend([2])
t.float_data.extend([1.0, 2.0, 3.0])  # count does not match dims
t.data_type = TensorProto.FLOAT
pb("bad_count.pb", t)

for f in sorted(os.listdir(HERE)):
    if f.endswith((".npy", ".pb")):
        print(f"{os.path.getsize(path(f)):6d} {f}")
