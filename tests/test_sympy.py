"""The SymPy namespace and backend, expression sizes, budgets, and the swell study."""

import importlib.util
import re
import time

import mpmath
import numpy as np
import pytest
import sympy
from typer.testing import CliRunner

from diffbench.backends import UnsupportedCase, registry
from diffbench.backends.base import STATS_COLUMNS
from diffbench.cli import app
from diffbench.families import BUILTIN
from diffbench.measure.error import gradient_error
from diffbench.measure.growth import fit_growth
from diffbench.measure.size import cse_size, dag_size, ops_count, tree_size, weight
from diffbench.ops import UNARY, missing_names, mpmath_ops, sympy_ops
from diffbench.reference import reference_gradient
from diffbench.results import read_rows
from diffbench.studies.gradient import COLUMNS as GRADIENT_COLUMNS
from diffbench.studies.swell import COLUMNS, FIT_COLUMNS, REPRESENTATIONS, tape_sizes

SMOOTH = [("exp", None), ("sin", None), ("quadratic", None), ("log_sin", None),
          ("affine_square", None), ("dot", 12), ("product", 12), ("rosenbrock", 12),
          ("mlp", 3), ("nested", 6), ("logistic", 5)]
runner = CliRunner()
x, y, z = sympy.symbols("x y z")


def _prepare(name, size, **options):
    problem = BUILTIN[name].make(size)
    return problem, registry()["sympy"].prepare(problem, **options)


# --- the namespace -------------------------------------------------------------------------

def test_sympy_namespace_provides_the_contract():
    assert missing_names(sympy_ops) == []


def test_comparisons_give_relationals_and_where_a_piecewise():
    xs = sympy_ops.symbols(2)
    condition = xs > 0
    assert all(isinstance(c, sympy.core.relational.StrictGreaterThan) for c in condition)
    chosen = sympy_ops.where(condition, xs, 0.0 * xs)
    assert all(isinstance(c, sympy.Piecewise) for c in chosen)
    assert sympy_ops.maximum(xs[0], 0.0) == sympy.Max(xs[0], 0.0)
    assert sympy_ops.abs(xs)[1] == sympy.Abs(xs[1])


def test_namespace_agrees_with_numpy_on_every_elementwise_function():
    t = sympy.Symbol("t")
    for name in UNARY:
        value = float(getattr(sympy_ops, name)(t).evalf(subs={t: 0.7}))
        assert value == pytest.approx(getattr(np, name)(0.7), rel=1e-14), name


# --- the backend ---------------------------------------------------------------------------

@pytest.mark.parametrize("cse", [False, True])
@pytest.mark.parametrize("name,size", SMOOTH)
def test_sympy_matches_reference_to_13_digits(name, size, cse):
    problem, prepared = _prepare(name, size, cse=cse)
    gradient = prepared.gradient(problem.x0.copy())
    reference = reference_gradient(problem).as_float()
    assert gradient_error(gradient, reference).digits >= 13


def test_phases_are_reported_apart_within_the_backend_columns():
    _, prepared = _prepare("logistic", 4, cse=True)
    stats = prepared.stats()
    phases = ("build_s", "diff_s", "cse_s", "compile_s")
    assert all(stats[p] > 0 for p in phases)
    assert set(stats) <= STATS_COLUMNS
    assert "cse_s" not in _prepare("logistic", 4)[1].stats()


@pytest.mark.parametrize("cse", [False, True])
def test_f_is_lambdified_like_the_gradient(cse):
    """ω's f for SymPy is f compiled the way the gradient is, and computes f."""
    problem, prepared = _prepare("rosenbrock", 6, cse=cse)
    assert prepared.function_method == "lambdify"
    value = prepared.timed_function(problem.x0.copy())()
    assert float(value) == pytest.approx(float(problem.f(problem.x0)), rel=1e-14)


