"""Reference gradients: a cache keyed by values, kinks, exact zeros, the cost cap, the
sensitivity, each against closed forms or mpmath's own differentiation."""

import importlib
import shutil
from pathlib import Path

import mpmath
import numpy as np
import pytest
from rich.console import Console

import diffbench.reference as reference_module
from diffbench.config import ConfigError, ReferenceSettings
from diffbench.families import BUILTIN, Problem, load_function
from diffbench.families.vector import rosenbrock
from diffbench.reference import (
    Reference,
    choose_method,
    diff_evaluations,
    mpmath_diff,
    reference_gradient,
)
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run
from diffbench.studies import load_config

DATA = Path(__file__).parent / "data"


def kinky(x, ops):
    return ops.sum(ops.maximum(x, 0.0)) + ops.abs(x[1] - 1.0)


def wavy(x, ops):
    return ops.sum(ops.sin(x) * ops.exp(0.1 * x)) + ops.prod(ops.tanh(x[:3] + 2.0))


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:
    """Rosenbrock's Hessian, written out (float64 is plenty for a sensitivity)."""
    n = x.size
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        h[i + 1, i + 1] += 200.0
        h[i, i + 1] = h[i + 1, i] = -400.0 * x[i]
    return h


def exact_sensitivity(hessian: np.ndarray, x: np.ndarray) -> float:
    return float(np.max(np.abs(hessian) @ np.abs(x)))


# --- the cache ---------------------------------------------------------------------------


SCALED = """
SCALE = {scale}


def helper(t, ops):
    return SCALE * t


def f(x, ops):
    return x[0] ** 2 + helper(x[1] * x[2], ops)
"""


def _load_scaled(tmp_path: Path, scale: float):
    (tmp_path / "scaled.py").write_text(SCALED.format(scale=scale))
    return load_function("scaled.py:f", tmp_path)


def test_editing_a_helper_constant_changes_the_cached_reference(tmp_path):
    """f(x0) = 1 whatever SCALE is (x2 = 0): only the probes beside x0 see the edit."""
    x0 = np.array([1.0, 2.0, 0.0])
    first = reference_gradient(Problem("scaled", None, _load_scaled(tmp_path, 2.0), x0))
    again = reference_gradient(Problem("scaled", None, _load_scaled(tmp_path, 3.0), x0))
    assert first.as_float().tolist() == [2.0, 0.0, 4.0]
    assert again.as_float().tolist() == [2.0, 0.0, 6.0]


def test_fixed_builtin_families_each_get_their_own_reference():
    references = {name: reference_gradient(BUILTIN[name].make(None)).as_float()[0]
                  for name in ("exp", "sin", "cancel", "quadratic", "log_sin")}
    assert references["exp"] == pytest.approx(np.exp(20.0), rel=1e-15)
    assert references["sin"] == pytest.approx(np.cos(1.0), rel=1e-15)
    assert references["quadratic"] == 5.0
    assert len(set(references.values())) == 5


def test_a_cached_reference_is_read_not_recomputed(monkeypatch):
    problem = Problem("wavy", None, wavy, np.linspace(-1.0, 2.0, 12))
    first = reference_gradient(problem)

    def fail(*args):
        raise AssertionError("recomputed")

    monkeypatch.setattr(reference_module, "compute_reference", fail)
    assert reference_gradient(problem) == first
    with pytest.raises(reference_module.NoReference, match="recomputed"):
        reference_gradient(problem, use_cache=False)


def test_an_isolated_case_takes_the_reference_its_run_computed(tmp_path):
    """The worker gets the parent's reference with the case: it never evaluates f in mpmath
    numbers (which, at 10^6 inputs, would cost minutes of the case's budget)."""
    shutil.copy(DATA / "my_cases.py", tmp_path / "my_cases.py")
    config = tmp_path / "parent.toml"
    config.write_text("""
[timing]
min_sample_s = 0.0005
repeats = 2
[run]
isolate = true
[families.parent_only]
function = "my_cases.py:mpmath_in_the_parent_only"
point = [1.0, 2.0, 3.0]
[[study]]
kind = "gradient"
families = ["parent_only"]
backends = ["reverse"]
""")
    run(load_config(config), tmp_path / "run", Console(quiet=True), RunOptions(quiet=True))
    (row,) = read_rows(tmp_path / "run" / "gradient.csv")
    assert row["status"] == "ok", row["message"]
    assert float(row["digits"]) >= 15


