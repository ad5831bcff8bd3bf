#!/usr/bin/env python3
"""How much accuracy does each factorization method keep, at each budget, on trained weights?

For each model (MiniLM-L6 with its trained weights, see minilm.py; PP-OCRv4's text recognizer from
the corpus), each method, each budget R and each fitting mode it runs

    rebirth optimize BASE out.onnx --passes METHOD --compression R [--calibration calib.npz]
                     --verify --report r.json --format json
    (prune: --pass-option prune.sparsity=1-R instead of --compression)

and records:
  metric      the task metric, onnxruntime on the original and on out.onnx, evaluation inputs
              disjoint from the calibration inputs: MiniLM: mean and minimum cosine similarity of
              the L2-normalized sentence embeddings (256 sentences); recognizer: the max relative
              output error, max|a - b| / max|a| over the 200 images, the share of time steps
              whose argmax agrees, and (what the targets compare) the character error rate of the
              greedy CTC decoding against the original's decoding
  size        out.onnx's file size, and its parameters against BASE's (from the report)
  layers      the report's per-layer changes of METHOD: how many layers changed, how many were
              measured and skipped, the largest per-layer output error (weight error without
              calibration)
  model err   the report's whole-model error (--verify: on the held-out calibration samples with
              calibration, on `rebirth verify`'s seeded random inputs without), and `rebirth verify
              BASE out.onnx` on the same inputs; "agree" when they are within 10% of each other
  layer errs  (calibration) each changed layer's reported `output_error` (held-out rows) against
              `rebirth verify BASE out.onnx --tensor Y` on the layer's output Y over the same
              held-out samples (rel L2 error, sqrt(Σ‖a − b‖² / Σ‖a‖²)): how many agree within 10%
  latency     `rebirth bench out.onnx --threads 1 --format json` p50 against BASE's, benched right
              before it (the ratio < 1 is faster)

BASE is the model after rebirth's default (exact) pipeline, so the cleanup is not counted as a
gain; the methods are the passes `rebirth passes` lists among factorize-svd, factorize-deepthin,
factorize-kronecker, factorize-conv and prune (others are printed as not available, so the harness
runs today and is complete once the passes land). "weight" mode fits without calibration data;
"calib" mode gives --calibration (fitting and held-out samples, disjoint from the evaluation set).

    python bench/factorize/run.py [--models minilm,ppocr-rec] [--methods ...] [--budgets 0.5,0.25,0.1,0.05]
                                  [--modes weight,calib] [--runs 10] [--cache DIR] [--json results.json]
                                  [--plot docs/images/factorize.png] [--no-verify]

Run with the venv's python (numpy, onnx, onnxruntime; torch and transformers once, to export
MiniLM; matplotlib for --plot) and a release build (.build/release/rebirth or $REBIRTH_BIN).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import minilm  # noqa: E402

METHODS = ["factorize-svd", "factorize-deepthin", "factorize-kronecker", "factorize-conv", "prune"]
BUDGETS = [0.5, 0.25, 0.1, 0.05]
MODES = ["weight", "calib"]
AGREEMENT = 0.10  # reported and `rebirth verify` errors agree within 10%


def rebirth_binary() -> str:
    if os.environ.get("REBIRTH_BIN"):
        return os.environ["REBIRTH_BIN"]
    for candidate in [REPO / ".build" / "release" / "rebirth", REPO / ".build-bench" / "release" / "rebirth"]:
        if candidate.exists():
            return str(candidate)
    raise SystemExit("no rebirth binary: swift build -c release, or set REBIRTH_BIN")


def run(cmd: list[str], timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)


def available_passes(rebirth: str) -> set[str]:
    out = run([rebirth, "passes"]).stdout
    return {line.split()[0] for line in out.splitlines() if line and not line[0].isspace()}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


# --------------------------------------------------------------------------------------------
# Tasks: a model, its evaluation inputs, calibration samples and metric


class Task:
    name: str
    metric_names: tuple[str, ...]
    # Which metric is "higher is better" (cosine) or lower (error), for the summary.
    primary: str
    higher_is_better: bool

    def source(self) -> Path: ...
    def eval_runs(self) -> list[dict[str, np.ndarray]]: ...
    def calibration(self) -> dict[str, np.ndarray]: ...   # one extra leading axis: one sample per index
    def outputs(self, model: Path) -> list[np.ndarray]: ...
    def metric(self, reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict[str, float]: ...


def ort_session(model: Path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class MiniLMTask(Task):
    name = "minilm"
    metric_names = ("cos_mean", "cos_min")
    primary, higher_is_better = "cos_mean", True

    def __init__(self, cache: Path):
        self.cache = cache

    def source(self) -> Path:
        return minilm.ensure_model(self.cache)

    def eval_runs(self):
        b = minilm.batches(minilm.tokenize(self.cache, minilm.sentences("eval")))
        return [{k: b[k][i] for k in minilm.INPUTS} for i in range(len(b["input_ids"]))]

    def calibration(self):
        return minilm.batches(minilm.tokenize(self.cache, minilm.sentences("calibration")))

    def outputs(self, model):
        session = ort_session(model)
        return [session.run([minilm.OUTPUT], feeds)[0] for feeds in self.eval_runs()]

    def metric(self, reference, candidate):
        normalize = lambda xs: np.concatenate(xs) / np.linalg.norm(np.concatenate(xs), axis=1, keepdims=True)
        mean, minimum = minilm.cosine(normalize(reference), normalize(candidate))
        return {"cos_mean": mean, "cos_min": minimum}


class OCRTask(Task):
    """PP-OCRv4's Chinese/English text recognizer (rapidocr's ch_PP-OCRv4_rec_infer.onnx, trained),
    its input fixed at 1×3×48×320; inputs are text lines rendered with DejaVu Sans (matplotlib's
    font) from the sentence generator's words: 200 evaluation lines, 64 calibration lines (from
    the disjoint calibration sentences)."""

    name = "ppocr-rec"
    metric_names = ("max_rel_err", "argmax_agree", "cer")
    # The max relative error of a softmax output saturates near 1 once a step's winner changes.
    # The argmax agreement over time steps rewards a collapsed model: 52.4% of the original's steps
    # are CTC blanks, so a model that outputs blank everywhere (no text at all) scores 0.524. The
    # targets compare the OCR task metric instead: the character error rate of the greedy CTC
    # decoding against the original model's decoding (edit distance / characters, over all lines;
    # 1.0 for a model that reads nothing; lower is better).
    primary, higher_is_better = "cer", False
    CORPUS = "rapidocr-onnxruntime__ch_PP-OCRv4_rec_infer.onnx"
    H, W = 48, 320

    def __init__(self, cache: Path, corpus: Path):
        self.cache, self.corpus = cache, corpus
        self._eval = None

    def source(self) -> Path:
        path = self.cache / "models" / "ppocr-rec-48x320-v1.onnx"
        if path.exists():
            return path
        import onnx
        original = self.corpus / self.CORPUS
        if not original.exists():
            raise SystemExit(f"{original} is missing (set REBIRTH_CORPUS)")
        model = onnx.load(str(original))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        for d, v in zip(dims, [1, 3, self.H, self.W]):
            d.Clear()
            d.dim_value = v
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
        return path

    def _lines(self, kind: str, count: int) -> list[str]:
        words = " ".join(minilm.sentences(kind, 256)).replace(".", "").replace("?", "").split()
        rng = random.Random({"eval": 3, "calibration": 5}[kind])
        lines = []
        while len(lines) < count:
            start = rng.randrange(len(words) - 6)
            text = " ".join(words[start:start + rng.randint(2, 4)])
            if rng.random() < 0.3:
                text += f" {rng.randint(1, 9999)}"
            lines.append(text)
        return lines

    def _render(self, lines: list[str], seed: int) -> np.ndarray:
        from matplotlib import font_manager
        from PIL import Image, ImageDraw, ImageFont
        font_path = font_manager.findfont("DejaVu Sans")
        rng = random.Random(seed)
        out = np.zeros((len(lines), 1, 3, self.H, self.W), dtype=np.float32)
        for i, text in enumerate(lines):
            font = ImageFont.truetype(font_path, rng.randint(26, 36))
            left, top, right, bottom = font.getbbox(text)
            background = rng.randint(190, 255)
            ink = rng.randint(0, 80)
            image = Image.new("RGB", (right - left + 16, bottom - top + 12), (background,) * 3)
            ImageDraw.Draw(image).text((8 - left, 6 - top), text, font=font, fill=(ink,) * 3)
            width = min(self.W, max(1, round(image.width * self.H / image.height)))
            image = image.resize((width, self.H), Image.BILINEAR)
            x = (np.asarray(image, dtype=np.float32) / 255 - 0.5) / 0.5   # PP-OCR's normalization
            out[i, 0, :, :, :width] = x.transpose(2, 0, 1)                # right padding stays 0
        return out

    def eval_runs(self):
        if self._eval is None:
            images = self._render(self._lines("eval", 200), seed=1)
            self._eval = [{"x": images[i]} for i in range(len(images))]
        return self._eval

    def calibration(self):
        return {"x": self._render(self._lines("calibration", 64), seed=2)}

    def outputs(self, model):
        session = ort_session(model)
        name = session.get_outputs()[0].name
        return [session.run([name], feeds)[0] for feeds in self.eval_runs()]

    def metric(self, reference, candidate):
        errors, agree, total = [], 0, 0
        for a, b in zip(reference, candidate):
            scale = np.abs(a).max()
            errors.append(np.abs(a - b).max() / scale if np.isfinite(b).all() else math.inf)
            agree += int((a.argmax(-1) == b.argmax(-1)).sum())
            total += a.shape[0] * a.shape[1]
        edits = sum(edit_distance(ctc_greedy(a), ctc_greedy(b)) for a, b in zip(reference, candidate))
        characters = sum(len(ctc_greedy(a)) for a in reference)
        return {"max_rel_err": float(max(errors)), "argmax_agree": agree / total,
                "cer": edits / max(1, characters)}


def ctc_greedy(output: np.ndarray) -> list[int]:
    """CTC greedy decoding of a [1, T, classes] softmax output: the argmax per step, repeats merged,
    blanks (class 0, PP-OCR's) dropped."""
    decoded, previous = [], -1
    for k in output.reshape(-1, output.shape[-1]).argmax(-1):
        if k != previous and k != 0:
            decoded.append(int(k))
        previous = k
    return decoded


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance (insertions, deletions and substitutions cost 1)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


# --------------------------------------------------------------------------------------------
# One configuration


@dataclass
class Result:
    model: str
    method: str
    mode: str
    budget: float
    ok: bool = False
    error: str = ""
    metric: dict = field(default_factory=dict)
    file_mb: float = math.nan
    params_ratio: float = math.nan          # whole model, after / before (report)
    factorized_ratio: float = math.nan      # changed layers: params after / before
    layers_changed: int = 0
    layers_skipped: int = 0
    layer_error_max: float = math.nan       # per-layer output error (weight error without calibration)
    layer_error_kind: str = ""
    model_error: float = math.nan           # the report's --verify
    verify_error: float = math.nan          # rebirth verify on the same inputs
    # Per changed layer (calibration): (output tensor, report's output_error on the held-out rows,
    # rebirth verify --tensor's rel L2 error over the same held-out samples).
    layer_checks: list = field(default_factory=list)
    latency_ms: float = math.nan
    base_latency_ms: float = math.nan
    seconds: float = math.nan

    @property
    def agrees(self) -> bool | None:
        if not (math.isfinite(self.model_error) and math.isfinite(self.verify_error)):
            return None
        scale = max(self.model_error, self.verify_error)
        return scale == 0 or abs(self.model_error - self.verify_error) <= AGREEMENT * scale

    @property
    def layers_agreeing(self) -> tuple[int, int]:
        good = sum(1 for _, a, b in self.layer_checks if within(a, b))
        return good, len(self.layer_checks)

    @property
    def speed_ratio(self) -> float:
        return self.latency_ms / self.base_latency_ms


def bench_p50(rebirth: str, model: Path, inputs: Path, runs: int) -> float:
    p = run([rebirth, "bench", model, "--threads", 1, "--runs", runs, "--warmup", 3, "--format", "json",
             "--inputs", inputs])
    if p.returncode != 0:
        raise RuntimeError(f"rebirth bench: {p.stderr.strip()[-300:]}")
    return float(json.loads(p.stdout)["p50_ms"])


def within(a: float, b: float) -> bool:
    scale = max(a, b)
    return scale == 0 or abs(a - b) <= AGREEMENT * scale


def reported_layer_errors(changes: list[dict]) -> dict[str, float]:
    """Each changed layer's output tensor and its reported held-out `output_error` (calibration)."""
    reported = {}
    for c in changes:
        m = c["metrics"]
        if m.get("held_out_rows", 0) > 0 and m.get("output_error") is not None and c.get("modified"):
            reported[c["modified"][0]["output"]] = m["output_error"]
    return reported


def verify_runs(rebirth: str, base: Path, out: Path, inputs: list[Path | None], tensors: list[str]) -> list[dict]:
    """`rebirth verify BASE OUT --format json` on each input file (None: random seed 0), comparing the
    outputs and the intermediate `tensors` too."""
    docs = []
    for path in inputs:
        cmd = [rebirth, "verify", base, out, "--format", "json", "--tolerance", "1e30", "--threads", 2]
        if path is not None:
            cmd += ["--inputs", path]
        for name in tensors:
            cmd += ["--tensor", name]
        p = run(cmd)
        try:
            docs.append(json.loads(p.stdout))
        except json.JSONDecodeError:
            raise RuntimeError(f"rebirth verify: {p.stderr.strip()[-300:]}")
    return docs


def verify_error(docs: list[dict]) -> float:
    """The largest max rel error over the outputs and runs."""
    values = [o.get("max_rel_error") for doc in docs for o in doc["outputs"]]
    return max((math.inf if e is None else e for e in values), default=0.0)


def verify_layers(docs: list[dict], reported: dict[str, float]) -> list:
    """Each layer's reported error against `verify --tensor` on its output over the same runs:
    sqrt(Σ‖a − b‖² / Σ‖a‖²) from the per-sample norms."""
    sums = {name: [0.0, 0.0] for name in reported}
    for doc in docs:
        for t in doc["tensors"]:
            e, ref = t.get("l2_error"), t.get("l2_reference")
            sums[t["name"]][0] += math.inf if e is None else e * e
            sums[t["name"]][1] += 0.0 if ref is None else ref * ref
    return [(name, reported[name], math.sqrt(d / r) if r > 0 else math.sqrt(d)) for name, (d, r) in sums.items()]


def configure(rebirth, task, base, work, method, mode, budget, calib_npz, held_out, bench_inputs,
              reference, args) -> Result:
    r = Result(task.name, method, mode, budget)
    tag = f"{method}-{mode}-{budget:g}"
    out, report = work / f"{tag}.onnx", work / f"{tag}.json"
    cmd = [rebirth, "optimize", base, out, "--passes", method, "--report", report, "--format", "json",
           "--threads", args.threads]
    if method == "prune":
        cmd += ["--pass-option", f"prune.sparsity={1 - budget:g}"]
    else:
        cmd += ["--compression", f"{budget:g}"]
    if mode == "calib":
        cmd += ["--calibration", calib_npz]
    for option in args.pass_option:
        if option.startswith(method + "."):
            cmd += ["--pass-option", option]
    if not args.no_verify:
        cmd += ["--verify"]
    start = time.monotonic()
    p = run(cmd)
    r.seconds = time.monotonic() - start
    if p.returncode != 0:
        r.error = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1][:200] if (p.stderr or p.stdout) else f"exit {p.returncode}"
        return r
    doc = json.loads(report.read_text())
    r.file_mb = out.stat().st_size / 1e6
    r.params_ratio = doc["after"]["parameterCount"] / doc["before"]["parameterCount"]
    changes = [c for c in doc["run"]["changes"] if c["pass"] == method]
    skipped = [c for c in doc["run"].get("skipped", []) if c["pass"] == method]
    r.layers_changed, r.layers_skipped = len(changes), len(skipped)
    before = sum(c["metrics"].get("params_before", 0) for c in changes)
    after = sum(c["metrics"].get("params_after", 0) for c in changes)
    if before:
        r.factorized_ratio = after / before
    for kind in ("output_error", "weight_error"):
        values = [c["metrics"][kind] for c in changes if kind in c["metrics"] and c["metrics"][kind] is not None]
        values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if values:
            r.layer_error_max, r.layer_error_kind = max(values), kind
            break
    if doc.get("outputError") is not None:
        r.model_error = doc["outputError"]
        reported = reported_layer_errors(changes) if mode == "calib" else {}
        docs = verify_runs(rebirth, base, out, held_out if mode == "calib" else [None], list(reported))
        r.verify_error = verify_error(docs)
        r.layer_checks = verify_layers(docs, reported)
    r.metric = task.metric(reference, task.outputs(out))
    base_p50, p50 = [], []
    for _ in range(args.rounds):
        base_p50.append(bench_p50(rebirth, base, bench_inputs, args.runs))
        p50.append(bench_p50(rebirth, out, bench_inputs, args.runs))
    r.base_latency_ms, r.latency_ms = float(np.median(base_p50)), float(np.median(p50))
    r.ok = True
    if not args.keep:
        out.unlink(missing_ok=True)
    return r


