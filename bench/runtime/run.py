#!/usr/bin/env python3
"""How fast is rebirth's runtime against onnxruntime on whole CNNs?

Measures, per model and thread count T, on the same seeded input:
  rebirth   rebirth bench M --threads T --runs R --warmup W --format json   (the release binary;
            the model as given: its runtime rewrites nothing, so BatchNormalization stays)
  ort-off   onnxruntime InferenceSession, graph_optimization_level ORT_DISABLE_ALL
  ort-all   onnxruntime InferenceSession, graph_optimization_level ORT_ENABLE_ALL
with intra_op_num_threads = T and inter_op_num_threads = 1 for onnxruntime. The variants are
interleaved: each of --rounds rounds runs every variant once, in an order that rotates from round to
round, so drift in the machine's state hits them all alike. In a round each variant makes W untimed
runs, then R timed runs (rebirth in a fresh `rebirth bench` process; onnxruntime in this process,
its sessions made once per model and T); a round's p50 is the nearest-rank median of its R runs,
as `rebirth bench` computes it, and the reported p50 is the median of the rounds' p50s.

It also runs rebirth (`rebirth run --inputs x.npz --output out.npz`) and both onnxruntime
variants on the same seeded input and prints the max relative error, max|a - b| / max|a| as in
`rebirth verify`, with ORT_DISABLE_ALL as the reference.

Then a table: rebirth p50, ORT p50s, the ratios rebirth/ORT-disable and rebirth/ORT-enable, and
whether the runtime issue's targets are met: within 1.5x of ORT_DISABLE_ALL and within 2x of
ORT_ENABLE_ALL.

Models come from bench/models.py (torchvision architectures with random weights, BatchNorm kept;
generated on first use into ~/.cache/rebirth-bench/models, which needs torch: see bench/README.md).

    python bench/runtime/run.py [--models googlenet,resnet50,mobilenet-v2] [--threads 1,2]
                                [--rounds 5] [--runs 20] [--warmup 3] [--cache DIR]

Run it with the venv's python (onnxruntime, onnx, numpy) and a release build
(.build/release/rebirth, or $REBIRTH_BIN). The header says which OpenBLAS kernels rebirth gets:
OpenBLAS picks them for the CPU it detects unless $OPENBLAS_CORETYPE forces a core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import models  # noqa: E402  (bench/models.py)

DEFAULT_MODELS = ["googlenet", "resnet50", "mobilenet-v2"]
VARIANTS = ["rebirth", "ort-off", "ort-all"]
TARGET_OFF, TARGET_ALL = 1.5, 2.0  # rebirth/ORT_DISABLE_ALL and rebirth/ORT_ENABLE_ALL at most
NOISY = 1.25  # flag a variant whose round p50s differ by more than this factor


# --------------------------------------------------------------------------------------------
# Measuring


def nearest_rank(values: list[float], p: float) -> float:
    """The smallest value with at least p% of the values at or below it (as `rebirth bench`)."""
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


@dataclass
class Timings:
    round_p50: list[float] = field(default_factory=list)   # ms, one per round
    minimum: float = math.inf                               # ms, over every timed run
    peak_rss: int = 0                                       # bytes (rebirth only)
    error: str | None = None

    @property
    def p50(self) -> float:
        return statistics.median(self.round_p50) if self.round_p50 and not self.error else math.nan


def ort_session(path: Path, threads: int, optimize: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_ort(session, feeds: dict, runs: int, warmup: int, into: Timings) -> None:
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1e3)
    into.round_p50.append(nearest_rank(times, 50))
    into.minimum = min(into.minimum, min(times))


# `rebirth bench` reports its ru_maxrss, and a process forked (or vforked) from this Python process,
# which holds onnxruntime's sessions, inherits its high-water mark through exec: mobilenet-v2 then
# "peaks" at 426 MB instead of 67 MB. So rebirth runs as the child of a small shell (not exec'd by
# it: the command is not the script's last), whose ~1 MB is the floor under the figure.
SMALL_PARENT = ["/bin/sh", "-c", '"$@"; exit $?', "sh"]


def time_rebirth(binary: Path, model: Path, inputs: Path, threads: int, runs: int, warmup: int,
                 into: Timings) -> None:
    if into.error:
        return
    argv = [str(binary), "bench", str(model), "--threads", str(threads), "--runs", str(runs),
            "--warmup", str(warmup), "--format", "json", "--inputs", str(inputs)]
    done = subprocess.run(SMALL_PARENT + argv, capture_output=True, text=True, errors="replace")
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        into.error = f"exit {done.returncode}: {lines[-1] if lines else '(no message)'}"
        return
    report = json.loads(done.stdout)
    into.round_p50.append(report["p50_ms"])
    into.minimum = min(into.minimum, report["min_ms"])
    into.peak_rss = max(into.peak_rss, report["peak_rss_bytes"])


def max_rel_err(reference, other) -> float:
    import numpy as np

    ref = np.asarray(reference, np.float64)
    diff = np.abs(np.asarray(other, np.float64) - ref).max()
    return float(diff / max(np.abs(ref).max(), np.finfo(np.float32).tiny))


def agreement(binary: Path, path: Path, inputs: Path, feeds: dict, work: Path) -> str:
    """One line: max rel errors of rebirth and ORT_ENABLE_ALL against ORT_DISABLE_ALL."""
    import numpy as np

    off, on = ort_session(path, 1, False), ort_session(path, 1, True)
    names = [o.name for o in off.get_outputs()]
    ref = dict(zip(names, off.run(None, feeds)))
    opt = dict(zip(names, on.run(None, feeds)))
    out = work / "rebirth-out.npz"
    done = subprocess.run([str(binary), "run", str(path), "--inputs", str(inputs), "--output",
                           str(out), "--threads", "1"], capture_output=True, text=True,
                          errors="replace")
    ort_err = max(max_rel_err(ref[k], opt[k]) for k in names)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return (f"rebirth run FAILED ({lines[-1] if lines else done.returncode}); "
                f"ORT enable-all {ort_err:.1e}")
    got = np.load(out)
    err = max(max_rel_err(ref[k], got[k]) for k in names)
    return f"rebirth {err:.1e}, ORT enable-all {ort_err:.1e}"


# --------------------------------------------------------------------------------------------
# Reporting


def locate_binary() -> Path:
    env = os.environ.get("REBIRTH_BIN")
    path = Path(env) if env else REPO / ".build/release/rebirth"
    if path.is_file() and os.access(path, os.X_OK):
        return path.resolve()
    raise SystemExit(f"bench: no release binary at {path}: run `swift build -c release` "
                     "(or set REBIRTH_BIN)")


def environment(binary: Path) -> list[str]:
    import numpy as np
    import onnxruntime as ort

    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "OpenBLAS"
    if sys.platform == "linux":
        package = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libopenblas0-pthread"],
                                 capture_output=True, text=True)
        if package.returncode == 0:
            blas += f" {package.stdout.strip()} (Debian)"
    # OpenBLAS picks its kernels for the CPU it detects (or $OPENBLAS_CORETYPE) when it loads,
    # and says which with OPENBLAS_VERBOSE=2.
    probe = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                           env={**os.environ, "OPENBLAS_VERBOSE": "2"})
    cores = [line.split(":", 1)[1].strip() for line in (probe.stdout + probe.stderr).splitlines()
             if line.startswith("Core:")]
    if cores:
        forced = "OPENBLAS_CORETYPE" in os.environ
        blas += f", {cores[-1]} kernels ({'forced' if forced else 'detected'})"
    settings = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                        if k.startswith(("OPENBLAS_", "OMP_")))
    return [
        f"rebirth {version.stdout.strip()} ({binary})",
        blas + (f"; environment: {settings}" if settings else ""),
        f"onnxruntime {ort.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}",
        f"{platform.platform()}, {cpu}, {os.cpu_count()} CPUs, load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]


def fmt_ms(x: float) -> str:
    return "error" if math.isnan(x) else f"{x:.2f}"


def fmt_ratio(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}x"


def verdict(ratio: float, target: float) -> str:
    return "-" if math.isnan(ratio) else ("met" if ratio <= target else "NOT met")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help=f"comma-separated, from: {', '.join(models.MODELS)}")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--runs", type=int, default=20,
                        help="timed runs per variant and round (default 20)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed runs per variant and round (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the input (default 0)")
    parser.add_argument("--cache", type=Path, default=models.default_cache(),
                        help=f"where the models are (default {models.default_cache()})")
    args = parser.parse_args()
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in models.MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(models.MODELS)}")
    try:
        thread_counts = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        parser.error("--threads takes comma-separated integers")
    if not thread_counts or min(thread_counts) < 1:
        parser.error("--threads must be at least 1")
    if args.rounds < 1 or args.runs < 1 or args.warmup < 0:
        parser.error("--rounds and --runs must be at least 1, --warmup at least 0")
    cache = args.cache.expanduser().resolve()
    if cache == REPO or REPO in cache.parents:
        parser.error("--cache must be outside the repository")

    binary = locate_binary()
    paths = models.ensure_models(names, cache)
    print("rebirth bench/runtime")
    for line in environment(binary):
        print(f"  {line}")
    print(f"  {args.rounds} interleaved rounds x ({args.warmup} untimed + {args.runs} timed runs) "
          "per variant; p50 = median of the rounds' p50s")

    import numpy as np

    rows, noisy = [], []
    with tempfile.TemporaryDirectory(prefix="rebirth-bench-runtime-") as tmp:
        work = Path(tmp)
        for name in names:
            path = paths[name]
            feeds = models.make_inputs(name, seed=args.seed)
            inputs = work / f"{name}-inputs.npz"
            np.savez(inputs, **feeds)
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in feeds.items())
            print(f"\n{name}: {path.name} ({path.stat().st_size / 2**20:.1f} MB), {shapes}")
            print(f"  max rel err against ORT disable-all: "
                  f"{agreement(binary, path, inputs, feeds, work)}", flush=True)
            for threads in thread_counts:
                sessions = {"ort-off": ort_session(path, threads, False),
                            "ort-all": ort_session(path, threads, True)}
                timings = {v: Timings() for v in VARIANTS}
                for r in range(args.rounds):
                    for variant in VARIANTS[r % 3:] + VARIANTS[:r % 3]:
                        if variant == "rebirth":
                            time_rebirth(binary, path, inputs, threads, args.runs, args.warmup,
                                         timings[variant])
                        else:
                            time_ort(sessions[variant], feeds, args.runs, args.warmup,
                                     timings[variant])
                del sessions
                for variant, t in timings.items():
                    if t.error:
                        print(f"  T={threads} {variant:8} {t.error}")
                        continue
                    spread = f"{min(t.round_p50):.2f}..{max(t.round_p50):.2f}"
                    rss = f", peak RSS {t.peak_rss / 2**20:.0f} MB" if t.peak_rss else ""
                    print(f"  T={threads} {variant:8} p50 {t.p50:8.2f} ms  min {t.minimum:8.2f} ms"
                          f"  round p50s {spread} ms{rss}", flush=True)
                p50 = {v: timings[v].p50 for v in VARIANTS}
                noisy += [f"{name} T={threads} {v}" for v, t in timings.items()
                          if not t.error and max(t.round_p50) > NOISY * min(t.round_p50)]
                rows.append((name, threads, p50["rebirth"], p50["ort-off"], p50["ort-all"],
                             p50["rebirth"] / p50["ort-off"], p50["rebirth"] / p50["ort-all"]))

    header = ["model", "threads", "rebirth p50 ms", "ORT disable-all p50 ms",
              "ORT enable-all p50 ms", "rebirth/ORT-disable", "rebirth/ORT-enable",
              f"<= {TARGET_OFF}x disable", f"<= {TARGET_ALL:.0f}x enable"]
    table = [[name, str(threads), fmt_ms(reb), fmt_ms(off), fmt_ms(on), fmt_ratio(r_off),
              fmt_ratio(r_all), verdict(r_off, TARGET_OFF), verdict(r_all, TARGET_ALL)]
             for name, threads, reb, off, on, r_off, r_all in rows]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for line in table:
        print("| " + " | ".join(line) + " |")
    met_off = sum(1 for row in rows if row[5] <= TARGET_OFF)
    met_all = sum(1 for row in rows if row[6] <= TARGET_ALL)
    print(f"\ntargets: within {TARGET_OFF}x of ORT_DISABLE_ALL in {met_off}/{len(rows)} rows, "
          f"within {TARGET_ALL:.0f}x of ORT_ENABLE_ALL in {met_all}/{len(rows)} rows")
    if noisy:
        print(f"noisy (slowest round's p50 over {NOISY}x the fastest's; the machine was busy?): "
              + ", ".join(noisy))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
