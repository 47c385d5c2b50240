#!/usr/bin/python3
"""Writes dwnet.onnx, dwnet-avg.onnx and dwnet-calib.npy: a small float CNN
that exercises the fpga-verilog engines' geometry (not a trained model):
conv 3x3 stride 2 pads 1 -> relu -> depthwise 3x3 with asymmetric pads ->
1x1 conv -> relu -> max pool (dwnet-avg: average pool, pads not counted)
3x3 stride 2 pads 1 -> flatten -> dense. Quantise with crucible compile
--quant int8 --calib dwnet-calib.npy --io int8."""
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

rng = np.random.default_rng(5)


def T(n, a):
    return numpy_helper.from_array(a.astype(np.float32), n)


w1 = rng.normal(0, 0.4, (6, 2, 3, 3)); b1 = rng.normal(0, 0.1, 6)
w2 = rng.normal(0, 0.4, (6, 1, 3, 3)); b2 = rng.normal(0, 0.1, 6)
w3 = rng.normal(0, 0.3, (12, 6, 1, 1)); b3 = rng.normal(0, 0.1, 12)
w4 = rng.normal(0, 0.3, (5, 12 * 3 * 3)); b4 = rng.normal(0, 0.1, 5)
def save(pool, path):
    nodes = [
        helper.make_node('Conv', ['x', 'w1', 'b1'], ['c1'], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node('Relu', ['c1'], ['r1']),
        helper.make_node('Conv', ['r1', 'w2', 'b2'], ['c2'], group=6, pads=[1, 0, 1, 2]),
        helper.make_node('Conv', ['c2', 'w3', 'b3'], ['c3']),
        helper.make_node('Relu', ['c3'], ['r3']),
        pool,
        helper.make_node('Flatten', ['p3'], ['f']),
        helper.make_node('Gemm', ['f', 'w4', 'b4'], ['y'], transB=1),
    ]
    g = helper.make_graph(
        nodes, 'dwnet', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 2, 11, 10])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 5])],
        [T('w1', w1), T('b1', b1), T('w2', w2), T('b2', b2), T('w3', w3), T('b3', b3),
         T('w4', w4), T('b4', b4)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, path)

save(helper.make_node('MaxPool', ['r3'], ['p3'], kernel_shape=[3, 3], strides=[2, 2],
                      pads=[1, 1, 1, 1]), 'dwnet.onnx')
save(helper.make_node('AveragePool', ['r3'], ['p3'], kernel_shape=[3, 3], strides=[2, 2],
                      pads=[1, 1, 1, 1], count_include_pad=0), 'dwnet-avg.onnx')
np.save('dwnet-calib.npy', rng.uniform(-1, 1, (40, 2, 11, 10)).astype(np.float32)[:16])
