#!/usr/bin/python3
"""Train and export crucible's bundled example models on the 8x8 digits.

Run with Debian's interpreter (it has the python3-torch, python3-sklearn,
python3-onnx and python3-numpy packages):

    /usr/bin/python3 docs/examples/digits/train.py [--out DIR]

The data is the copy of the UCI optdigits test set (1797 8x8 images, pixels
0..16) that python3-sklearn ships as sklearn/datasets/data/digits.csv.gz;
nothing is downloaded. Everything is seeded and torch runs single-threaded
with deterministic algorithms, so a rerun with the same package versions
reproduces the outputs byte for byte.

Outputs (in DIR, default: the folder of this script):
    mlp/model.onnx, cnn/model.onnx       opset 13, batch 1, input "input",
                                         output "logits" (raw scores, no softmax)
    mlp/test_data_set_{0,1,2}/{input_0,output_0}.pb   ONNX backend-test layout
    cnn/test_data_set_{0,1,2}/{input_0,output_0}.pb   (first 3 test samples)
    test-x-mlp.npy  float32 [N, 64]      held-out test split, pixel/16
    test-x-cnn.npy  float32 [N, 1, 8, 8] the same samples as images
    test-y.npy      int64 [N]            labels 0..9
    accuracy.json   test accuracy of each exported model, measured twice:
                    with torch, and with a small numpy forward pass of the
                    weights read back from the .onnx file
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import sklearn
import torch
import torch.nn as nn
from onnx import numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
TEST_SIZE = 0.2
N_CONFORMANCE_SETS = 3
OPSET = 13


def seed_everything(seed):
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- models

def make_mlp():
    return nn.Sequential(
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


MODELS = {
    # name: (constructor, input shape of one sample, epochs, learning rate)
    "mlp": (make_mlp, (64,), 60, 1e-2),
    "cnn": (make_cnn, (1, 8, 8), 60, 1e-2),
}


def train(model, x, y, epochs, lr, seed):
    """Adam on cross-entropy, minibatches of 32 in a seeded shuffled order."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    return float(loss)


# ------------------------------------------- numpy reading of the .onnx file

def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv2d(x, w, b, pads, strides):
    n, c, h, wd = x.shape
    m, cw, kh, kw = w.shape
    assert cw == c, "grouped Conv is not handled"
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - kh) // strides[0] + 1
    ow = (xp.shape[3] - kw) // strides[1] + 1
    out = np.zeros((n, m, oh, ow), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + strides[0] * oh:strides[0],
                       j:j + strides[1] * ow:strides[1]]
            out += np.einsum("nchw,mc->nmhw", patch, w[:, :, i, j])
    if b is not None:
        out += b.reshape(1, m, 1, 1)
    return out


def _maxpool2d(x, kernel, pads, strides):
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
                constant_values=-np.inf)
    oh = (xp.shape[2] - kernel[0]) // strides[0] + 1
    ow = (xp.shape[3] - kernel[1]) // strides[1] + 1
    out = np.full(x.shape[:2] + (oh, ow), -np.inf)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            out = np.maximum(out, xp[:, :, i:i + strides[0] * oh:strides[0],
                                     j:j + strides[1] * ow:strides[1]])
    return out


def numpy_forward(model_proto, x):
    """Evaluate the graph of model_proto on x in float64, op by op.

    Only the ops these two models use are known; anything else raises, so a
    change in what torch exports is noticed rather than guessed at."""
    g = model_proto.graph
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    env[g.input[0].name] = x.astype(np.float64)
    for node in g.node:
        a = _attrs(node)
        ins = [env[n] if n else None for n in node.input]
        if node.op_type == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        elif node.op_type == "MatMul":
            y = ins[0] @ ins[1]
        elif node.op_type == "Add":
            y = ins[0] + ins[1]
        elif node.op_type == "Relu":
            y = np.maximum(ins[0], 0.0)
        elif node.op_type == "Conv":
            k = ins[1].shape[2:]
            assert a.get("group", 1) == 1 and list(a.get("dilations", [1, 1])) == [1, 1]
            assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            y = _conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                        list(a.get("pads", [0, 0, 0, 0])), list(a.get("strides", [1, 1])))
            assert tuple(k) == tuple(a.get("kernel_shape", k))
        elif node.op_type == "MaxPool":
            assert a.get("ceil_mode", 0) == 0 and list(a.get("dilations", [1, 1])) == [1, 1]
            assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            assert len(node.output) == 1
            k = list(a["kernel_shape"])
            y = _maxpool2d(ins[0], k, list(a.get("pads", [0, 0, 0, 0])),
                           list(a.get("strides", [1, 1])))
        elif node.op_type == "Flatten":
            axis = a.get("axis", 1)
            s = ins[0].shape
            y = ins[0].reshape(int(np.prod(s[:axis])), -1)
        elif node.op_type == "Reshape":
            y = ins[0].reshape([int(d) for d in ins[1]])
        elif node.op_type == "Constant":
            y = numpy_helper.to_array(a["value"]).astype(np.float64)
        else:
            raise RuntimeError(f"numpy_forward: op {node.op_type} not handled")
        env[node.output[0]] = y
    return env[g.output[0].name]


# ------------------------------------------------------------------ export