def test_high_precision_evaluation_matches_the_50_digit_reference():
    problem, prepared = _prepare("logistic", 5)
    reference = reference_gradient(problem)
    with mpmath.workdps(50):
        gradient = prepared.gradient_mp(mpmath_ops.asarray(problem.x0))
        error = abs(gradient[0] - reference.as_mpf()[0]) / abs(reference.as_mpf()[0])
    assert error < mpmath.mpf(10) ** -45


def test_relu_kink_reports_heaviside_one_half():
    problem, prepared = _prepare("relu", None)
    assert "Heaviside(x1) = 1/2" in prepared.note()
    np.testing.assert_array_equal(prepared.gradient(problem.x0), [0.0, 0.5, 1.0])


def test_symengine_engine_is_unsupported_without_symengine(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # symengine looks uninstalled
                        lambda name, *args: None if name == "symengine" else find_spec(name, *args))
    with pytest.raises(UnsupportedCase, match="symengine is not installed"):
        _prepare("sin", None, engine="symengine")


@pytest.mark.skipif(importlib.util.find_spec("symengine") is None,
                    reason="symengine is not installed")
@pytest.mark.parametrize("name,size", [("log_sin", None), ("rosenbrock", 8), ("logistic", 5)])
def test_symengine_engine_matches_reference(name, size):
    problem, prepared = _prepare(name, size, engine="symengine")
    reference = reference_gradient(problem).as_float()
    assert gradient_error(prepared.gradient(problem.x0), reference).digits >= 13


# --- sizes, counted by hand ----------------------------------------------------------------

def test_weight_counts_binary_operations():
    assert weight(x) == weight(sympy.Integer(2)) == 1
    assert weight(x + y + z) == 2
    assert weight(x * y) == 1
    assert weight(sympy.sin(x)) == 1


def test_sizes_of_a_small_expression():
    expr = x * y + sympy.sin(x)  # Add(Mul(x, y), sin(x)): 1 + (1 + 1 + 1) + (1 + 1)
    assert tree_size([expr]) == 6
    assert dag_size([expr]) == 5  # x is shared: Add, Mul, sin, x, y
    assert ops_count([expr]) == 3  # MUL, ADD, SIN


def test_sizes_with_a_repeated_subexpression_and_its_cse():
    expr = sympy.sin(x) ** 2 + sympy.sin(x)  # Add(Pow(sin(x), 2), sin(x))
    assert tree_size([expr]) == 7  # Add 1 + Pow (1 + sin 2 + 2: 1) + sin 2
    assert dag_size([expr]) == 5  # Add, Pow, sin(x), x, 2
    a = sympy.Symbol("a")
    assert cse_size([(a, sympy.sin(x))], [a**2 + a]) == 2 + 5
    assert cse_size(*sympy.cse([expr])) == 7


def test_dag_is_shared_across_gradient_components():
    assert tree_size([x * y, x * y + z]) == 3 + 5
    assert dag_size([x * y, x * y + z]) == 5  # Add, Mul, x, y, z


def test_exponential_tree_is_counted_in_linear_time():
    expr = x
    for _ in range(40):
        expr = sympy.sin(expr) + sympy.cos(expr)
    start = time.perf_counter()
    assert tree_size([expr]) == 2**42 - 3  # T(k+1) = 2 T(k) + 3, T(0) = 1
    assert dag_size([expr]) == 1 + 3 * 40  # sin, cos and Add per level
    assert time.perf_counter() - start < 1.0


def test_tape_sizes_counted_by_hand():
    # nested, depth 3: x[0], sin, exp, sin each read one element; the sweep writes as many
    assert tape_sizes(BUILTIN["nested"].make(3)) == (4, 8)
    # product of n: one reduction reading n elements, however many n
    assert tape_sizes(BUILTIN["product"].make(4)) == (4, 8)
    assert tape_sizes(BUILTIN["product"].make(64)) == (64, 128)


# --- budgets -------------------------------------------------------------------------------

