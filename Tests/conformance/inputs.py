"""Seeded random inputs for an ONNX model, from its declared input types and shapes.

`make_inputs(model)` returns {input name: numpy array} for every graph input that is not also an
initializer (an initializer listed as an input is a default the caller may override; it is left
to its default). The same model, seed and options always give the same arrays, and each input
has its own generator seeded from (seed, crc32 of its name), so adding an input to a model does
not change the values fed to the others.

Shapes
  A dim with a positive dim_value is used as is. A dim_param (symbolic dim, e.g. 'N') is looked
  up in `dims` (name → size) and otherwise gets `default_dim` (1 unless told). A dim that is
  neither (unknown, or a non-positive dim_value as some exporters write -1) gets `default_dim`.
  An input with no shape at all gets shape [default_dim].

Values, by element type
  float, double, float16: standard normal.
  bool: True or False with equal odds.
  integers (signed or unsigned): chosen from how the input is used, looking at every node that
  reads it by name, in the main graph and in subgraphs (If/Loop/Scan bodies read outer values
  by name):
    1. An input named 'sr' or 'sample_rate' (any case) is a sample rate: every element is 16000.
    2. The indices input of Gather or GatherElements: uniform in [0, n) where n is the size of
       the data input along the op's axis, when that size is known (from an initializer, a
       declared input shape, or ONNX shape inference run with the chosen input shapes).
       If it is not known, rule 4 applies.
    3. The sequence_lens input of RNN, GRU or LSTM: the full sequence length of X (X's dim 0,
       or dim 1 with layout=1), so every batch entry is a whole sequence.
    4. Otherwise: uniform small non-negative integers in [0, 4].
  When an input has several uses, rules 2 and 3 take the smallest bound among them.
  Other element types (string, bfloat16, float8, int4, complex) are refused with ValueError:
  the suite would rather fail loudly than feed something meaningless.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping

import numpy as np
import onnx
from onnx import TensorProto

DEFAULT_DIM = 1
SAMPLE_RATE = 16000
SAMPLE_RATE_NAMES = {"sr", "sample_rate"}
SMALL_INT_LIMIT = 4  # rule 4: values in [0, SMALL_INT_LIMIT]

_FLOATS = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
           TensorProto.FLOAT16: np.float16}
_INTS = {TensorProto.INT8: np.int8, TensorProto.INT16: np.int16, TensorProto.INT32: np.int32,
         TensorProto.INT64: np.int64, TensorProto.UINT8: np.uint8, TensorProto.UINT16: np.uint16,
         TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64}


def feedable_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that have no initializer (the ones a caller must feed)."""
    initialized = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in initialized]


