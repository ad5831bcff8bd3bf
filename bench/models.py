#!/usr/bin/env python3
"""Benchmark models shared by the benches: real architectures with random weights, as ONNX.

Writes each model once into a cache folder outside the repository (default
~/.cache/rebirth-bench/models) as NAME-vGENERATOR_VERSION.onnx, seeded and deterministic, and
rebuilds it when GENERATOR_VERSION changes (older versions of the same model are deleted):

  googlenet        GoogLeNet (torchvision; aux_logits off, init_weights)      1x3x224x224
  inception-v3     Inception-v3 (torchvision; aux_logits off, init_weights)   1x3x299x299
  resnet50         ResNet-50 (torchvision, v1.5)                              1x3x224x224
  mobilenet-v2     MobileNetV2 (torchvision)                                  1x3x224x224
  densenet121      DenseNet-121 (torchvision)                                 1x3x224x224
  efficientnet-b0  EfficientNet-B0 (torchvision)                              1x3x224x224
  shufflenet-v2    ShuffleNetV2 x1.0 (torchvision)                            1x3x224x224
  lstm-lm          word-level LSTM language model: Embedding 10000x650, 2-layer nn.LSTM 650,
                   Linear 650->10000; int64 tokens [35, 1] (time, batch) -> logits [35, 1, 10000]

The image models take `input` float32 [1, 3, H, W] and give `logits` [1, 1000]. Weights are
torchvision's own initialisation under torch.manual_seed, then (see _randomize) every BatchNorm
gets random statistics and affine parameters, so that folding it is not a no-op, yet activations
keep a trained model's scale: its statistics are those of a seeded calibration input, perturbed per
channel (running_mean = mean + N(0, 0.1)·std, running_var = var·U(0.5, 2)), weight U(0.5, 1.5),
bias N(0, 0.1); Conv and Linear biases are N(0, 0.01) instead of torchvision's zeros.

Export: torch's TorchScript exporter (dynamo=False), opset 17, with constant folding but
training=TrainingMode.PRESERVE on a model in eval mode. In EVAL mode the exporter's "eval
peephole" folds every BatchNormalization into the Conv before it; PRESERVE skips that pass and
otherwise exports the same eval-mode graph (no Dropout, BatchNormalization in inference form).
The generator checks that the graph holds one BatchNormalization per BatchNorm module.

Same torch, same CPU, same bytes (torch runs on one thread here). Another torch version may draw
other weights: bump GENERATOR_VERSION when upgrading it. The models' doc_string records the
versions that made them.

    python bench/models.py [--cache DIR] [--models googlenet,resnet50] [--force] [--check]

--check runs every model in onnxruntime and in rebirth's runtime (`rebirth run`, release binary
.build/release/rebirth or $REBIRTH_BIN) on the same seeded input and prints the max relative error,
or the error rebirth stops with. Other bench scripts import it:

    sys.path.insert(0, str(REPO / "bench")); import models
    paths = models.ensure_models(["googlenet", "resnet50"], models.default_cache())
    feeds = models.make_inputs("googlenet", seed=0)     # {input name: numpy array}

Generating needs torch and torchvision (see bench/requirements.txt); using cached models does not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
SEED = 20261125
OPSET = 17
GENERATOR_VERSION = 1  # bump when the generated models change, so cached copies are rebuilt


# --------------------------------------------------------------------------------------------
# Models


@dataclass(frozen=True)
class Model:
    name: str
    summary: str
    build: Callable[[], object]             # () -> torch.nn.Module, weights initialised
    inputs: tuple[tuple[str, tuple[int, ...], str], ...]   # (name, shape, numpy dtype)
    outputs: tuple[str, ...]


def _torchvision(factory: str, **kwargs) -> Callable[[], object]:
    def build():
        import torchvision

        return getattr(torchvision.models, factory)(weights=None, **kwargs)
    return build


LM_VOCAB, LM_WIDTH, LM_LAYERS, LM_STEPS = 10000, 650, 2, 35


def _lstm_lm():
    """PyTorch's word_language_model ("medium" size): embedding, 2-layer LSTM, linear decoder."""
    import torch
    from torch import nn

    class LstmLm(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)
            self.encoder = nn.Embedding(LM_VOCAB, LM_WIDTH)
            self.rnn = nn.LSTM(LM_WIDTH, LM_WIDTH, LM_LAYERS, dropout=0.5)
            self.decoder = nn.Linear(LM_WIDTH, LM_VOCAB)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            out, _ = self.rnn(self.drop(self.encoder(tokens)))
            return self.decoder(self.drop(out))

    return LstmLm()


