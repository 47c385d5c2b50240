#!/usr/bin/python3
"""Generates the small ONNX fixtures used by tests/test_onnx.c.

Run with Debian's interpreter (python3-onnx, python3-numpy):
    /usr/bin/python3 tests/data/onnx/gen.py
Every file is deterministic (fixed seeds), so re-running it changes nothing.

  ext_ok/                    MatMul + Add whose weights live in an external
                             data file (weights.bin, at an offset);
                             test_data_set_0
  ext_traversal.onnx         external data location "../../etc/passwd"
  ext_absolute.onnx          external data location "/etc/passwd"
  neg_dims.onnx              an initializer with a negative dimension
  opset99.onnx               imports default-domain opset 99
  unsupported_op.onnx        Relu -> Erf (no canonical op) -> Relu
  conv_bn/                   Conv -> BatchNormalization -> Relu (the BN folds
                             into the conv); test_data_set_0 from numpy
  legacy6/                   opset 6: Add with legacy broadcast/axis, Clip
                             and Pad attributes, Softmax on flattened rows
  ops11/                     opset 11: Unsqueeze/Squeeze/ReduceSum axes
                             attributes, Softmax on flattened rows, Clip
                             with constant min/max inputs
  dense_paths/               opset 13: Gemm with a constant B (transA,
                             transB, alpha, beta, C [M, N]), MatMul of a
                             3-D input by a constant matrix, and a
                             BatchNormalization that cannot fold (after
                             Relu)
All test_data_set_0 outputs are computed here with numpy (float64, then
rounded to float32).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def save(model, name):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def save_tensor(arr, path):
    t = numpy_helper.from_array(arr)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def model_of(nodes, inputs, outputs, inits, opset=13, name="fixture"):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="crucible-tests")
    m.ir_version = 7
    return m


def external(name, dims, location, offset=None, length=None):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset),
                 ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key = k
            e.value = str(v)
    return t


def matmul_model(w_init, b_init):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"], name="mm"),
             helper.make_node("Add", ["xw", "B"], ["y"], name="bias")]
    return model_of(nodes, [x], [y], [w_init, b_init])


def main():
    rng = np.random.default_rng(1234)

    # external data that is fine: W at offset 16 of ext_ok/weights.bin
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((3,)).astype(np.float32)
    save(matmul_model(external("W", [4, 3], "weights.bin", 16, w.nbytes),
                      numpy_helper.from_array(b, "B")), "ext_ok/model.onnx")
    with open(os.path.join(HERE, "ext_ok/weights.bin"), "wb") as f:
        f.write(b"\x00" * 16 + w.tobytes())
    xin = rng.standard_normal((1, 4)).astype(np.float32)
    save_tensor(xin, os.path.join(HERE, "ext_ok/test_data_set_0/input_0.pb"))
    save_tensor((xin @ w + b).astype(np.float32),
                os.path.join(HERE, "ext_ok/test_data_set_0/output_0.pb"))

    # hostile external data locations
    save(matmul_model(external("W", [4, 3], "../../etc/passwd"),
                      numpy_helper.from_array(b, "B")), "ext_traversal.onnx")
    save(matmul_model(external("W", [4, 3], "/etc/passwd"),
                      numpy_helper.from_array(b, "B")), "ext_absolute.onnx")

    # negative dimension in an initializer
    neg = TensorProto()
    neg.name = "W"
    neg.data_type = TensorProto.FLOAT
    neg.dims.extend([-4, 3])
    neg.raw_data = w.tobytes()
    save(matmul_model(neg, numpy_helper.from_array(b, "B")), "neg_dims.onnx")

    # opset 99
    m = matmul_model(numpy_helper.from_array(w, "W"),
                     numpy_helper.from_array(b, "B"))
    m.opset_import[0].version = 99
    save(m, "opset99.onnx")

    # an op with no canonical lowering, between two supported ones
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="first"),
             helper.make_node("Erf", ["a"], ["e"], name="my_erf"),
             helper.make_node("Relu", ["e"], ["y"], name="last")]
    save(model_of(nodes, [x], [y], []), "unsupported_op.onnx")

    # Conv -> BatchNormalization -> Relu
    cw = (rng.standard_normal((4, 2, 3, 3)) * 0.5).astype(np.float32)
    cb = rng.standard_normal((4,)).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    mean = rng.standard_normal(4).astype(np.float32)
    var = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"],
                         ["n"], name="bn", epsilon=1e-5),
        helper.make_node("Relu", ["n"], ["y"], name="relu"),
    ]
    inits = [numpy_helper.from_array(a, nm) for a, nm in
             ((cw, "cw"), (cb, "cb"), (scale, "s"), (bias, "bb"), (mean, "m"),
              (var, "v"))]
    save(model_of(nodes, [x], [y], inits), "conv_bn/model.onnx")
    xin = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    xp = np.pad(xin.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((1, 4, 5, 5))
    for o in range(4):
        for i in range(5):
            for j in range(5):
                conv[0, o, i, j] = np.sum(xp[0, :, i:i + 3, j:j + 3] * cw[o]) + cb[o]
    sh = (1, 4, 1, 1)
    bn = (conv - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + 1e-5) \
        * scale.reshape(sh) + bias.reshape(sh)
    out = np.maximum(bn, 0).astype(np.float32)
    save_tensor(xin, os.path.join(HERE, "conv_bn/test_data_set_0/input_0.pb"))
    save_tensor(out, os.path.join(HERE, "conv_bn/test_data_set_0/output_0.pb"))


def softmax_rows(x, axis):
    """opset < 13 Softmax: rows of the input flattened to 2-D at axis."""
    shape = x.shape
    a = x.reshape(int(np.prod(shape[:axis])), -1).astype(np.float64)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(shape)


def case(name, model, inputs, outputs):
    save(model, name + "/model.onnx")
    for i, a in enumerate(inputs):
        save_tensor(a.astype(np.float32),
                    os.path.join(HERE, name, "test_data_set_0",
                                 "input_%d.pb" % i))
    for i, a in enumerate(outputs):
        save_tensor(a.astype(np.float32),
                    os.path.join(HERE, name, "test_data_set_0",
                                 "output_%d.pb" % i))


def more_cases():
    rng = np.random.default_rng(99)
    f = TensorProto.FLOAT

    # opset 6
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    nodes = [
        helper.make_node("Add", ["x", "b"], ["s"], name="add", broadcast=1,
                         axis=1),
        helper.make_node("Clip", ["s"], ["c"], name="clip", min=-0.5,
                         max=0.5),
        helper.make_node("Pad", ["c"], ["p"], name="pad",
                         pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.25),
        helper.make_node("Softmax", ["p"], ["y"], name="softmax", axis=1),
    ]
    m = model_of(nodes, [helper.make_tensor_value_info("x", f, x.shape)],
                 [helper.make_tensor_value_info("y", f, [2, 3, 6, 7])],
                 [numpy_helper.from_array(b, "b")], opset=6)
    m.ir_version = 3
    ref = np.clip(x.astype(np.float64) + b.reshape(1, 3, 1, 1), -0.5, 0.5)
    ref = np.pad(ref, ((0, 0), (0, 0), (1, 1), (1, 1)),
                 constant_values=0.25)
    case("legacy6", m, [x], [softmax_rows(ref, 1)])

    # opset 11
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    lo = np.array(0.05, np.float32)
    hi = np.array(0.3, np.float32)
    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["u"], name="unsq", axes=[0]),
        helper.make_node("Squeeze", ["u"], ["q"], name="sq", axes=[0]),
        helper.make_node("Softmax", ["q"], ["sm"], name="softmax", axis=1),
        helper.make_node("ReduceSum", ["sm"], ["r"], name="rsum", axes=[2],
                         keepdims=0),
        helper.make_node("Clip", ["r", "lo", "hi"], ["y"], name="clip"),
    ]
    m = model_of(nodes, [helper.make_tensor_value_info("x", f, x.shape)],
                 [helper.make_tensor_value_info("y", f, [2, 3])],
                 [numpy_helper.from_array(lo, "lo"),
                  numpy_helper.from_array(hi, "hi")], opset=11)
    ref = np.clip(softmax_rows(x, 1).sum(axis=2), 0.05, 0.3)
    case("ops11", m, [x], [ref])

    # opset 13: dense paths and a batchnorm that cannot fold
    a = rng.standard_normal((4, 3)).astype(np.float32)   # transA -> [3, 4]
    B = rng.standard_normal((5, 4)).astype(np.float32)   # transB -> [4, 5]
    C = rng.standard_normal((3, 5)).astype(np.float32)
    x3 = rng.standard_normal((2, 3, 4)).astype(np.float32)
    W = rng.standard_normal((4, 6)).astype(np.float32)
    x4 = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    sc = rng.uniform(0.5, 1.5, 2).astype(np.float32)
    bb = rng.standard_normal(2).astype(np.float32)
    mu = rng.standard_normal(2).astype(np.float32)
    var = rng.uniform(0.5, 2, 2).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["a", "B", "C"], ["g"], name="gemm",
                         transA=1, transB=1, alpha=0.5, beta=2.0),
        helper.make_node("MatMul", ["x3", "W"], ["mm"], name="matmul3d"),
        helper.make_node("Relu", ["x4"], ["r4"], name="relu"),
        helper.make_node("BatchNormalization", ["r4", "sc", "bb", "mu", "var"],
                         ["bn"], name="bn", epsilon=1e-3),
    ]
    inits = [numpy_helper.from_array(v, k) for k, v in
             (("B", B), ("C", C), ("W", W), ("sc", sc), ("bb", bb),
              ("mu", mu), ("var", var))]
    m = model_of(nodes,
                 [helper.make_tensor_value_info("a", f, a.shape),
                  helper.make_tensor_value_info("x3", f, x3.shape),
                  helper.make_tensor_value_info("x4", f, x4.shape)],
                 [helper.make_tensor_value_info("g", f, [3, 5]),
                  helper.make_tensor_value_info("mm", f, [2, 3, 6]),
                  helper.make_tensor_value_info("bn", f, [1, 2, 3, 3])],
                 inits, opset=13)
    a64, sh = a.astype(np.float64), (1, 2, 1, 1)
    g = 0.5 * (a64.T @ B.T.astype(np.float64)) + 2.0 * C
    mm = x3.astype(np.float64) @ W
    r4 = np.maximum(x4.astype(np.float64), 0)
    bn = (r4 - mu.reshape(sh)) / np.sqrt(var.reshape(sh) + 1e-3) \
        * sc.reshape(sh) + bb.reshape(sh)
    case("dense_paths", m, [a, x3, x4], [g, mm, bn])


if __name__ == "__main__":
    main()
    more_cases()
