#!/usr/bin/env python3
"""Where rebirth's runtime spends its time, by kind of kernel: `perf record` on `rebirth bench`.

    REBIRTH_BIN=.build-rt/release/rebirth ~/.cache/rebirth-venv/bin/python bench/slimming/profile.py \
        A.tmf B.tmf ... [--runs 60] [--inputs x.npz]

rebirth's runtime has no per-layer profiler. This samples `rebirth bench M --threads 1` with
`perf record -F 999` (user and kernel), groups the samples' symbols by the kernel they belong to
(the regular expressions of GROUPS, first match wins), and prints each group's share of the
samples and its CPU milliseconds per inference: samples / 999 Hz / (runs + 2 warm-up runs). perf
samples the process only while it runs on a CPU, so CPU time is much less sensitive to a loaded
machine than wall-clock latency (caches and frequency are still shared). Loading the model is
included (crc32, page faults: "other" and "kernel"), a few percent with --runs 60.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

GROUPS = [
    ("sgemm kernel (Conv/Gemm)", r"sgemm_kernel|sgemv|dgemm|gemm_kernel|^tile(256|512)|run_loops|rb_gemm_run"),
    ("sgemm packing copies", r"sgemm_.*copy|gemm_.*copy|^pack_b(256|512)|rb_gemm_pack"),
    ("conv input packing (rebirth's GEMM)", r"pack_conv2d_"),
    ("im2col", r"Im2Col|im2col"),
    ("Conv (rebirth's own code: direct/1x1/bias/fused activation)", r"7Runtime4Conv|Runtime.*Conv|FusedActivation|Activation"),
    ("MaxPool / AveragePool", r"Pooling|MaxPool|AveragePool|MaxCombine|AverageCombine"),
    ("LRN", r"LRN|LocalResponse"),
    ("Relu / elementwise", r"Relu|Unary|Binary|Elementwise|Broadcast"),
    ("Concat / Split / memcpy", r"Concat|Split|memmove|memcpy|memset"),
    ("allocation, reference counting", r"RefCount|swift_release|swift_retain|malloc|free|_int_|swift_dealloc|swift_alloc|ContiguousArrayStorage|swift_bridgeObject|swift_isUniquely"),
    ("kernel (page faults, scheduler)", r"^\[k\]"),
]


def binary() -> Path:
    return Path(os.environ.get("REBIRTH_BIN", REPO / ".build-rt/release/rebirth")).resolve()


def profile(model: Path, runs: int, inputs: Path | None) -> tuple[float, dict[str, float], list]:
    with tempfile.TemporaryDirectory(prefix="rebirth-perf-") as tmp:
        data = Path(tmp) / "perf.data"
        cmd = [str(binary()), "bench", str(model), "--threads", "1", "--runs", str(runs), "--warmup", "2",
               "--format", "json"] + (["--inputs", str(inputs)] if inputs else [])
        done = subprocess.run(["perf", "record", "-q", "-F", "999", "-o", str(data), "--"] + cmd,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"perf record failed: {done.stderr[-400:]}")
        report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "symbol",
                                 "--stdio", "--percent-limit", "0", "-n"], capture_output=True, text=True).stdout
        samples = sum(int(m.group(1)) for m in re.finditer(r"^\s*[\d.]+%\s+(\d+)\s", report, re.M))
        cpu_ms = samples / 999 * 1000 / (runs + 2)
    shares: dict[str, float] = defaultdict(float)
    other: dict[str, float] = defaultdict(float)
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\d+\s+(\[.\])\s+(.*?)\s*(-\s+-\s*)?$", line)
        if not m:
            continue
        pct, kind, sym = float(m.group(1)), m.group(2), m.group(3)
        key = f"{kind} {sym}"
        for group, rx in GROUPS:
            if re.search(rx, sym if not rx.startswith("^") else key):
                shares[group] += pct
                break
        else:
            shares["other"] += pct
            other[sym[:90]] += pct
    return cpu_ms, shares, sorted(other.items(), key=lambda kv: -kv[1])[:5]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--inputs", type=Path)
    args = parser.parse_args()
    results = [(m, *profile(m, args.runs, args.inputs)) for m in args.models]
    groups = [g for g, _ in GROUPS] + ["other"]
    print(f"| kernel group | " + " | ".join(f"{m.name} %, CPU ms" for m, *_ in results) + " |")
    print("|---|" + "---:|" * len(results))
    for g in groups:
        cells = [f"{s.get(g, 0):.1f}%, {s.get(g, 0) / 100 * p50:.2f}" for _, p50, s, _ in results]
        print(f"| {g} | " + " | ".join(cells) + " |")
    print("| total (CPU ms per inference) | " + " | ".join(f"{p50:.2f}" for _, p50, _, _ in results) + " |")
    for m, _, _, other in results:
        print(f"\nlargest 'other' symbols in {m.name}: " + "; ".join(f"{s} {p:.1f}%" for s, p in other))
    return 0


if __name__ == "__main__":
    sys.exit(main())
