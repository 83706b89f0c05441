"""The gradient study's rows: ω like for like, every error figure, memory measured alike."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import diffbench.studies.base as base
from diffbench.backends import registry
from diffbench.backends.base import Backend, Prepared
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run
from diffbench.studies import load_config

DATA = Path(__file__).parent / "data"
CONFIG = """
name = "rows"
[timing]
min_sample_s = 0.001
repeats = 3
[[study]]
kind = "gradient"
families = ["rosenbrock", "exp"]
sizes = [30]
backends = ["central", "reverse", "jax", { name = "jax", value = true }]
"""


def _run(tmp_path: Path, text: str) -> list[dict[str, str]]:
    config = tmp_path / "config.toml"
    config.write_text(text)
    out = tmp_path / "run"
    run(load_config(config), out, Console(quiet=True), RunOptions(quiet=True))
    return read_rows(out / "gradient.csv")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("rows"), CONFIG)


def _row(rows, family, backend, variant="default"):
    (row,) = [r for r in rows if (r["family"], r["backend"], r["variant"])
              == (family, backend, variant)]
    return row


def test_omega_divides_by_f_as_the_backend_runs_it(rows):
    for row in rows:
        assert row["status"] == "ok", row["message"]
        time_s = float(row["time_s"])
        assert float(row["omega"]) == pytest.approx(time_s / float(row["f_time_s"]))
        assert float(row["omega_numpy"]) == pytest.approx(time_s / float(row["f_numpy_time_s"]))
    assert _row(rows, "rosenbrock", "jax")["f_method"] == "jax-jit"
    central = _row(rows, "rosenbrock", "central")
    assert central["f_method"] == "numpy" and central["omega"] == central["omega_numpy"]


def test_every_error_figure_and_the_attainable_digits(rows):
    for row in rows:
        assert float(row["digits"]) == pytest.approx(
            min(16.0, -np.log10(float(row["err_norm"]))) if float(row["err_norm"]) else 16.0)
        assert float(row["err_abs"]) == pytest.approx(
            float(row["err_norm"]) * float(row["err_scale"]))
        assert float(row["err_max"]) >= float(row["err_median"])
    jax_exp = _row(rows, "exp", "jax")
    assert float(jax_exp["digits"]) >= 13


def test_memory_is_measured_alike_and_by_each_backend(rows):
    for row in rows:
        assert row["rss_peak_bytes"] != "" and row["f_rss_peak_bytes"] != ""
    assert _row(rows, "rosenbrock", "central")["memory_method"] == "tracemalloc"
    jax = _row(rows, "rosenbrock", "jax")
    assert jax["memory_method"] == "xla-memory-analysis" and jax["f_peak_bytes"] != ""


class _Chatty(Prepared):
    def gradient(self, x):
        return np.zeros_like(x)

    def stats(self):
        return {"status": "ok", "f_evals": 1}


class _ChattyBackend(Backend):
    name = "chatty"
    description = "a backend whose stats() sets a column it may not"

    def prepare(self, problem, **options):
        return _Chatty(problem)


def test_stats_may_set_only_documented_columns(tmp_path, monkeypatch):
    monkeypatch.setitem(registry(), "chatty", _ChattyBackend())
    rows = _run(tmp_path, CONFIG.replace(
        'backends = ["central", "reverse", "jax", { name = "jax", value = true }]',
        'backends = ["chatty"]'))
    assert {row["status"] for row in rows} == {"error"}
    assert "stats() set columns it may not: ['status']" in rows[0]["message"]


def test_timing_in_several_processes_reports_their_spread(tmp_path):
    rows = _run(tmp_path, CONFIG.replace("repeats = 3", "repeats = 3\nprocesses = 2").replace(
        'families = ["rosenbrock", "exp"]', 'families = ["exp"]').replace(
        'backends = ["central", "reverse", "jax", { name = "jax", value = true }]',
        'backends = ["reverse"]'))
    (row,) = rows
    assert row["status"] == "ok" and row["processes"] == "2" and row["samples"] == "6"
    assert float(row["process_spread"]) >= 0.0
    assert float(row["omega"]) == pytest.approx(float(row["time_s"]) / float(row["f_time_s"]))


CUSTOM = """
name = "custom"
[timing]
min_sample_s = 0.001
repeats = 3
[families.kinky]
function = "my_cases.py:kinky"
point = [0.0, 1.0, 0.5]
[families.bowl]
function = "my_cases.py:quadratic_bowl"
point = [1.0, 1.0, 1.0, 1.0, 1.0]
[[study]]
kind = "gradient"
families = ["kinky", "bowl"]
backends = ["central", "reverse", "jax"]
"""


@pytest.fixture(scope="module")
def custom_rows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("custom")
    shutil.copy(DATA / "my_cases.py", folder / "my_cases.py")
    return _run(folder, CUSTOM)


def test_undeclared_kinks_are_detected_named_and_left_out(custom_rows):
    for backend in ("central", "reverse", "jax"):
        row = _row(custom_rows, "kinky", backend)
        assert row["status"] == "ok"
        assert "kink at x[0] detected" in row["message"]
        assert "kink at x[1] detected" in row["message"]
        assert float(row["digits"]) >= 10  # x[2] alone is measured: d/dx max(x, 0) = 1


def test_a_stationary_point_scores_exact_methods_in_full(custom_rows):
    """The bowl's gradient vanishes at x = 1 (2(x−1) + (x_{i−1} + x_{i+1})/4 − 1/4 − 1/4
    inside, and likewise at the ends): digits come from the absolute error against S."""
    for backend in ("reverse", "jax"):
        row = _row(custom_rows, "bowl", backend)
        assert row["status"] == "ok" and float(row["digits"]) >= 13
        assert "zero to working precision" in row["message"] or float(row["err_abs"]) == 0.0
    central = _row(custom_rows, "bowl", "central")
    assert float(central["digits"]) >= 6


def test_a_reference_from_the_engine_under_test_says_so(tmp_path):
    shutil.copy(DATA / "my_cases.py", tmp_path / "my_cases.py")
    rows = _run(tmp_path, CUSTOM.replace('point = [1.0, 1.0, 1.0, 1.0, 1.0]',
                                         'point = [1.0, 1.0, 1.0, 1.0, 1.0]\n'
                                         '[reference]\ndiff_budget_s = 1e-9'
                                         ).replace('"kinky", "bowl"', '"bowl"'))
    reverse = _row(rows, "bowl", "reverse")
    assert reverse["reference_method"] == "reverse-mpmath"
    assert reverse["reference_same_engine"] == "true"
    assert reverse["message"].startswith("reference: same engine")
    assert _row(rows, "bowl", "jax")["reference_same_engine"] == "false"


def test_mpmath_differentiation_is_chosen_only_within_the_reference_cap(tmp_path, monkeypatch):
    budgets = []
    real = base.reference_gradient

    def spy(problem, digits, diff_budget_s, **options):
        budgets.append(diff_budget_s)
        return real(problem, digits, diff_budget_s, **options)

    monkeypatch.setattr(base, "reference_gradient", spy)
    _run(tmp_path, CONFIG.replace('["rosenbrock", "exp"]', '["rosenbrock"]').replace(
        ', "jax", { name = "jax", value = true }', '').replace("sizes = [30]", "sizes = [3]")
        + "[reference]\ndiff_budget_s = 30.0\nbudget_s = 7.0\n")
    assert budgets and set(budgets) == {7.0}
