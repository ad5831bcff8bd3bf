#!/usr/bin/env python3
"""Feeds rebirth's textual form to ONNX's own parser and checker.

Every `*.onnxtext` file given (or found in the folders given; by default this script's folder) is
read with `onnx.parser.parse_model` (or `parse_graph` when it has no `<...>` model header) and
checked with `onnx.checker.check_model`. Tensors rebirth printed by shape and digest must come
back as external data whose location is `#digest:<16 hex digits>`.

    /work/venv/bin/python Tests/GraphTests/text/check_with_onnx_parser.py [--full] [paths...]
    /work/venv/bin/python Tests/GraphTests/text/check_with_onnx_parser.py --write-onnx-printed

`--full` runs the checker with shape inference (`full_check=True`). `--write-onnx-printed` also
writes what `onnx.printer.to_text` prints for each parsed model to `onnx-printed/<name>.txt`
beside the file; the Swift test `readsOnnxPrinterOutputOfEveryFile` reads those back and expects
rebirth to print the original file. Exits 1 if any file fails.
"""

import argparse
import pathlib
import re
import sys

import onnx
import onnx.checker
import onnx.parser
import onnx.printer

DIGEST = re.compile(r"^#digest:[0-9a-f]{16}$")


def files_in(paths):
    for path in paths:
        path = pathlib.Path(path)
        if path.is_dir():
            yield from sorted(path.glob("*.onnxtext"))
        else:
            yield path


def tensors_of_graph(graph):
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from tensors_of_graph(attribute.g)
            for subgraph in attribute.graphs:
                yield from tensors_of_graph(subgraph)


def check(path, full, write_printed):
    text = path.read_text(encoding="utf-8")
    is_model = text.lstrip().startswith("<")
    proto = onnx.parser.parse_model(text) if is_model else onnx.parser.parse_graph(text)
    graph = proto.graph if is_model else proto
    for tensor in tensors_of_graph(graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            if not DIGEST.match(entries.get("location", "")):
                raise ValueError(f"tensor '{tensor.name}' has external data {entries}, not a digest")
    if is_model:
        onnx.checker.check_model(proto, full_check=full)
    else:
        onnx.checker.check_graph(proto)
    if write_printed:
        folder = path.parent / "onnx-printed"
        folder.mkdir(exist_ok=True)
        (folder / (path.stem + ".txt")).write_text(onnx.printer.to_text(proto), encoding="utf-8")
    return f"{len(graph.node)} nodes, {len(graph.initializer)} initializers"


def main():
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("paths", nargs="*", default=[pathlib.Path(__file__).parent])
    arguments.add_argument("--full", action="store_true", help="run the checker's shape inference too")
    arguments.add_argument("--write-onnx-printed", action="store_true", help="store onnx.printer's text of each file")
    options = arguments.parse_args()
    failures = 0
    files = list(files_in(options.paths))
    for path in files:
        try:
            summary = check(path, options.full, options.write_onnx_printed)
            print(f"ok    {path.name}: {summary}")
        except Exception as error:  # report every file, then fail
            failures += 1
            message = str(error).replace("\\n", "\n")
            print(f"FAIL  {path.name}: {message}")
    print(f"{len(files) - failures} of {len(files)} files read by onnx {onnx.__version__}")
    return 1 if failures or not files else 0


if __name__ == "__main__":
    sys.exit(main())
