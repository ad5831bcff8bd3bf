"""ONNX's own node tests, run through `rebirth run`.

    REBIRTH_BIN=.build/release/rebirth python -m pytest Tests/conformance/node_tests -q

Every case of `onnx.backend.test.case.node` (exported once to a cache outside the repository by
export.py: ~/.cache/rebirth-node-tests, or $REBIRTH_NODE_TESTS) whose operators are all in the
runtime's supported set (`rebirth run --list-ops`, asked of the binary under test) is run: each
test data set's inputs are written as .npy files, `rebirth run model.onnx --input NAME=FILE ...
--threads 1` computes the outputs, and each must have the expected dtype and shape and match with
ONNX's tolerances (`numpy.testing.assert_allclose`, rtol 1e-3 and atol 1e-7 unless the case says
otherwise; bool, string and NaN-aware exact comparisons where those apply).

Cases listed in exclusions.txt (`<case name> <reason>`) are of two kinds. A reason starting with
`gap:` is a runtime gap expected to close (a dtype or attribute value a kernel lacks, a wrong
result being fixed): the case runs as xfail(strict=True), so that once it passes the test fails
until its line is removed. Any other reason excludes the case deliberately (what `rebirth run`
cannot express: sequence inputs, dtypes .npy cannot hold, training mode): it is not run and is
reported as skipped with its reason. Every other supported case must pass. Cases that use an operator
the runtime lacks are not collected. The summary at the end gives the counts: cases in onnx, with
every operator supported, run, passed, failed, excluded.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import conftest as conformance  # noqa: E402 - the conformance suite's conftest: the binary, runs
from export import ensure_exported  # noqa: E402

EXCLUSIONS = HERE / "exclusions.txt"
NPY_KINDS = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


def load_exclusions(path: Path = EXCLUSIONS) -> dict[str, str]:
    """{case name: reason} from lines `<case name> <reason>`; '#' starts a comment line."""
    exclusions = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        if not reason.strip():
            raise pytest.UsageError(f"{path}:{number}: {name} has no reason")
        if name in exclusions:
            raise pytest.UsageError(f"{path}:{number}: {name} is listed twice")
        exclusions[name] = reason.strip()
    return exclusions


def is_gap(reason: str) -> bool:
    """A runtime gap (`gap: ...`) is expected to close: it runs as xfail(strict=True)."""
    return reason.startswith("gap:")


def supported_ops(binary: Path) -> set[str]:
    done = subprocess.run([str(binary), "run", "--list-ops"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{binary} run --list-ops failed: {done.stderr.strip()}")
    return set(done.stdout.split())


def model_ops(graph: onnx.GraphProto) -> set[str]:
    """The operators of a graph and its subgraphs, as `--list-ops` spells them."""
    ops = set()
    for node in graph.node:
        ops.add(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}")
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                ops |= model_ops(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for g in attribute.graphs:
                    ops |= model_ops(g)
    return ops


@dataclass(frozen=True)
class NodeCase:
    name: str
    folder: Path
    rtol: float
    atol: float


class Inventory:
    """Every exported case, sorted into those to run, those excluded and those not supported."""

    def __init__(self):
        self.error: str | None = None
        self.total = 0
        self.supported: list[NodeCase] = []
        self.unsupported = 0
        self.exclusions = load_exclusions()
        self.all_names: set[str] = set()
        binary, how = conformance.locate_binary()
        if binary is None:
            self.error = how
            return
        try:
            ops = supported_ops(binary)
        except Exception as error:  # noqa: BLE001 - reported as the failure of every case
            self.error = str(error)
            return
        root = ensure_exported()
        tolerances = json.loads((root / "cases.json").read_text())
        for name in sorted(tolerances):
            folder = root / name
            self.all_names.add(name)
            self.total += 1
            model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
            if model.functions or not model_ops(model.graph) <= ops:
                self.unsupported += 1
                continue
            self.supported.append(NodeCase(name, folder, tolerances[name]["rtol"], tolerances[name]["atol"]))

    def params(self) -> list:
        if self.error is not None:
            return [pytest.param(None, id="setup")]
        params = []
        for case in self.supported:
            reason = self.exclusions.get(case.name)
            if reason is not None and is_gap(reason):
                params.append(pytest.param(case, id=case.name, marks=pytest.mark.xfail(strict=True, reason=reason)))
            elif reason is not None:
                params.append(pytest.param(case, id=case.name, marks=pytest.mark.skip(reason=f"excluded: {reason}")))
            else:
                params.append(pytest.param(case, id=case.name))
        return params


INVENTORY = Inventory()


def sanitized(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def read_value(path: Path, info: onnx.ValueInfoProto) -> np.ndarray:
    kind = info.type.WhichOneof("value")
    if kind != "tensor_type":
        raise AssertionError(f"{info.name!r} is a {kind.removesuffix('_type')}: `rebirth run` reads and "
                             f"writes tensors only (exclude the case)")
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


def npy_code(array: np.ndarray) -> str:
    return f"{array.dtype.kind}{array.dtype.itemsize}"


def run_case(binary: Path, case: NodeCase, scratch: Path) -> list[str]:
    """What is wrong with rebirth's outputs for each data set of the case (empty: all good)."""
    model = onnx.load(str(case.folder / "model.onnx"), load_external_data=False)
    graph = model.graph
    problems = []
    data_sets = sorted(case.folder.glob("test_data_set_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    for data in data_sets:
        where = scratch / data.name
        where.mkdir()
        args = ["run", str(case.folder / "model.onnx"), "--output", str(where / "out"), "--threads", "1"]
        inputs = sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        for j, path in enumerate(inputs):
            array = read_value(path, graph.input[j])
            if npy_code(array) not in NPY_KINDS:
                raise AssertionError(f"input {graph.input[j].name!r} has dtype {array.dtype}, which .npy "
                                     f"files for rebirth cannot hold (exclude the case)")
            file = where / f"input_{j}.npy"
            np.save(file, array)
            args += ["--input", f"{graph.input[j].name}={file}"]
        run = conformance.run_rebirth(binary, *args)
        if run.returncode != 0:
            first = next((line for line in run.stderr.splitlines() if line.strip()), f"exit {run.returncode}")
            problems.append(f"{data.name}: rebirth run failed: {first}")
            continue
        outputs = sorted(data.glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        for j, path in enumerate(outputs):
            info = graph.output[j]
            want = read_value(path, info)
            file = where / "out" / f"{sanitized(info.name)}.npy"
            if not file.is_file():
                problems.append(f"{data.name}: output {info.name!r} was not written")
                continue
            got = np.load(file)
            label = f"{data.name}: output {info.name!r}"
            if got.dtype != want.dtype or got.shape != want.shape:
                problems.append(f"{label}: got {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}")
            elif want.dtype.kind in "bOSU":
                if not np.array_equal(got, want):
                    problems.append(f"{label}: {int(np.count_nonzero(got != want))} of {want.size} elements differ")
            else:
                try:
                    np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)
                except AssertionError as error:
                    detail = " ".join(line.strip() for line in str(error).strip().splitlines()[1:4])
                    problems.append(f"{label}: not within rtol {case.rtol:g}, atol {case.atol:g}: {detail}")
    return problems


@pytest.fixture(scope="module", autouse=True)
def node_test_summary(request):
    """Adds the counts to the end of pytest's report."""
    manager = request.config.pluginmanager
    if manager.get_plugin("rebirth-node-tests") is None:
        manager.register(Summary(), "rebirth-node-tests")
    yield


class Summary:
    def pytest_terminal_summary(self, terminalreporter):
        counts = {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0}
        for outcome in counts:
            counts[outcome] = sum(1 for report in terminalreporter.stats.get(outcome, [])
                                  if "::test_node_case[" in report.nodeid and report.when in ("call", "setup"))
        inventory = INVENTORY
        terminalreporter.section("ONNX node tests")
        if inventory.error:
            terminalreporter.write_line(f"not run: {inventory.error}")
            return
        listed = [inventory.exclusions[case.name] for case in inventory.supported if case.name in inventory.exclusions]
        gaps = sum(1 for reason in listed if is_gap(reason))
        terminalreporter.write_line(
            f"{inventory.total} cases in onnx {onnx.__version__}; {len(inventory.supported)} use only supported "
            f"operators ({inventory.unsupported} do not and were not collected)")
        ran = counts["passed"] + counts["failed"] + counts["xfailed"]
        terminalreporter.write_line(
            f"ran {ran}: passed {counts['passed']}, failed {counts['failed']}, known runtime gaps failing as "
            f"expected {counts['xfailed']} (of {gaps} listed); excluded {len(listed) - gaps} (exclusions.txt)")


@pytest.mark.parametrize("case", INVENTORY.params())
def test_node_case(case: NodeCase | None, tmp_path):
    if case is None:
        pytest.fail(f"cannot run the node tests: {INVENTORY.error}", pytrace=False)
    binary, _ = conformance.locate_binary()
    problems = run_case(binary, case, tmp_path)
    assert not problems, f"{case.name}:\n  " + "\n  ".join(problems)


def test_exclusions_name_real_cases():
    """Every exclusion names a case of the installed onnx, so that the list cannot rot silently."""
    if INVENTORY.error:
        pytest.fail(f"cannot check the exclusions: {INVENTORY.error}", pytrace=False)
    stale = sorted(set(INVENTORY.exclusions) - INVENTORY.all_names)
    assert not stale, f"exclusions.txt names cases onnx {onnx.__version__} does not have: {', '.join(stale)}"
