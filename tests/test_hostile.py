"""The hostile-user pass: configs and functions a careless or hostile user writes (kept in
tests/data/hostile/), each a clear message and an exit status a script can trust."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffbench.cli import app
from diffbench.results import read_rows

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


def test_numpy_only_code_gets_the_hint_to_write_over_ops(tmp_path):
    result = run(str(HOSTILE / "numpy_only.toml"), "--dry-run")
    assert "instead of numpy" in result.output and "ops.sin" in result.output


def statuses(run_dir: Path) -> list[tuple[str, str]]:
    return [(row["status"], row["message"]) for row in read_rows(run_dir / "gradient.csv")]


def test_a_function_that_exits_is_a_case_error_and_exit_1(tmp_path):
    out = tmp_path / "run"
    result = run(str(HOSTILE / "exits_later.toml"), "--out", str(out), "-q", "--no-plots")
    assert result.exit_code == 1, result.output
    (status, message), = statuses(out)
    assert status == "error" and "SystemExit(3)" in message
    assert "no case succeeded" in result.output and "1 error" in result.output


@pytest.mark.parametrize("isolate", [False, True])
def test_a_looping_function_ends_within_three_budgets(tmp_path, isolate):
    """A function that loops once a case runs it (budget 3 s), isolated and not."""
    out = tmp_path / "run"
    started = time.perf_counter()
    result = run(str(HOSTILE / "spins_later.toml"), "--out", str(out), "-q", "--no-plots",
                 *(["--isolate"] if isolate else []))
    elapsed = time.perf_counter() - started
    assert result.exit_code == 1, result.output
    (status, message), = statuses(out)
    assert status == "timeout" and "budget of 3 s (timing.budget_s)" in message
    assert elapsed < 3 * 3.0, elapsed


def test_a_reference_that_loops_stops_at_its_own_cap(tmp_path):
    out = tmp_path / "run"
    started = time.perf_counter()
    result = run(str(HOSTILE / "spins_in_mpmath.toml"), "--out", str(out), "-q",
                 "--no-plots", "--no-cache")
    assert result.exit_code == 1, result.output
    (status, message), = statuses(out)
    assert status == "no-reference" and "within 1 s (reference.budget_s)" in message
    assert time.perf_counter() - started < 15


def test_a_custom_family_that_scales(tmp_path):
    out = tmp_path / "run"
    result = run(str(HOSTILE / "scaling_point.toml"), "--out", str(out), "-q", "--no-plots")
    assert result.exit_code == 0, result.output
    rows = read_rows(out / "gradient.csv")
    assert {(r["size"], r["n_inputs"], r["status"]) for r in rows} == {
        ("3", "3", "ok"), ("30", "30", "ok")}


def test_a_custom_family_that_scales_needs_sizes(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text((HOSTILE / "scaling_point.toml").read_text()
                      .replace("sizes = [3, 30]\n", "")
                      .replace('"cases.py:', f'"{HOSTILE}/cases.py:'))
    result = run(str(config), "--dry-run")
    assert result.exit_code == 2 and "study[0].sizes: family 'bowl'" in result.output


QUICK = """
[timing]
min_sample_s = 0.0005
repeats = 2

[families.steep]
function = "{cases}:goes_nan"
point = [0.0]

