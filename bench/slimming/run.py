#!/usr/bin/env python3
"""Benchmark: rebirth's slimming against onnxsim and onnxruntime's own graph optimizer.

    swift build -c release --scratch-path .build-rt --product rebirth
    REBIRTH_BIN=.build-rt/release/rebirth ~/.cache/rebirth-venv/bin/python bench/slimming/run.py \
        [--part exact|fit|all] [--models googlenet,...]

Part `exact` (the exact slimming issue). For each model (GoogLeNet, Inception-v3, ResNet-50,
MobileNetV2 from bench/models.py, and the full-size Caffe-style GoogLeNet of caffe_googlenet.py):

    original     the exported model
    rebirth      `rebirth optimize IN OUT.onnx` (default pipeline, .onnx target)
    +branch      `rebirth optimize IN OUT.onnx --enable branch-slim`
    onnxsim      `onnxsim` (its default: constant folding and onnxoptimizer's fusions)
    ort-basic    onnxruntime's saved ORT_ENABLE_BASIC model
    ort-ext      onnxruntime's saved ORT_ENABLE_EXTENDED model

node count and MACs (`rebirth inspect --format json`; ORT-saved models: node count only, their
com.microsoft ops have no MAC formula), max relative output error against the original
(onnxruntime, optimizations off) and onnxruntime latency (1 thread, ORT_ENABLE_ALL, variants
interleaved in every round, median of the rounds' medians). Then `rebirth bench --threads 1`
(interleaved the same way) on rebirth's runtime variants:

    default.onnx   the default .onnx above (nothing fused, no branch merge)
    tmf-neither    OUT.tmf --disable branch-slim,fuse-activation
    tmf-branch     OUT.tmf --disable fuse-activation
    tmf-fuse       OUT.tmf --disable branch-slim
    tmf-both       OUT.tmf (the .tmf default: branch-slim and fuse-activation)

with their node counts and the error against the original in rebirth's runtime (`rebirth verify`).

Part `fit` (the approximate slimming issue). On the Caffe-style GoogLeNet (and the trained corpus
models of --fit-corpus): the original, `--preset exact`, and `--preset slim --calibration-random
32 --max-error E` for each E of --budgets: nodes, convs, LRN and MaxPool count, MACs, the error
the optimizer measured on its held-out calibration samples, the error of `rebirth verify` against
the original (seeded inputs), and latency in onnxruntime (each .onnx, 1 thread, ORT_ENABLE_ALL) and
in rebirth's runtime (`rebirth bench --threads 1` of the original .onnx and of each variant as
.tmf, made from the variant's .onnx by the default .tmf pipeline), interleaved, same run.
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(HERE))
import caffe_googlenet  # noqa: E402
import models  # noqa: E402

MODELS = ["googlenet", "inception-v3", "resnet50", "mobilenet-v2"]
CAFFE = "googlenet-caffe"
CORPUS = Path(os.environ.get("REBIRTH_CORPUS", Path.home() / ".cache/rebirth-corpus"))


def binary() -> Path:
    path = Path(os.environ.get("REBIRTH_BIN", REPO / ".build-rt/release/rebirth"))
    if not path.is_file():
        raise SystemExit(f"no rebirth binary at {path} (set REBIRTH_BIN)")
    return path.resolve()


def rebirth(*args: str) -> str:
    done = subprocess.run([str(binary()), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"rebirth {' '.join(args)}: {done.stderr.strip()[-600:]}")
    return done.stdout


def inspect(path: Path) -> dict:
    """nodes, macs (None when some node has no MAC formula), ops."""
    r = json.loads(rebirth("inspect", str(path), "--format", "json"))
    macs = r.get("macs")
    if r.get("nodes_with_unknown_macs"):
        macs = None
    return {"nodes": int(r["nodes"]), "macs": macs, "ops": r.get("ops", {})}


def verify(a: Path, b: Path, inputs: Path) -> float:
    """Max relative output error of b against a in rebirth's runtime (`rebirth verify`)."""
    done = subprocess.run([str(binary()), "verify", str(a), str(b), "--inputs", str(inputs),
                           "--threads", "2", "--format", "json"], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"rebirth verify {a} {b}: {done.stderr.strip()[-600:]}")
    return max(o["max_rel_error"] for o in json.loads(done.stdout)["outputs"])


def gmacs(m) -> str:
    return "—" if m is None or (isinstance(m, float) and math.isnan(m)) else f"{m / 1e9:.3f}"


