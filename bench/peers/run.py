#!/usr/bin/env python3
"""rebirth's default pipeline against the other offline ONNX optimizers, on the same models in
one run.

Tools, each run end to end in a fresh process (load, optimize, save), timed as wall time:
  rebirth       rebirth optimize M out.onnx                         (release binary)
  rebirth+ct    rebirth optimize M out.onnx --allow-contrib-ops     (may write com.microsoft ops)
  onnxsim       onnxsim.simplify(onnx.load(M)) then onnx.save       (onnx-simplifier)
  onnxoptimizer onnxoptimizer.optimize(m, get_fuse_and_elimination_passes())
  ort-basic     onnxruntime InferenceSession with ORT_ENABLE_BASIC and optimized_model_filepath
  ort-extended  the same with ORT_ENABLE_EXTENDED (may contain com.microsoft fused ops)
For each tool's output: node count of the main graph, median wall time over --repeat runs, and
the max relative output error against the original (onnxruntime, 1 thread, no graph
optimizations, seeded inputs; max |a-b| / max |a| over each output, the worst output reported).

Models: fixtures/*.onnx, $REBIRTH_CORPUS/*.onnx when set, and the torchvision exports of
bench/models.py (GoogLeNet, Inception-v3, ResNet-50, MobileNetV2, DenseNet-121, EfficientNet-B0,
ShuffleNetV2, 2-layer LSTM LM; random weights, randomized BatchNorm statistics, BatchNorm kept).

    ~/.cache/rebirth-venv/bin/python bench/peers/run.py [--repeat 3] [--only googlenet,resnet50]
        [--no-fixtures] [--no-corpus]

Prints a table, then the ratios the pipeline issue targets: nodes(rebirth) <= nodes(onnxsim) and
error <= 1e-4 on every model (where onnxsim's output uses com.microsoft contrib ops, as its
attention fusion does, rebirth is also compared with --allow-contrib-ops, its own contrib mode), and time(onnxsim) / time(rebirth) >= 10 on ResNet-50 and
Inception-v3. Needs onnx, onnxruntime, onnxsim, onnxoptimizer (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "Tests" / "conformance"))
import models  # noqa: E402
from inputs import make_inputs  # noqa: E402

BENCH_MODELS = ["googlenet", "inception-v3", "resnet50", "mobilenet-v2", "densenet121",
                "efficientnet-b0", "shufflenet-v2", "lstm-lm"]
TOOLS = ["rebirth", "rebirth+ct", "onnxsim", "onnxoptimizer", "ort-basic", "ort-extended"]

PEER_SCRIPT = r"""
import sys, onnx
tool, src, dst = sys.argv[1:4]
if tool == "onnxsim":
    import onnxsim
    model, ok = onnxsim.simplify(onnx.load(src))
    if not ok:
        sys.exit("onnxsim: check failed")
    onnx.save(model, dst)
elif tool == "onnxoptimizer":
    import onnxoptimizer
    model = onnxoptimizer.optimize(onnx.load(src), onnxoptimizer.get_fuse_and_elimination_passes())
    onnx.save(model, dst)
else:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "ort-basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "ort-extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[tool]
    options.optimized_model_filepath = dst
    options.intra_op_num_threads = 1
    ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])