def _image(name, summary, build, size=224) -> Model:
    return Model(name, summary, build, (("input", (1, 3, size, size), "float32"),), ("logits",))


MODELS: dict[str, Model] = {m.name: m for m in [
    _image("googlenet", "GoogLeNet (aux_logits off)",
           _torchvision("googlenet", aux_logits=False, init_weights=True)),
    _image("inception-v3", "Inception-v3 (aux_logits off), 299x299",
           _torchvision("inception_v3", aux_logits=False, init_weights=True), size=299),
    _image("resnet50", "ResNet-50 v1.5", _torchvision("resnet50")),
    _image("mobilenet-v2", "MobileNetV2", _torchvision("mobilenet_v2")),
    _image("densenet121", "DenseNet-121", _torchvision("densenet121")),
    _image("efficientnet-b0", "EfficientNet-B0", _torchvision("efficientnet_b0")),
    _image("shufflenet-v2", "ShuffleNetV2 x1.0", _torchvision("shufflenet_v2_x1_0")),
    Model("lstm-lm", f"LSTM LM: vocab {LM_VOCAB}, {LM_LAYERS}x{LM_WIDTH} LSTM, {LM_STEPS} steps",
          _lstm_lm, (("tokens", (LM_STEPS, 1), "int64"),), ("logits",)),
]}


def model_seed(name: str) -> int:
    """Each model's own seed, independent of which other models are generated or in what order."""
    return (SEED + zlib.crc32(name.encode())) % 2**31


def make_inputs(name: str, seed: int = 0) -> dict:
    """Seeded inputs for a model: N(0, 1) floats, or token ids in [0, vocab) for integer inputs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds = {}
    for input_name, shape, dtype in MODELS[name].inputs:
        if np.issubdtype(np.dtype(dtype), np.integer):
            feeds[input_name] = rng.integers(0, LM_VOCAB, shape).astype(dtype)
        else:
            feeds[input_name] = rng.standard_normal(shape).astype(dtype)
    return feeds


# --------------------------------------------------------------------------------------------
# Generating


def default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "rebirth-bench" / "models"


def model_path(name: str, cache: Path) -> Path:
    return Path(cache) / f"{name}-v{GENERATOR_VERSION}.onnx"


def _randomize(module, calibration: tuple, seed: int) -> int:
    """Gives module "trained-looking" random parameters; returns how many BatchNorms it has.

    Every BatchNorm's statistics are those of the calibration input as it reaches that BatchNorm
    (one eval-mode forward pass, so each one sees the effect of the ones before it), perturbed per
    channel: running_mean = mean + N(0, 0.1)·std, running_var = var·U(0.5, 2); its weight is
    U(0.5, 1.5) and its bias N(0, 0.1). Random statistics that ignore the activations (say var
    U(0.5, 2) alone) make them grow or shrink geometrically with depth: Inception-v3's logits
    reached 1e12. Conv and Linear biases become N(0, 0.01): torchvision zeroes many of them, and the
    exporter turns identical initializers into Identity nodes, which trained models do not have.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    batchnorms = [m for m in module.modules()
                  if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    seen = []

    def calibrate(bn, args):
        x = args[0]
        dims = [0, *range(2, x.dim())]
        mean, var = x.mean(dims), x.var(dims, unbiased=False).clamp_min(1e-3)
        n = bn.num_features
        bn.running_mean.copy_(mean + torch.randn(n, generator=gen) * 0.1 * var.sqrt())
        bn.running_var.copy_(var * torch.empty(n).uniform_(0.5, 2.0, generator=gen))
        bn.weight.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=gen))
        bn.bias.copy_(torch.randn(n, generator=gen) * 0.1)
        seen.append(bn)

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)) and layer.bias is not None:
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen) * 0.01)
        hooks = [bn.register_forward_pre_hook(calibrate) for bn in batchnorms]
        try:
            module(*calibration)
        finally:
            for hook in hooks:
                hook.remove()
    if len(seen) != len(batchnorms) or len(set(map(id, seen))) != len(batchnorms):
        raise SystemExit(f"models: {len(batchnorms)} BatchNorms, but the calibration pass ran "
                         f"{len(seen)} times through {len(set(map(id, seen)))} of them")
    return len(batchnorms)


