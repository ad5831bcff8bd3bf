#!/usr/bin/env python3
"""How fast and lean is `rebirth optimize M out.onnx --passes none` on big models?

Measures, on the same models in one run, with the commands interleaved (so drift in the machine's
state hits them all alike):
  rebirth   rebirth optimize M out.onnx --passes none      (the release binary)
  cp        cp M copy.onnx                                  (the floor: just moving the bytes)
  python    onnx.save(onnx.load(M), out)                    (in a fresh Python process)
and prints for each the median wall time over N repetitions, its peak RSS (the child's ru_maxrss
from wait4), peak RSS / model size, and the ratios rebirth/cp and python/rebirth.

Models, generated once (seeded, deterministic) into the cache folder, outside the repository:
  gemm-stack   ~100 MB: 6 Gemm 2048×2048 float32 layers (raw_data) with bias and Relu
  resnet50     ResNet-50 (v1.5) layer shapes, random weights: Conv+BatchNormalization+Relu,
               bottlenecks [3, 4, 6, 3], GlobalAveragePool, Gemm 2048×1000 (~102 MB)

    python bench/roundtrip/run.py [--repeat 5] [--models gemm-stack,resnet50] [--cache DIR]

Run it with the conformance venv's python (onnx and numpy; see bench/roundtrip/README.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEED = 20240501
GENERATOR_VERSION = 1  # bump when the generated models change, so cached copies are rebuilt


# --------------------------------------------------------------------------------------------
# Models


def gemm_stack(path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)
    width, layers = 2048, 6
    nodes, inits, x = [], [], "input"
    for i in range(layers):
        w = (rng.standard_normal((width, width), dtype=np.float32) * (2.0 / width) ** 0.5)
        inits += [numpy_helper.from_array(w, f"fc{i}.weight"),
                  numpy_helper.from_array(np.zeros(width, np.float32), f"fc{i}.bias")]
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [f"fc{i}"],
                                      transB=1))
        nodes.append(helper.make_node("Relu", [f"fc{i}"], [f"relu{i}"]))
        x = f"relu{i}"
    graph = helper.make_graph(
        nodes, "gemm_stack", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, width])], inits)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def resnet50(path: Path) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)
    nodes, inits = [], []

    def conv_bn(name, x, c_in, c_out, k, stride=1, relu=True):
        w = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32)
        w *= (2.0 / (c_in * k * k)) ** 0.5
        inits.append(numpy_helper.from_array(w, f"{name}.weight"))
        nodes.append(helper.make_node(
            "Conv", [x, f"{name}.weight"], [f"{name}.conv"], kernel_shape=[k, k],
            strides=[stride, stride], pads=[k // 2] * 4))
        bn = [f"{name}.bn.{p}" for p in ("scale", "bias", "mean", "var")]
        inits.extend([
            numpy_helper.from_array(rng.uniform(0.5, 1.5, c_out).astype(np.float32), bn[0]),
            numpy_helper.from_array((rng.standard_normal(c_out) * 0.1).astype(np.float32), bn[1]),
            numpy_helper.from_array((rng.standard_normal(c_out) * 0.1).astype(np.float32), bn[2]),
            numpy_helper.from_array(rng.uniform(0.5, 1.5, c_out).astype(np.float32), bn[3])])
        nodes.append(helper.make_node("BatchNormalization", [f"{name}.conv", *bn], [f"{name}.bn"]))
        if not relu:
            return f"{name}.bn"
        nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.relu"]))
        return f"{name}.relu"

    x = conv_bn("conv1", "input", 3, 64, 7, stride=2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool1"], kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))
    x, c_in = "pool1", 64
    for stage, (blocks, width) in enumerate(zip([3, 4, 6, 3], [64, 128, 256, 512]), start=1):
        for block in range(blocks):
            name = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            y = conv_bn(f"{name}.conv1", x, c_in, width, 1)
            y = conv_bn(f"{name}.conv2", y, width, width, 3, stride=stride)
            y = conv_bn(f"{name}.conv3", y, width, width * 4, 1, relu=False)
            shortcut = x
            if block == 0:
                shortcut = conv_bn(f"{name}.downsample", x, c_in, width * 4, 1, stride=stride,
                                   relu=False)
            nodes.append(helper.make_node("Add", [y, shortcut], [f"{name}.add"]))
            nodes.append(helper.make_node("Relu", [f"{name}.add"], [f"{name}.out"]))
            x, c_in = f"{name}.out", width * 4
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1))
    fc_w = rng.standard_normal((1000, 2048), dtype=np.float32) * (1.0 / 2048) ** 0.5
    inits.extend([numpy_helper.from_array(fc_w, "fc.weight"),
                  numpy_helper.from_array(np.zeros(1000, np.float32), "fc.bias")])
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes, "resnet50",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], inits)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def save(model, path: Path) -> None:
    import onnx

    model.ir_version = 8
    model.producer_name = "rebirth-bench"
    onnx.checker.check_model(model)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)


MODELS = {"gemm-stack": gemm_stack, "resnet50": resnet50}


# --------------------------------------------------------------------------------------------
# Measuring


# The peak RSS of a command must come from a process that starts small: a child forked (or
# vforked) from this Python process, which holds the generated models, inherits its high-water
# mark. So every command runs under a small wrapper that forks it and reads its ru_maxrss:
# GNU time when present (%M), else the Python snippet below (os.wait4), whose own size is a
# floor under every measurement (printed as "floor").
WRAPPER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
rss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
with open(out, "w") as f:
    f.write(f"{wall} {rss} {os.waitstatus_to_exitcode(status)}")
"""