# --- kinks -------------------------------------------------------------------------------


def test_undeclared_kinks_are_detected_and_named():
    """Σ max(x, 0) + |x1 − 1| at [0, 1]: the two-sided average there, [0.5, 1], is no
    derivative; both components are kinks."""
    reference = reference_gradient(Problem("kinky", None, kinky, np.array([0.0, 1.0])))
    assert reference.method == "mpmath-diff" and reference.kinks == (0, 1)
    assert reference.kink_notes == (
        "kink at x[0] detected: one-sided derivatives 0 and 1",
        "kink at x[1] detected: one-sided derivatives 0 and 2")
    assert reference.as_float().tolist() == [0.5, 1.0]  # the means of the one-sided values


def test_declared_kinks_join_the_detected_ones_without_a_note():
    reference = reference_gradient(Problem("kinky", None, kinky, np.array([0.0, 1.0]),
                                           kinks=(1,)))
    assert reference.kinks == (0, 1)
    assert reference.kink_notes == ("kink at x[0] detected: one-sided derivatives 0 and 1",)


def test_abs_of_a_difference_is_a_kink_in_both_components():
    def f(x, ops):
        return ops.abs(x[0] - x[1]) + x[2] ** 2

    reference = reference_gradient(Problem("absdiff", None, f, np.array([0.5, 0.5, 2.0])))
    assert reference.kinks == (0, 1)
    assert reference.kink_notes[1] == "kink at x[1] detected: one-sided derivatives -1 and 1"
    assert reference.as_float()[2] == 4.0


def cancel(x, ops):
    return ops.sum(ops.sqrt(x * x + 1.0) - x)


@pytest.mark.parametrize("fn,x0", [(wavy, np.linspace(-1.0, 2.0, 12)),
                                   (rosenbrock, np.linspace(-1.0, 2.0, 12)),
                                   (wavy, np.ones(12)), (rosenbrock, np.ones(12)),
                                   (cancel, np.full(3, 1e4))],
                         ids=["wavy", "rosenbrock", "wavy-ones", "stationary", "cancel"])
def test_smooth_functions_have_no_kinks(fn, x0):
    """Also at a stationary point, where the one-sided slopes ±h·f'' differ by 100 %, and
    where f is a small difference of large numbers."""
    for budget in (30.0, 0.0):  # per component, and along a direction
        reference = reference_gradient(Problem("smooth", None, fn, x0), diff_budget_s=budget)
        assert reference.kinks == () and reference.kink_notes == ()


@pytest.mark.parametrize("method", ["mpmath-diff", "reverse-mpmath"])
def test_a_discontinuity_is_detected_and_named(monkeypatch, method):
    def step(x, ops):
        return ops.sum(ops.where(x > 0.0, 1.0 + x, 0.0 * x)) + x[1] ** 2

    monkeypatch.setattr(reference_module, "choose_method", lambda *args: method)
    reference = reference_gradient(Problem("step", None, step, np.array([0.0, 2.0])))
    assert reference.method == method and reference.kinks == (0,)
    assert reference.kink_notes == ("discontinuity at x[0] detected: f jumps by 1; "
                                    "one-sided derivatives 0 and 1",)
    assert reference.as_float().tolist() == [0.5, 5.0]


def _relu_mix(x, ops):
    return ops.sum(ops.maximum(x, 0.0) * (1.0 + 0.1 * x)) + ops.abs(x[5] - x[150])


def test_kinks_at_many_inputs_are_located_by_bisection(monkeypatch):
    """Beyond the budget for per-component differences (as if f were costly): a directional
    test, then bisection."""
    monkeypatch.setattr(reference_module, "choose_method", lambda *args: "reverse-mpmath")
    n = 200
    x0 = np.random.default_rng(5).uniform(-1.0, 1.0, n)
    x0[[17, 133]] = 0.0
    x0[150] = x0[5]
    reference = reference_gradient(Problem("relu_mix", None, _relu_mix, x0))
    assert reference.method == "reverse-mpmath" and reference.engine == "reverse"
    assert reference.kinks == (5, 17, 133, 150)
    note = "kink at x[17] detected: one-sided derivatives 0 and 1"
    assert note in reference.kink_notes and len(reference.kink_notes) == 4
    assert reference.as_float()[17] == 0.5
    closed = np.where(x0 > 0, 1.0 + 0.2 * x0, 0.0)
    keep = [i for i in range(n) if i not in reference.kinks]
    np.testing.assert_allclose(reference.as_float()[keep], closed[keep], rtol=1e-15)
    smooth = Problem("smooth", None, lambda x, ops: ops.sum(ops.sin(x) * x), x0)
    assert reference_gradient(smooth).kinks == ()