def fixed_shape(value_info):
    dims = value_info.type.tensor_type.shape.dim
    assert all(d.HasField("dim_value") for d in dims), f"{value_info.name} has a dynamic dim"
    return [d.dim_value for d in dims]


def export(model, name, example, path):
    torch.onnx.export(model, example, path, export_params=True,
                      opset_version=OPSET, do_constant_folding=True,
                      input_names=["input"], output_names=["logits"])
    m = onnx.load(path)
    m.graph.name = f"digits_{name}"
    m.doc_string = (f"digits-{name}: 8x8 digit classifier (input pixel/16, "
                    "output logits for 0..9), trained by docs/examples/digits/train.py")
    onnx.save(m, path)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    assert [i.name for i in m.graph.input] == ["input"], [i.name for i in m.graph.input]
    assert [o.name for o in m.graph.output] == ["logits"]
    assert fixed_shape(m.graph.input[0]) == list(example.shape)
    assert fixed_shape(m.graph.output[0]) == [1, 10]
    return m


def write_pb(arr, name, path):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name=name).SerializeToString())


# -------------------------------------------------------------------- main

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here, help="output folder (default: %(default)s)")
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    digits = load_digits()
    x_all = (digits.data / 16.0).astype(np.float32)  # [1797, 64], 0..1
    y_all = digits.target.astype(np.int64)
    assert x_all.shape == (1797, 64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x_all, y_all, test_size=TEST_SIZE, random_state=SEED, stratify=y_all)
    n_test = len(y_te)

    np.save(os.path.join(out, "test-x-mlp.npy"), np.ascontiguousarray(x_te, dtype=np.float32))
    np.save(os.path.join(out, "test-x-cnn.npy"),
            np.ascontiguousarray(x_te.reshape(-1, 1, 8, 8), dtype=np.float32))
    np.save(os.path.join(out, "test-y.npy"), np.ascontiguousarray(y_te, dtype=np.int64))

    report = {}
    for name, (make, shape, epochs, lr) in MODELS.items():
        seed_everything(SEED)  # each model starts from the same state, whatever runs first
        model = make()
        xtr = x_tr.reshape((-1,) + shape)
        xte = x_te.reshape((-1,) + shape)
        final_loss = train(model, xtr, y_tr, epochs, lr, SEED)

        mdir = os.path.join(out, name)
        os.makedirs(mdir, exist_ok=True)
        path = os.path.join(mdir, "model.onnx")
        example = torch.from_numpy(xte[:1].copy())
        with torch.no_grad():
            proto = export(model, name, example, path)

        # accuracy with torch, one sample at a time, as the batch-1 model runs
        with torch.no_grad():
            torch_logits = np.concatenate(
                [model(torch.from_numpy(xte[i:i + 1].copy())).numpy() for i in range(n_test)])
        torch_pred = torch_logits.argmax(axis=1)

        # accuracy from the weights read back out of the .onnx file, in numpy
        np_logits = np.concatenate([numpy_forward(proto, xte[i:i + 1]) for i in range(n_test)])
        np_pred = np_logits.argmax(axis=1)
        max_diff = float(np.abs(np_logits - torch_logits).max())

        torch_correct = int((torch_pred == y_te).sum())
        np_correct = int((np_pred == y_te).sum())
        if torch_correct != np_correct or not np.array_equal(torch_pred, np_pred):
            sys.exit(f"{name}: torch and the numpy reading of the .onnx disagree "
                     f"({torch_correct} vs {np_correct} correct, max |diff| {max_diff:g})")
        if max_diff > 1e-4:
            sys.exit(f"{name}: logits of torch and numpy differ by {max_diff:g}")

        for k in range(N_CONFORMANCE_SETS):
            sdir = os.path.join(mdir, f"test_data_set_{k}")
            os.makedirs(sdir, exist_ok=True)
            write_pb(np.ascontiguousarray(xte[k:k + 1], dtype=np.float32), "input",
                     os.path.join(sdir, "input_0.pb"))
            write_pb(np.ascontiguousarray(torch_logits[k:k + 1], dtype=np.float32), "logits",
                     os.path.join(sdir, "output_0.pb"))

        report[name] = {
            "model": f"{name}/model.onnx",
            "input_shape": [1] + list(shape),
            "inputs": f"test-x-{name}.npy",
            "labels": "test-y.npy",
            "n_test": n_test,
            "float_test_accuracy": torch_correct / n_test,
            "correct": torch_correct,
            "numpy_onnx_test_accuracy": np_correct / n_test,
            "numpy_vs_torch_max_abs_logit_diff": float(f"{max_diff:.3g}"),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "epochs": epochs,
            "final_minibatch_loss": float(f"{final_loss:.4g}"),
        }
        print(f"{name}: test accuracy {torch_correct}/{n_test} = {torch_correct / n_test:.4f} "
              f"(torch) / {np_correct}/{n_test} (numpy on the .onnx weights), "
              f"max |logit diff| {max_diff:.2g}")

    report.update({
        "dataset": "sklearn.datasets.load_digits (UCI optdigits test set, 1797 samples)",
        "split": {"test_size": TEST_SIZE, "random_state": SEED, "stratify": True,
                  "n_train": len(y_tr), "n_test": n_test},
        "torch_version": torch.__version__,
        "sklearn_version": sklearn.__version__,
        "onnx_version": onnx.__version__,
        "numpy_version": np.__version__,
    })
    with open(os.path.join(out, "accuracy.json"), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
