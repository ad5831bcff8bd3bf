#!/usr/bin/env python3
"""Benchmark: rebirth's exact slimming against onnxsim and onnxruntime's own graph optimizer.

    REBIRTH_BIN=.build-rt/release/rebirth ~/.cache/rebirth-venv/bin/python bench/slimming/run.py

For each model (GoogLeNet, Inception-v3, ResNet-50, MobileNetV2 from bench/models.py, and the
Caffe-style GoogLeNet fixture) it writes the variants

    original     the exported model
    rebirth      `rebirth optimize` (default pipeline, .onnx target)
    +branch      `rebirth optimize --enable branch-slim`
    onnxsim      `onnxsim` (its default: constant folding and onnxoptimizer's fusions)
    ort-basic    onnxruntime's saved ORT_ENABLE_BASIC model
    ort-ext      onnxruntime's saved ORT_ENABLE_EXTENDED model

and prints node count and MACs (`rebirth inspect --format json`), max relative output error
against the original (onnxruntime, optimizations off), and onnxruntime latency (1 thread,
ORT_ENABLE_ALL, runs interleaved across variants, median of the rounds' medians).

Then `rebirth bench --threads 1` on rebirth's variants: default, +branch-slim, +fuse-activation,
+both. The ONNX exporter writes fused layers back as standard nodes (ONNX has none), so a
`.onnx` written with `--enable fuse-activation` is the default model again; until `.tmf` is
readable, the fused variants are made here by recording each activation in its layer exactly as
`fuse-activation` does (`fuse()` below: ai.rebirth.Conv/Gemm/MatMul with `activation`), which is
what rebirth's runtime runs with its fused kernels.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "bench"))
import models  # noqa: E402

MODELS = ["googlenet", "inception-v3", "resnet50", "mobilenet-v2"]
CAFFE = "googlenet-caffe-stem"
LAYERS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
ACTIVATIONS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh"}


def binary() -> Path:
    path = Path(os.environ.get("REBIRTH_BIN", REPO / ".build-rt/release/rebirth"))
    if not path.is_file():
        raise SystemExit(f"no rebirth binary at {path} (set REBIRTH_BIN)")
    return path.resolve()


def rebirth(*args: str) -> str:
    done = subprocess.run([str(binary()), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"rebirth {' '.join(args)}: {done.stderr.strip()[-400:]}")
    return done.stdout


def inspect(path: Path) -> tuple[int, float]:
    report = json.loads(rebirth("inspect", str(path), "--format", "json"))
    nodes = report.get("node_count", report.get("nodes"))
    if isinstance(nodes, dict):
        nodes = nodes.get("count", nodes.get("total"))
    macs = report.get("macs", report.get("total_macs"))
    if isinstance(macs, dict):
        macs = macs.get("total")
    return int(nodes), float(macs or 0)


# --------------------------------------------------------------------------------------------
# Variants


def ort_session(path: Path, level: str, save: Path | None = None):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if save:
        o.optimized_model_filepath = str(save)
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def fuse(src: Path, dst: Path) -> int:
    """Records each activation in the Conv/ConvTranspose/Gemm/MatMul before it (single use, not a
    graph output), as `fuse-activation` does. Returns the number of fusions."""
    m = onnx.load(str(src))
    g = m.graph
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    consts = {t.name: t for t in g.initializer}
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    outputs = {o.name for o in g.output}
    producer = {o: n for n in g.node for o in n.output}
    drop, count = set(), 0
    for act in g.node:
        if act.op_type not in ACTIVATIONS or act.domain not in ("", "ai.onnx") or not act.input:
            continue
        layer = producer.get(act.input[0])
        if (layer is None or layer.op_type not in LAYERS or layer.domain not in ("", "ai.onnx")
                or uses.get(act.input[0]) != 1 or act.input[0] in outputs):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in act.attribute}
        params: list[float] = []
        if act.op_type == "Clip":
            if opset < 11:
                params = [attrs.get("min", -3.4028234663852886e38), attrs.get("max", 3.4028234663852886e38)]
            else:
                bounds = []
                for slot, absent in ((1, -math.inf), (2, math.inf)):
                    name = act.input[slot] if len(act.input) > slot else ""
                    if not name:
                        bounds.append(absent)
                    elif name in consts:
                        bounds.append(float(onnx.numpy_helper.to_array(consts[name]).reshape(-1)[0]))
                    else:
                        bounds = None
                        break
                if bounds is None:
                    continue
                params = bounds
        elif act.op_type == "LeakyRelu":
            params = [attrs.get("alpha", 0.01)]
        elif act.op_type == "HardSigmoid":
            params = [attrs.get("alpha", 0.2), attrs.get("beta", 0.5)]
        layer.domain = "ai.rebirth"
        layer.attribute.append(helper.make_attribute("activation", act.op_type))
        if params:
            layer.attribute.append(helper.make_attribute("activation_params", [float(p) for p in params]))
        layer.output[0] = act.output[0]
        drop.add(id(act))
        count += 1
    kept = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(kept)
    m.opset_import.append(helper.make_opsetid("ai.rebirth", 1))
    onnx.save(m, str(dst))
    return count


def make_variants(name: str, src: Path, work: Path) -> dict[str, Path]:
    v = {"original": src}
    v["rebirth"] = work / f"{name}.rebirth.onnx"
    rebirth("optimize", str(src), str(v["rebirth"]))
    v["+branch"] = work / f"{name}.branch.onnx"
    rebirth("optimize", str(src), str(v["+branch"]), "--enable", "branch-slim")
    v["onnxsim"] = work / f"{name}.onnxsim.onnx"
    done = subprocess.run([sys.executable, "-m", "onnxsim", str(src), str(v["onnxsim"])],
                          capture_output=True, text=True)
    if done.returncode != 0:
        del v["onnxsim"]
    for level, key in (("ORT_ENABLE_BASIC", "ort-basic"), ("ORT_ENABLE_EXTENDED", "ort-ext")):
        v[key] = work / f"{name}.{key}.onnx"
        ort_session(src, level, save=v[key])
    return v


# --------------------------------------------------------------------------------------------
# Measuring


def feeds_for(name: str, path: Path) -> dict:
    if name in models.MODELS:
        return models.make_inputs(name)
    s = ort_session(path, "ORT_DISABLE_ALL")
    rng = np.random.default_rng(0)
    return {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
            for i in s.get_inputs()}


def max_rel_err(ref: list, got: list) -> float:
    err = 0.0
    for a, b in zip(ref, got):
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        err = max(err, float(np.abs(a64 - b64).max() / max(np.abs(a64).max(), 1e-30)))
    return err


def ort_latency(variants: dict[str, Path], feeds: dict, rounds: int, runs: int) -> dict[str, float]:
    """Median over rounds of each round's median; variants interleaved within every round."""
    sessions = {k: ort_session(p, "ORT_ENABLE_ALL") for k, p in variants.items()}
    for s in sessions.values():
        for _ in range(3):
            s.run(None, feeds)
    medians: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                s.run(None, feeds)
                times.append((time.perf_counter() - t) * 1e3)
            medians[k].append(statistics.median(times))
    return {k: statistics.median(v) for k, v in medians.items()}


