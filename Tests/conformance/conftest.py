"""Shared set-up of rebirth's conformance suite: the binary, the model cases, onnxruntime.

    REBIRTH_BIN=.build/release/rebirth python -m pytest Tests/conformance -q -rs

Environment
  REBIRTH_BIN           the rebirth executable; otherwise .build/release/rebirth, then
                        .build/debug/rebirth. A missing binary is an error in every test that
                        needs it, never a skip.
  REBIRTH_CORPUS        a folder whose *.onnx files are added as model cases (fetch it with
                        bash ../shared/corpus/fetch.sh DEST). Unset, missing or empty: those
                        cases are reported as skipped, with the reason; the fixtures still run.
  REBIRTH_DEFAULT_DIMS  sizes tried in turn for symbolic/unknown input dims until onnxruntime
                        runs the original model (default "1,512": 1 first; audio models whose
                        sample axis is symbolic need a few hundred samples).
  REBIRTH_DIMS          explicit sizes for named dims, e.g. "N=2,sequence=512".
  REBIRTH_TIMEOUT       seconds one rebirth run may take (default 300).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
BAD_FIXTURES = FIXTURES / "bad"
CRASH_MARKERS = ("Traceback (most recent call last)", "Fatal error", "Illegal instruction",
                 "Segmentation fault", "Program crashed", "Stack dump", "Aborted")


# --------------------------------------------------------------------------------------------
# The binary


def locate_binary() -> tuple[Path | None, str]:
    """(path, how it was found) or (None, why not)."""
    env = os.environ.get("REBIRTH_BIN")
    if env:
        path = Path(env)
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.is_file() and os.access(path, os.X_OK):
            return path, "REBIRTH_BIN"
        return None, f"REBIRTH_BIN={env} is not an executable file"
    for build in ("release", "debug"):
        path = REPO / ".build" / build / "rebirth"
        if path.is_file() and os.access(path, os.X_OK):
            return path, f".build/{build}"
    return None, ("no rebirth binary: REBIRTH_BIN is unset and neither .build/release/rebirth "
                  "nor .build/debug/rebirth exists (run `swift build -c release` first)")


@pytest.fixture(scope="session")
def rebirth_bin() -> Path:
    path, how = locate_binary()
    if path is None:
        pytest.fail(how, pytrace=False)
    return path


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (f"$ {' '.join(self.args)}\nexit code {self.returncode}\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}")


def run_rebirth(binary: Path, *args: str, cwd: Path = REPO) -> Run:
    timeout = float(os.environ.get("REBIRTH_TIMEOUT", "300"))
    argv = [str(binary), *args]
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"$ {' '.join(argv)}\ndid not finish within {timeout:.0f} s", pytrace=False)
    return Run(argv, done.returncode, done.stdout, done.stderr)


# --------------------------------------------------------------------------------------------
# Model cases: every fixtures/*.onnx and every $REBIRTH_CORPUS/*.onnx


@dataclass(frozen=True)
class ModelCase:
    path: Path
    source: str  # "fixture" or "corpus"

    @property
    def id(self) -> str:
        return f"{self.source}:{self.path.stem}"


def fixture_cases() -> list[ModelCase]:
    return [ModelCase(p, "fixture") for p in sorted(FIXTURES.glob("*.onnx"))]


def corpus_cases() -> tuple[list[ModelCase], str | None]:
    """(cases, None), or ([], why there are none)."""
    hint = "fetch it with `bash ../shared/corpus/fetch.sh DEST` and export REBIRTH_CORPUS=DEST"
    root = os.environ.get("REBIRTH_CORPUS")
    if not root:
        return [], f"real-model corpus absent: REBIRTH_CORPUS is not set ({hint})"
    folder = Path(root)
    if not folder.is_dir():
        return [], f"real-model corpus absent: REBIRTH_CORPUS={root} is not a folder ({hint})"
    files = sorted(folder.glob("*.onnx"))
    if not files:
        return [], (f"real-model corpus empty: 0 *.onnx files in REBIRTH_CORPUS={root}, "
                    f"expected at least 1 ({hint})")
    return [ModelCase(p, "corpus") for p in files], None


def model_params(cases_filter=None) -> list:
    fixtures = fixture_cases()
    if not fixtures:
        raise pytest.UsageError(f"no fixtures in {FIXTURES}: run fixtures/make_fixtures.py")
    corpus, why_none = corpus_cases()
    cases = [c for c in fixtures + corpus if cases_filter is None or cases_filter(c)]
    params = [pytest.param(c, id=c.id) for c in cases]
    if why_none is not None:
        params.append(pytest.param(None, id="corpus", marks=pytest.mark.skip(reason=why_none)))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model_case" in metafunc.fixturenames:
        metafunc.parametrize("model_case", model_params())


# --------------------------------------------------------------------------------------------
# onnxruntime


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # errors only: the suite reports what matters itself
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_run(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, object]:
    session = ort_session(path)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def parse_dims(text: str) -> dict[str, int]:
    dims = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, size = item.partition("=")
        dims[name.strip()] = int(size)
    return dims


def default_dim_candidates() -> list[int]:
    return [int(v) for v in os.environ.get("REBIRTH_DEFAULT_DIMS", "1,512").split(",") if v]


def load_graph_only(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path), load_external_data=False)


# --------------------------------------------------------------------------------------------
# Reporting


def pytest_report_header(config: pytest.Config) -> list[str]:
    path, how = locate_binary()
    corpus, why_none = corpus_cases()
    lines = [f"rebirth binary: {path} ({how})" if path else f"rebirth binary: MISSING ({how})",
             f"fixtures: {len(fixture_cases())} models in {FIXTURES}"]
    if why_none:
        lines.append(f"corpus: 0 models ({why_none})")
    else:
        lines.append(f"corpus: {len(corpus)} models in {os.environ['REBIRTH_CORPUS']}")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section("conformance skips")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:4} skipped: {reason}")
