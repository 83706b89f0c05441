"""The step-sweep study against finite-difference theory, the complex step, and the auto step."""

import numpy as np
import pytest
from rich.console import Console

from diffbench.backends import registry
from diffbench.backends.central import LEVELS
from diffbench.config import ConfigError, load_config
from diffbench.families import BUILTIN, Problem
from diffbench.measure.differences import CoordinateLine, NotAnalytic, difference
from diffbench.measure.error import relative_errors
from diffbench.measure.noise import noise_from_table
from diffbench.measure.sweep import loglog_slope
from diffbench.reference import reference_gradient
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run
from diffbench.studies.step_sweep import SUMMARY_COLUMNS, SWEEP_COLUMNS

EPS = np.finfo(float).eps

SWEEP = """
[[study]]
kind = "step-sweep"
families = ["exp", "sin", "relu", "rosenbrock"]
sizes = [6]
components = 2
"""


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    path = folder / "sweep.toml"
    path.write_text(SWEEP)
    console = Console(file=open(folder / "out.txt", "w"), width=140)  # noqa: SIM115
    run(load_config(path), folder / "run", console, argv=["test"])
    console.file.close()
    summary = {(r["family"], r["component"], r["rule"]): r
               for r in read_rows(folder / "run" / "step_summary.csv")}
    return folder, read_rows(folder / "run" / "step_sweep.csv"), summary


def test_csv_columns_as_documented(sweep_run):
    folder, rows, _ = sweep_run
    with open(folder / "run" / "step_sweep.csv") as handle:
        assert tuple(handle.readline().strip().split(",")) == (*SWEEP_COLUMNS, "case", "shard")
    with open(folder / "run" / "step_summary.csv") as handle:
        assert tuple(handle.readline().strip().split(",")) == (*SUMMARY_COLUMNS, "case", "shard")
    assert {"family", "point", "rule", "h", "err"} <= set(SWEEP_COLUMNS)
    assert {r["rule"] for r in rows if r["family"] == "exp"} == {
        "central", "forward", "backward", "central-exact", "forward-exact", "backward-exact",
        "complex"}
    assert len([r for r in rows if r["family"] == "exp" and r["rule"] == "central"]) == 121
    assert "step sweep" in (folder / "out.txt").read_text()


def test_exp_slopes_and_optimum_match_theory(sweep_run):
    _, _, summary = sweep_run
    for rule in ("central", "central-exact"):
        row = summary[("exp", "0", rule)]
        assert abs(float(row["slope_truncation"]) - 2.0) <= 0.3
        assert abs(float(row["slope_roundoff"]) + 1.0) <= 0.3
        assert abs(np.log10(float(row["h_opt"]) / float(row["h_theory"]))) <= 1.0
        assert float(row["err_near"]) < 1e-10
    forward = summary[("exp", "0", "forward")]
    assert abs(float(forward["slope_truncation"]) - 1.0) <= 0.3
    assert abs(np.log10(float(forward["h_opt"]) / float(forward["h_theory"]))) <= 1.0


def test_complex_step_reaches_round_off(sweep_run):
    _, _, summary = sweep_run
    for family in ("exp", "sin"):
        assert float(summary[(family, "0", "complex")]["err_min"]) <= 1e-15


def test_complex_step_is_unsupported_where_f_is_not_analytic(sweep_run):
    _, rows, summary = sweep_run
    assert summary[("relu", "2", "complex")]["status"] == "unsupported"
    assert "maximum" in summary[("relu", "2", "complex")]["message"]
    assert ("relu", "1", "central") not in summary  # the kink is not swept
    problem = BUILTIN["relu"].build(None)
    with pytest.raises(NotAnalytic):
        difference(CoordinateLine(problem, 2), "complex", 1e-20)


def test_vector_family_sweeps_chosen_components(sweep_run):
    _, _, summary = sweep_run
    components = {key[1] for key in summary if key[0] == "rosenbrock"}
    assert components == {"0", "5"}
    assert all(summary[("rosenbrock", c, "central")]["size"] == "6" for c in components)


def test_vanished_steps_are_marked(sweep_run):
    _, rows, _ = sweep_run
    tiny = [r for r in rows if r["family"] == "sin" and r["rule"] == "central-exact"
            and float(r["h"]) < EPS / 2]
    assert tiny and all(r["vanished"] == "true" and r["status"] == "skipped" for r in tiny)