# --------------------------------------------------------------------------------------------
# onnxruntime


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


def feeds_for(name: str, path: Path) -> dict:
    if name in models.MODELS:
        return models.make_inputs(name)
    s = ort_session(path, "ORT_DISABLE_ALL")
    rng = np.random.default_rng(0)
    return {i.name: rng.standard_normal([d if isinstance(d, int) and d > 0 else 1 for d in i.shape]).astype(np.float32)
            for i in s.get_inputs()}


def max_rel_err(ref: list, got: list) -> float:
    err = 0.0
    for a, b in zip(ref, got):
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        err = max(err, float(np.abs(a64 - b64).max() / max(np.abs(a64).max(), 1e-30)))
    return err


def ort_latency(variants: dict[str, Path], feeds: dict, rounds: int, runs: int) -> dict[str, tuple[float, float, float]]:
    """(median over rounds of each round's median, fastest run, median of the runs' CPU time);
    variants interleaved within every round. With one intra-op thread onnxruntime computes on
    the calling thread, so its thread CPU time is the inference's CPU time: unlike wall-clock
    time it leaves out time spent waiting for a CPU, which a shared machine adds unevenly."""
    sessions = {k: ort_session(p, "ORT_ENABLE_ALL") for k, p in variants.items()}
    for s in sessions.values():
        for _ in range(3):
            s.run(None, feeds)
    medians: dict[str, list[float]] = {k: [] for k in sessions}
    cpu: dict[str, list[float]] = {k: [] for k in sessions}
    fastest = {k: math.inf for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            times = []
            for _ in range(runs):
                c = time.thread_time()
                t = time.perf_counter()
                s.run(None, feeds)
                times.append((time.perf_counter() - t) * 1e3)
                cpu[k].append((time.thread_time() - c) * 1e3)
            medians[k].append(statistics.median(times))
            fastest[k] = min(fastest[k], min(times))
    return {k: (statistics.median(v), fastest[k], statistics.median(cpu[k])) for k, v in medians.items()}


def rebirth_latency(paths: dict[str, Path], inputs: Path, rounds: int, runs: int) -> dict[str, tuple[float, float, float]]:
    """(median over rounds of each round's p50, fastest run, median over rounds of the CPU-time
    p50) of `rebirth bench --threads 1`, a fresh process per variant and round, variants
    interleaved within every round."""
    medians: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    fastest = {k: math.inf for k in paths}
    for _ in range(rounds):
        for k, p in paths.items():
            out = json.loads(rebirth("bench", str(p), "--threads", "1", "--runs", str(runs), "--warmup", "2",
                                     "--format", "json", "--inputs", str(inputs)))
            medians[k].append(out["p50_ms"])
            cpu[k].append(out["cpu_p50_ms"])
            fastest[k] = min(fastest[k], out["min_ms"])
    return {k: (statistics.median(v), fastest[k], statistics.median(cpu[k])) for k, v in medians.items()}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --------------------------------------------------------------------------------------------
# Part exact: the exact slimming issue


REUSE = False


def optimize(src: Path, dst: Path, *flags: str) -> dict:
    """Runs `rebirth optimize` and returns its JSON report (kept beside the output as
    OUT.report.json; with --reuse an output that already has one is not made again)."""
    saved = dst.with_name(dst.name + ".report.json")
    if REUSE and dst.is_file() and saved.is_file():
        return json.loads(saved.read_text())
    out = rebirth("optimize", str(src), str(dst), "--format", "json", *flags)
    saved.write_text(out)
    return json.loads(out)


def count(report: dict, pass_name: str) -> int:
    return sum(1 for c in report["run"]["changes"] if c["pass"] == pass_name)


def part_exact(paths: dict[str, Path], work: Path, args) -> None:
    size_rows, ort_rows, rt_rows = [], [], []
    for name, src in paths.items():
        print(f"  [{time.strftime('%H:%M:%S')}] {name}: variants", file=sys.stderr, flush=True)
        v = {"original": src}
        v["rebirth"] = work / f"{name}.rebirth.onnx"
        optimize(src, v["rebirth"])
        v["+branch"] = work / f"{name}.branch.onnx"
        nb = count(optimize(src, v["+branch"], "--enable", "branch-slim"), "branch-slim")
        v["+contrib"] = work / f"{name}.contrib.onnx"   # --allow-contrib-ops: FusedConv/FusedGemm
        optimize(src, v["+contrib"], "--allow-contrib-ops")
        v["onnxsim"] = work / f"{name}.onnxsim.onnx"
        done = subprocess.CompletedProcess([], 0) if REUSE and v["onnxsim"].is_file() else \
            subprocess.run([sys.executable, "-m", "onnxsim", str(src), str(v["onnxsim"])],
                           capture_output=True, text=True)
        if done.returncode != 0:
            print(f"onnxsim failed on {name}: {done.stderr.strip()[-300:]}", file=sys.stderr)
            del v["onnxsim"]
        for level, key in (("ORT_ENABLE_BASIC", "ort-basic"), ("ORT_ENABLE_EXTENDED", "ort-ext")):
            v[key] = work / f"{name}.{key}.onnx"
            ort_session(src, level, save=v[key])
        feeds = feeds_for(name, src)
        reference = ort_session(src, "ORT_DISABLE_ALL").run(None, feeds)
        for k, p in v.items():
            if k.startswith("ort-"):
                info = {"nodes": len(onnx.load(str(p)).graph.node), "macs": math.nan}
            else:
                info = inspect(p)
            got = ort_session(p, "ORT_DISABLE_ALL").run(None, feeds)
            err = max_rel_err(reference, got) if k != "original" else 0.0
            label = f"+branch ({nb} merges)" if k == "+branch" else k
            size_rows.append((name, label, info["nodes"], info["macs"], err))
        print(f"  [{time.strftime('%H:%M:%S')}] {name}: onnxruntime latency", file=sys.stderr, flush=True)
        lat = ort_latency(v, feeds, args.rounds, args.runs)
        for k, (ms, lo, cpu) in lat.items():
            ort_rows.append((name, k, ms, ms / lat["original"][0], lo, lo / lat["original"][1],
                             cpu, cpu / lat["original"][2]))

        # rebirth's runtime: .tmf with and without branch-slim and fuse-activation
        inputs = work / f"{name}.inputs.npz"
        np.savez(inputs, **feeds)
        rt = {"default.onnx": v["rebirth"]}
        notes = {"default.onnx": ""}
        for key, flags in (("tmf-neither", ["--disable", "branch-slim,fuse-activation"]),
                           ("tmf-branch", ["--disable", "fuse-activation"]),
                           ("tmf-fuse", ["--disable", "branch-slim"]),
                           ("tmf-both", [])):
            rt[key] = work / f"{name}.{key}.tmf"
            rep = optimize(src, rt[key], *flags)
            notes[key] = f"{count(rep, 'branch-slim')} merges, {count(rep, 'fuse-activation')} fusions"
        print(f"  [{time.strftime('%H:%M:%S')}] {name}: rebirth latency", file=sys.stderr, flush=True)
        lat = rebirth_latency(rt, inputs, args.rebirth_rounds, args.rebirth_runs)
        for k, p in rt.items():
            info = inspect(p)
            err = verify(src, p, inputs)
            (ms, lo, cpu), (ms0, lo0, cpu0) = lat[k], lat["tmf-neither"]
            rt_rows.append((name, k, notes[k], info["nodes"], err, ms, ms / ms0, lo, lo / lo0, cpu, cpu / cpu0))

    print("\n### Size and exactness (nodes, GMACs from `rebirth inspect`; ORT-saved models: node count only)\n")
    print("| model | variant | nodes | GMACs | max rel error (ORT) |")
    print("|---|---|---:|---:|---:|")
    for name, k, nodes, macs, err in size_rows:
        print(f"| {name} | {k} | {nodes} | {gmacs(macs)} | {err:.1e} |")
    print(f"\n### onnxruntime latency (1 thread, ORT_ENABLE_ALL, {args.rounds} interleaved rounds x "
          f"{args.runs} runs, median of round medians; CPU: median thread CPU time per run)\n")
    print("| model | variant | median ms | vs original | min ms | vs original | CPU ms | vs original |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, k, ms, ratio, lo, lratio, cpu, cratio in ort_rows:
        print(f"| {name} | {k} | {ms:.2f} | {ratio:.3f}x | {lo:.2f} | {lratio:.3f}x | {cpu:.2f} | {cratio:.3f}x |")
    print(f"\n### rebirth runtime latency (`rebirth bench --threads 1`, {args.rebirth_rounds} interleaved "
          f"rounds x {args.rebirth_runs} runs, median of p50s; CPU: median of the CPU-time p50s; "
          f"error: `rebirth verify` against the original)\n")
    print("| model | variant | changes | nodes | max rel error | median ms | vs tmf-neither | min ms | vs tmf-neither "
          "| CPU ms | vs tmf-neither |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, k, note, nodes, err, ms, ratio, lo, lratio, cpu, cratio in rt_rows:
        print(f"| {name} | {k} | {note} | {nodes} | {err:.1e} | {ms:.2f} | {ratio:.3f}x | {lo:.2f} | {lratio:.3f}x "
              f"| {cpu:.2f} | {cratio:.3f}x |")


# --------------------------------------------------------------------------------------------
# Part fit: the approximate slimming issue


def reported_error(report: dict) -> tuple[float | None, int, int]:
    """The last output_error the optimizer recorded for an applied approximate change, and the
    numbers of applied and skipped approximate changes."""
    fit = [c for c in report["run"]["changes"] if c["pass"] in ("stream-slim-fit", "branch-slim-fit")]
    errs = [c["metrics"]["output_error"] for c in fit if "output_error" in c.get("metrics", {})]
    skipped = [s for s in report["run"].get("skipped", [])
               if s.get("pass") in ("stream-slim-fit", "branch-slim-fit")]
    return (errs[-1] if errs else None), len(fit), len(skipped)


def part_fit(name: str, src: Path, work: Path, args) -> list[str]:
    print(f"  [{time.strftime('%H:%M:%S')}] {name}: fit variants", file=sys.stderr, flush=True)
    feeds = feeds_for(name, src)
    inputs = work / f"{name}.inputs.npz"
    np.savez(inputs, **feeds)
    onnx_v = {"original": src}
    tmf_v = {"original": src}           # the original .onnx, run as it is
    notes: dict[str, tuple] = {"original": (None, 0, 0, "")}
    onnx_v["exact"] = work / f"{name}.exact.onnx"
    optimize(src, onnx_v["exact"], "--preset", "exact")
    tmf_v["exact"] = work / f"{name}.exact.tmf"
    optimize(src, tmf_v["exact"], "--preset", "exact")
    notes["exact"] = (None, 0, 0, "")
    for entry in args.budgets.split(","):
        # "E" runs --preset slim; ":stream" without branch-slim-fit (the stem merges only);
        # ":same" / ":composite" with that stream-slim-fit.kernel (default auto: the same-size
        # kernel, the composite one where that is skipped)
        budget, *flags = entry.split(":")
        kernels = [f for f in flags if f in ("same", "composite", "auto")]
        key = f"slim {budget}" + (" stream-slim-fit only" if "stream" in flags else "") + "".join(f" kernel={k}" for k in kernels)
        dst = work / f"{name}.slim-{budget}{''.join('-' + f for f in flags)}.onnx"
        extra = ["--disable", "branch-slim-fit"] if "stream" in flags else []
        for k in kernels:
            extra += ["--pass-option", f"stream-slim-fit.kernel={k}"]
        try:
            rep = optimize(src, dst, "--preset", "slim", "--calibration-random", str(args.calibration),
                           "--max-error", budget, "--threads", str(args.fit_threads), *extra)
        except RuntimeError as e:
            print(f"FAILED: {e}", file=sys.stderr)
            notes[key] = (None, 0, 0, f"failed: {str(e)[-200:]}")
            continue
        err, applied, skipped = reported_error(rep)
        took = sum(r["seconds"] for r in rep["run"]["runs"])   # the passes' own time, as reported
        notes[key] = (err, applied, skipped, f"{took:.0f} s")
        onnx_v[key] = dst
        tmf_v[key] = dst.with_suffix(".tmf")
        optimize(dst, tmf_v[key])
    if args.optimize_only:
        return []
    print(f"  [{time.strftime('%H:%M:%S')}] {name}: latency", file=sys.stderr, flush=True)
    lat_ort = ort_latency(onnx_v, feeds, args.rounds, args.runs)
    lat_rt = rebirth_latency(tmf_v, inputs, args.rebirth_rounds, args.rebirth_runs)
    reference = ort_session(src, "ORT_DISABLE_ALL").run(None, feeds)
    rows = []
    for key in notes:
        if key not in onnx_v:
            rows.append(f"| {name} | {key} | — | — | — | — | — | — | — | — | — | — | {notes[key][3]} |")
            continue
        info = inspect(onnx_v[key])
        ops = info["ops"]
        e_ort = max_rel_err(reference, ort_session(onnx_v[key], "ORT_DISABLE_ALL").run(None, feeds)) \
            if key != "original" else 0.0
        e_ver = verify(src, onnx_v[key], inputs) if key != "original" else 0.0
        rep_err, applied, skipped, took = notes[key]
        rows.append(
            f"| {name} | {key} | {info['nodes']} / {ops.get('Conv', 0)} / {ops.get('LRN', 0)} / "
            f"{ops.get('MaxPool', 0)} | {gmacs(info['macs'])} | {applied} / {skipped} | "
            f"{'—' if rep_err is None else f'{rep_err:.1e}'} | {e_ver:.1e} | {e_ort:.1e} | "
            f"{lat_ort[key][0]:.2f} ({lat_ort[key][1]:.2f}) | {lat_ort['original'][0] / lat_ort[key][0]:.2f}x "
            f"({lat_ort['original'][1] / lat_ort[key][1]:.2f}x) | "
            f"{lat_rt[key][0]:.2f} ({lat_rt[key][1]:.2f}) | {lat_rt['original'][0] / lat_rt[key][0]:.2f}x "
            f"({lat_rt['original'][1] / lat_rt[key][1]:.2f}x) | {took} |")
    return rows


def print_fit(rows: list[str], args) -> None:
    print(f"\n### Approximate slimming (`--preset slim --calibration-random {args.calibration}"
          f" --max-error E`; ORT: 1 thread, ORT_ENABLE_ALL, {args.rounds}x{args.runs} runs; rebirth: "
          f"`rebirth bench --threads 1` of the original .onnx and of each variant's .tmf, "
          f"{args.rebirth_rounds}x{args.rebirth_runs} runs; interleaved)\n")
    print("| model | variant | nodes / Conv / LRN / MaxPool | GMACs | fits applied / skipped | "
          "error reported (held-out) | error `rebirth verify` | error ORT | ORT ms median (min) | "
          "ORT speed-up median (min) | rebirth ms median (min) | rebirth speed-up median (min) | fit time |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(r)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["exact", "fit", "all"], default="all")
    parser.add_argument("--models", default=",".join(MODELS + [CAFFE]), help="part exact")
    parser.add_argument("--fit-corpus", default="openwakeword__embedding_model.onnx",
                        help="trained corpus models (file names in $REBIRTH_CORPUS) for part fit")
    parser.add_argument("--fit-caffe", action=argparse.BooleanOptionalAction, default=True,
                        help="part fit: include the Caffe-style GoogLeNet (--no-fit-caffe: the corpus models only)")
    parser.add_argument("--budgets", default="1e-3,1e-2,5e-2",
                        help="max-error budgets; E:stream for stream-slim-fit alone (no branch-slim-fit), E:same or E:composite (or E:stream:same) "
                             "with that stream-slim-fit.kernel (default auto)")
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--fit-threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (ORT)")
    parser.add_argument("--runs", type=int, default=4, help="timed runs per round (ORT)")
    parser.add_argument("--rebirth-rounds", type=int, default=10)
    parser.add_argument("--rebirth-runs", type=int, default=4)
    parser.add_argument("--work", type=Path, help="folder for the variants (default: a new temporary one)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse variants already in --work (the slim fits take minutes)")
    parser.add_argument("--optimize-only", action="store_true", help="part fit: make the variants, time nothing")
    args = parser.parse_args()
    global REUSE
    REUSE = args.reuse

    print(f"# bench/slimming --part {args.part}  {time.strftime('%Y-%m-%d %H:%M')}  "
          f"load average at start: {load_average()}  ({os.cpu_count()} cores, shared)")
    print(f"rebirth: {rebirth('--version').strip()} ({binary()}); "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    work = args.work or Path(tempfile.mkdtemp(prefix="rebirth-slimming-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.part in ("exact", "all"):
        names = args.models.split(",")
        wanted = [n for n in names if n in models.MODELS]
        paths = dict(models.ensure_models(wanted, models.default_cache())) if wanted else {}
        if CAFFE in names:
            paths[CAFFE] = caffe_googlenet.ensure()
        part_exact({n: paths[n] for n in names if n in paths}, work, args)
        print(f"\nload average: {load_average()}")
    if args.part in ("fit", "all"):
        rows = part_fit(CAFFE, caffe_googlenet.ensure(), work, args) if args.fit_caffe else []
        for f in filter(None, args.fit_corpus.split(",")):
            try:
                rows += part_fit(Path(f).stem, CORPUS / f, work, args)
            except Exception as e:  # noqa: BLE001 - a corpus model the passes cannot take is reported
                rows.append(f"| {Path(f).stem} | — | failed: {str(e)[-300:]} |")
        print_fit(rows, args)
    print(f"\nload average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