def generate(name: str, path: Path) -> None:
    """Builds MODELS[name] with seeded random weights and exports it to path (atomically)."""
    import warnings

    import onnx
    import torch
    import torchvision

    spec = MODELS[name]
    seed = model_seed(name)
    torch.set_num_threads(1)  # the benches' machines are small and shared; export is cheap
    torch.manual_seed(seed)
    module = spec.build().eval()
    calibration = tuple(torch.from_numpy(a) for a in make_inputs(name, seed + 1).values())
    batchnorms = _randomize(module, calibration, seed + 2)
    args = tuple(torch.from_numpy(a) for a in make_inputs(name, seed).values())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated, and PRESERVE with constant folding warns
            # about models in training mode (ours is in eval mode).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, args, str(tmp), dynamo=False, opset_version=OPSET,
                input_names=[i[0] for i in spec.inputs], output_names=list(spec.outputs),
                do_constant_folding=True, training=torch.onnx.TrainingMode.PRESERVE)
        model = onnx.load(str(tmp))
        kept = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
        if kept != batchnorms:
            raise SystemExit(f"models: {name}: {batchnorms} BatchNorm modules but {kept} "
                             "BatchNormalization nodes in the export (folded into Conv?)")
        model.producer_name = "rebirth-bench"
        model.producer_version = str(GENERATOR_VERSION)
        model.doc_string = (f"{spec.summary}; random weights, seed {seed}; bench/models.py "
                            f"v{GENERATOR_VERSION}, torch {torch.__version__}, torchvision "
                            f"{torchvision.__version__}, TorchScript exporter, opset {OPSET}")
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_models(names, cache: Path | str | None = None, force: bool = False,
                  log=print) -> dict[str, Path]:
    """{name: path} of the named models in cache, generating the missing ones (and deleting
    copies made by other GENERATOR_VERSIONs)."""
    cache = Path(cache) if cache is not None else default_cache()
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise KeyError(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    paths = {}
    for name in names:
        path = model_path(name, cache)
        if force or not path.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            if log:
                log(f"generating {path} ...")
                sys.stdout.flush()
            generate(name, path)
        for stale in cache.glob(f"{name}-v*.onnx"):
            if stale != path and stale.name[len(name) + 2:-5].isdigit():
                stale.unlink()
        paths[name] = path
    return paths


# --------------------------------------------------------------------------------------------
# Checking: onnxruntime against rebirth's runtime


def locate_binary() -> Path | None:
    env = os.environ.get("REBIRTH_BIN")
    path = Path(env) if env else REPO / ".build/release/rebirth"
    return path.resolve() if path.is_file() and os.access(path, os.X_OK) else None


def check(name: str, path: Path, binary: Path | None) -> str:
    """One line: does the model run in onnxruntime and in rebirth, and do their outputs agree?"""
    import numpy as np
    import onnxruntime as ort

    feeds = make_inputs(name, seed=0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    if binary is None:
        return "onnxruntime ok; rebirth not checked (no release binary)"
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", **feeds)
        done = subprocess.run(
            [str(binary), "run", str(path), "--inputs", f"{tmp}/in.npz",
             "--output", f"{tmp}/out.npz", "--threads", "1"],
            capture_output=True, text=True, errors="replace")
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            return f"onnxruntime ok; rebirth REFUSES (exit {done.returncode}): " + \
                (lines[-1] if lines else "(no message)")
        got = np.load(f"{tmp}/out.npz")
        errors = []
        for key, ref in expected.items():
            diff = np.abs(got[key].astype(np.float64) - ref).max()
            errors.append(diff / max(np.abs(ref).max(), np.finfo(np.float32).tiny))
    return f"onnxruntime ok; rebirth ok, max rel err {max(errors):.2e} (ORT as reference)"


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=default_cache(),
                        help=f"where the models go (default {default_cache()})")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from: {', '.join(MODELS)}")
    parser.add_argument("--force", action="store_true", help="regenerate even when cached")
    parser.add_argument("--check", action="store_true",
                        help="run each model in onnxruntime and rebirth and compare outputs")
    args = parser.parse_args()
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    cache = args.cache.expanduser().resolve()
    if cache == REPO or REPO in cache.parents:
        parser.error("--cache must be outside the repository")

    import onnx

    paths = ensure_models(names, cache, force=args.force)
    binary = locate_binary() if args.check else None
    if args.check:
        print(f"checking with onnxruntime and {binary or 'no rebirth binary'}")
    print(f"{'model':16} {'MB':>6} {'nodes':>6} {'BN':>4}  path")
    for name, path in paths.items():
        graph = onnx.load(str(path), load_external_data=False).graph
        bns = sum(n.op_type == "BatchNormalization" for n in graph.node)
        print(f"{name:16} {path.stat().st_size / 2**20:6.1f} {len(graph.node):6} {bns:4}  {path}")
        if args.check:
            print(f"  {check(name, path, binary)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