[[study]]
kind = "gradient"
families = ["sin", "steep"]
backends = ["central"]
"""


@pytest.fixture
def quick(tmp_path) -> Path:
    """sin (ok) and a function whose derivative is infinite at its point (nan) on central."""
    path = tmp_path / "quick.toml"
    path.write_text(QUICK.format(cases=Path(__file__).parent / "data" / "my_cases.py"))
    return path


def test_a_run_is_never_overwritten_unless_forced(tmp_path, quick):
    out = tmp_path / "run"
    assert run(str(quick), "--out", str(out), "-q", "--no-plots").exit_code == 0
    (out / "swell.csv").write_text("left from another config\n")
    again = run(str(quick), "--out", str(out), "-q", "--no-plots")
    assert again.exit_code == 2 and "a run is already there" in again.output
    assert (out / "swell.csv").exists()
    forced = run(str(quick), "--out", str(out), "-q", "--no-plots", "--force")
    assert forced.exit_code == 0 and not (out / "swell.csv").exists()
    assert len(read_rows(out / "gradient.csv")) == 2


@pytest.mark.parametrize("make,words", [
    (lambda out: out.write_text("a file"), "a file of that name exists"),
    (lambda out: (out.mkdir(), (out / "notes.txt").write_text("mine")),
     "holds no diffbench run"),
    (lambda out: out.parent.joinpath("blocker").write_text(""), "cannot write there"),
])
def test_an_unusable_out_is_a_clear_error(tmp_path, quick, make, words):
    out = tmp_path / "run"
    make(out)
    target = tmp_path / "blocker" / "run" if words == "cannot write there" else out
    result = run(str(quick), "--out", str(target), "-q", "--force")
    assert result.exit_code == 2 and words in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_out_is_a_clear_error(tmp_path, quick):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    result = run(str(quick), "--out", str(locked / "run"), "-q")
    assert result.exit_code == 2 and "cannot write there" in result.output


def test_exit_status_strict_and_quiet(tmp_path, quick):
    out = tmp_path / "run"
    result = run(str(quick), "--out", str(out), "-q", "--no-plots")
    assert result.exit_code == 0 and result.stdout.strip() == str(out)
    strict = run(str(quick), "--out", str(out), "-q", "--no-plots", "--force", "--strict")
    assert strict.exit_code == 1
    assert "--strict: 1 of 2 rows" in strict.output and "1 nan" in strict.output


@pytest.mark.parametrize("manifest,words", [
    ("[1, 2]", "a JSON object was expected, got list"),
    ('{"config_path": "x.toml", "config": {}, "done": "all"}', "key 'done': expected list"),
    ('{"config_path": "x.toml", "config": {}, "done": [], "merged_from": [{}, {}]}',
     "is a merged run (2 shards): resume each unfinished shard"),
    ("{not json", "not a diffbench run directory"),
])
def test_resume_of_a_manifest_it_cannot_finish(tmp_path, manifest, words):
    (tmp_path / "manifest.json").write_text(manifest)
    result = run("--resume", str(tmp_path))
    assert result.exit_code == 2 and words in result.output, result.output
    assert "Traceback" not in result.output


def test_resume_of_a_damaged_csv_names_the_line(tmp_path, quick):
    out = tmp_path / "run"
    assert run(str(quick), "--out", str(out), "-q", "--no-plots").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["finished"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    lines = (out / "gradient.csv").read_text().splitlines(keepends=True)
    (out / "gradient.csv").write_text(lines[0] + lines[1].replace(",", ",,", 1) + lines[2])
    result = run("--resume", str(out), "-q")
    assert result.exit_code == 2 and "gradient.csv: line 2:" in result.output, result.output
    (out / "gradient.csv").write_text("a,b\n1,2\n")
    result = run("--resume", str(out), "-q")
    assert result.exit_code == 2 and "no 'case' column" in result.output


BUDGET = """
[timing]
min_sample_s = 0.001
repeats = 3
budget_s = {budget}

[[study]]
kind = "gradient"
families = ["rosenbrock"]
sizes = [{size}]
backends = [{backends}]
"""


def test_the_budget_bounds_a_case_run_in_the_parent(tmp_path):
    """One central-differences gradient of rosenbrock[10000] takes about a second: at a
    budget of 0.5 s the case stops there, not after its first calls."""
    config = tmp_path / "c.toml"
    config.write_text(BUDGET.format(budget=0.5, size=10000, backends='"central"'))
    out = tmp_path / "run"
    assert run(str(config), "--out", str(out), "-q", "--no-plots").exit_code == 1
    (status, message), = statuses(out)
    assert status == "timeout" and message.startswith("stopped after 0.5 s"), message


@pytest.mark.parametrize("isolate", [False, True])
def test_importing_jax_is_not_in_the_budget_nor_in_setup(tmp_path, isolate):
    """rosenbrock[10] on JAX at a budget of 2 s (less than importing JAX takes on a busy
    machine) is ok whether isolated or not, and its setup_s is the compile, not the import:
    shorter than importing JAX in a fresh process, measured here."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import jax.numpy"], check=True)
    import_s = time.perf_counter() - started
    config = tmp_path / "c.toml"
    config.write_text(BUDGET.format(budget=2.0, size=10, backends='"jax"'))
    out = tmp_path / "run"
    result = run(str(config), "--out", str(out), "-q", "--no-plots",
                 *(["--isolate"] if isolate else []))
    assert result.exit_code == 0, result.output
    (row,) = read_rows(out / "gradient.csv")
    assert row["status"] == "ok" and float(row["setup_s"]) < import_s, (row, import_s)
