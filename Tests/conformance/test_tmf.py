"""`.tmf` end to end: `rebirth optimize M out.tmf` (the default pipeline for .tmf, fuse-activation
and branch-slim included) then `rebirth verify M out.tmf` (rebirth's runtime on both; every
output within 1e-4) on every fixtures/*.onnx and $REBIRTH_CORPUS/*.onnx model.

Models .tmf cannot store (custom-domain operators, operators rebirth's runtime does not run such
as Loop: the writer's one-line refusal) and models rebirth's runtime cannot run with default
inputs (`rebirth verify M M` fails too: symbolic dims of 1 too small for a window) are skipped
with the reason.

Every model with an If (subgraphs, .tmf 1.2) must be stored and verified, never skipped:
`test_if_models_verify_on_every_path` feeds them the suite's seeded inputs (inputs.py, unknown
dims 1) in three variants that take different branches (as drawn, all negative, all small and
positive). Audio models (silero-vad) need samples: the unknown last dim of a rank-2 float input
gets 1, else 512 (the first that rebirth runs the source with); with a sample-rate input, each
variant also runs at 8000 Hz with half the samples (silero's 32 ms window at 8 kHz), which takes
the models' other branch.

    REBIRTH_BIN=.build/debug/rebirth python -m pytest Tests/conformance/test_tmf.py -q -rs
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import ModelCase, default_dim_candidates, fixture_cases, corpus_cases, load_graph_only, run_rebirth
from inputs import SAMPLE_RATE_NAMES, feedable_inputs, make_inputs

STORE_REFUSALS = ("has no .tmf op code", "is not stored by .tmf")


@pytest.fixture(scope="session")
def tmf_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tmf")


def test_tmf_verifies_against_source(rebirth_bin, tmf_root, model_case: ModelCase):
    out = tmf_root / f"{model_case.source}-{model_case.path.stem}.tmf"
    made = run_rebirth(rebirth_bin, "optimize", str(model_case.path), str(out))
    if made.returncode != 0:
        if any(r in made.stderr for r in STORE_REFUSALS):
            assert not out.exists(), "a refused model left a partial .tmf"
            assert made.stderr.count("\n") == 1, made.describe()
            pytest.skip(f".tmf 1.0 cannot store it: {made.stderr.strip()}")
        pytest.fail(made.describe(), pytrace=False)
    checked = run_rebirth(rebirth_bin, "verify", str(model_case.path), str(out))
    if checked.returncode != 0:
        alone = run_rebirth(rebirth_bin, "verify", str(model_case.path), str(model_case.path))
        if alone.returncode != 0:  # not a .tmf problem: the source itself does not run here
            pytest.skip(f"rebirth's runtime cannot run the source with default inputs: {alone.stderr.strip()}")
    assert checked.returncode == 0, checked.describe()
    inspected = run_rebirth(rebirth_bin, "inspect", str(out))
    assert inspected.returncode == 0, inspected.describe()


def has_if(graph: onnx.GraphProto) -> bool:
    for node in graph.node:
        if node.op_type == "If":
            return True
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH and has_if(attribute.g):
                return True
    return False


def if_cases() -> list:
    corpus, _ = corpus_cases()
    cases = [c for c in fixture_cases() + corpus if has_if(load_graph_only(c.path).graph)]
    return [pytest.param(c, id=c.id) for c in cases]


def audio_inputs(model: onnx.ModelProto) -> list[str]:
    """Rank-2 float inputs whose last dim is not a fixed size (samples of an audio model)."""
    out = []
    for value in feedable_inputs(model.graph):
        t = value.type.tensor_type
        dims = t.shape.dim if t.HasField("shape") else []
        if t.elem_type == onnx.TensorProto.FLOAT and len(dims) == 2 and not dims[1].dim_value > 0:
            out.append(value.name)
    return out


def feeds_with_samples(model: onnx.ModelProto, samples: int) -> dict[str, np.ndarray]:
    feeds = make_inputs(model, seed=0)
    rng = np.random.default_rng(1)
    for name in audio_inputs(model):
        feeds[name] = rng.standard_normal((feeds[name].shape[0], samples)).astype(np.float32)
    return feeds


def branch_variants(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The feeds as drawn, with float inputs all negative, and all small and positive; with a
    sample rate input, each also at 8000 with the audio inputs' first half of the samples."""
    def floats(f):
        return {k: (f(v).astype(v.dtype) if v.dtype.kind == "f" else v) for k, v in feeds.items()}
    variants = [feeds, floats(lambda v: -np.abs(v) - 0.1), floats(lambda v: 0.3 * np.abs(v) / (np.abs(v).max() + 1e-6) + 0.01)]
    rates = [k for k in feeds if k.lower() in SAMPLE_RATE_NAMES]
    if not rates:
        return variants
    audio = audio_inputs(model)
    return variants + [{**v, **{k: np.full_like(v[k], 8000) for k in rates},
                        **{k: v[k][:, :v[k].shape[1] // 2] for k in audio}} for v in variants]


@pytest.mark.parametrize("case", if_cases())
def test_if_models_verify_on_every_path(rebirth_bin, tmf_root, case: ModelCase):
    """`rebirth optimize M out.tmf` stores the If subgraphs; `rebirth verify M out.tmf --inputs`
    (rebirth's runtime on both) agrees within 1e-4 on inputs taking different branches;
    `rebirth inspect` reads the file."""
    out = tmf_root / f"if-{case.source}-{case.path.stem}.tmf"
    made = run_rebirth(rebirth_bin, "optimize", str(case.path), str(out))
    assert made.returncode == 0, made.describe()
    model = load_graph_only(case.path)
    folder = tmf_root / f"if-{case.source}-{case.path.stem}"
    folder.mkdir(exist_ok=True)
    runs = None
    for samples in default_dim_candidates():
        feeds = feeds_with_samples(model, samples)
        np.savez(folder / "probe.npz", **feeds)
        if run_rebirth(rebirth_bin, "verify", str(case.path), str(case.path), "--inputs", str(folder / "probe.npz")).returncode == 0:
            runs = branch_variants(model, feeds)
            break
    assert runs is not None, f"rebirth's runtime runs {case.path.name} with none of the sample counts {default_dim_candidates()}"
    for i, feeds in enumerate(runs):
        inputs = folder / f"inputs{i}.npz"
        np.savez(inputs, **feeds)
        checked = run_rebirth(rebirth_bin, "verify", str(case.path), str(out), "--inputs", str(inputs), "--tolerance", "1e-4")
        assert checked.returncode == 0, checked.describe()
    inspected = run_rebirth(rebirth_bin, "inspect", str(out))
    assert inspected.returncode == 0, inspected.describe()
    assert "with subgraphs" in inspected.stdout, inspected.describe()
