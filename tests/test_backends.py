"""Central differences within their theory; JAX against the 50-digit reference."""

import importlib.util
import tracemalloc

import mpmath
import numpy as np
import pytest

import diffbench.ops.mpmath_ops as mp_ops
from diffbench.backends import registry, variant_label
from diffbench.backends.central import central_step
from diffbench.families import BUILTIN, Problem
from diffbench.measure.error import gradient_error, relative_errors
from diffbench.reference import reference_gradient

EPS = np.finfo(float).eps
SMOOTH = [("exp", None), ("sin", None), ("quadratic", None), ("log_sin", None),
          ("affine_square", None), ("dot", 20), ("product", 20), ("rosenbrock", 20),
          ("mlp", 4), ("nested", 4), ("logistic", 4)]


def _error(backend_name, name, size, **options):
    problem = BUILTIN[name].make(size)
    prepared = registry()[backend_name].prepare(problem, **options)
    gradient = prepared.gradient(problem.x0.copy())
    reference = reference_gradient(problem).as_float()
    return gradient, reference, prepared


@pytest.mark.parametrize("name,size", [(n, s) for n, s in SMOOTH
                                       if BUILTIN[n].make(s).n == 1])
def test_central_differences_error_within_theory(name, size):
    """|error| <= h^2 |f'''| / 6 + eps |f| / h (truncation plus round-off), with a margin."""
    gradient, reference, prepared = _error("central", name, size)
    problem = BUILTIN[name].make(size)
    (x,) = problem.x0
    with mpmath.workdps(40):
        third = abs(mpmath.diff(lambda t: problem.f(mp_ops.asarray([t]), mp_ops), x, 3))
    h = central_step(x)
    bound = h**2 * float(third) / 6 + EPS * abs(problem.f(problem.x0)) / h
    assert abs(gradient[0] - reference[0]) <= 4 * bound
    assert prepared.stats()["f_evals"] == 2


@pytest.mark.parametrize("name,size", [(n, s) for n, s in SMOOTH
                                       if BUILTIN[n].make(s).n > 1])
def test_central_differences_on_vector_families(name, size):
    gradient, reference, prepared = _error("central", name, size)
    assert gradient_error(gradient, reference).median < 1e-7
    assert prepared.stats()["f_evals"] == 2 * BUILTIN[name].make(size).n


def test_central_differences_on_sin_are_eps_two_thirds_accurate():
    gradient, reference, _ = _error("central", "sin", None)
    error = gradient_error(gradient, reference).max
    assert 1e-14 < error < 10 * EPS ** (2 / 3)


def test_central_step_is_textbook():
    for x, scale in ((0.0, 1.0), (0.5, 1.0), (3.0, 3.0), (-1e4, 1e4)):
        assert central_step(x) == pytest.approx(EPS ** (1 / 3) * scale, rel=1e-15)


# x_i where the textbook step is not representable: (x + h) − x differs from h by ~1e-11·h.
AWKWARD = np.array([1e4 + 1 / 3, 3.0 + 1 / 7, -2e3 - 1 / 9, 0.7, 5e5 + 0.1])
WEIGHTS = np.array([1.0, -2.5, 0.3, 7.0, -0.01])


def _shifted_quadratic(x, ops):
    """Σ w_i d_i + Σ (d_i / (1 + |c_i|))², d = x − c, c = AWKWARD: gradient w at x = c."""
    d = x - AWKWARD
    return ops.sum(WEIGHTS * d) + ops.sum((d / (1.0 + np.abs(AWKWARD))) ** 2)


@pytest.mark.parametrize("step", ["default", "auto"])
def test_central_differences_take_the_exact_step(step):
    """At x = c, x ± h'e_i − c is exactly ±h'e_i and f(x ± h'e_i) = ±w_i h' + (tiny) to
    rounding, so with the exact step h' = (x + h) − x the quotient is w_i to a few eps; dividing
    by the nominal h would be off by |h' − h|/h, 3e3 to 3e4 eps here."""
    off = [abs(((x + central_step(x)) - x) - central_step(x)) / central_step(x)
           for x in AWKWARD]
    assert min(off) > 1e3 * EPS  # the exact step matters at every component
    problem = Problem("shifted", None, _shifted_quadratic, AWKWARD.copy())
    gradient = registry()["central"].prepare(problem, step=step).gradient(problem.x0.copy())
    assert np.max(relative_errors(gradient, WEIGHTS)) <= 8 * EPS


@pytest.mark.parametrize("step", ["default", "auto"])
def test_central_gradient_leaves_x_bitwise_unchanged(step):
    x = np.random.default_rng(7).standard_normal(50) * np.logspace(-3, 5, 50)
    x[::7] = AWKWARD[0]
    before = x.tobytes()
    problem = Problem("shifted", None, lambda v, ops: ops.sum(ops.sin(v) * v), x.copy())
    registry()["central"].prepare(problem, step=step).gradient(x)
    assert x.tobytes() == before


def _few(x, ops):
    """Reads four entries and the last: its own peak does not grow with n."""
    return ops.sum(x[:4] ** 2) + x[-1]