# --------------------------------------------------------------------------------------------
# Output


def fmt(x: float, spec: str = ".3f") -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def table(results: list[Result], task: Task) -> str:
    head = ["method", "fit", "R"] + list(task.metric_names) + [
        "file MB", "params kept", "layers (changed/skipped)", "max layer err", "model err (report)",
        "rebirth verify", "agree", "layer errs agree", "latency / base"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if not r.ok:
            rows.append(f"| {r.method} | {r.mode} | {r.budget:g} | " + f"failed: {r.error} |" + " |" * (len(head) - 4))
            continue
        metric = [fmt(r.metric.get(k), ".4f" if k.startswith("cos") or k in ("argmax_agree", "cer") else ".3g")
                  for k in task.metric_names]
        agree = {None: "—", True: "yes", False: "**no**"}[r.agrees]
        good, checked = r.layers_agreeing
        layers_agree = f"{good}/{checked}" if checked else "—"
        rows.append("| " + " | ".join([
            r.method, r.mode, f"{r.budget:g}", *metric, fmt(r.file_mb, ".1f"), fmt(r.params_ratio, ".3f"),
            f"{r.layers_changed}/{r.layers_skipped}",
            fmt(r.layer_error_max, ".3g") + (" (w)" if r.layer_error_kind == "weight_error" else ""),
            fmt(r.model_error, ".3g"), fmt(r.verify_error, ".3g"), agree, layers_agree,
            f"{fmt(r.speed_ratio, '.2f')} ({fmt(r.latency_ms, '.1f')}/{fmt(r.base_latency_ms, '.1f')} ms)",
        ]) + " |")
    return "\n".join(rows)


def targets(results: list[Result], task: Task) -> list[str]:
    """The issue's targets, checked on what ran."""
    ok = [r for r in results if r.ok]
    better = (lambda a, b: a > b) if task.higher_is_better else (lambda a, b: a < b)
    key = task.primary
    lines = []
    by = {(r.method, r.mode, r.budget): r for r in ok}
    budgets = sorted({r.budget for r in ok}, reverse=True)
    for budget in budgets:
        plain = by.get(("factorize-svd", "weight", budget))
        rest = [r for r in ok if r.budget == budget and r is not plain]
        if plain and rest:
            best = max(rest, key=lambda r: r.metric[key] if task.higher_is_better else -r.metric[key])
            lines.append(f"R={budget:g}: best method {best.method}/{best.mode} {key} {best.metric[key]:.4g} "
                         f"vs plain weight-only SVD {plain.metric[key]:.4g}: "
                         f"{'met' if better(best.metric[key], plain.metric[key]) else 'NOT met'}")
        for method in sorted({r.method for r in ok}):
            w, c = by.get((method, "weight", budget)), by.get((method, "calib", budget))
            if w and c:
                lines.append(f"R={budget:g} {method}: calib {c.metric[key]:.4g} vs weight {w.metric[key]:.4g}: "
                             f"{'met' if better(c.metric[key], w.metric[key]) else 'NOT met'}")
    if task.name == "minilm":
        half = [r for r in ok if r.budget == 0.5]
        if half:
            best = max(half, key=lambda r: r.metric["cos_mean"])
            lines.append(f"MiniLM at 50%: best mean cosine {best.metric['cos_mean']:.4f} ({best.method}/{best.mode}) "
                         f"≥ 0.88: {'met' if best.metric['cos_mean'] >= 0.88 else 'NOT met'}")
    small = [r for r in ok if r.budget <= 0.25]
    if small:
        faster = sum(r.speed_ratio < 1 for r in small)
        lines.append(f"R ≤ 0.25 faster than unfactorized in rebirth: {faster}/{len(small)} configurations "
                     f"(ratios {min(r.speed_ratio for r in small):.2f} to {max(r.speed_ratio for r in small):.2f})")
    checked = [r for r in ok if r.agrees is not None]
    if checked:
        agree = sum(bool(r.agrees) for r in checked)
        lines.append(f"reported whole-model error agrees with rebirth verify within 10%: {agree}/{len(checked)}")
    layer_checks = [check for r in ok for check in r.layer_checks]
    if layer_checks:
        good = sum(1 for _, a, b in layer_checks if within(a, b))
        worst = max(layer_checks, key=lambda c: abs(c[1] - c[2]) / max(c[1], c[2], 1e-30))
        lines.append(f"reported per-layer output errors agree with rebirth verify --tensor within 10%: {good}/{len(layer_checks)} "
                     f"layers (largest gap: {worst[0]} reported {worst[1]:.4g}, verify {worst[2]:.4g})")
    return lines


PANELS = [  # (model, metric, error from it, y label)
    ("minilm", "cos_mean", lambda v: 1 - v, "1 − mean cosine similarity (256 sentences)"),
    ("ppocr-rec", "cer", lambda v: v, "character error rate against the original (200 lines)"),
    ("ppocr-rec", "argmax_agree", lambda v: 1 - v, "1 − argmax agreement (time steps)"),
]


def plot(results: list[Result], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [p for p in PANELS if any(r.model == p[0] and r.ok for r in results)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.6), squeeze=False)
    for ax, (name, key, error, label) in zip(axes[0], panels):
        ok = [r for r in results if r.model == name and r.ok]
        for color, method in enumerate(METHODS):
            for mode, style in (("weight", "--"), ("calib", "-")):
                line = sorted((r for r in ok if r.method == method and r.mode == mode), key=lambda r: r.file_mb)
                if line:
                    ax.plot([r.file_mb for r in line], [max(error(r.metric[key]), 1e-6) for r in line], style,
                            color=f"C{color}", marker="o" if mode == "calib" else "x",
                            label=f"{method} ({'calibration' if mode == 'calib' else 'weight-only'})")
        ax.set_xlabel("file size (MB)")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.set_title(f"{name}: error against size (R = 50/25/10/5%)", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="minilm,ppocr-rec")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--budgets", default=",".join(f"{b:g}" for b in BUDGETS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--runs", type=int, default=10, help="timed runs per rebirth bench")
    parser.add_argument("--rounds", type=int, default=1, help="bench rounds (base, out) per configuration")
    parser.add_argument("--threads", type=int, default=2, help="threads for rebirth optimize's calibration")
    parser.add_argument("--cache", type=Path, default=minilm.DEFAULT_CACHE)
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("REBIRTH_CORPUS", Path.home() / ".cache" / "rebirth-corpus")))
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument("--plot", type=Path, help="write the error-against-size plot (PNG) here")
    parser.add_argument("--no-verify", action="store_true", help="skip --verify and the rebirth verify check")
    parser.add_argument("--keep", action="store_true", help="keep the optimized models in the work folder")
    parser.add_argument("--pass-option", action="append", default=[],
                        help="PASS.KEY=VALUE given to that method's runs (e.g. factorize-deepthin.layout=square)")
    args = parser.parse_args()

    rebirth = rebirth_binary()
    listed = available_passes(rebirth)
    methods = [m for m in args.methods.split(",") if m]
    missing = [m for m in methods if m not in listed]
    methods = [m for m in methods if m in listed]
    budgets = [float(b) for b in args.budgets.split(",")]
    modes = args.modes.split(",")
    print(f"rebirth: {rebirth}")
    print(f"methods: {', '.join(methods) or 'none'}; not available: {', '.join(missing) or 'none'}")
    print(f"budgets: {budgets}; modes: {modes}\n")

    all_tasks = {"minilm": lambda: MiniLMTask(args.cache), "ppocr-rec": lambda: OCRTask(args.cache, args.corpus)}
    tasks = {name: all_tasks[name]() for name in args.models.split(",")}
    results: list[Result] = []
    work_root = Path(tempfile.mkdtemp(prefix="rebirth-factorize-"))
    for name, task in tasks.items():
        work = work_root / name
        work.mkdir()
        source = task.source()
        base = work / "base.onnx"
        p = run([rebirth, "optimize", source, base])
        if p.returncode != 0:
            raise SystemExit(f"{name}: rebirth optimize (default pipeline) failed: {p.stderr[-500:]}")
        calibration = task.calibration()
        calib_npz = save_npz(work / "calib.npz", calibration)
        n = len(next(iter(calibration.values())))
        held = max(1, n // 4) if n >= 2 else 0
        held_out = [save_npz(work / f"held{i}.npz", {k: v[i] for k, v in calibration.items()}) for i in range(n - held, n)]
        bench_inputs = save_npz(work / "bench.npz", task.eval_runs()[0])
        reference = task.outputs(source)
        sanity = task.metric(reference, task.outputs(base))
        print(f"== {name}: {source.name} ({source.stat().st_size / 1e6:.1f} MB), base after the exact pipeline "
              f"{base.stat().st_size / 1e6:.1f} MB, {len(task.eval_runs())} evaluation runs, {n} calibration "
              f"samples ({held} held out); base against the original: {sanity}", flush=True)
        mine = []
        for method in methods:
            if name == "minilm" and method == "factorize-conv":
                print(f"  {method}: skipped (MiniLM has no convolutions)")
                continue
            for mode in modes:
                for budget in budgets:
                    try:
                        r = configure(rebirth, task, base, work, method, mode, budget, calib_npz, held_out,
                                      bench_inputs, reference, args)
                    except Exception as e:  # noqa: BLE001 (a benchmark keeps going)
                        r = Result(name, method, mode, budget, error=str(e)[:200])
                    mine.append(r)
                    print(f"  {method:20} {mode:6} R={budget:<5g} "
                          + (" ".join(f"{k} {v:.4g}" for k, v in r.metric.items())
                             + f"  {r.file_mb:.1f} MB  layers {r.layers_changed}/{r.layers_skipped}"
                             + f"  model err {fmt(r.model_error, '.3g')} verify {fmt(r.verify_error, '.3g')}"
                             + f"  latency x{r.speed_ratio:.2f}  ({r.seconds:.0f} s)" if r.ok else f"FAILED: {r.error}"),
                          flush=True)
        results += mine
        print(f"\n### {name}\n\n{table(mine, task)}\n")
        for line in targets(mine, task):
            print(f"- {line}")
        print()
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))
    if args.plot:
        plot(results, args.plot)
        print(f"plot: {args.plot}")
    print(f"not available: {', '.join(missing) or 'none'}")


if __name__ == "__main__":
    main()
