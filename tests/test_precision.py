"""Working precision: the lowered arithmetic against loops written here, every method in every
dtype against the 50-digit reference at x0 rounded to the dtype, mixed precision, loss
scaling, config errors and the study's rows."""

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import diffbench.ad as ad
from diffbench.backends import registry
from diffbench.backends.scaling import LossScaled
from diffbench.config import ConfigError
from diffbench.families import Problem, lowered, make, rounded
from diffbench.families.losses import LOSS_SCALE
from diffbench.measure.error import gradient_error
from diffbench.ops.precision import (
    DYNAMIC_START,
    RUN,
    Precision,
    check,
    eps,
    holds,
    lower,
    round_to,
    tiny,
)
from diffbench.reference import reference_gradient
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run
from diffbench.studies import load_config
from diffbench.studies.gradient import underflow

LOW = ("float32", "float16", "bfloat16")


def rounded_add(a: float, b: float, dtype: str) -> float:
    """a + b in ``dtype``: exact in float64 for the operands used here, rounded once."""
    return float(round_to(a + b, dtype))


def loop_sum(values, dtype: str) -> float:
    """Left to right, every partial sum rounded to ``dtype``."""
    acc = float(values[0])
    for v in values[1:]:
        acc = rounded_add(acc, float(v), dtype)
    return acc


# ---- ops.precision units -----------------------------------------------------------------


@pytest.mark.parametrize("dtype,accumulate,loss_scale,option", [
    ("float8", None, None, "dtype"),
    ("float16", "float8", None, "accumulate"),
    ("float32", "float16", None, "accumulate"),      # fewer significand bits
    ("bfloat16", "float16", None, "accumulate"),     # float16's range is narrower
    ("float16", "bfloat16", None, "accumulate"),     # bfloat16 has fewer bits
    ("float16", None, 0, "loss_scale"),
    ("float16", None, -1, "loss_scale"),
    ("float16", None, "static", "loss_scale"),
    ("float16", None, True, "loss_scale"),
    ("float16", None, math.inf, "loss_scale"),
    ("float16", None, math.nan, "loss_scale"),
])
def test_check_refuses_bad_combinations_naming_the_option(dtype, accumulate, loss_scale, option):
    wrong = check(dtype, accumulate, loss_scale)
    assert wrong is not None and wrong[1] == option
    if option == "dtype":
        assert "float8" in wrong[0] and "bfloat16" in wrong[0]


@pytest.mark.parametrize("dtype,accumulate,loss_scale", [
    ("float16", None, "dynamic"), ("float16", None, 1024), ("float16", "float32", 2.5),
    ("float16", "float16", None), ("bfloat16", "bfloat16", None), ("bfloat16", "float32", None),
    ("float64", None, None), ("float32", "float64", "dynamic"),
])
def test_check_accepts_good_combinations(dtype, accumulate, loss_scale):
    assert check(dtype, accumulate, loss_scale) is None


def test_holds_compares_bits_and_range():
    assert holds("float32", "float16") and holds("float32", "bfloat16")
    assert holds("float64", "float32") and holds("float16", "float16")
    assert not holds("float16", "bfloat16")  # bfloat16 reaches 3e38
    assert not holds("bfloat16", "float16")  # float16 has 11 significand bits to 8
    assert not holds("float16", "float32")


def test_round_to_rounds_to_nearest_even():
    # float16 numbers near 1 are spaced 2^-10; 1 + 2^-11 is a tie, rounded to even (1)
    assert round_to([1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11], "float16").tolist() == [
        1.0, 1.0 + 2 * 2.0**-10]
    assert round_to(0.1, "float16") == 1638 / 2.0**14   # 0x2E66
    assert round_to(0.1, "bfloat16") == 205 / 2.0**11   # 0x3DCD
    assert round_to(1.0 + 2.0**-24, "float32") == 1.0
    with np.errstate(over="ignore"):
        assert round_to(70000.0, "float16") == math.inf
    assert round_to(2.0**-25, "float16") == 0.0  # half the least subnormal, ties to even
    assert tiny("float16") == 2.0**-14 and eps("bfloat16") == 2.0**-7


def _terms(n: int) -> np.ndarray:
    return np.random.default_rng(n).uniform(0.5, 1.5, n)