def rebirth_latency(paths: dict[str, Path], inputs: Path, rounds: int, runs: int) -> dict[str, float]:
    medians: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(rounds):
        for k, p in paths.items():
            out = rebirth("bench", str(p), "--threads", "1", "--runs", str(runs), "--warmup", "2",
                          "--format", "json", "--inputs", str(inputs))
            medians[k].append(json.loads(out)["p50_ms"])
    return {k: statistics.median(v) for k, v in medians.items()}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS + [CAFFE]))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (ORT)")
    parser.add_argument("--runs", type=int, default=8, help="timed runs per round (ORT)")
    parser.add_argument("--rebirth-rounds", type=int, default=3)
    parser.add_argument("--rebirth-runs", type=int, default=10)
    args = parser.parse_args()
    names = args.models.split(",")
    paths = {}
    wanted = [n for n in names if n in models.MODELS]
    if wanted:
        models.ensure_models(wanted)
        for n in wanted:
            paths[n] = models.model_path(n, models.default_cache())
    if CAFFE in names:
        paths[CAFFE] = REPO / "fixtures/googlenet_stem.onnx"

    print(f"# bench/slimming  load average at start: {load_average()}  (2 cores, shared)")
    work = Path(tempfile.mkdtemp(prefix="rebirth-slimming-"))
    size_rows, ort_rows, rt_rows = [], [], []
    for name, src in paths.items():
        v = make_variants(name, src, work)
        feeds = feeds_for(name, src)
        reference = ort_session(src, "ORT_DISABLE_ALL").run(None, feeds)
        for k, p in v.items():
            nodes, macs = inspect(p) if not k.startswith("ort-") else (len(onnx.load(str(p)).graph.node), math.nan)
            got = ort_session(p, "ORT_DISABLE_ALL").run(None, feeds)
            err = max_rel_err(reference, got) if k != "original" else 0.0
            size_rows.append((name, k, nodes, macs, err))
        lat = ort_latency(v, feeds, args.rounds, args.runs)
        for k, ms in lat.items():
            ort_rows.append((name, k, ms, ms / lat["original"]))
        # rebirth's runtime
        inputs = work / f"{name}.inputs.npz"
        np.savez(inputs, **feeds)
        fused = work / f"{name}.fused.onnx"
        both = work / f"{name}.branch.fused.onnx"
        n1, n2 = fuse(v["rebirth"], fused), fuse(v["+branch"], both)
        rt = rebirth_latency({"default": v["rebirth"], "+branch-slim": v["+branch"],
                              f"+fuse-activation ({n1})": fused, f"+both ({n2})": both},
                             inputs, args.rebirth_rounds, args.rebirth_runs)
        base = rt["default"]
        for k, ms in rt.items():
            rt_rows.append((name, k, ms, ms / base))

    print("\n## Size and exactness (nodes, GMACs from `rebirth inspect`; ORT-saved models: node count only)\n")
    print("| model | variant | nodes | GMACs | max rel error |")
    print("|---|---|---:|---:|---:|")
    for name, k, nodes, macs, err in size_rows:
        g = "—" if math.isnan(macs) else f"{macs / 1e9:.3f}"
        print(f"| {name} | {k} | {nodes} | {g} | {err:.1e} |")
    print(f"\n## onnxruntime latency (1 thread, ORT_ENABLE_ALL, {args.rounds} interleaved rounds x {args.runs} runs, median)\n")
    print("| model | variant | ms | vs original |")
    print("|---|---|---:|---:|")
    for name, k, ms, ratio in ort_rows:
        print(f"| {name} | {k} | {ms:.2f} | {ratio:.3f}x |")
    print(f"\n## rebirth runtime latency (`rebirth bench --threads 1`, {args.rebirth_rounds} rounds x {args.rebirth_runs} runs, median of p50s)\n")
    print("| model | variant (fusions) | ms | vs default |")
    print("|---|---|---:|---:|")
    for name, k, ms, ratio in rt_rows:
        print(f"| {name} | {k} | {ms:.2f} | {ratio:.3f}x |")
    print(f"\nload average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
