"""The gradient study's rows: ω like for like, every error figure, memory measured alike."""

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from diffbench.backends import registry
from diffbench.backends.base import Backend, Prepared
from diffbench.config import load_config
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run

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
    run(load_config(config), out, Console(quiet=True), RunOptions(quiet=True, plots=False))
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