"""


def rebirth_binary() -> Path:
    env = os.environ.get("REBIRTH_BIN")
    path = Path(env) if env else REPO / ".build" / "release" / "rebirth"
    if not path.is_file():
        sys.exit(f"no rebirth binary at {path}: run `swift build -c release` (or set REBIRTH_BIN)")
    return path


def command(tool: str, src: Path, dst: Path, binary: Path) -> list[str]:
    if tool == "rebirth":
        return [str(binary), "optimize", str(src), str(dst)]
    if tool == "rebirth+ct":
        return [str(binary), "optimize", str(src), str(dst), "--allow-contrib-ops"]
    return [sys.executable, "-c", PEER_SCRIPT, tool, str(src), str(dst)]


def ort_outputs(path: Path, feeds: dict) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def max_relative_error(reference: dict, got: dict) -> float:
    worst = 0.0
    for name, a in reference.items():
        if name not in got:
            return float("inf")
        a, b = np.asarray(a), np.asarray(got[name])
        if a.shape != b.shape:
            return float("inf")
        if a.dtype.kind not in "fc":
            worst = max(worst, 0.0 if np.array_equal(a, b) else float("inf"))
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        finite = np.isfinite(a)
        if not finite.any():
            continue
        scale = max(np.max(np.abs(a[finite])), 1e-30)
        worst = max(worst, float(np.max(np.abs(a[finite] - b[finite])) / scale))
    return worst


def node_count(path: Path) -> int:
    return len(onnx.load(str(path), load_external_data=False).graph.node)


def uses_contrib_ops(path: Path) -> bool:
    return any(n.domain == "com.microsoft" for n in onnx.load(str(path), load_external_data=False).graph.node)


def cases(args) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    if not args.no_fixtures:
        found += [(f"fixture:{p.stem}", p) for p in sorted((REPO / "fixtures").glob("*.onnx"))]
    corpus = os.environ.get("REBIRTH_CORPUS")
    if corpus and not args.no_corpus:
        found += [(f"corpus:{p.stem}", p) for p in sorted(Path(corpus).glob("*.onnx"))]
    paths = models.ensure_models(BENCH_MODELS, models.default_cache())
    found += [(name, paths[name]) for name in BENCH_MODELS]
    if args.only:
        keep = set(args.only.split(","))
        found = [c for c in found if c[0] in keep or c[0].split(":")[-1] in keep]
    return found


def feeds_for(name: str, path: Path) -> dict:
    if name in BENCH_MODELS:
        return models.make_inputs(name, seed=0)
    model = onnx.load(str(path), load_external_data=False)
    return make_inputs(model, seed=0, dims={}, default_dim=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--no-fixtures", action="store_true")
    parser.add_argument("--no-corpus", action="store_true")
    args = parser.parse_args()
    binary = rebirth_binary()
    import onnxoptimizer
    import onnxruntime
    import onnxsim

    print(f"# bench/peers  {time.strftime('%Y-%m-%d')}  {platform.machine()}  "
          f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"onnxsim {onnxsim.__version__}, onnxoptimizer {getattr(onnxoptimizer, '__version__', '?')}; "
          f"median of {args.repeat} runs each, interleaved")
    header = f"{'model':32} {'orig':>5} " + " ".join(f"{t:>22}" for t in TOOLS)
    print(header)
    print(" " * 39 + " ".join(f"{'nodes  time    error':>22}" for _ in TOOLS))
    results: dict[str, dict[str, tuple[int, float, float]]] = {}
    contrib_models: set[str] = set()  # models whose onnxsim output holds com.microsoft ops
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in cases(args):
            feeds = feeds_for(name, path)
            try:
                reference = ort_outputs(path, feeds)
            except Exception as error:  # noqa: BLE001
                print(f"{name:32} skipped: onnxruntime cannot run the original: {str(error)[:100]}")
                continue
            times: dict[str, list[float]] = {t: [] for t in TOOLS}
            failed: dict[str, str] = {}
            for _ in range(args.repeat):
                for tool in TOOLS:
                    if tool in failed:
                        continue
                    dst = Path(tmp) / f"{tool}.onnx"
                    start = time.perf_counter()
                    done = subprocess.run(command(tool, path, dst, binary), capture_output=True, text=True)
                    elapsed = time.perf_counter() - start
                    if done.returncode != 0 or not dst.is_file():
                        failed[tool] = (done.stderr.strip().splitlines() or ["failed"])[-1][:80]
                        continue
                    times[tool].append(elapsed)
            row: dict[str, tuple[int, float, float]] = {}
            cells = []
            for tool in TOOLS:
                if tool in failed:
                    cells.append(f"{'failed':>22}")
                    print(f"  ({tool} on {name}: {failed[tool]})", file=sys.stderr)
                    continue
                dst = Path(tmp) / f"{tool}.onnx"
                try:
                    error = max_relative_error(reference, ort_outputs(dst, feeds))
                except Exception as e:  # noqa: BLE001
                    error = float("inf")
                    print(f"  ({tool} output of {name} does not run: {str(e)[:100]})", file=sys.stderr)
                nodes, seconds = node_count(dst), statistics.median(times[tool])
                row[tool] = (nodes, seconds, error)
                if tool == "onnxsim" and uses_contrib_ops(dst):
                    contrib_models.add(name)
                cells.append(f"{nodes:5d} {seconds:6.2f}s {error:8.1e}")
            results[name] = row
            print(f"{name:32} {node_count(path):5d} " + " ".join(f"{c:>22}" for c in cells), flush=True)

    print("\nTargets (pipeline issue):")
    def peer(name: str) -> str:  # rebirth's matching mode: contrib ops only where onnxsim wrote some
        return "rebirth+ct" if name in contrib_models else "rebirth"
    more_nodes = [n for n, r in results.items() if peer(n) in r and "onnxsim" in r and r[peer(n)][0] > r["onnxsim"][0]]
    more_plain = [n for n, r in results.items() if "rebirth" in r and "onnxsim" in r and r["rebirth"][0] > r["onnxsim"][0]]
    too_far = [n for n, r in results.items() if any(t in r and r[t][2] > 1e-4 for t in ("rebirth", "rebirth+ct"))]
    print(f"  onnxsim used com.microsoft contrib ops on: {', '.join(sorted(contrib_models)) or 'none'}")
    print(f"  no more nodes than onnxsim on every model (rebirth+ct where onnxsim used contrib ops): "
          f"{'met' if not more_nodes else 'NOT met: ' + ', '.join(more_nodes)}")
    print(f"  the same with standard-ONNX rebirth everywhere: {'met' if not more_plain else 'NOT met: ' + ', '.join(more_plain)}")
    print(f"  outputs within 1e-4 on every model:        {'met' if not too_far else 'NOT met: ' + ', '.join(too_far)}")
    for name in ("resnet50", "inception-v3"):
        r = results.get(name, {})
        if "rebirth" in r and "onnxsim" in r:
            ratio = r["onnxsim"][1] / r["rebirth"][1]
            print(f"  onnxsim / rebirth wall time on {name}: {ratio:.1f}x ({'met' if ratio >= 10 else 'NOT met'}; target 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
