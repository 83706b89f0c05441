"""The step-sweep study against finite-difference theory, the complex step, the auto step, and
the adaptive differences beside numdifftools and SciPy."""

import importlib.util
import os

import numpy as np
import pytest
from rich.console import Console

from diffbench.backends import registry
from diffbench.backends.central import LEVELS
from diffbench.config import ConfigError
from diffbench.families import BUILTIN, Problem
from diffbench.measure.differences import CoordinateLine, NotAnalytic, difference
from diffbench.measure.error import relative_errors
from diffbench.measure.noise import noise_from_table
from diffbench.measure.sweep import (
    error_model,
    fit_model,
    loglog_slope,
    summarize,
    textbook_optimum,
    window_optimum,
)
from diffbench.reference import Reference, reference_gradient
from diffbench.report.plots import _theory_line
from diffbench.report.sections import markdown_report
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run
from diffbench.studies import load_config
from diffbench.studies.step_sweep import (
    COMPARED,
    METHODS_COLUMNS,
    SUMMARY_COLUMNS,
    SWEEP_COLUMNS,
    StepSweepStudy,
    compare_methods,
    step_grid,
)

EPS = np.finfo(float).eps

SWEEP = """
[[study]]
kind = "step-sweep"
families = ["exp", "sin", "cancel", "relu", "rosenbrock"]
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
    central = [r for r in rows if r["family"] == "exp" and r["rule"] == "central"]
    assert len(central) == 4 * 121
    assert [float(r["h"]) for r in central] == sorted(float(r["h"]) for r in central)
    assert {r["shift"] for r in central} == {"0", "1", "2", "3"}
    assert "step sweep" in markdown_report(folder / "run")


def test_exp_slopes_and_optimum_match_theory(sweep_run):
    _, _, summary = sweep_run
    for rule in ("central", "central-exact"):
        row = summary[("exp", "0", rule)]
        assert abs(float(row["slope_truncation"]) - 2.0) <= 0.3
        assert abs(float(row["slope_roundoff"]) + 1.0) <= 0.3
        assert abs(np.log10(float(row["h_opt"]) / float(row["h_theory"]))) <= 1.0
        assert float(row["h_opt_low"]) <= float(row["h_opt"]) <= float(row["h_opt_high"])
        assert row["h_opt_method"] == "fit"
        assert float(row["err_near"]) < 2e-10
    forward = summary[("exp", "0", "forward")]
    assert abs(float(forward["slope_truncation"]) - 1.0) <= 0.3
    assert abs(np.log10(float(forward["h_opt"]) / float(forward["h_theory"]))) <= 1.0


def test_cancel_optimum_is_the_noise_one_not_the_textbook_one(sweep_run):
    """sqrt(x² + 1) − x at 1e4: f's noise is eps·|x|, not eps·|f|; the best central step is
    hundreds of times the textbook one, h_noise predicts it within ×2, and it barely moves with
    the grid."""
    _, _, summary = sweep_run
    row = summary[("cancel", "0", "central")]
    h_opt, low, high = (float(row[key]) for key in ("h_opt", "h_opt_low", "h_opt_high"))
    assert row["h_opt_method"] == "fit" and 9.0 <= low <= h_opt <= high <= 22.0
    assert h_opt / float(row["h_theory"]) > 150
    assert 0.5 <= float(row["h_noise"]) / h_opt <= 2.0


def test_complex_step_reaches_round_off(sweep_run):
    _, _, summary = sweep_run
    for family in ("exp", "sin"):
        assert float(summary[(family, "0", "complex")]["err_min"]) <= 1e-15


def test_complex_step_is_unsupported_where_f_is_not_analytic(sweep_run):
    _, rows, summary = sweep_run
    assert summary[("relu", "2", "complex")]["status"] == "unsupported"
    assert "maximum" in summary[("relu", "2", "complex")]["message"]
    assert ("relu", "1", "central") not in summary  # the kink is not swept
    problem = BUILTIN["relu"].make(None)
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


AT = 1e4 + 1 / 3
SLOPE = -2.75


@pytest.mark.parametrize("rule", ["central", "forward", "backward"])
def test_exact_step_removes_the_rounding_of_x_plus_h(rule):
    """f(t) = w·(t − c) at t = c, an x where h is not representable: x + h' − c is exactly h'
    (x − (x − h') for backward), so each -exact rule gives the closed form f' = w to an eps,
    while the plain rule, dividing by h, is off by |h' − h|/h."""
    line = CoordinateLine(Problem("line", None, lambda x, ops: SLOPE * (x[0] - AT),
                                  np.array([AT])), 0)
    for h in (1e-7 * (1 + 1 / 7), 3e-9 * (1 + 1 / 3), 0.0123):
        exact = difference(line, f"{rule}-exact", h)
        assert exact.step != h and exact.step == (AT - (AT - h) if rule == "backward"
                                                  else (AT + h) - AT)
        assert abs(exact.value - SLOPE) <= 2 * EPS * abs(SLOPE)
        plain = difference(line, rule, h)
        assert abs(plain.value - SLOPE) >= 0.5 * abs(SLOPE) * abs(exact.step - h) / h
        assert abs(exact.step - h) / h > 1e3 * EPS


def test_exact_step_rules_meet_the_error_model_on_a_curved_function():
    """exp(t − c) at t = c (f' = 1 in closed form): with exact steps the error stays within the
    textbook model h²/6 + eps/h (central) and h/2 + 2eps/h (forward, backward), while the
    plain rules carry the rounding of x + h, far above it at these steps."""
    line = CoordinateLine(Problem("exp", None, lambda x, ops: ops.exp(x[0] - AT),
                                  np.array([AT])), 0)
    for h in (1e-6 * (1 + 1 / 7), 1e-5 * (1 + 1 / 3)):
        for rule in ("central", "forward", "backward"):
            model = error_model(rule, EPS, 1.0, 1.0)
            assert abs(difference(line, f"{rule}-exact", h).value - 1.0) <= 2 * model(h)
        assert abs(difference(line, "central", h).value - 1.0) > 10 * error_model(
            "central", EPS, 1.0, 1.0)(h)


def test_noise_table_recovers_known_noise():
    rng = np.random.default_rng(0)
    sigma, verdict = noise_from_table(1.0 + 1e-3 * np.arange(8) + 1e-10 * rng.standard_normal(8))
    assert verdict.startswith("level") and 0.25e-10 < sigma < 4e-10
    assert noise_from_table(np.full(8, 2.0))[1] == "too-small"


def test_textbook_optimum_is_the_minimum_of_the_error_model():
    sigma, d2, d3 = 1e-15, 3.0, 7.0
    h, err = textbook_optimum("central", sigma, d2, d3)
    assert h == pytest.approx((3 * sigma / d3) ** (1 / 3)) and err == pytest.approx(1.5 * sigma / h)
    h, err = textbook_optimum("backward-exact", sigma, d2, d3)
    assert h == pytest.approx(2 * (sigma / d2) ** 0.5)
    assert err == pytest.approx(2 * (sigma * d2) ** 0.5)
    for rule in ("central", "forward"):
        model = error_model(rule, sigma, d2, d3)
        best = model.optimum()[0]
        assert model(best) < min(model(best * 1.01), model(best / 1.01))
    assert textbook_optimum("complex", sigma, d2, d3) == (None, None)
    assert textbook_optimum("central", sigma, d2, 0.0) == (None, None)
    assert textbook_optimum("central", 0.0, d2, d3) == (None, None)


def test_plot_draws_the_error_model_of_measure():
    """The plot's line is h²·|f'''|/6 + σ/h over |f'| (central), written out here."""
    summary = {"d2": "2.0", "d3": "6.0", "reference": "-4.0"}
    h = [1e-6, 1e-3, 0.1]
    assert _theory_line("central", h, summary, 1e-12) == pytest.approx(
        [(x * x + 1e-12 / x) / 4.0 for x in h])
    assert _theory_line("forward", h, summary, 1e-12) == pytest.approx(
        [(x + 2e-12 / x) / 4.0 for x in h])
    assert _theory_line("complex", h, summary, 1e-12) is None


def _shifted(shifts: int = 4, points: int = 121, low: float = 1e-16, high: float = 0.1):
    extra = {**StepSweepStudy.settings, "h_min": low, "h_max": high, "h_points": points,
             "h_shifts": shifts}
    return step_grid(extra, 1.0)


def test_step_grid_shifts_by_fractions_of_a_step():
    h, shift = _shifted(shifts=4, points=16, low=1e-15, high=1.0)
    assert h.size == 64 and np.all(np.diff(h) > 0)
    assert np.allclose(np.diff(np.log10(h)), 0.25)  # one decade per step, four shifts
    assert list(shift[:5]) == [0, 1, 2, 3, 0]
    assert h[0] == pytest.approx(1e-15) and h[-1] < 10.0


TRUE_H = (1e-11 / (2 * 1e-1)) ** (1 / 3)
"""The optimum of 0.1·h² + 1e-11/h, central differences' error shape."""


def test_summary_finds_a_known_optimum_and_its_spread():
    h, shift = _shifted()
    found = summarize(h, 0.1 * h**2 + 1e-11 / h, shift, 2)
    assert found.h_opt_method == "fit"
    assert found.h_opt == pytest.approx(TRUE_H, rel=0.02)
    assert found.h_opt_low <= found.h_opt <= found.h_opt_high <= 1.05 * found.h_opt_low
    assert found.slope_roundoff == pytest.approx(-1.0, abs=0.05)
    assert found.slope_truncation == pytest.approx(2.0, abs=0.05)
    forward = summarize(h, 0.1 * h + 1e-11 / h, shift, 1)
    assert forward.h_opt == pytest.approx((1e-11 / 0.1) ** 0.5, rel=0.02)


def test_summary_is_robust_to_noise():
    """Multiplicative noise (median 1) leaves the optimum of the median error in place; the fit
    finds it within 10 %, the spread over shifts brackets it, and a lucky step does not pull."""
    rng = np.random.default_rng(3)
    h, shift = _shifted()
    err = (0.1 * h**2 + 1e-11 / h) * np.exp(0.5 * rng.standard_normal(h.size))
    err[np.argmin(np.abs(h - 1e-9))] = 1e-30
    found = summarize(h, err, shift, 2)
    assert found.h_opt == pytest.approx(TRUE_H, rel=0.1)
    assert found.h_opt_low <= found.h_opt <= found.h_opt_high < 1.5 * found.h_opt_low


def test_fit_under_random_round_off_sits_a_little_below_the_dense_optimum():
    """|T + R| with a Gaussian round-off R: the median error's minimum (found here densely by
    simulation) lies a little above where the model's two terms balance: the fit is within
    30 % below it, the windowed optimum further below."""
    rng = np.random.default_rng(5)
    dense = np.logspace(-4.5, -3, 300)
    draws = np.abs(0.1 * dense[:, None] ** 2
                   + 1e-11 * rng.standard_normal((dense.size, 2000)) / dense[:, None])
    truth = dense[np.argmin(np.median(draws, axis=1))]
    h, shift = _shifted()
    err = np.abs(0.1 * h**2 + 1e-11 * rng.standard_normal(h.size) / h)
    found = summarize(h, err, shift, 2)
    assert 0.7 * truth <= found.h_opt <= 1.0 * truth
    assert window_optimum(h, err) < 0.75 * truth


def test_summary_falls_back_to_the_window_where_the_model_does_not_fit():
    h, shift = _shifted()
    symmetric = summarize(h, h / TRUE_H + TRUE_H / h, shift, 2)  # slope 1 above: not central's
    assert symmetric.h_opt_method == "window"
    assert symmetric.h_opt_low <= TRUE_H <= symmetric.h_opt_high
    assert symmetric.h_opt == pytest.approx(TRUE_H, rel=0.1)
    no_truncation = summarize(h, 1e-16 / h, shift, 2)  # central on a quadratic
    assert no_truncation.h_opt_method == "window" and no_truncation.slope_truncation is None
    assert no_truncation.h_opt > 0.03
    assert fit_model(h, 1e-16 / h, 2, 1e-3) is None
    assert summarize(h, 1e-16 / h, shift, None).h_opt_method == "window"
    vanished = summarize(h, np.full(h.size, np.nan), shift, 2)
    assert vanished.h_opt is None and vanished.h_opt_method is None


def test_loglog_slope():
    h = np.logspace(-6, -2, 9)
    assert loglog_slope(h, 3.0 * h**2) == pytest.approx(2.0)
    assert loglog_slope(h[:3], h[:3]) is None


@pytest.mark.parametrize("family,target", [("exp", 1e-13), ("sin", 1e-13), ("cancel", 1e-5),
                                           ("quadratic", 0.0)])
def test_auto_step_meets_its_targets(family, target):
    problem = BUILTIN[family].make(None)
    prepared = registry()["central"].prepare(problem, step="auto")
    gradient = prepared.gradient(problem.x0.copy())
    reference = reference_gradient(problem).as_float()
    error = relative_errors(gradient, reference)[0]
    stats = prepared.stats()
    assert error <= target
    assert stats["f_evals"] == 2 * LEVELS <= 15
    estimate = prepared.error_estimates()[0] / abs(gradient[0])
    assert 0.3 * error <= estimate <= 1e6 * max(error, EPS)


def test_auto_step_beats_the_default_on_cancel():
    problem = BUILTIN["cancel"].make(None)
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
    ("h_shifts = 0\n", "h_shifts", ">= 1"),
    ("h_mni = 1e-10\n", "h_mni", "did you mean 'h_min'"),
    ('dtypes = ["float8"]\n', "dtypes", "unknown dtype 'float8'"),
    ('dtypes = ["float32", "float32"]\n', "dtypes", "distinct dtype names"),
    ("dtypes = []\n", "dtypes", "distinct dtype names"),
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
        RunOptions(quiet=True), argv=["test"])
    rows = {r["variant"]: r for r in read_rows(tmp_path / "run" / "gradient.csv")}
    assert rows["default"]["f_evals"] == "2" and rows["default"]["err_estimate"] == ""
    auto = rows["step=auto"]
    assert auto["f_evals"] == str(2 * LEVELS) and float(auto["err_max"]) <= 1e-5
    ratio = float(auto["err_estimate_ratio"])
    assert ratio == pytest.approx(float(auto["err_estimate"]) / float(auto["err_max"]))


INSTALL = "pip install -e '.[peers]'"


def test_methods_csv_compares_the_adaptive_differences(sweep_run):
    """One row per method for each family of one input (relu and rosenbrock have more): its
    error is |value − reference| / |reference| against the reference, its evaluations counted;
    a peer that is not installed is ``unsupported`` with the install command."""
    folder, _, _ = sweep_run
    path = folder / "run" / "step_methods.csv"
    with open(path) as handle:
        assert tuple(handle.readline().strip().split(",")) == (*METHODS_COLUMNS, "case", "shard")
    rows = read_rows(path)
    assert [r["family"] for r in rows] == [f for f in ("exp", "sin", "cancel")
                                           for _ in COMPARED]
    evals = {"default": "2", "step=auto": str(2 * LEVELS), "numdifftools": "31"}
    for row in rows:
        assert row["component"] == "0" and row["point"] == str(BUILTIN[row["family"]]
                                                               .build(None).x0[0])
        if row["status"] == "unsupported":
            assert row["backend"] in ("numdifftools", "scipy")
            assert row["message"].startswith(row["backend"]) and row["message"].endswith(INSTALL)
            continue
        assert row["status"] == "ok"
        value, reference = float(row["value"]), float(row["reference"])
        assert float(row["err"]) == pytest.approx(abs(value - reference) / abs(reference),
                                                  rel=1e-6, abs=4 * EPS)
        key = row["variant"] if row["backend"] == "central" else row["backend"]
        assert row["f_evals"] == evals.get(key, row["f_evals"])
        assert (row["err_estimate"] == "") == (row["variant"] == "default"
                                               and row["backend"] == "central")
    assert "adaptive differences" in markdown_report(folder / "run")


def test_auto_beats_the_peers_on_exp_and_cancel_with_fewer_evaluations(sweep_run):
    pytest.importorskip("numdifftools")
    pytest.importorskip("scipy", minversion="1.15")
    folder, _, _ = sweep_run
    rows = {(r["family"], r["backend"], r["variant"]): r
            for r in read_rows(folder / "run" / "step_methods.csv")}
    for family in ("exp", "cancel"):
        auto = rows[(family, "central", "step=auto")]
        for peer in ("numdifftools", "scipy"):
            assert float(auto["err"]) <= float(rows[(family, peer, "default")]["err"])
        assert int(auto["f_evals"]) < int(rows[(family, "numdifftools", "default")]["f_evals"])


def test_methods_are_compared_only_on_one_smooth_input():
    head = {"study": "step-sweep", "family": "x", "size": None}
    problem = BUILTIN["sin"].make(None)
    kinked = Reference(values=("0.5",), method="closed-form", digits=50, kinks=(0,))
    assert compare_methods(problem, kinked, head) == []
    flat = Reference(values=("0",), method="closed-form", digits=50)
    assert compare_methods(problem, flat, head) == []
    pair = BUILTIN["affine_square"].make(None)
    assert compare_methods(pair, reference_gradient(pair), head) == []


def test_methods_not_installed_are_unsupported_rows(checkout_plugins, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name in (
        "numdifftools", "scipy") else find_spec(name, *args))
    problem = BUILTIN["sin"].make(None)
    rows = compare_methods(problem, reference_gradient(problem), {"family": "sin"})
    status = {(r["backend"], r["variant"]): (r["status"], r["message"]) for r in rows}
    assert status == {("central", "default"): ("ok", ""), ("central", "step=auto"): ("ok", ""),
                      ("numdifftools", "default"): ("unsupported",
                                                    f"numdifftools is not installed: {INSTALL}"),
                      ("scipy", "default"): ("unsupported", f"scipy is not installed: {INSTALL}")}


def test_methods_table_names_the_most_accurate_and_says_why_a_method_did_not_run():
    from diffbench.report.markdown import table_to_markdown
    from diffbench.report.tables import step_methods_table

    def row(backend, variant, err, evals, status="ok", message=""):
        return {"family": "exp", "size": "", "point": "20.0", "backend": backend,
                "variant": variant, "status": status, "message": message, "err": err,
                "f_evals": evals}

    rows = [row("central", "default", "2e-09", "2"), row("central", "step=auto", "7e-16", "14"),
            row("numdifftools", "default", "", "", "unsupported",
                f"numdifftools is not installed: {INSTALL}"),
            row("scipy", "default", "7e-16", "11", message="scipy: status -1 at x[0]: …")]
    text = table_to_markdown(step_methods_table(rows))
    assert "| central | central (step=auto) | numdifftools | scipy | most accurate |" in text
    assert ("| exp | 20 | 2e-09 (2) | 7e-16 (14) | unsupported | 7e-16 (11) | "
            "central (step=auto), scipy |") in text
    assert (f"exp: numdifftools is not installed: {INSTALL}; exp: scipy: status -1 at x[0]: …"
            in text)


LOW = """
[[study]]
kind = "step-sweep"
families = ["sin", "exp"]
dtypes = ["float32", "float16"]
h_min = 1e-8
h_max = 1.0
h_points = 65
h_shifts = 2
"""


def test_a_sweep_in_float32_finds_the_optimum_of_its_eps(tmp_path):
    """In float32 the central optimum on sin moves to about eps32^(1/3) and keeps about two
    thirds of float32's digits; e^20 overflows float16 and is one overflow row."""
    path = tmp_path / "low.toml"
    path.write_text(LOW)
    run(load_config(path), tmp_path / "run", Console(file=open(os.devnull, "w")), argv=["test"])
    summary = {(r["family"], r["dtype"], r["rule"]): r
               for r in read_rows(tmp_path / "run" / "step_summary.csv")}
    sin = summary["sin", "float32", "central-exact"]
    eps32 = float(np.finfo(np.float32).eps)
    assert float(sin["h_rule"]) == pytest.approx(eps32 ** (1 / 3))
    assert eps32 ** (1 / 3) / 3 < float(sin["h_opt"]) < 3 * eps32 ** (1 / 3)
    assert 4.0 < -np.log10(float(sin["err_near"])) < 6.0
    assert summary["sin", "float32", "complex"]["status"] == "unsupported"
    overflow = summary["exp", "float16", ""]
    assert overflow["status"] == "overflow" and "65504" in overflow["message"]

