#!/usr/bin/env python3
"""Open time of several rebirth builds against onnxruntime, interleaved (bench/tmf/README.md).

    ~/.cache/rebirth-venv/bin/python bench/tmf/open_ab.py --rounds 60 \
        before=/tmp/rebirth-before after=.build/release/rebirth "after-1t=.build/release/rebirth:--threads,1"

Each NAME=BINARY[:EXTRA,ARGS] is timed with `BINARY bench M-fp32.tmf --load-only --format json
[EXTRA ARGS]` (load_ms); each round runs every build once, then creates one onnxruntime
InferenceSession (default options) in this process. Prints, per model, the median and quartiles of
each and the ratio of medians to onnxruntime's. Uses the .tmf files bench/tmf/run.py wrote.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

MODELS = {"resnet50": "resnet50-v1.onnx", "mobilenet-v2": "mobilenet-v2-v1.onnx"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="+", help="NAME=BINARY[:EXTRA,ARGS]")
    parser.add_argument("--models", default="resnet50,mobilenet-v2")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cache", default=str(Path.home() / ".cache/rebirth-bench/models"))
    parser.add_argument("--tmf", default=str(Path.home() / ".cache/rebirth-bench/tmf"))
    args = parser.parse_args()
    import onnxruntime as ort

    builds = []
    for spec in args.builds:
        name, _, rest = spec.partition("=")
        binary, _, extra = rest.partition(":")
        builds.append((name, binary, [a for a in extra.split(",") if a]))
    print("| model | build | load_ms median | quartiles | / onnxruntime median |")
    print("|---|---|---|---|---|")
    for model in args.models.split(","):
        tmf = Path(args.tmf) / f"{model}-fp32.tmf"
        times: dict[str, list[float]] = {name: [] for name, _, _ in builds} | {"onnxruntime": []}
        for _ in range(args.rounds):
            for name, binary, extra in builds:
                out = subprocess.run([binary, "bench", str(tmf), "--load-only", "--format", "json", *extra],
                                     capture_output=True, text=True, check=True).stdout
                times[name].append(json.loads(out)["load_ms"])
            start = time.perf_counter()
            ort.InferenceSession(str(Path(args.cache) / MODELS[model]), providers=["CPUExecutionProvider"])
            times["onnxruntime"].append((time.perf_counter() - start) * 1e3)
        reference = statistics.median(times["onnxruntime"])
        for name, values in times.items():
            q = statistics.quantiles(values, n=4)
            print(f"| {model} | {name} | {statistics.median(values):.2f} | {q[0]:.2f}–{q[2]:.2f} "
                  f"| {statistics.median(values) / reference:.3f} |")


if __name__ == "__main__":
    main()
