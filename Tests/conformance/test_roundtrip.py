"""`rebirth optimize M out.onnx --passes none` must give back the same model in meaning.

For every fixtures/*.onnx and every $REBIRTH_CORPUS/*.onnx:
  - rebirth exits 0 and writes out.onnx;
  - if onnx.checker.check_model(M, full_check=True) passes, it passes on out.onnx too;
  - the graph's signature is kept: the inputs a caller feeds (names, element types, dims) and
    the outputs (names, element types, and every dim the original declares);
  - onnxruntime (1 thread, no graph optimizations) gives bit-identical outputs for both models
    on the same seeded inputs (inputs.py): same names, dtypes, shapes, values (NaN equal NaN).
The --external-data variant does the same for a few fixtures and checks the weights really
went to a file beside out.onnx.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import (FIXTURES, ModelCase, Run, default_dim_candidates, load_graph_only,
                      ort_run, parse_dims, run_rebirth)
from inputs import feedable_inputs, make_inputs

EXTERNAL_DATA_FIXTURES = ["mlp", "resnet_bottleneck", "lstm", "external_data"]


# --------------------------------------------------------------------------------------------
# One rebirth run per (model, flags), shared by the tests that look at its result.

_runs: dict[tuple[Path, tuple[str, ...]], tuple[Run, Path]] = {}


def roundtrip(binary: Path, model: Path, tmp_root: Path, *flags: str) -> tuple[Run, Path]:
    key = (model, flags)
    if key not in _runs:
        folder = tmp_root / f"{len(_runs):03d}-{model.stem}"
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / "out.onnx"
        _runs[key] = (run_rebirth(binary, "optimize", str(model), str(out), "--passes", "none",
                                  *flags), out)
    run, out = _runs[key]
    assert run.returncode == 0, f"rebirth failed on {model}\n{run.describe()}"
    assert out.is_file(), f"rebirth exited 0 but wrote no {out}\n{run.describe()}"
    return run, out


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("roundtrip")


def fixture_path(name: str) -> Path:
    path = FIXTURES / f"{name}.onnx"
    assert path.is_file(), f"{path} is missing: run fixtures/make_fixtures.py"
    return path


# --------------------------------------------------------------------------------------------
# Checks shared by both variants


def all_tensors(graph: onnx.GraphProto):
    """Initializers and tensor attributes (Constant values ...), subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t
            elif a.type == onnx.AttributeProto.TENSORS:
                yield from a.tensors
            elif a.type == onnx.AttributeProto.GRAPH:
                yield from all_tensors(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from all_tensors(g)


def checker_passes(path: Path) -> tuple[bool, str]:
    """onnx.checker.check_model(full_check=True) in the path form, which reads external data
    and checks its locations. (Its shape inference cannot read constant inputs kept in external
    data, e.g. a Squeeze's axes; neither can onnxruntime load such a model, so failing it here
    is right: small tensors that ops read as attributes must stay inline.)"""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as error:  # noqa: BLE001 - any checker complaint counts
        return False, f"{type(error).__name__}: {error}"
    return True, ""


def assert_checker_kept(model: Path, source: str, out: Path) -> None:
    ok, why = checker_passes(model)
    if not ok and source == "fixture":
        pytest.fail(f"fixture {model.name} fails onnx.checker: {why}", pytrace=False)
    if not ok:
        pytest.skip(f"the original fails onnx.checker, so there is nothing to keep: {why[:200]}")
    ok, why = checker_passes(out)
    assert ok, f"{model.name} passes onnx.checker(full_check=True) but rebirth's output does not:\n{why}"


def dims_of(value: onnx.ValueInfoProto) -> list[str] | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    out = []
    for d in tensor.shape.dim:
        # Some exporters write -1 for a dynamic dim; rebirth reads any negative extent as an unknown
        # dim and writes it back as one (no dim_value, no dim_param), which means the same.
        if d.HasField("dim_value") and d.dim_value >= 0:
            out.append(str(d.dim_value))
        elif d.HasField("dim_value"):
            out.append("?")
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append("?")
    return out


def assert_signature_kept(model: Path, out: Path) -> None:
    before, after = load_graph_only(model).graph, load_graph_only(out).graph

    def inputs(graph):
        return [(v.name, v.type.tensor_type.elem_type, dims_of(v)) for v in feedable_inputs(graph)]

    assert inputs(after) == inputs(before), "the inputs a caller feeds changed"
    assert [o.name for o in after.output] == [o.name for o in before.output], "outputs changed"
    for old, new in zip(before.output, after.output):
        assert new.type.tensor_type.elem_type == old.type.tensor_type.elem_type, \
            f"output {old.name}: element type changed"
        old_dims, new_dims = dims_of(old), dims_of(new)
        if old_dims is None:
            continue
        assert new_dims is not None and len(new_dims) == len(old_dims), \
            f"output {old.name}: rank changed from {old_dims} to {new_dims}"
        for i, (a, b) in enumerate(zip(old_dims, new_dims)):
            assert a == "?" or a == b, f"output {old.name}: dim {i} was {a}, is {b}"


def reference_run(case_path: Path, source: str) -> tuple[dict, dict, str]:
    """(feeds, outputs, description) for the original model: tries the default dims in turn
    (REBIRTH_DEFAULT_DIMS) until onnxruntime runs it. A fixture that does not run fails; a
    corpus model that does not run is skipped with onnxruntime's error."""
    model = load_graph_only(case_path)
    explicit = parse_dims(os.environ.get("REBIRTH_DIMS", ""))
    errors = []
    for default_dim in default_dim_candidates():
        feeds = make_inputs(model, seed=0, dims=explicit, default_dim=default_dim)
        try:
            return feeds, ort_run(case_path, feeds), f"unknown dims = {default_dim}"
        except Exception as error:  # noqa: BLE001 - onnxruntime raises several kinds
            errors.append(f"unknown dims = {default_dim}: {str(error).splitlines()[0][:300]}")
    message = "onnxruntime cannot run the original model:\n  " + "\n  ".join(errors)
    if source == "fixture":
        pytest.fail(message, pytrace=False)
    pytest.skip(message.replace("\n  ", "; "))


def describe_mismatch(expected: np.ndarray, got: np.ndarray) -> str:
    if expected.dtype.kind in "fc":
        differs = ~((expected == got) | (np.isnan(expected) & np.isnan(got)))
    else:
        differs = expected != got
    where = np.argwhere(differs)
    text = f"{len(where)} of {expected.size} elements differ; first at {tuple(where[0])}: " \
           f"expected {expected[tuple(where[0])]!r}, got {got[tuple(where[0])]!r}"
    if expected.dtype.kind in "fc":
        finite = np.isfinite(expected) & np.isfinite(got)
        if finite.any():
            text += f"; max |diff| {np.max(np.abs(expected[finite] - got[finite])):.3g}"
    return text


def assert_same_value(name: str, expected, got) -> None:
    if isinstance(expected, list):  # sequence outputs
        assert isinstance(got, list) and len(got) == len(expected), f"{name}: sequence changed"
        for i, (e, g) in enumerate(zip(expected, got)):
            assert_same_value(f"{name}[{i}]", e, g)
        return
    if isinstance(expected, dict):  # map outputs
        assert isinstance(got, dict) and got.keys() == expected.keys(), f"{name}: map keys changed"
        for key in expected:
            assert_same_value(f"{name}[{key!r}]", expected[key], got[key])
        return
    expected, got = np.asarray(expected), np.asarray(got)
    assert got.dtype == expected.dtype, f"{name}: dtype {got.dtype}, expected {expected.dtype}"
    assert got.shape == expected.shape, f"{name}: shape {got.shape}, expected {expected.shape}"
    equal_nan = expected.dtype.kind in "fc"
    assert np.array_equal(expected, got, equal_nan=equal_nan), \
        f"{name}: values differ: {describe_mismatch(expected, got)}"


def assert_outputs_identical(case_path: Path, source: str, out: Path) -> None:
    feeds, expected, how = reference_run(case_path, source)
    got = ort_run(out, feeds)
    assert list(got) == list(expected), f"output names {list(got)}, expected {list(expected)}"
    for name in expected:
        assert_same_value(f"output {name!r} ({how})", expected[name], got[name])


# --------------------------------------------------------------------------------------------
# Every model


def test_optimize_succeeds(rebirth_bin, runs_root, model_case: ModelCase):
    roundtrip(rebirth_bin, model_case.path, runs_root)


def test_checker_still_passes(rebirth_bin, runs_root, model_case: ModelCase):
    _, out = roundtrip(rebirth_bin, model_case.path, runs_root)
    assert_checker_kept(model_case.path, model_case.source, out)


def test_signature_kept(rebirth_bin, runs_root, model_case: ModelCase):
    _, out = roundtrip(rebirth_bin, model_case.path, runs_root)
    assert_signature_kept(model_case.path, out)


def test_outputs_bit_identical(rebirth_bin, runs_root, model_case: ModelCase):
    _, out = roundtrip(rebirth_bin, model_case.path, runs_root)
    assert_outputs_identical(model_case.path, model_case.source, out)


# --------------------------------------------------------------------------------------------
# --external-data


def external_locations(out: Path) -> list[str]:
    locations = []
    for t in all_tensors(load_graph_only(out).graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in t.external_data}
            assert "location" in entries, f"tensor {t.name}: external without a location"
            locations.append(entries["location"])
    return locations


@pytest.mark.parametrize("name", EXTERNAL_DATA_FIXTURES)
def test_external_data_roundtrip(rebirth_bin, runs_root, name):
    model = fixture_path(name)
    run, out = roundtrip(rebirth_bin, model, runs_root, "--external-data")
    locations = external_locations(out)
    assert locations, f"--external-data left every tensor inline in {out}\n{run.describe()}"
    folder = out.parent.resolve()
    for location in set(locations):
        assert not Path(location).is_absolute(), f"external location {location!r} is absolute"
        target = (folder / location).resolve()
        assert target.parent == folder, f"external location {location!r} is not beside {out.name}"
        assert target.is_file(), f"external data file {location!r} was not written"
    assert_checker_kept(model, "fixture", out)
    assert_signature_kept(model, out)
    assert_outputs_identical(model, "fixture", out)