def concrete_shape(value: onnx.ValueInfoProto, dims: Mapping[str, int] | None = None,
                   default_dim: int = DEFAULT_DIM) -> list[int]:
    """The shape fed for `value`, per the rules in the module docstring."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return [default_dim]
    shape = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(d.dim_value)
        elif d.HasField("dim_param") and dims and d.dim_param in dims:
            shape.append(int(dims[d.dim_param]))
        else:
            shape.append(default_dim)
    return shape


def make_inputs(model: onnx.ModelProto, seed: int = 0, dims: Mapping[str, int] | None = None,
                default_dim: int = DEFAULT_DIM) -> dict[str, np.ndarray]:
    graph = model.graph
    shapes = {}
    for value in feedable_inputs(graph):
        if not value.type.HasField("tensor_type"):
            raise ValueError(f"input {value.name!r}: only tensor inputs are supported, "
                             f"not {value.type.WhichOneof('value')}")
        shapes[value.name] = concrete_shape(value, dims, default_dim)
    bounds = _IntegerBounds(model, shapes)
    feeds = {}
    for value in feedable_inputs(graph):
        elem = value.type.tensor_type.elem_type
        shape = shapes[value.name]
        rng = np.random.default_rng([seed, zlib.crc32(value.name.encode())])
        if elem in _FLOATS:
            feeds[value.name] = rng.standard_normal(shape).astype(_FLOATS[elem])
        elif elem == TensorProto.BOOL:
            feeds[value.name] = rng.random(shape) < 0.5
        elif elem in _INTS:
            feeds[value.name] = _integers(value.name, _INTS[elem], shape, bounds, rng)
        else:
            name = TensorProto.DataType.Name(elem)
            raise ValueError(f"input {value.name!r}: no random values for element type {name}")
    return feeds


def _integers(name: str, dtype, shape: list[int], bounds: "_IntegerBounds",
              rng: np.random.Generator) -> np.ndarray:
    if name.lower() in SAMPLE_RATE_NAMES:  # rule 1
        return np.full(shape, SAMPLE_RATE, dtype=dtype)
    exact = bounds.sequence_length(name)
    if exact is not None:  # rule 3
        return np.full(shape, exact, dtype=dtype)
    limit = bounds.index_limit(name)
    if limit is not None:  # rule 2
        return rng.integers(0, limit, size=shape).astype(dtype)
    return rng.integers(0, SMALL_INT_LIMIT + 1, size=shape).astype(dtype)  # rule 4


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of the graph and, recursively, of its subgraphs."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for g in attribute.graphs:
                    yield from _all_nodes(g)


def _attribute(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class _IntegerBounds:
    """Finds, for integer inputs, the uses that constrain their values (rules 2 and 3)."""

    def __init__(self, model: onnx.ModelProto, shapes: dict[str, list[int]]):
        self.model, self.shapes = model, shapes
        self.uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in _all_nodes(model.graph):
            for position, name in enumerate(node.input):
                if name in shapes:
                    self.uses.setdefault(name, []).append((node, position))
        self._inferred: dict[str, list[int | None]] | None = None

    def index_limit(self, name: str) -> int | None:
        limits = []
        for node, position in self.uses.get(name, []):
            if node.domain in ("", "ai.onnx") and node.op_type in ("Gather", "GatherElements") \
                    and position == 1:
                shape = self.shape_of(node.input[0])
                if shape is None:
                    continue
                axis = _attribute(node, "axis", 0)
                axis = axis + len(shape) if axis < 0 else axis
                if 0 <= axis < len(shape) and shape[axis] is not None and shape[axis] > 0:
                    limits.append(shape[axis])
        return min(limits) if limits else None

    def sequence_length(self, name: str) -> int | None:
        lengths = []
        for node, position in self.uses.get(name, []):
            if node.domain in ("", "ai.onnx") and node.op_type in ("RNN", "GRU", "LSTM") \
                    and position == 4:
                shape = self.shape_of(node.input[0])
                axis = 1 if _attribute(node, "layout", 0) == 1 else 0
                if shape is not None and len(shape) == 3 and shape[axis] is not None:
                    lengths.append(shape[axis])
        return min(lengths) if lengths else None

    def shape_of(self, name: str) -> list[int | None] | None:
        if name in self.shapes:
            return list(self.shapes[name])
        for t in self.model.graph.initializer:
            if t.name == name:
                return list(t.dims)
        return self._inferred_shapes().get(name)

    def _inferred_shapes(self) -> dict[str, list[int | None]]:
        """Shapes from ONNX shape inference, run on a copy whose inputs have the fed shapes."""
        if self._inferred is None:
            copy = onnx.ModelProto()
            copy.CopyFrom(self.model)
            for value in copy.graph.input:
                if value.name in self.shapes:
                    value.type.tensor_type.shape.Clear()
                    for size in self.shapes[value.name]:
                        value.type.tensor_type.shape.dim.add().dim_value = size
            self._inferred = {}
            try:
                inferred = onnx.shape_inference.infer_shapes(copy, strict_mode=False,
                                                             data_prop=True)
            except Exception:  # inference is a best effort here; rule 4 covers the rest
                return self._inferred
            for value in list(inferred.graph.value_info) + list(inferred.graph.output):
                tensor = value.type.tensor_type
                if tensor.HasField("shape"):
                    self._inferred[value.name] = [
                        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                        for d in tensor.shape.dim]
        return self._inferred
