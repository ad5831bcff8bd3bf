"""`rebirth run` must compute what onnxruntime computes.

For every fixtures/*.onnx and every $REBIRTH_CORPUS/*.onnx, on the suite's seeded inputs
(inputs.py, with the same default-dim fallback as test_roundtrip.py):
  - `rebirth run M --inputs inputs.npz --output DIR --threads 1` exits 0 and writes
    DIR/<name>.npy for every output onnxruntime gives (names sanitized as `run` documents);
  - float outputs: same dtype and shape, NaN where onnxruntime has NaN, and
        max|ort - rebirth| / max(max|ort|, 1.17549435e-38) <= 1e-4
    (the relative error `rebirth verify` reports, onnxruntime as the reference); 2e-3 for
    float16 outputs (FLOAT16_TOLERANCE: onnxruntime rounds each step to half precision);
  - integer and bool outputs: exactly equal.

A model the runtime cannot run yet (an operator without a kernel, an attribute value it does not
support) fails with the runtime's one-line error, except the models listed in
runtime_known_gaps.txt: those are xfail(strict=True) with the listed reason, so that when the
missing kernel lands the test fails until the line is removed. The same list holds, under
reasons starting `onnxruntime differs:`, the few models where a comparison with onnxruntime at
1e-4 is not meaningful (its approximate Sigmoid/Tanh, ill-conditioned outputs), each with the
evidence. The models `rebirth run` refuses are listed by

    REBIRTH_BIN=.build/release/rebirth python Tests/conformance/test_runtime.py

which prints, for every model `rebirth run` refuses, its case id, the runtime's error and every
operator of the model that `rebirth run --list-ops` does not list.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ModelCase, Run, corpus_cases, fixture_cases, model_params, run_rebirth
from test_roundtrip import reference_run

KNOWN_GAPS = Path(__file__).resolve().parent / "runtime_known_gaps.txt"
TOLERANCE = 1e-4
# float16 outputs: two half-precision ulps at the top of a binade. onnxruntime rounds every
# intermediate to half precision, rebirth computes in float32 and rounds once, so 1e-4 (below
# float16's resolution of 4.9e-4) would demand that both round every step alike.
FLOAT16_TOLERANCE = 2e-3
TINY = float(np.finfo(np.float32).tiny)


def load_known_gaps(path: Path = KNOWN_GAPS) -> dict[str, str]:
    """{case id: reason} from lines `<case id> <reason>`; '#' starts a comment line."""
    gaps = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        case_id, _, reason = line.partition(" ")
        if not reason.strip() or ":" not in case_id:
            raise pytest.UsageError(f"{path}:{number}: expected '<source>:<model> <reason>', got {line!r}")
        if case_id in gaps:
            raise pytest.UsageError(f"{path}:{number}: {case_id} is listed twice")
        gaps[case_id] = reason.strip()
    return gaps


def runtime_params() -> list:
    gaps = load_known_gaps()
    params = []
    for param in model_params():
        case = param.values[0]
        if case is not None and case.id in gaps:
            mark = pytest.mark.xfail(strict=True, reason=gaps[case.id])
            params.append(pytest.param(case, id=param.id, marks=[*param.marks, mark]))
        else:
            params.append(param)
    return params


def sanitized(name: str) -> str:
    """The file name `rebirth run` gives an output (without .npy)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def relative_error(expected: np.ndarray, got: np.ndarray) -> float:
    """max|a - b| / max(max|a|, tiny) over the elements, NaN against NaN and equal infinities
    counting as equal, anything else non-finite as an infinite difference."""
    a, b = expected.astype(np.float64), got.astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if same.all():
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
    diff = np.where(np.isfinite(diff), diff, np.inf)
    finite_a = np.abs(a[np.isfinite(a)])
    scale = max(float(finite_a.max()) if finite_a.size else 0.0, TINY)
    return float(diff.max()) / scale


def model_ops(graph) -> set[str]:
    """The operators of a graph and its subgraphs, as `rebirth run --list-ops` spells them."""
    ops = set()
    for node in graph.node:
        ops.add(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}")
        for attribute in node.attribute:
            ops |= set().union(*(model_ops(g) for g in [attribute.g] if attribute.HasField("g")),
                               *(model_ops(g) for g in attribute.graphs))
    return ops


def first_error_line(run: Run) -> str:
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    return lines[0] if lines else f"exit code {run.returncode}, nothing on stderr"


