"""Bad input gets a one-line error, exit code 1, and no output file; bad usage gets exit code 2.

fixtures/bad/expected.json maps each file name in fixtures/bad/ to a fragment the error must
contain (case-insensitive). An entry whose fragment is "no such file" names a file that must not
exist; every other entry's file must exist (so a lost fixture fails here instead of turning
into a "no such file" case).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import BAD_FIXTURES, CRASH_MARKERS, FIXTURES, REPO, Run, run_rebirth

MISSING = "no such file"


def expected_errors() -> dict[str, str]:
    manifest = BAD_FIXTURES / "expected.json"
    if not manifest.is_file():
        raise pytest.UsageError(f"{manifest} is missing: run fixtures/make_fixtures.py")
    return json.loads(manifest.read_text())


def assert_no_crash(run: Run) -> None:
    for marker in CRASH_MARKERS:
        assert marker not in run.stderr and marker not in run.stdout, \
            f"output shows a crash ({marker!r})\n{run.describe()}"


def assert_nothing_written(folder: Path, run: Run) -> None:
    left = sorted(p.name for p in folder.iterdir())
    assert not left, f"files left behind in the output folder: {left}\n{run.describe()}"


@pytest.mark.parametrize("name, fragment", sorted(expected_errors().items()))
def test_bad_model_is_refused(rebirth_bin, tmp_path, name, fragment):
    path = BAD_FIXTURES / name
    if fragment == MISSING:
        assert not path.exists(), f"{path} must not exist: its entry expects {MISSING!r}"
    else:
        assert path.is_file(), f"{path} is missing: run fixtures/make_fixtures.py"
    shown = path.relative_to(REPO).as_posix()  # as a user would type it, from the repo root
    out_folder = tmp_path / "out"
    out_folder.mkdir()
    out = out_folder / "out.onnx"

    run = run_rebirth(rebirth_bin, "optimize", shown, str(out))

    assert_no_crash(run)
    assert run.returncode == 1, f"expected exit code 1\n{run.describe()}"
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and run.stderr.endswith("\n"), \
        f"stderr must be exactly one line\n{run.describe()}"
    line = lines[0]
    assert line.startswith("rebirth: "), f"stderr must read 'rebirth: <path>: <problem>'\n{line}"
    assert shown in line, f"the error does not name the file {shown!r}\n{line}"
    assert fragment.lower() in line.lower(), f"the error does not say {fragment!r}\n{line}"
    assert not out.exists(), f"{out} was written for a bad model\n{run.describe()}"
    assert_nothing_written(out_folder, run)


USAGE_ERRORS = {
    "no-arguments": ["optimize"],
    "missing-output": ["optimize", "fixtures/mlp.onnx"],
    "unknown-flag": ["optimize", "fixtures/mlp.onnx", "{out}", "--passes", "none",
                     "--no-such-flag"],
    "unknown-command": ["no-such-command"],
    "bad-format": ["inspect", "fixtures/mlp.onnx", "--format", "no-such-format"],
}


@pytest.mark.parametrize("args", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_error_exits_2(rebirth_bin, tmp_path, args):
    assert (FIXTURES / "mlp.onnx").is_file(), "fixtures/mlp.onnx is missing"
    out_folder = tmp_path / "out"
    out_folder.mkdir()
    run = run_rebirth(rebirth_bin, *(a.format(out=out_folder / "out.onnx") for a in args))
    assert_no_crash(run)
    assert run.returncode == 2, f"expected exit code 2 for a usage error\n{run.describe()}"
    assert run.stderr.strip(), f"a usage error must say what is wrong on stderr\n{run.describe()}"
    assert_nothing_written(out_folder, run)
