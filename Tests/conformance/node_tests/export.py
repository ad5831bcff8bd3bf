"""Writes ONNX's own node test cases to a cache folder outside the repository.

    python Tests/conformance/node_tests/export.py [--dest DIR] [--force]

The cases are those of `onnx.backend.test.case.node.collect_testcases(None)` for the installed
onnx, laid out as onnx lays out its backend test data:

    DIR/onnx-<version>/<case name>/model.onnx
    DIR/onnx-<version>/<case name>/test_data_set_<i>/input_<j>.pb, output_<j>.pb
    DIR/onnx-<version>/cases.json     {case name: {"rtol": ..., "atol": ...}}
    DIR/onnx-<version>/complete       written last: the export finished

DIR defaults to $REBIRTH_NODE_TESTS, else ~/.cache/rebirth-node-tests. An export that finished is
reused (the test suite calls `ensure_exported()`); --force writes it again. It takes a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import onnx
from onnx import TensorProto, numpy_helper


def cache_root() -> Path:
    return Path(os.environ.get("REBIRTH_NODE_TESTS") or Path.home() / ".cache" / "rebirth-node-tests")


def export_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / f"onnx-{onnx.__version__}"


def _serialize(value, value_info: onnx.ValueInfoProto) -> bytes:
    """One input or output as onnx's backend test data stores it."""
    kind = value_info.type.WhichOneof("value")
    if kind == "map_type":
        return numpy_helper.from_dict(value, value_info.name).SerializeToString()
    if kind == "sequence_type":
        return numpy_helper.from_list(value, value_info.name).SerializeToString()
    if kind == "optional_type":
        return numpy_helper.from_optional(value, value_info.name).SerializeToString()
    if isinstance(value, TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(value, value_info.name).SerializeToString()


def export(root: Path | None = None, force: bool = False) -> Path:
    """Writes every node case (unless a finished export exists) and returns its folder."""
    dest = export_dir(root)
    if (dest / "complete").is_file() and not force:
        return dest
    from onnx.backend.test.case.node import collect_testcases

    if dest.exists():
        shutil.rmtree(dest)
    staging = dest.with_name(dest.name + f".partial-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators divide by zero on purpose
        cases = collect_testcases(None)
    tolerances = {}
    for case in cases:
        if case.kind != "node" or case.model is None:
            continue
        folder = staging / case.name
        folder.mkdir()
        (folder / "model.onnx").write_bytes(case.model.SerializeToString())
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets or []):
            data = folder / f"test_data_set_{i}"
            data.mkdir()
            for j, value in enumerate(inputs):
                (data / f"input_{j}.pb").write_bytes(_serialize(value, graph.input[j]))
            for j, value in enumerate(outputs):
                (data / f"output_{j}.pb").write_bytes(_serialize(value, graph.output[j]))
        tolerances[case.name] = {"rtol": case.rtol, "atol": case.atol}
    (staging / "cases.json").write_text(json.dumps(tolerances, indent=1, sort_keys=True))
    (staging / "complete").write_text(f"{len(tolerances)} cases from onnx {onnx.__version__}\n")
    staging.rename(dest)
    return dest


def ensure_exported() -> Path:
    return export()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, help="the cache root (default: %(default)s)", default=None)
    parser.add_argument("--force", action="store_true", help="write the cases again")
    args = parser.parse_args()
    dest = export(args.dest, force=args.force)
    print(f"{dest}: {(dest / 'complete').read_text().strip()}", file=sys.stderr)


if __name__ == "__main__":
    main()