SKEWED = np.array([256.0] + [1.0 / 16] * 299)
"""Terms one left-to-right loop in float16 loses (256 + 1/16 is 256), and runs of 128 keep."""


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("n", [1, 7, RUN])
def test_a_short_sum_runs_left_to_right_in_the_dtype(dtype, n):
    x = _terms(n)
    total = lower(lambda x, ops: ops.sum(x), Precision(dtype))(x, np)
    assert np.asarray(total).dtype.name == dtype
    assert float(total) == loop_sum(round_to(x, dtype), dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_long_sum_runs_in_runs_of_128_then_combines_them(dtype):
    for x in (round_to(_terms(300), dtype), SKEWED):
        runs = [loop_sum(x[0:128], dtype), loop_sum(x[128:256], dtype),
                loop_sum(x[256:300], dtype)]
        expected = rounded_add(rounded_add(runs[0], runs[1], dtype), runs[2], dtype)
        total = lower(lambda x, ops: ops.sum(x), Precision(dtype))(x, np)
        assert float(total) == expected
    assert expected != loop_sum(SKEWED, dtype) == 256.0  # runs are not one loop


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_sum_accumulated_in_float32_is_rounded_once(dtype):
    for x in (round_to(_terms(300), dtype), SKEWED):
        total = lower(lambda x, ops: ops.sum(x), Precision(dtype, "float32"))(x, np)
        assert np.asarray(total).dtype.name == dtype
        assert float(total) == float(round_to(math.fsum(x), dtype))
    assert float(total) != loop_sum(SKEWED, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_matmul_sums_rounded_products_along_k_in_the_dtype(dtype):
    rng = np.random.default_rng(3)
    a, b = round_to(rng.uniform(-1, 1, (3, 100)), dtype), round_to(rng.uniform(-1, 1, (100, 2)),
                                                                   dtype)
    expected = np.empty((3, 2))
    for i in range(3):
        for j in range(2):
            acc = float(round_to(a[i, 0] * b[0, j], dtype))
            for k in range(1, 100):
                acc = rounded_add(acc, float(round_to(a[i, k] * b[k, j], dtype)), dtype)
            expected[i, j] = acc
    got = lower(lambda x, ops: ops.matmul(ops.reshape(x, (3, 100)), b), Precision(dtype))(
        a.ravel(), np)
    assert got.dtype.name == dtype and np.array_equal(np.asarray(got, dtype=float), expected)
    wide = lower(lambda x, ops: ops.reshape(x, (3, 100)) @ b, Precision(dtype, "float32"))(
        a.ravel(), np)
    exact = [[math.fsum(a[i] * b[:, j]) for j in range(2)] for i in range(3)]
    assert np.array_equal(np.asarray(wide, dtype=float), round_to(exact, dtype))
    assert not np.array_equal(expected, round_to(exact, dtype))
    # a vector dot product: the same k-loop
    dot = lower(lambda x, ops: ops.dot(x, b[:, 0]), Precision(dtype))(a[0], np)
    assert float(dot) == expected[0, 0]


def test_constants_a_lowered_f_closes_over_are_rounded():
    c = np.random.default_rng(5).uniform(0.1, 3.0, 64)
    x = np.random.default_rng(6).uniform(0.1, 3.0, 64)
    x16, c16 = round_to(x, "float16"), round_to(c, "float16")
    expected = round_to(x16 * c16, "float16")
    for fn in (lambda x, ops: x * c, lambda x, ops: c * x):
        got = lower(fn, Precision("float16"))(x, np)
        assert got.dtype == np.float16 and np.array_equal(got.astype(float), expected)
    assert not np.array_equal(expected, round_to(x16 * c, "float16"))  # rounding c matters


def test_a_python_float_constant_is_rounded_to_the_dtype():
    x = np.linspace(0.5, 60.0, 400)
    x16, tenth = round_to(x, "float16"), round_to(0.1, "float16")
    got = lower(lambda x, ops: x * 0.1, Precision("float16"))(x, np).astype(float)
    assert np.array_equal(got, round_to(x16 * tenth, "float16"))
    assert not np.array_equal(got, round_to(x16 * 0.1, "float16"))


# ---- every dtype on every method, against the reference ----------------------------------

PROBLEMS = [("sin", 8), ("log_sin", 8), ("rosenbrock", 8), ("mlp", 4)]
EXACT = ("reverse", "jax", "sympy", "torch")


@cache
def _reference(family: str, size: int, dtype: str):
    return reference_gradient(rounded(make(family, size), dtype), use_cache=False)


def _gradient(backend: str, problem: Problem, precision: Precision) -> np.ndarray:
    """The gradient as the gradient study prepares it (``GradientStudy._measure``)."""
    if backend == "torch":
        pytest.importorskip("torch")
    method = lowered(problem, precision)
    prepared = registry()[backend].prepare(method, precision=precision)
    return np.asarray(prepared.gradient(method.x0.copy()), dtype=float)


def _error(family, size, dtype, gradient):
    reference = _reference(family, size, dtype)
    return gradient_error(gradient, reference.as_float(), skip=reference.kinks,
                          sensitivity=reference.sensitivity, eps=eps(dtype))


@pytest.mark.parametrize("backend", EXACT)
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("family,size", PROBLEMS)
def test_exact_methods_reach_the_digits_the_dtype_allows(family, size, dtype, backend):
    problem = make(family, size)
    gradient = _gradient(backend, problem, Precision(dtype))
    error = _error(family, size, dtype, gradient)
    assert error.kappa is not None
    assert error.norm <= 50 * eps(dtype) * max(1.0, error.kappa)
    assert error.digits >= error.digits_attainable - 1.5
    # the arithmetic was the dtype's: every component is a number of the dtype, and the
    # error is that of the dtype, not float64's
    assert np.array_equal(round_to(gradient, dtype), gradient)
    assert error.norm > 1e3 * eps("float64")


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("family,size", PROBLEMS[:3])
def test_central_differences_in_a_dtype_err_as_eps_to_the_two_thirds(family, size, dtype):
    """h = eps^(1/3) of the dtype: truncation h² and rounding eps/h, each about eps^(2/3).
    (mlp has relu kinks within h = 0.1 of x0 in float16: its O(1) truncation is not the
    dtype's, so it is left out.)"""
    problem = make(family, size)
    error = _error(family, size, dtype, _gradient("central", problem, Precision(dtype)))
    assert error.norm <= 10 * eps(dtype) ** (2 / 3)
    assert error.norm > 1e3 * eps("float64")


def test_the_engine_in_float16_rounds_every_forward_and_backward_value():
    """f = Σ (x a)²: the engine's gradient is a·(2·(x a)) with each product rounded to
    float16 (the doubling is exact), which is not 2 x a² rounded once."""
    rng = np.random.default_rng(11)
    a, x = rng.uniform(0.3, 3.0, 200), rng.uniform(0.3, 3.0, 200)
    fn = lower(lambda x, ops: ops.sum((x * a) ** 2), Precision("float16"))
    gradient = np.asarray(ad.grad(lambda x: fn(x, ad))(x.copy()), dtype=float)
    x16, a16 = round_to(x, "float16"), round_to(a, "float16")
    y = round_to(x16 * a16, "float16")
    assert np.array_equal(gradient, round_to(2.0 * y * a16, "float16"))
    assert not np.array_equal(gradient, round_to(2.0 * x16 * a * a, "float16"))


# ---- mixed precision ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reverse", "jax", "torch"])
def test_accumulating_in_float32_is_at_least_as_accurate_on_mlp(backend):
    problem = make("mlp", 64)
    pure = _error("mlp", 64, "float16", _gradient(backend, problem, Precision("float16")))
    mixed = _error("mlp", 64, "float16",
                   _gradient(backend, problem, Precision("float16", "float32")))
    assert mixed.norm <= pure.norm
    assert mixed.digits >= mixed.digits_attainable - 1.5


def _dot_loss(k: int) -> tuple[Problem, np.ndarray]:
    """½ (a·x)² over k positive terms (its gradient is (a·x) a), and a; x0 small enough
    that f stays below float16's largest number."""
    rng = np.random.default_rng(k)
    a = rng.uniform(0.5, 1.5, k)
    return Problem("dot_loss", k, fn=lambda x, ops: 0.5 * ops.dot(a, x) ** 2,
                   x0=rng.uniform(0.5, 1.5, k) / 8), a


@pytest.mark.parametrize("backend", ["reverse", "jax", "torch"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_accumulating_in_float32_rounds_a_long_dot_product_once(backend, dtype):
    """k = 512: the gradient (a·x) a is s·a_i rounded, s the dot product as the forward pass
    formed it: in the dtype, the 512 rounded products left to right in one accumulator (a
    product is not split into runs, as a reduction is); in float32, the exact products summed
    and rounded once.  The second errs less."""
    problem, a = _dot_loss(512)
    x, a16 = round_to(problem.x0, dtype), round_to(a, dtype)
    products = round_to(a16 * x, dtype)
    runs = loop_sum(products, dtype)
    once = float(round_to(math.fsum(a16 * x), dtype))
    exact = math.fsum(a * x) * a
    errors = {}
    for accumulate, s in ((None, runs), ("float32", once)):
        gradient = _gradient(backend, problem, Precision(dtype, accumulate))
        assert np.array_equal(gradient, round_to(s * a16, dtype)), accumulate
        errors[accumulate] = float(np.max(np.abs(gradient - exact)) / np.max(np.abs(exact)))
    assert runs != once
    assert errors["float32"] < errors[None]
    assert errors["float32"] <= 1.5 * eps(dtype)


# ---- loss scaling ------------------------------------------------------------------------


@cache
def _late_loss():
    problem = make("late_loss")
    return problem, _reference("late_loss", problem.size, "float16")


def _scaled(backend: str, loss_scale):
    """The float16 gradient of late_loss as the study computes it: LossScaled for a scale."""
    if backend == "torch":
        pytest.importorskip("torch")
    problem, _ = _late_loss()
    precision = Precision("float16", None, loss_scale)
    method = lowered(problem, precision)
    chosen = registry()[backend]
    if loss_scale is None:
        prepared = chosen.prepare(method, precision=precision)
    else:
        prepared = LossScaled(method, lambda scale: chosen.prepare(
            lowered(problem, precision, scale), precision=precision), loss_scale)
    gradient = np.asarray(prepared.gradient(method.x0.copy()), dtype=float)
    computed = prepared.scaled_gradient()
    return prepared, gradient, gradient if computed is None else computed


def _underflow(computed) -> float:
    _, reference = _late_loss()
    return underflow(computed, reference.as_float(), reference.kinks, "float16")


def _late_error(gradient):
    _, reference = _late_loss()
    return gradient_error(gradient, reference.as_float(), skip=reference.kinks,
                          sensitivity=reference.sensitivity, eps=eps("float16"))


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value")
@pytest.mark.parametrize("backend", ["reverse", "torch"])
def test_loss_scaling_lifts_the_late_loss_gradient_out_of_underflow(backend):
    _, _, pure = _scaled(backend, None)
    assert _underflow(pure) >= 0.5
    prepared, gradient, computed = _scaled(backend, "dynamic")
    assert _underflow(computed) == 0.0
    error = _late_error(gradient)
    # (unscaled float16 meets this too, 0.84 digits to 1.86 attainable: the normwise error is
    # the largest components', which are normal; what scaling saves is the small ones)
    assert error.digits >= error.digits_attainable - 1.5
    # float16 cannot hold 65536: the first scale overflows and is halved once
    assert prepared.scale == DYNAMIC_START / 2 and prepared.halvings == 1
    assert "S = 32768" in prepared.note() and "from 65536" in prepared.note()
    _, gradient, computed = _scaled(backend, LOSS_SCALE)
    # 2^15: at 2^14 the least exact |S g_i| at x0 rounded to float16 is 3.1e-5, below 2^-14
    assert _underflow(computed) == 0.0
    error = _late_error(gradient)
    assert error.digits >= error.digits_attainable - 1.5


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value")
def test_a_static_scale_too_large_for_float16_overflows():
    prepared, gradient, computed = _scaled("reverse", 2.0**40)
    assert not np.all(np.isfinite(computed)) and not np.all(np.isfinite(gradient))
    assert prepared.scale == 2.0**40 and "S = 1.09951e+12" in prepared.note()


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value")
def test_dynamic_scaling_halves_until_the_gradient_is_finite():
    """f = ½ Σ x² at x = 100 in float16: the gradient of S·f reaches 2·x·½·S = 100 S, finite
    while 100 S ≤ 65504, so the scale halves from 65536 to 512 (7 halvings); S·f = 1e7
    overflows, which the backward pass does not use."""
    x0 = np.full(4, 100.0)
    problem = Problem("big", 4, fn=lambda x, ops: 0.5 * ops.sum(x * x), x0=x0)
    precision = Precision("float16", None, "dynamic")
    prepared = LossScaled(lowered(problem, precision), lambda scale: registry()["reverse"].prepare(
        lowered(problem, precision, scale), precision=precision), "dynamic")
    gradient = prepared.gradient(x0.copy())
    assert prepared.scale == 512.0 and prepared.halvings == 7
    assert np.array_equal(gradient, x0)
    assert np.array_equal(prepared.scaled_gradient(), 512.0 * x0)
    assert "S = 512 (dynamic: from 65536, halved 7 times on overflow)" in prepared.note()
    # the scale found is kept for the next call
    assert np.array_equal(prepared.gradient(x0.copy()), x0) and prepared.halvings == 7


# ---- config errors -----------------------------------------------------------------------

CONFIG = """
[[study]]
kind = "gradient"
families = ["sin"]
sizes = [4]
backends = [{backend}]
"""


@pytest.mark.parametrize("backend,key,words", [
    ('{ name = "reverse", dtype = "float8" }', "dtype", "'float8'"),
    ('{ name = "reverse", dtype = "float16", accumulate = "bfloat16" }', "accumulate",
     "lower than dtype 'float16'"),
    ('{ name = "reverse", dtype = "float32", accumulate = "float16" }', "accumulate",
     "lower than dtype 'float32'"),
    ('{ name = "reverse", accumulate = "float8" }', "accumulate", "unknown dtype 'float8'"),
    ('{ name = "reverse", loss_scale = 0 }', "loss_scale", "> 0"),
    ('{ name = "jax", loss_scale = -1.5 }', "loss_scale", "> 0"),
    ('{ name = "reverse", loss_scale = "static" }', "loss_scale", "'dynamic'"),
    # a backend without the option still has its value checked
    ('{ name = "autograd", dtype = "float8" }', "dtype", "'float8'"),
    ('{ name = "central", loss_scale = 0 }', "loss_scale", "> 0"),
    ('{ name = "sympy", dtype = "float16", accumulate = "bfloat16" }', "accumulate",
     "lower than dtype 'float16'"),
])
def test_bad_precision_options_name_the_key(tmp_path, backend, key, words):
    path = tmp_path / "bench.toml"
    path.write_text(CONFIG.format(backend=backend))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and f": study[0].backends[0].{key}:" in message
    assert words in message


def test_good_precision_options_load(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text(CONFIG.format(backend='{ name = "reverse", dtype = "float16", accumulate = '
                                  '"float32", loss_scale = "dynamic" }, { name = "central", '
                                  'dtype = "bfloat16" }'))
    (study,) = load_config(path).studies
    assert [spec.options for spec in study.backends] == [
        {"dtype": "float16", "accumulate": "float32", "loss_scale": "dynamic"},
        {"dtype": "bfloat16"}]


# ---- the study's rows --------------------------------------------------------------------

STUDY = """
name = "precision"
[timing]
min_sample_s = 0.001
repeats = 3
[[study]]
kind = "gradient"
families = ["sin", "exp"]
sizes = [8]
backends = [{ name = "reverse", dtype = "float16" },
            { name = "reverse", dtype = "float16", accumulate = "float32" },
            { name = "reverse", dtype = "float16", loss_scale = 1024 },
            { name = "reverse", dtype = "float16", replay = true },
            { name = "central", dtype = "bfloat16" },
            { name = "central", dtype = "float16", accumulate = "float32" },
            { name = "autograd", dtype = "float16" }]
"""


@pytest.fixture(scope="module")
def study_rows(tmp_path_factory) -> list[dict[str, str]]:
    out = tmp_path_factory.mktemp("precision")
    config = Path(out) / "config.toml"
    config.write_text(STUDY)
    run(load_config(config), out / "run", Console(quiet=True), RunOptions(quiet=True))
    return read_rows(out / "run" / "gradient.csv")


def _study_row(rows, family, backend, variant):
    (row,) = [r for r in rows if (r["family"], r["backend"], r["variant"])
              == (family, backend, variant)]
    return row


def test_rows_carry_the_precision_columns(study_rows):
    expected = {"dtype=float16": ("float16", "", ""),
                "accumulate=float32,dtype=float16": ("float16", "float32", ""),
                "dtype=float16,loss_scale=1024": ("float16", "", "1024"),
                "dtype=bfloat16": ("bfloat16", "", "")}
    for variant, (dtype, accumulate, loss_scale) in expected.items():
        backend = "central" if variant == "dtype=bfloat16" else "reverse"
        row = _study_row(study_rows, "sin", backend, variant)
        assert row["status"] == "ok", row["message"]
        assert (row["dtype"], row["accumulate"], row["loss_scale"]) == (dtype, accumulate,
                                                                        loss_scale)
        assert float(row["underflow"]) == 0.0 and float(row["overflow"]) == 0.0
        assert float(row["digits_attainable"]) < 3.1  # float16's or bfloat16's eps, not float64's
        assert float(row["digits"]) >= (float(row["digits_attainable"]) - 1.5
                                        if backend == "reverse" else 1.0)
    assert "loss scale S = 1024" in _study_row(study_rows, "sin", "reverse",
                                               "dtype=float16,loss_scale=1024")["message"]


def test_exp_of_20_overflows_float16(study_rows):
    for variant in ("dtype=float16", "accumulate=float32,dtype=float16",
                    "dtype=float16,loss_scale=1024"):
        row = _study_row(study_rows, "exp", "reverse", variant)
        assert row["status"] == "overflow" and "65504" in row["message"], row["message"]
        assert row["dtype"] == "float16"
    # bfloat16 reaches 3.4e38: e^20 is a number of it
    assert _study_row(study_rows, "exp", "central", "dtype=bfloat16")["status"] == "ok"


def test_replay_in_float16_is_unsupported(study_rows):
    row = _study_row(study_rows, "sin", "reverse", "dtype=float16,replay=true")
    assert row["status"] == "unsupported" and "float16" in row["message"]


def test_a_precision_option_the_method_lacks_is_an_unsupported_row(study_rows):
    row = _study_row(study_rows, "sin", "autograd", "dtype=float16")
    assert row["status"] == "unsupported" and row["dtype"] == "float16"
    assert row["message"] == "autograd takes no dtype option: it runs f as written, in float64"
    row = _study_row(study_rows, "sin", "central", "accumulate=float32,dtype=float16")
    assert row["status"] == "unsupported" and row["accumulate"] == "float32"
    assert row["message"] == "central takes no accumulate option (its precision options: dtype)"


# ---- values that are not finite: the dtype's overflow, or f's own ----------------------------

EDGES = '''
def log_edge(x, ops):
    return ops.sum(ops.log(x - 0.5))  # x0 = 0.5001 rounds to 0.5 in 16 bits: log(0)

def sqrt_edge(x, ops):
    return ops.sum(ops.sqrt(x))  # an infinite derivative at 0, in every dtype

def scaled_square(x, ops):
    return ops.sum(x * x) * 1e6  # 1e6 is no float16 number: f overflows there
'''

EDGE_STUDY = """
name = "edges"
[timing]
min_sample_s = 0.001
repeats = 1
[families.log_edge]
function = "edges.py:log_edge"
point = [0.5001, 2.0]
[families.sqrt_edge]
function = "edges.py:sqrt_edge"
point = [0.0, 1.0]
[families.scaled_square]
function = "edges.py:scaled_square"
point = [0.01, 0.02]
[[study]]
kind = "gradient"
families = ["log_edge", "sqrt_edge", "scaled_square"]
backends = [{ name = "reverse", dtype = "float16" }, { name = "central", dtype = "bfloat16" }]
[[study]]
kind = "step-sweep"
families = ["log_edge", "scaled_square"]
dtypes = ["float16"]
h_points = 8
"""


def test_values_not_finite_in_f_as_written_are_nan_rows_not_overflow(tmp_path):
    (tmp_path / "edges.py").write_text(EDGES)
    (tmp_path / "edges.toml").write_text(EDGE_STUDY)
    out = tmp_path / "run"
    run(load_config(tmp_path / "edges.toml"), out, Console(quiet=True), RunOptions(quiet=True))
    rows = {(r["family"], r["backend"]): r for r in read_rows(out / "gradient.csv")}
    for backend, dtype in (("reverse", "float16"), ("central", "bfloat16")):
        row = rows["log_edge", backend]
        assert row["status"] == "nan", row["message"]
        assert row["message"].startswith(f"f(x0) = -inf is not finite in {dtype}, nor with f as "
                                         f"written in float64 at x0 rounded to {dtype}")
        row = rows["sqrt_edge", backend]
        assert row["status"] == "nan" and "nor the engine's with f as written" in row["message"]
        row = rows["scaled_square", backend]
        expected = ("overflow", "f(x0) = inf is not finite in float16 (its largest number is "
                    "65504)") if dtype == "float16" else ("ok", "")
        assert (row["status"], row["message"]) == expected
    sweeps = {r["family"]: r for r in read_rows(out / "step_summary.csv")}
    assert sweeps["scaled_square"]["status"] == "overflow"
    assert sweeps["log_edge"]["status"] == "nan"