def run_model(binary: Path, case: ModelCase, feeds: dict, folder: Path) -> tuple[Run, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    inputs = folder / "inputs.npz"
    np.savez(inputs, **feeds)
    out = folder / "outputs"
    return run_rebirth(binary, "run", str(case.path), "--inputs", str(inputs), "--output", str(out),
                       "--threads", "1"), out


@pytest.mark.parametrize("runtime_case", runtime_params())
def test_run_matches_onnxruntime(rebirth_bin, tmp_path, runtime_case: ModelCase):
    feeds, expected, how = reference_run(runtime_case.path, runtime_case.source)
    run, out = run_model(rebirth_bin, runtime_case, feeds, tmp_path)
    assert run.returncode == 0, \
        f"rebirth run failed on {runtime_case.path.name}: {first_error_line(run)}\n{run.describe()}"
    problems = []
    for name, want in expected.items():
        if not isinstance(want, np.ndarray):
            problems.append(f"{name}: onnxruntime gives a {type(want).__name__}, not a tensor")
            continue
        path = out / f"{sanitized(name)}.npy"
        if not path.is_file():
            problems.append(f"{name}: {path.name} was not written")
            continue
        got = np.load(path)
        if got.dtype != want.dtype or got.shape != want.shape:
            problems.append(f"{name}: got {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}")
        elif want.dtype.kind == "f":
            error = relative_error(want, got)
            tolerance = FLOAT16_TOLERANCE if want.dtype == np.float16 else TOLERANCE
            if not error <= tolerance:
                problems.append(f"{name}: max relative error {error:.3g} > {tolerance:g}")
        elif not np.array_equal(want, got):
            differ = int(np.count_nonzero(want != got))
            problems.append(f"{name}: {differ} of {want.size} elements differ")
    assert not problems, (f"{runtime_case.path.name} ({how}): rebirth's runtime disagrees with onnxruntime:\n  "
                          + "\n  ".join(problems))


NPY_CODES = {"f4": "FLOAT", "f2": "FLOAT16", "f8": "DOUBLE", "i1": "INT8", "i2": "INT16", "i4": "INT32",
             "i8": "INT64", "u1": "UINT8", "u2": "UINT16", "u4": "UINT32", "u8": "UINT64", "b1": "BOOL"}


@pytest.mark.parametrize("archive", ["savez", "savez_compressed"])
def test_npy_and_npz_files_round_trip_through_run(rebirth_bin, tmp_path, archive):
    """NumPy writes big-endian arrays of every dtype rebirth reads into an archive; an Identity per
    input gives them back; NumPy reads rebirth's .npy files and .npz archive: same values,
    little-endian, and output names sanitized in file names but not in archive members."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    nodes, inputs, outputs, feeds = [], [], [], {}
    for code, type_name in NPY_CODES.items():
        element = getattr(TensorProto, type_name)
        inputs.append(helper.make_tensor_value_info(f"in_{code}", element, [2, 3]))
        outputs.append(helper.make_tensor_value_info(f"out/{code}:0", element, [2, 3]))
        nodes.append(helper.make_node("Identity", [f"in_{code}"], [f"out/{code}:0"]))
        dtype = np.dtype(code)
        if dtype.kind == "f":
            feeds[f"in_{code}"] = rng.standard_normal((2, 3)).astype(dtype)
        elif dtype.kind == "b":
            feeds[f"in_{code}"] = np.array([[True, False, True], [False, False, True]])
        else:
            info = np.iinfo(dtype)
            feeds[f"in_{code}"] = np.array([[info.min, info.max, 0], [1, 2, 3]], dtype=dtype)
    model = helper.make_model(helper.make_graph(nodes, "identities", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "identities.onnx")
    getattr(np, archive)(tmp_path / "in.npz", **{k: v.astype(v.dtype.newbyteorder(">")) for k, v in feeds.items()})
    for output in ("out", "out.npz"):
        run = run_rebirth(rebirth_bin, "run", str(tmp_path / "identities.onnx"), "--inputs", str(tmp_path / "in.npz"),
                          "--output", str(tmp_path / output))
        assert run.returncode == 0, run.describe()
    written = np.load(tmp_path / "out.npz")
    for code in NPY_CODES:
        want = feeds[f"in_{code}"]
        for got in (np.load(tmp_path / "out" / f"out_{code}_0.npy"), written[f"out/{code}:0"]):
            assert got.dtype == want.dtype and got.dtype.byteorder in "=|<", f"{code}: {got.dtype.str}"
            assert np.array_equal(got, want), f"{code}: {got} != {want}"


def test_known_gaps_name_real_models():
    """Every line of runtime_known_gaps.txt names a fixture that exists, or a corpus model that
    exists when the corpus is present, so that the list cannot rot silently."""
    known = {case.id for case in fixture_cases()}
    corpus, why_none = corpus_cases()
    known |= {case.id for case in corpus}
    stale = [case_id for case_id in load_known_gaps()
             if case_id not in known and (case_id.startswith("fixture:") or why_none is None)]
    assert not stale, f"{KNOWN_GAPS.name} lists models that do not exist: {', '.join(stale)}"


if __name__ == "__main__":
    # Prints the known-gaps list for the current binary: every model `rebirth run` refuses.
    import subprocess
    import tempfile

    from conftest import load_graph_only, locate_binary

    binary, how = locate_binary()
    if binary is None:
        sys.exit(how)
    listed = subprocess.run([str(binary), "run", "--list-ops"], capture_output=True, text=True, check=True)
    supported = set(listed.stdout.split())
    corpus, _ = corpus_cases()
    with tempfile.TemporaryDirectory() as scratch:
        for case in fixture_cases() + corpus:
            try:
                feeds, _, _ = reference_run(case.path, case.source)
            except BaseException as error:  # pytest.skip/fail outside pytest: no reference run
                print(f"# {case.id}: no reference run: {str(error).splitlines()[0][:200]}", file=sys.stderr)
                continue
            run, _ = run_model(binary, case, feeds, Path(scratch) / case.id.replace(":", "_"))
            if run.returncode != 0:
                reason = first_error_line(run).removeprefix("rebirth: ").removeprefix(f"{case.path}: ")
                missing = sorted(model_ops(load_graph_only(case.path).graph) - supported)
                print(f"{case.id} {reason}" + (f" [missing: {', '.join(missing)}]" if missing else ""))
