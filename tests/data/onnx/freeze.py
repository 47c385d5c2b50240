#!/usr/bin/python3
"""Makes "frozen" copies of ONNX backend node tests: every graph input but
the first becomes an initializer holding the data of test_data_set_0, the
way shapes, axes, scales and weights are constants in real models. The
expected outputs do not change, so the copies test the frontend's constant
paths (dense from a constant MatMul/Gemm weight, folding, constant
shape/axes/pads inputs, resize scales, ...).

    /usr/bin/python3 freeze.py SRC_DIR DST_DIR

Writes DST_DIR/<case>/{model.onnx,test_data_set_0/{input_0,output_K}.pb}
for each case with at least one input to freeze; prints the count.
"""
import os
import shutil
import sys

import onnx
from onnx import numpy_helper


def freeze(src, dst):
    model = onnx.load(os.path.join(src, "model.onnx"))
    g = model.graph
    inits = {t.name for t in g.initializer}
    real = [i for i in g.input if i.name not in inits]
    if len(real) < 2:
        return False
    data = os.path.join(src, "test_data_set_0")
    if not os.path.isdir(data):
        return False
    for k, vi in enumerate(real[1:], start=1):
        t = onnx.TensorProto()
        with open(os.path.join(data, "input_%d.pb" % k), "rb") as f:
            t.ParseFromString(f.read())
        if not t.HasField("data_type") or t.data_type == 0:
            return False  # a sequence or optional, not a tensor
        numpy_helper.to_array(t)  # raises unless it really is a tensor
        t.name = vi.name
        g.initializer.append(t)
        g.input.remove(vi)
    out = os.path.join(dst, os.path.basename(src))
    os.makedirs(os.path.join(out, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(out, "model.onnx"))
    for name in os.listdir(data):
        if name.startswith("output_") or name == "input_0.pb":
            shutil.copy(os.path.join(data, name),
                        os.path.join(out, "test_data_set_0", name))
    return True


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n = 0
    for case in sorted(os.listdir(src)):
        try:
            n += freeze(os.path.join(src, case), dst)
        except Exception:  # unreadable case: skip it
            pass
    print(n)


if __name__ == "__main__":
    main()
