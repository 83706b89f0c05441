"""The hostile-user pass: configs and functions a careless or hostile user writes (kept in
tests/data/hostile/), each a clear message and an exit status a script can trust."""

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffbench.cli import app

HOSTILE = Path(__file__).parent / "data" / "hostile"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["run", *args])


@pytest.mark.parametrize("name,words", [
    ("not_utf8.toml", "line 2, column 1: not UTF-8 text (byte 0x89)"),
    ("latin1_comment.toml", "line 1, column 6: not UTF-8 text (byte 0xe9)"),
    ("returns_none.toml", "families.f.function: cases.py:returns_none must return a finite "
                          "real number; at its point it returned None"),
    ("returns_text.toml", "it returned '0.5' (str)"),
    ("returns_complex.toml", "must return a finite real number"),
    ("nan_at_point.toml", "families.f.point[1]: must be a finite number, got nan"),
    ("mutates.toml", "changes its input (x[0]: 1 → 1.5)"),
    ("numpy_only.toml", "works on numpy arrays but not on traced values"),
    ("exits_at_point.toml", "cases.py:exits raised SystemExit: 3 at its point"),
    ("spins_at_point.toml", "did not return within 1 s at its point (timing.budget_s)"),
    ("huge_repeats.toml", "timing.repeats: must be a finite number > 0 and <= 10000"),
    ("huge_budget.toml", "timing.budget_s: must be a finite number > 0 and <= 86400"),
    ("duplicate_study.toml", "study[1]: repeats study[0]"),
    ("overlapping_studies.toml", "study[1]: sin on 'central' is already measured by study[0]"),
    ("duplicate_family.toml", "study[0].families[2]: 'sin' appears twice"),
    ("duplicate_backend.toml", "study[0].backends[1]: repeats backends[0]: 'jax' with the "
                               "same options"),
])
def test_a_bad_config_is_one_message_and_exit_2(tmp_path, name, words):
    started = time.perf_counter()
    result = run(str(HOSTILE / name), "--out", str(tmp_path / "run"), "-q")
    assert result.exit_code == 2, result.output
    assert words in result.output and str(HOSTILE / name) in result.output, result.output
    assert "Traceback" not in result.output
    assert time.perf_counter() - started < 20  # the looping one is stopped at its cap
    assert not (tmp_path / "run").exists()