def test_kinks_not_located_within_the_budget_are_reported_as_a_range(monkeypatch):
    clock = iter(range(0, 10**6, 100))
    monkeypatch.setattr(reference_module.time, "perf_counter", lambda: float(next(clock)))
    reference = reference_gradient(Problem("kinky", None, kinky, np.array([0.0, 1.0, 3.0])),
                                   diff_budget_s=50.0, use_cache=False)
    assert reference.method == "reverse-mpmath"
    assert reference.kinks == (0, 1, 2)  # x[2] is smooth, but its range was not resolved
    assert reference.kink_notes == tuple(
        f"kinks detected in x[{where}], not located within reference.diff_budget_s: no error "
        "is measured there" for where in ("0:1", "1:3"))


# --- zeros -------------------------------------------------------------------------------


def test_derivatives_zero_to_working_precision_are_exactly_zero():
    """Central differences leave residues like h² at an exactly zero derivative; here the
    whole gradient is zero, and so are f and S (x1 = 0): only the floor h |f''| tells."""
    def f(x, ops):
        return x[0] ** 2 * x[1] ** 2 * (1.0 + x[1])

    problem = Problem("cubic", None, f, np.array([1.5, 0.0]))
    with mpmath.workdps(50):
        assert 0 < abs(mpmath_diff(problem, 50)[1]) < mpmath.mpf(10) ** -100
    reference = reference_gradient(problem)
    assert reference.values == ("0.0", "0.0") and reference.sensitivity < 1e-100

    def g(x, ops):
        return x[0] ** 2 + f(x[1:], ops)

    assert reference_gradient(Problem("g", None, g, np.array([2.0, 1.5, 0.0]))).values == (
        "4.0", "0.0", "0.0")
    stationary = reference_gradient(Problem("rosen", None, rosenbrock, np.ones(6)))
    assert stationary.values == ("0.0",) * 6


def test_tiny_derivatives_are_kept():
    def f(x, ops):
        return ops.exp(x[0]) + x[1] ** 2

    value = reference_gradient(Problem("tiny", None, f, np.array([-200.0, 1e-40]))).as_float()
    assert value[0] == pytest.approx(np.exp(-200.0), rel=1e-15)
    assert value[1] == pytest.approx(2e-40, rel=1e-15)


# --- the cap by cost ---------------------------------------------------------------------


def test_the_method_is_chosen_by_estimated_cost():
    problem = Problem("wavy", None, wavy, np.zeros(100))
    cost = problem.n * diff_evaluations(problem.n)
    assert diff_evaluations(5) == 12 and diff_evaluations(100) == 8
    assert choose_method(problem, 1.0, cost) == "mpmath-diff"
    assert choose_method(problem, 1.0, cost * 0.99) == "reverse-mpmath"
    assert choose_method(BUILTIN["dot"].make(100), 1e9, 0.0) == "closed-form"


def test_a_cheap_function_of_many_inputs_gets_the_independent_reference():
    """More inputs than the former fixed cap of 64."""
    problem = Problem("sines", None, lambda x, ops: ops.sum(ops.sin(x)),
                      np.linspace(0.0, 1.0, 70))
    reference = reference_gradient(problem)
    assert reference.method == "mpmath-diff" and reference.engine is None
    np.testing.assert_allclose(reference.as_float(), np.cos(problem.x0), rtol=1e-15)


def test_central_differences_are_mpmath_diff():
    problem = Problem("wavy", None, wavy, np.linspace(-1.0, 2.0, 5))
    with mpmath.workdps(40):
        x = list(problem.x0)
        for i, value in enumerate(mpmath_diff(problem, 40)):
            def along(t, i=i):
                return wavy(np.array(x[:i] + [t] + x[i + 1:], dtype=object),
                            importlib.import_module("diffbench.ops.mpmath_ops"))
            assert abs(value - mpmath.diff(along, x[i])) <= mpmath.mpf(10) ** -38


def test_reverse_mpmath_is_marked_as_the_engines_own():
    problem = Problem("wavy", None, wavy, np.linspace(-1.0, 2.0, 12))
    same = reference_gradient(problem, diff_budget_s=0.0)
    independent = reference_gradient(problem, diff_budget_s=30.0)
    assert (same.method, same.engine) == ("reverse-mpmath", "reverse")
    assert (independent.method, independent.engine) == ("mpmath-diff", None)
    np.testing.assert_allclose(same.as_float(), independent.as_float(), rtol=1e-15)


