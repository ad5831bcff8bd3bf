#!/usr/bin/env python3
"""How small is a .tmf, how fast does it open, and how far are encoded weights from the original?

For each model (ResNet-50 and MobileNetV2 from ~/.cache/rebirth-bench/models, made by
bench/models.py) and each weight encoding (fp32, fp16, int8, codebook):

  rebirth optimize M.onnx M-ENC.tmf --weights ENC --format json
      size of the .tmf against the raw bytes of the written model's weights (the report's
      after.parameterBytes: BatchNormalization is folded, so fewer than the ONNX file's) and
      against the ONNX file; targets: fp32 <= raw x 1.01 + 64 KB, fp16 ~ raw / 2, int8 ~ raw / 4.
  rebirth verify M.onnx M-ENC.tmf --format json --tolerance 1
      max relative output error on a seeded input (fp32 must be <= 1e-4).
  open time (fp32 .tmf): `rebirth bench M.tmf --load-only --format json` reports load_ms, the time
      from opening the file to a session ready to run (map, validate every field and every CRC,
      build the graph, plan the session), measured in-process; against onnxruntime
      InferenceSession(M.onnx) creation with default options, in this process. --rounds rounds,
      alternating, medians reported; target: rebirth <= ort / 10.

    ~/.cache/rebirth-venv/bin/python bench/tmf/run.py [--models resnet50,mobilenet-v2]
        [--rounds 7] [--out DIR]

Use a release binary ($REBIRTH_BIN, default .build/release/rebirth): a debug build encodes and
opens far more slowly.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = {"resnet50": "resnet50-v1.onnx", "mobilenet-v2": "mobilenet-v2-v1.onnx"}
ENCODINGS = ["fp32", "fp16", "int8", "codebook"]


def rebirth(args: list[str]) -> str:
    binary = os.environ.get("REBIRTH_BIN", str(REPO / ".build/release/rebirth"))
    done = subprocess.run([binary, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"rebirth {' '.join(args)}: status {done.returncode}\n{done.stderr}")
    return done.stdout


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def measure(name: str, onnx: Path, out: Path, rounds: int) -> list[dict]:
    rows = []
    for enc in ENCODINGS:
        tmf = out / f"{name}-{enc}.tmf"
        start = time.perf_counter()
        report = json.loads(rebirth(["optimize", str(onnx), str(tmf), "--weights", enc, "--format", "json"]))
        seconds = time.perf_counter() - start
        verify = json.loads(rebirth(["verify", str(onnx), str(tmf), "--format", "json", "--tolerance", "1"]))
        encoded = report.get("encodedTensors") or []
        errors = [t["relativeError"] for t in encoded]
        rows.append({
            "model": name, "encoding": enc, "tmf_bytes": tmf.stat().st_size, "onnx_bytes": onnx.stat().st_size,
            "raw_weight_bytes": sum(report["after"]["bytesByDType"].values()), "encoded_tensors": len(encoded),
            "max_weight_error": max(errors) if errors else 0.0,
            "mean_weight_error": statistics.mean(errors) if errors else 0.0,
            "output_error": max(o["max_rel_error"] or 0.0 for o in verify["outputs"]),
            "optimize_seconds": seconds,
        })
    return rows


def open_times(onnx: Path, tmf: Path, rounds: int) -> tuple[float, float]:
    import onnxruntime as ort

    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(json.loads(rebirth(["bench", str(tmf), "--load-only", "--format", "json"]))["load_ms"])
        start = time.perf_counter()
        ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        theirs.append((time.perf_counter() - start) * 1e3)
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,mobilenet-v2")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cache", default=str(Path.home() / ".cache/rebirth-bench/models"))
    parser.add_argument("--out", default=str(Path.home() / ".cache/rebirth-bench/tmf"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, opens = [], {}
    for name in args.models.split(","):
        onnx = Path(args.cache) / MODELS[name]
        rows += measure(name, onnx, out, args.rounds)
        opens[name] = open_times(onnx, out / f"{name}-fp32.tmf", args.rounds)

    print(f"rebirth: {os.environ.get('REBIRTH_BIN', '.build/release/rebirth')}")
    print("| model | weights | .tmf | raw weights | .tmf / raw | .tmf / ONNX | tensors encoded | weight error (mean / max) | output error (verify) | target |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        raw, size = r["raw_weight_bytes"], r["tmf_bytes"]
        if r["encoding"] == "fp32":
            target = f"≤ {mb(raw * 1.01 + 65536)}: {'met' if size <= raw * 1.01 + 65536 and r['output_error'] <= 1e-4 else 'MISSED'}"
        else:
            target = {"fp16": "≈ 0.5", "int8": "≈ 0.25", "codebook": "≈ 0.25"}[r["encoding"]] + f" (is {size / raw:.3f})"
        print(f"| {r['model']} | {r['encoding']} | {mb(size)} | {mb(raw)} | {size / raw:.3f} | {size / r['onnx_bytes']:.3f} "
              f"| {r['encoded_tensors']} | {r['mean_weight_error']:.2g} / {r['max_weight_error']:.2g} | {r['output_error']:.2g} | {target} |")
    print()
    print(f"open time, median of {args.rounds} rounds (fp32 .tmf: open + validate incl. every CRC + plan; ORT: InferenceSession)")
    print("| model | rebirth load_ms | onnxruntime session ms | ratio | target ≤ 0.1 |")
    print("|---|---|---|---|---|")
    for name, (ours, theirs) in opens.items():
        print(f"| {name} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.3f} | {'met' if ours <= theirs / 10 else 'MISSED'} |")
    (out / "results.json").write_text(json.dumps({"rows": rows, "open_ms": opens}, indent=1))


if __name__ == "__main__":
    main()