def test_exact_step_removes_the_rounding_of_x_plus_h():
    """On f(t) = t at 1e4, x ± h' is exact, so the exact rule gives 1; the plain one does not."""
    section = CoordinateLine(Problem("line", None, lambda x, ops: x[0], np.array([1e4])), 0)
    h = 1e-7
    assert difference(section, "central-exact", h).step == (1e4 + h) - 1e4
    assert difference(section, "central-exact", h).value == 1.0
    assert abs(difference(section, "central", h).value - 1.0) > 1e-6


def test_noise_table_recovers_known_noise():
    rng = np.random.default_rng(0)
    sigma, verdict = noise_from_table(1.0 + 1e-3 * np.arange(8) + 1e-10 * rng.standard_normal(8))
    assert verdict.startswith("level") and 0.25e-10 < sigma < 4e-10
    assert noise_from_table(np.full(8, 2.0))[1] == "too-small"


def test_loglog_slope():
    h = np.logspace(-6, -2, 9)
    assert loglog_slope(h, 3.0 * h**2) == pytest.approx(2.0)
    assert loglog_slope(h[:3], h[:3]) is None


@pytest.mark.parametrize("family,target", [("exp", 1e-13), ("sin", 1e-13), ("cancel", 1e-5)])
def test_auto_step_meets_its_targets(family, target):
    problem = BUILTIN[family].build(None)
    prepared = registry()["central"].prepare(problem, step="auto")
    gradient = prepared.gradient(problem.x0.copy())
    reference = reference_gradient(problem).as_float()
    error = relative_errors(gradient, reference)[0]
    stats = prepared.stats()
    assert error <= target
    assert stats["f_evals"] == 2 * LEVELS <= 15
    estimate = stats["err_estimates"][0] / abs(gradient[0])
    assert 0.3 * error <= estimate <= 1e6 * max(error, EPS)


def test_auto_step_beats_the_default_on_cancel():
    problem = BUILTIN["cancel"].build(None)
    reference = reference_gradient(problem).as_float()
    errors = {step: relative_errors(registry()["central"].prepare(problem, step=step)
                                    .gradient(problem.x0.copy()), reference)[0]
              for step in ("default", "auto")}
    assert errors["auto"] < errors["default"] / 100


BASE = '[[study]]\nkind = "step-sweep"\nfamilies = ["exp"]\n'


@pytest.mark.parametrize("extra,key,words", [
    ("h_min = 1.0\nh_max = 0.1\n", "h_min", "must be < h_max"),
    ("h_min = 0.1\nh_max = 0.1\n", "h_min", "must be < h_max"),
    ("h_min = -1.0\n", "h_min", "> 0"),
    ("h_max = 0.0\n", "h_max", "> 0"),
    ("h_points = 1\n", "h_points", ">= 2"),
    ("h_points = 2.5\n", "h_points", "expected int"),
    ("h_log = 1\n", "h_log", "expected bool"),
    ("components = 0\n", "components", ">= 1"),
    ("h_mni = 1e-10\n", "h_mni", "did you mean 'h_min'"),
    ('backends = ["central"]\n', "backends", "unknown key"),
])
def test_sweep_config_errors_name_the_key(tmp_path, extra, key, words):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + extra)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"study[0].{key}:" in str(caught.value) and words in str(caught.value)


def test_auto_step_option_is_validated(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[study]]\nkind = "gradient"\nfamilies = ["exp"]\n'
                    'backends = [{ name = "central", step = "atuo" }]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "study[0].backends[0].step:" in str(caught.value) and "'auto'" in str(caught.value)


def test_gradient_study_reports_auto_cost_and_error_estimate(tmp_path):
    path = tmp_path / "auto.toml"
    path.write_text('[timing]\nmin_sample_s = 0.0005\nrepeats = 2\n'
                    '[[study]]\nkind = "gradient"\nfamilies = ["cancel"]\n'
                    'backends = ["central", { name = "central", step = "auto" }]\n')
    run(load_config(path), tmp_path / "run", Console(quiet=True),
        RunOptions(quiet=True, plots=False), argv=["test"])
    rows = {r["variant"]: r for r in read_rows(tmp_path / "run" / "gradient.csv")}
    assert rows["default"]["f_evals"] == "2" and rows["default"]["err_estimate"] == ""
    auto = rows["step=auto"]
    assert auto["f_evals"] == str(2 * LEVELS) and float(auto["err_max"]) <= 1e-5
    ratio = float(auto["err_estimate_ratio"])
    assert ratio == pytest.approx(float(auto["err_estimate"]) / float(auto["err_max"]))