def _config(tmp_path: Path, text: str) -> Path:
    shutil.copy(DATA / "my_cases.py", tmp_path / "my_cases.py")
    path = tmp_path / "bench.toml"
    path.write_text(text + '[[study]]\nkind = "gradient"\nfamilies = ["sin"]\n'
                    'backends = ["central"]\n')
    return path


def test_diff_budget_is_configured_and_validated(tmp_path):
    assert ReferenceSettings().diff_budget_s == 30.0
    config = load_config(_config(tmp_path, "[reference]\ndiff_budget_s = 2\n"))
    assert config.reference.diff_budget_s == 2.0
    for text, words in (("diff_budget_s = 0", "must be a finite number > 0"),
                        ("diff_budget_s = -1.0", "must be a finite number > 0"),
                        ('diff_budget_s = "30"', "expected float"),
                        ("max_diff_size = 64", "unknown key")):
        path = _config(tmp_path, f"[reference]\n{text}\n")
        with pytest.raises(ConfigError, match=words) as caught:
            load_config(path)
        assert f"{path}: reference." in str(caught.value)


# --- sensitivity -------------------------------------------------------------------------


@pytest.mark.parametrize("name,kappa", [("cancel", 2.0), ("exp", 20.0), ("sin", np.tan(1.0))])
def test_sensitivity_of_scalar_families(name, kappa):
    """κ = S / |g| = |f''| |x| / |f'|: cancel at 1e4 is well conditioned."""
    reference = reference_gradient(BUILTIN[name].make(None))
    assert reference.sensitivity / abs(reference.as_float()[0]) == pytest.approx(kappa,
                                                                                 rel=1e-6)


def test_sensitivity_is_exact_up_to_eight_inputs_and_a_lower_estimate_beyond():
    small = BUILTIN["rosenbrock"].make(6)
    exact = exact_sensitivity(rosenbrock_hessian(small.x0), small.x0)
    assert reference_gradient(small).sensitivity == pytest.approx(exact, rel=1e-9)
    large = BUILTIN["rosenbrock"].make(10)
    exact = exact_sensitivity(rosenbrock_hessian(large.x0), large.x0)
    assert exact / 3 <= reference_gradient(large).sensitivity <= exact * (1 + 1e-9)


def test_sensitivity_at_a_stationary_point_is_positive():
    """‖g‖ = 0 and S = ‖|H| 1‖∞ = 400 + 1002 + 400 on an interior row, by mpmath-diff."""
    reference = reference_gradient(Problem("rosen", None, rosenbrock, np.ones(6)))
    assert reference.method == "mpmath-diff"
    assert reference.sensitivity == pytest.approx(1802.0, rel=1e-9)


def test_sensitivity_leaves_kinks_out():
    """|x0 − 1| x1² + x1³ at [1, 2]: only x1 is perturbed and measured: 6 x1 · x1 = 24."""
    def f(x, ops):
        return ops.abs(x[0] - 1.0) * x[1] ** 2 + x[1] ** 3

    reference = reference_gradient(Problem("half", None, f, np.array([1.0, 2.0])))
    assert reference.kinks == (0,)
    assert reference.sensitivity == pytest.approx(24.0, rel=1e-9)


def test_sensitivity_and_kinks_are_cached_with_the_reference():
    problem = Problem("kinky", None, kinky, np.array([0.0, 1.0, 2.0]))
    fresh = reference_gradient(problem)
    cached = reference_gradient(problem)
    assert isinstance(cached, Reference) and cached == fresh
    assert cached.kinks == (0, 1) and cached.sensitivity == 0.0


def test_a_function_complex_near_x0_has_no_reference_saying_so():
    """sqrt at 0: mpmath.diff's step below 0 makes f complex; the message shows the value
    briefly, not at 50 digits."""
    problem = Problem("sqrt_at_0", 2, fn=lambda x, ops: ops.sum(ops.sqrt(x)),
                      x0=np.array([0.0, 1.0]))
    with pytest.raises(reference_module.NoReference) as caught:
        reference_module.reference_gradient(problem, use_cache=False)
    message = str(caught.value)
    assert "f is complex there, (" in message and "outside its real domain" in message
    assert len(message) < 120
