"""The passes must not change what a model computes (beyond float rounding), checked with
onnxruntime on the original and the optimized model.

1. The default pipeline on every fixtures/*.onnx and every $REBIRTH_CORPUS/*.onnx (and the
   pipeline `--allow-contrib-ops` selects, checked the same way but for onnx.checker):
   `rebirth optimize M out.onnx --report r.json` exits 0; out.onnx passes onnx.checker (full
   check) when M does; onnxruntime (1 thread, no graph optimizations) gives outputs within a
   relative error of 1e-4 (max |a - b| / max |a| per output; integer and bool outputs exactly).
2. Pass fixtures: every fixtures/passes/*.onnx has a sidecar NAME.json:
       {"passes": "fold-batchnorm",            # the --passes list to run ("default": the default pipeline)
        "flags": ["--pass-option", "..."],     # optional extra flags
        "changes": {"fold-batchnorm": 2},      # optional: exact change count per pass in the report
        "min_changes": {"cse": 1},             # optional: at least this many
        "absent_ops": ["BatchNormalization"],  # optional: op types that must be gone
        "op_counts": {"FusedConv": 6},         # optional: exact count of nodes per op type
        "tolerance": 1e-4}                     # optional
   The same numerical check runs on it, and the report must show the expected changes, so a
   pass that silently stops matching fails here. Generators: fixtures/passes/make_*.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import FIXTURES, ModelCase, load_graph_only, ort_run, run_rebirth
from test_roundtrip import checker_passes, reference_run

PASS_FIXTURES = FIXTURES / "passes"
TOLERANCE = 1e-4


def optimize(binary: Path, model: Path, folder: Path, *flags: str) -> tuple[Path, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    out, report = folder / "out.onnx", folder / "report.json"
    run = run_rebirth(binary, "optimize", str(model), str(out), "--report", str(report), "--verify-each", *flags)
    assert run.returncode == 0, f"rebirth failed on {model}\n{run.describe()}"
    assert out.is_file() and report.is_file(), f"rebirth exited 0 but wrote no output\n{run.describe()}"
    return out, json.loads(report.read_text())


def relative_error(expected: np.ndarray, got: np.ndarray) -> float:
    expected, got = np.asarray(expected, np.float64), np.asarray(got, np.float64)
    if expected.size == 0:
        return 0.0
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(got), finite), "non-finite values moved"
    assert np.array_equal(expected[~finite], got[~finite], equal_nan=True), "non-finite values changed"
    if not finite.any():
        return 0.0
    scale = max(np.max(np.abs(expected[finite])), 1e-30)
    return float(np.max(np.abs(expected[finite] - got[finite])) / scale)


def assert_close(case_path: Path, source: str, out: Path, tolerance: float) -> None:
    feeds, expected, how = reference_run(case_path, source)
    got = ort_run(out, feeds)
    assert list(got) == list(expected), f"output names {list(got)}, expected {list(expected)}"
    for name, e in expected.items():
        g = got[name]
        if isinstance(e, (list, dict)):
            assert type(g) is type(e) and len(g) == len(e), f"output {name!r}: structure changed"
            continue
        e, g = np.asarray(e), np.asarray(g)
        assert g.dtype == e.dtype and g.shape == e.shape, \
            f"output {name!r}: {g.dtype}{list(g.shape)}, expected {e.dtype}{list(e.shape)} ({how})"
        if e.dtype.kind in "fc":
            error = relative_error(e, g)
            assert error <= tolerance, f"output {name!r}: relative error {error:.3g} > {tolerance} ({how})"
        else:
            assert np.array_equal(e, g), f"output {name!r}: values differ ({how})"


@pytest.fixture(scope="session")
def passes_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("passes")


def test_default_pipeline_keeps_outputs(rebirth_bin, passes_root, model_case: ModelCase):
    folder = passes_root / f"{model_case.source}-{model_case.path.stem}"
    out, report = optimize(rebirth_bin, model_case.path, folder)
    ok, _ = checker_passes(model_case.path)
    if ok:
        ok_after, why = checker_passes(out)
        assert ok_after, f"onnx.checker rejects the optimized model: {why}"
    assert_close(model_case.path, model_case.source, out, TOLERANCE)
    assert report["after"]["nodeCount"] <= report["before"]["nodeCount"], "the default pipeline added nodes"


def test_contrib_pipeline_keeps_outputs(rebirth_bin, passes_root, model_case: ModelCase):
    """The default pipeline for `--allow-contrib-ops` (fused layers as com.microsoft.FusedConv and
    FusedGemm, fuse-attention) on every fixture and corpus model, checked in onnxruntime, whose
    contrib kernels are the reference for those ops."""
    folder = passes_root / f"contrib-{model_case.source}-{model_case.path.stem}"
    out, report = optimize(rebirth_bin, model_case.path, folder, "--allow-contrib-ops")
    assert_close(model_case.path, model_case.source, out, TOLERANCE)
    assert report["after"]["nodeCount"] <= report["before"]["nodeCount"], "the contrib pipeline added nodes"


def pass_fixture_params() -> list:
    cases = sorted(PASS_FIXTURES.glob("*.onnx"))
    return [pytest.param(p, id=p.stem) for p in cases]


@pytest.mark.parametrize("fixture", pass_fixture_params())
def test_pass_fixture(rebirth_bin, passes_root, fixture: Path):
    spec_path = fixture.with_suffix(".json")
    assert spec_path.is_file(), f"{fixture.name} has no sidecar {spec_path.name}"
    spec = json.loads(spec_path.read_text())
    flags = list(spec.get("flags", []))
    if spec.get("passes", "default") != "default":
        flags = ["--passes", spec["passes"], *flags]
    out, report = optimize(rebirth_bin, fixture, passes_root / f"fixture-{fixture.stem}", *flags)
    counts: dict[str, int] = {}
    for change in report["run"]["changes"]:
        counts[change["pass"]] = counts.get(change["pass"], 0) + 1
    for name, expected in spec.get("changes", {}).items():
        assert counts.get(name, 0) == expected, f"{name}: {counts.get(name, 0)} changes, expected {expected}"
    for name, least in spec.get("min_changes", {}).items():
        assert counts.get(name, 0) >= least, f"{name}: {counts.get(name, 0)} changes, expected at least {least}"
    if spec.get("absent_ops"):
        ops = {n.op_type for n in load_graph_only(out).graph.node}
        left = sorted(ops.intersection(spec["absent_ops"]))
        assert not left, f"still in the optimized model: {left}"
    if spec.get("op_counts"):
        nodes = load_graph_only(out).graph.node
        counts = {op: sum(1 for n in nodes if n.op_type == op) for op in spec["op_counts"]}
        assert counts == spec["op_counts"], f"op counts {counts}, expected {spec['op_counts']}"
    assert_close(fixture, "fixture", out, float(spec.get("tolerance", TOLERANCE)))