def gnu_time() -> str | None:
    path = shutil.which("time") or ("/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None)
    if path is None:
        return None
    probe = subprocess.run([path, "--version"], capture_output=True, text=True)
    return path if "GNU" in probe.stdout + probe.stderr else None


GNU_TIME = gnu_time()


def measure(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one run of argv; exits if the command fails."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        if GNU_TIME:
            wrapped = [GNU_TIME, "-f", "%M", "-o", str(report), *argv]
        else:
            wrapped = [sys.executable, "-I", "-S", "-c", WRAPPER, str(report), *argv]
        start = time.perf_counter()
        done = subprocess.run(wrapped, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, errors="replace")
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"bench: `{' '.join(argv)}` failed (exit {done.returncode}):\n"
                             f"{done.stderr[-2000:]}")
        fields = report.read_text().split()
        if GNU_TIME:
            return wall, int(fields[-1]) * 1024  # %M is in KiB
        return float(fields[0]), int(fields[1])


def locate_binary() -> Path:
    env = os.environ.get("REBIRTH_BIN")
    candidates = [Path(env)] if env else [REPO / ".build/release/rebirth"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    raise SystemExit(f"bench: no release binary at {candidates[0]}: run `swift build -c release` "
                     "(or set REBIRTH_BIN)")


def commands(binary: Path, model: Path, work: Path) -> dict[str, list[str]]:
    save_script = "import onnx, sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])"
    return {
        "rebirth": [str(binary), "optimize", str(model), str(work / "rebirth.onnx"),
                    "--passes", "none"],
        "cp": ["cp", str(model), str(work / "copy.onnx")],
        "python": [sys.executable, "-c", save_script, str(model), str(work / "python.onnx")],
    }


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return str(n)


def bench_model(name: str, model: Path, binary: Path, repeat: int, work: Path) -> None:
    size = model.stat().st_size
    cmds = commands(binary, model, work)
    for argv in cmds.values():  # warm-up: page cache, dynamic loader, Python's imports
        measure(argv)
    times = {k: [] for k in cmds}
    rss = {k: 0 for k in cmds}
    for _ in range(repeat):
        for key, argv in cmds.items():
            wall, peak = measure(argv)
            times[key].append(wall)
            rss[key] = max(rss[key], peak)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{name}: {model} ({human(size)}), {repeat} runs each, interleaved, after a warm-up")
    print(f"  {'command':8} {'median':>9} {'min':>9} {'max':>9} {'peak RSS':>10} {'RSS/size':>9}")
    for key in cmds:
        print(f"  {key:8} {median[key]:8.3f}s {min(times[key]):8.3f}s {max(times[key]):8.3f}s "
              f"{human(rss[key]):>10} {rss[key] / size:9.2f}")
    print(f"  rebirth/cp     {median['rebirth'] / median['cp']:7.2f}x  (time; 1.0 = as fast as copying)")
    print(f"  python/rebirth {median['python'] / median['rebirth']:7.2f}x  (time; > 1 = rebirth faster)")


def main() -> int:
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rebirth-bench"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", "-n", type=int, default=5, help="runs per command (default 5)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from: {', '.join(MODELS)}")
    parser.add_argument("--cache", type=Path, default=default_cache,
                        help=f"where models and outputs go (default {default_cache})")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    cache = args.cache.resolve()
    if cache == REPO or REPO in cache.parents:
        parser.error("--cache must be outside the repository")

    binary = locate_binary()
    print(f"rebirth bench/roundtrip: {binary}")
    print(f"  {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    _, floor = measure(["true"])
    how = f"GNU time ({GNU_TIME})" if GNU_TIME else "a Python wrapper (os.wait4)"
    print(f"  peak RSS measured with {how}; floor (RSS of `true`): {human(floor)}")
    for name in names:
        model = cache / f"{name}-v{GENERATOR_VERSION}.onnx"
        if not model.is_file():
            print(f"generating {model} ...", flush=True)
            cache.mkdir(parents=True, exist_ok=True)
            MODELS[name](model)
        work = cache / "out" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        bench_model(name, model, binary, args.repeat, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
