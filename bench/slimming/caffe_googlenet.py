#!/usr/bin/env python3
"""The BVLC GoogLeNet layout (Caffe's bvlc_googlenet deploy.prototxt) at full size, as ONNX.

    ~/.cache/rebirth-venv/bin/python bench/slimming/caffe_googlenet.py [--cache DIR] [--force]

Writes googlenet-caffe-vN.onnx into the bench model cache (~/.cache/rebirth-bench/models, as
bench/models.py) once, seeded and deterministic; other scripts call `ensure()`.

Layout (as Caffe's converters write it: no BatchNorm, LRN kept, Caffe's ceil-rounded pooling):

    data 1x3x224x224
    conv1/7x7_s2 64 7x7/2 pad 3, ReLU            -> 64x112x112
    pool1/3x3_s2 MaxPool 3x3/2 (ceil)            -> 64x56x56
    pool1/norm1 LRN(5, alpha 1e-4, beta 0.75, k 1)
    conv2/3x3_reduce 64 1x1, ReLU; conv2/3x3 192 3x3 pad 1, ReLU
    conv2/norm2 LRN(5)
    pool2/3x3_s2 MaxPool 3x3/2 (ceil)            -> 192x28x28
    inception_3a, 3b; pool3 3x3/2 (ceil)         -> 480x14x14
    inception_4a..4e; pool4 3x3/2 (ceil)         -> 832x7x7
    inception_5a, 5b                             -> 1024x7x7
    pool5/7x7_s1 AveragePool 7x7                 -> 1024x1x1
    Flatten, loss3/classifier Gemm 1024->1000    -> logits 1x1000 (no Softmax: errors are
                                                    measured on the logits)

Each Inception block: 1x1; 3x3_reduce 1x1 -> 3x3 pad 1; 5x5_reduce 1x1 -> 5x5 pad 2;
pool 3x3/1 pad 1 -> pool_proj 1x1; every conv followed by ReLU; Concat of the four.
Dropout (inference: identity) is left out.

Weights: random, seeded, He-initialised (N(0, 2/fan_in)), biases N(0, 0.01), so that activations
keep their scale through the 22 layers; the classifier N(0, 1/fan_in). Random weights: fine for
speed and for the error of approximations relative to this model, not for accuracy claims.
Opset 17.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NAME = "googlenet-caffe"
VERSION = 1
SEED = 20261125
OPSET = 17

# (name, 1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj), from bvlc_googlenet/deploy.prototxt
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def default_cache() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import models

    return models.default_cache()


def path_in(cache: Path) -> Path:
    return Path(cache) / f"{NAME}-v{VERSION}.onnx"


class Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def op(self, op: str, name: str, inputs: list[str], **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv(self, name: str, x: str, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0) -> str:
        fan_in = cin * k * k
        w = (self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.01).astype(np.float32)
        self.inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]
        y = self.op("Conv", name, [x, f"{name}_w", f"{name}_b"], kernel_shape=[k, k],
                    strides=[stride, stride], pads=[pad] * 4)
        return self.op("Relu", name.replace("/", "/relu_", 1) if "/" in name else f"{name}_relu", [y])

    def maxpool(self, name: str, x: str, k: int, stride: int, pad: int = 0, ceil: int = 0) -> str:
        return self.op("MaxPool", name, [x], kernel_shape=[k, k], strides=[stride, stride],
                       pads=[pad] * 4, ceil_mode=ceil)

    def lrn(self, name: str, x: str) -> str:
        return self.op("LRN", name, [x], size=5, alpha=1e-4, beta=0.75, bias=1.0)

    def inception(self, tag: str, x: str, cin: int) -> tuple[str, int]:
        c1, r3, c3, r5, c5, pp = INCEPTION[tag]
        p = f"inception_{tag}"
        b1 = self.conv(f"{p}/1x1", x, cin, c1, 1)
        b2 = self.conv(f"{p}/3x3", self.conv(f"{p}/3x3_reduce", x, cin, r3, 1), r3, c3, 3, pad=1)
        b3 = self.conv(f"{p}/5x5", self.conv(f"{p}/5x5_reduce", x, cin, r5, 1), r5, c5, 5, pad=2)
        b4 = self.conv(f"{p}/pool_proj", self.maxpool(f"{p}/pool", x, 3, 1, pad=1), cin, pp, 1)
        return self.op("Concat", f"{p}/output", [b1, b2, b3, b4], axis=1), c1 + c3 + c5 + pp


def build() -> onnx.ModelProto:
    s = Builder(SEED)
    x = s.conv("conv1/7x7_s2", "data", 3, 64, 7, stride=2, pad=3)
    x = s.maxpool("pool1/3x3_s2", x, 3, 2, ceil=1)
    x = s.lrn("pool1/norm1", x)
    x = s.conv("conv2/3x3_reduce", x, 64, 64, 1)
    x = s.conv("conv2/3x3", x, 64, 192, 3, pad=1)
    x = s.lrn("conv2/norm2", x)
    x = s.maxpool("pool2/3x3_s2", x, 3, 2, ceil=1)
    c = 192
    for tag in ("3a", "3b"):
        x, c = s.inception(tag, x, c)
    x = s.maxpool("pool3/3x3_s2", x, 3, 2, ceil=1)
    for tag in ("4a", "4b", "4c", "4d", "4e"):
        x, c = s.inception(tag, x, c)
    x = s.maxpool("pool4/3x3_s2", x, 3, 2, ceil=1)
    for tag in ("5a", "5b"):
        x, c = s.inception(tag, x, c)
    x = s.op("AveragePool", "pool5/7x7_s1", [x], kernel_shape=[7, 7], strides=[1, 1])
    x = s.op("Flatten", "pool5/flatten", [x], axis=1)
    w = (s.rng.standard_normal((1000, c)) * np.sqrt(1.0 / c)).astype(np.float32)
    b = (s.rng.standard_normal(1000) * 0.01).astype(np.float32)
    s.inits += [numpy_helper.from_array(w, "loss3/classifier_w"),
                numpy_helper.from_array(b, "loss3/classifier_b")]
    s.nodes.append(helper.make_node("Gemm", [x, "loss3/classifier_w", "loss3/classifier_b"],
                                    ["logits"], name="loss3/classifier", transB=1))
    graph = helper.make_graph(
        s.nodes, "bvlc_googlenet",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], s.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="rebirth-bench caffe_googlenet", producer_version=str(VERSION))
    model.ir_version = 8
    model.doc_string = f"BVLC GoogLeNet layout, random He-initialised weights, seed {SEED}"
    onnx.checker.check_model(model, full_check=True)
    return model


def ensure(cache: Path | str | None = None, force: bool = False) -> Path:
    cache = Path(cache) if cache else default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    path = path_in(cache)
    if force or not path.exists():
        for old in cache.glob(f"{NAME}-v*.onnx"):
            old.unlink()
        tmp = path.with_suffix(".tmp")
        onnx.save(build(), str(tmp))
        tmp.replace(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    print(ensure(args.cache, args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
