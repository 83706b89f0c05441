"""The checkpoint study and the backends' checkpointed chains: rows, ratios against ``none``,
revolve's frontier, the plot and table, and bad settings as config errors; JAX's and PyTorch's
schedules against the chain's closed-form adjoint in mpmath."""

from __future__ import annotations

from pathlib import Path

import mpmath
import numpy as np
import pytest
from rich.console import Console

from diffbench.ad.checkpointing import parse_schedule, revolve_advances
from diffbench.backends import UnsupportedCase, registry
from diffbench.config import ConfigError
from diffbench.families import BUILTIN
from diffbench.ops import mpmath_ops
from diffbench.report import plots
from diffbench.report.sections import make_plots, tables
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run
from diffbench.studies import load_config
from diffbench.studies.checkpoint import COLUMNS

# ---- backends --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_peer_schedules_match_the_closed_form(backend):
    if registry()[backend].unavailable():
        pytest.skip(registry()[backend].unavailable())
    chain = BUILTIN["residual_mlp"].chain(3, 11)
    with mpmath.workdps(30):
        reference = mpmath_ops.tofloat(chain.gradient(mpmath_ops.asarray(chain.x0), mpmath_ops))
    for schedule in ("none", "every:1", "every:4", "sqrt"):
        prepared = registry()[backend].prepare_chain(chain, parse_schedule(schedule))
        np.testing.assert_allclose(prepared.gradient(chain.x0), reference, rtol=1e-12)
        assert prepared.forward_steps == parse_schedule(schedule).forward_steps(11)
    with pytest.raises(UnsupportedCase, match="no binomial checkpointing"):
        registry()[backend].prepare_chain(chain, parse_schedule("revolve", 2))


# ---- the study ---------------------------------------------------------------------------------

STUDY = """
name = "ck"
[timing]
min_sample_s = 0.001
repeats = 3
[[study]]
kind = "checkpoint"
families = ["sin_tanh_chain", "rosenbrock"]
sizes = [40]
depths = [9]
schedules = ["every:2", "sqrt", "revolve"]
snapshots = [2, 3]
backends = ["reverse", "jax", "torch", { name = "reverse", dtype = "float16" }]
"""


@pytest.fixture(scope="module")
def study_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoint")
    (folder / "ck.toml").write_text(STUDY)
    out = folder / "run"
    run(load_config(folder / "ck.toml"), out, Console(quiet=True), RunOptions(quiet=True))
    return out


def test_the_study_writes_its_columns_and_ratios_against_none(study_run):
    with open(study_run / "checkpoint.csv", encoding="utf-8") as file:
        assert tuple(file.readline().strip().split(",")) == (*COLUMNS, "case", "shard")
    rows = read_rows(study_run / "checkpoint.csv")
    native = [r for r in rows if r["family"] == "sin_tanh_chain" and r["backend"] == "reverse"]
    assert [(r["schedule"], r["snapshots"]) for r in native] == [
        ("none", ""), ("every:2", "5"), ("sqrt", "3"), ("revolve", "2"), ("revolve", "3")]
    for row in native:
        assert row["status"] == "ok", row["message"]
        plan = parse_schedule(row["schedule"], int(row["snapshots"])
                              if row["schedule"] == "revolve" else None)
        assert int(row["forward_steps"]) == plan.forward_steps(9)
        assert float(row["digits"]) >= 14 and row["memory_method"] == "tracemalloc"
    assert float(native[0]["time_ratio"]) == float(native[0]["memory_ratio"]) == 1.0
    assert float(native[-1]["memory_ratio"]) < 1.0
    jax = {r["schedule"]: r for r in rows if r["backend"] == "jax"
           and r["family"] == "sin_tanh_chain"}
    assert jax["sqrt"]["status"] == "ok" and jax["sqrt"]["memory_method"] == "xla-memory-analysis"
    assert jax["revolve"]["status"] == "unsupported"
    torch = [r for r in rows if r["backend"] == "torch" and r["schedule"] == "sqrt"]
    assert all(r["status"] in ("ok", "unsupported") for r in torch)
    assert {r["status"] for r in rows if r["family"] == "rosenbrock"} == {"unsupported"}
    low = [r for r in rows if r["backend"] == "reverse (dtype=float16)"]
    assert len(low) == 10 and all(r["status"] == "unsupported" and r["message"] ==
                                  "the checkpoint study runs its chains in float64 only, not "
                                  "dtype = float16" for r in low)


def test_the_study_tabulates_revolves_frontier_and_draws_it(study_run):
    frontier = read_rows(study_run / "checkpoint_frontier.csv")
    assert [int(r["snapshots"]) for r in frontier] == list(range(1, 9))
    assert all(int(r["forward_steps"]) == revolve_advances(9, int(r["snapshots"])) + 9
               for r in frontier)
    assert any(t.title == "checkpointing: memory against time" for t in tables(study_run))
    assert study_run / "plots" / "checkpoint_frontier.png" in make_plots(study_run)
    assert plots.SCHEDULE_MARKERS.keys() == {"none", "every", "sqrt", "revolve"}


CONFIG_ERRORS = [
    ('schedules = ["none", "square"]', "study[0].schedules[1]", "unknown schedule 'square'"),
    ('schedules = ["every:0"]', "study[0].schedules[0]", "every:K needs K"),
    ('schedules = ["revolve"]', "study[0].snapshots", "revolve, which needs the states"),
    ('schedules = ["revolve"]\nsnapshots = [0]', "study[0].snapshots[0]", "whole number >= 1"),
    ('schedules = ["revolve"]\nsnapshots = [true]', "study[0].snapshots[0]", "got True"),
    ('depths = [0]', "study[0].depths[0]", "whole number >= 1, got 0"),
    ('depths = []', "study[0].depths", "must not be empty"),
    ('depths = 4', "study[0].depths", "expected list"),
]


@pytest.mark.parametrize(("setting", "key", "words"), CONFIG_ERRORS)
def test_bad_settings_are_config_errors_naming_the_key(tmp_path, setting, key, words):
    path = tmp_path / "bad.toml"
    path.write_text(f'[[study]]\nkind = "checkpoint"\nfamilies = ["sin_tanh_chain"]\n'
                    f'backends = ["reverse"]\n{setting}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}: {key}: " in str(caught.value) and words in str(caught.value)