def _peak(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_central_gradient_makes_no_copy_of_x():
    """Peak beyond f's own peak and the 8n-byte output: a few hundred bytes at n = 10^4 and at
    10^5 (a copy of x, or a list of n floats, would add 8n or more)."""
    extra = {}
    for n in (10**4, 10**5):
        x = np.linspace(1.0, 2.0, n)
        prepared = registry()["central"].prepare(Problem("few", n, _few, x.copy()))
        own = _peak(lambda x=x: _few(x, np))
        extra[n] = _peak(lambda x=x, prepared=prepared: prepared.gradient(x)) - own - 8 * n
    assert max(extra.values()) < 4096
    assert abs(extra[10**5] - extra[10**4]) < 2048


def test_central_relu_kink_gives_one_half():
    gradient, _, _ = _error("central", "relu", None)
    np.testing.assert_allclose(gradient, [0.0, 0.5, 1.0], atol=1e-9)


needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax missing")


@needs_jax
@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("name,size", [c for c in SMOOTH if c[0] not in ("nested",)])
def test_jax_matches_reference_to_13_digits(name, size, jit):
    gradient, reference, _ = _error("jax", name, size, jit=jit)
    assert gradient_error(gradient, reference).digits >= 13


@needs_jax
def test_jax_memory_from_the_compiled_executable():
    problem = BUILTIN["rosenbrock"].make(1000)
    backend = registry()["jax"]
    prepared = backend.prepare(problem)
    assert backend.measure_memory(prepared, problem.x0) >= 8 * 1000
    assert backend.measure_memory(backend.prepare(problem, jit=False), problem.x0) is None


@needs_jax
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_jax_value_variant_returns_the_gradient_and_times_value_and_grad(mode):
    gradient, reference, prepared = _error("jax", "rosenbrock", 20, mode=mode, value=True)
    assert gradient_error(gradient, reference).digits >= 13
    value, grad = prepared.timed_gradient(BUILTIN["rosenbrock"].make(20).x0)()
    problem = BUILTIN["rosenbrock"].make(20)
    assert float(value) == pytest.approx(float(problem.f(problem.x0)), rel=1e-14)
    np.testing.assert_allclose(np.asarray(grad), gradient, rtol=1e-15)


@needs_jax
@pytest.mark.parametrize("jit,method", [(True, "jax-jit"), (False, "jax-eager")])
def test_jax_times_f_the_way_it_runs_the_gradient(jit, method):
    problem = BUILTIN["rosenbrock"].make(30)
    backend = registry()["jax"]
    prepared = backend.prepare(problem, jit=jit)
    assert prepared.function_method == method
    value = prepared.timed_function(problem.x0)()
    assert float(value) == pytest.approx(float(problem.f(problem.x0)), rel=1e-14)
    memory = backend.measure_function_memory(prepared, problem.x0)
    assert (memory is not None) == jit


def test_numpy_backends_time_numpy_f():
    problem = BUILTIN["rosenbrock"].make(30)
    for name in ("central", "reverse"):
        prepared = registry()[name].prepare(problem)
        assert prepared.function_method == "numpy"
        assert prepared.timed_function(problem.x0)() == problem.f(problem.x0)


def test_variant_label():
    assert variant_label({}) == "default"
    assert variant_label({"jit": False, "a": 1}) == "a=1,jit=false"


def test_reverse_backend_matches_reference_and_reports_its_tape():
    problem = BUILTIN["rosenbrock"].make(50)
    prepared = registry()["reverse"].prepare(problem)
    gradient = prepared.gradient(problem.x0.copy())
    reference = reference_gradient(problem).as_float()
    assert gradient_error(gradient, reference).median < 1e-14
    stats = prepared.stats()
    assert stats["tape_len"] > 5 and stats["cotangent_peak_bytes"] >= 8 * 50


@pytest.mark.parametrize(("name", "size"), [("rosenbrock", 50), ("mlp", 8), ("nested", 4)])
def test_reverse_replay_is_the_recording_engine(name, size):
    problem = BUILTIN[name].make(size)
    reverse = registry()["reverse"]
    recorded = reverse.prepare(problem).gradient(problem.x0.copy())
    replay = reverse.prepare(problem, replay=True)
    assert replay.gradient(problem.x0.copy()).tobytes() == recorded.tobytes()
    assert replay.stats()["tape_len"] > 0


def test_reverse_replay_refuses_what_it_cannot_replay():
    from diffbench.backends import UnsupportedCase
    from diffbench.families import custom_family

    family = custom_family("branchy", lambda x, ops: ops.sum(x) if float(x.value[0]) > 0
                           else ops.sum(-x), np.array([0.05, 1.0]))
    with pytest.raises(UnsupportedCase, match="replay: .*control flow"):
        registry()["reverse"].prepare(family.build(None), replay=True)
    chain = BUILTIN["sin_tanh_chain"]
    schedule = __import__("diffbench.ad.checkpointing", fromlist=["x"]).Schedule("sqrt")
    with pytest.raises(UnsupportedCase, match="no checkpointing"):
        registry()["reverse"].prepare_chain(chain.chain(4, 4), schedule, replay=True)


def test_reference_beyond_the_per_component_cap_uses_the_engine_in_mpmath():
    import mpmath

    from diffbench.families import Problem
    from diffbench.reference import mpmath_diff

    def wavy(x, ops):
        return ops.sum(ops.sin(x) * ops.exp(0.1 * x)) + ops.prod(ops.tanh(x[:3] + 2.0))

    problem = Problem("wavy", None, wavy, np.linspace(-1.0, 2.0, 12))
    small = reference_gradient(problem, digits=40, diff_budget_s=30.0)
    large = reference_gradient(problem, digits=40, diff_budget_s=0.0)
    assert (small.method, large.method) == ("mpmath-diff", "reverse-mpmath")
    with mpmath.workdps(40):
        direct = mpmath_diff(problem, 40)
        for a, b in zip(large.as_mpf(), direct, strict=True):
            assert abs(a - b) <= mpmath.mpf(10) ** -35 * max(abs(b), 1)