def test_gradient_study_case_over_budget_is_a_timeout_row(tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text("""
[timing]
budget_s = 3.0
min_sample_s = 0.0005
repeats = 2
[[study]]
kind = "gradient"
families = ["sin", "logistic"]
sizes = [40]
backends = [{ name = "sympy", cse = true }]
""")
    result = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "run" / "gradient.csv")
    assert tuple(rows[0]) == (*GRADIENT_COLUMNS, "case", "shard")
    by_family = {row["family"]: row for row in rows}
    assert by_family["logistic"]["status"] == "timeout"
    assert "budget of 3 s" in by_family["logistic"]["message"]
    sin = by_family["sin"]
    assert sin["status"] == "ok" and float(sin["digits_mp"]) >= 45
    phases = sum(float(sin[c]) for c in ("build_s", "diff_s", "cse_s", "compile_s"))
    assert phases <= float(sin["setup_s"]) <= phases + 0.05  # setup is the phases, timed whole
    assert sin["f_method"] == "lambdify"
    ended = re.match(r"(stopped|killed) after ([0-9.]+) s", by_family["logistic"]["message"])
    assert ended and float(ended[2]) < 3.0 + 0.5


# --- the swell study -----------------------------------------------------------------------

def test_growth_fit_tells_exponential_from_power():
    sizes = np.arange(1, 11)
    exponential = fit_growth(sizes, 5.0 * 3.0**sizes)
    assert exponential.factor_per_step == pytest.approx(3.0)
    assert exponential.model == "exponential"
    power = fit_growth(sizes, 2.0 * sizes**2.0)
    assert power.exponent == pytest.approx(2.0)
    assert power.model == "power"
    assert fit_growth([4], [10.0]) is None


def test_swell_study_writes_documented_columns(tmp_path):
    config = tmp_path / "swell.toml"
    config.write_text("""
[timing]
budget_s = 30.0
[[study]]
kind = "swell"
families = ["logistic"]
sizes = [1, 2, 3, 4, 5, 6]
[[study]]
kind = "swell"
families = ["product"]
sizes = [2, 4, 8, 16]
""")
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_rows(out / "swell.csv")
    assert tuple(rows[0]) == (*COLUMNS, "case", "shard")
    assert {"family", "size", "representation", "nodes_f", "nodes_df", "ratio",
            "diff_s"} <= set(COLUMNS)
    assert len(rows) == 10 * len(REPRESENTATIONS)
    cell = {(r["family"], r["size"], r["representation"]): r for r in rows}
    assert cell["product", "4", "dag"]["nodes_df"] == "12"  # four Muls of 3: 4·2 + 4 symbols
    assert cell["logistic", "6", "tree"]["status"] == "ok"
    assert cell["product", "4", "tape"]["nodes_df"] == "8"
    fits = read_rows(out / "swell_fit.csv")
    assert tuple(fits[0]) == FIT_COLUMNS
    fit = {(f["family"], f["representation"]): f for f in fits}
    assert fit["logistic", "tree"]["growth"] == "exponential"
    assert float(fit["product", "cse"]["exponent"]) > 1.7
    assert "swell study" in result.output


def test_swell_case_over_budget_ends_as_timeout_rows(tmp_path):
    config = tmp_path / "swell.toml"
    config.write_text("""
[timing]
budget_s = 1.0
[[study]]
kind = "swell"
families = ["logistic"]
sizes = [40]
""")
    result = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    rows = {r["representation"]: r for r in read_rows(tmp_path / "run" / "swell.csv")}
    assert list(rows) == list(REPRESENTATIONS)
    symbolic = [rows[r] for r in REPRESENTATIONS if r != "tape"]
    assert {r["status"] for r in symbolic} == {"timeout"}
    for row in symbolic:  # each cut at its budget, not at the end of its work
        ended = re.match(r"(stopped|killed) after ([0-9.]+) s", row["message"])
        assert ended and float(ended[2]) < 1.0 + 0.5
    assert rows["tape"]["status"] == "ok" and int(rows["tape"]["nodes_df"]) > 0
