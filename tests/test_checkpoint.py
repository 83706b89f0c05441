"""Checkpointing in the engine: ``ad.checkpoint``, ``ad.checkpoint_chain`` and revolve, and
``retain_grad`` and ``detach``.

References: the un-checkpointed gradient bit for bit (a checkpoint re-runs the same float
operations in the same order), the chain families' closed-form adjoints in mpmath, revolve's
step count against a dynamic programme over every schedule, closed forms for retained
cotangents.
"""

from __future__ import annotations

import functools
import math
import tracemalloc

import mpmath
import numpy as np
import pytest

import diffbench.ad as ad
from diffbench.ad.checkpointing import parse_schedule, revolve_advances
from diffbench.families import BUILTIN
from diffbench.ops import mpmath_ops

CHAINS = [("sin_tanh_chain", 7), ("residual_mlp", 3)]
DEPTH = 23  # not a square, so the √L segments differ in length
SCHEDULES = [("none", None), ("every:1", None), ("every:5", None), ("sqrt", None),
             ("revolve", 1), ("revolve", 3), ("revolve", 40)]


def chain_of(name: str, size: int, depth: int = DEPTH):
    return BUILTIN[name].chain(size, depth)


def chain_gradient(chain, schedule: str, snapshots: int | None = None, counter=None):
    """∂Σx_L/∂x_0 by the engine under ``schedule``; ``counter`` counts the step's calls."""

    def step(x):
        if counter is not None:
            counter.append(1)
        return chain.step(x, ad)

    return ad.grad(lambda x: ad.sum(ad.checkpoint_chain(step, x, chain.depth, schedule,
                                                        snapshots)))(chain.x0)


def mp_reference(chain) -> np.ndarray:
    with mpmath.workdps(30):
        return mpmath_ops.tofloat(chain.gradient(mpmath_ops.asarray(chain.x0), mpmath_ops))


# ---- ad.checkpoint -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), CHAINS)
def test_checkpointed_steps_give_the_gradient_bit_for_bit(name, size):
    chain = chain_of(name, size)
    plain = ad.grad(lambda x: ad.sum(chain.run(x, ad)))(chain.x0)
    step = ad.checkpoint(lambda x: chain.step(x, ad))

    def checkpointed(x):
        for _ in range(chain.depth):
            x = step(x)
        return ad.sum(x)

    assert np.array_equal(ad.grad(checkpointed)(chain.x0), plain)
    np.testing.assert_allclose(plain, mp_reference(chain), rtol=1e-12, atol=1e-15)


def test_nested_checkpoints_give_the_gradient_bit_for_bit():
    chain = chain_of("sin_tanh_chain", 5, depth=6)
    step = functools.partial(chain.step, ops=ad)
    inner = ad.checkpoint(lambda x: step(step(x)))
    outer = ad.checkpoint(lambda x: inner(inner(x)))
    nested = ad.grad(lambda x: ad.sum(inner(outer(x))))(chain.x0)
    assert np.array_equal(nested, ad.grad(lambda x: ad.sum(chain.run(x, ad)))(chain.x0))


def test_a_checkpoint_of_several_arguments_pulls_each_cotangent():
    a, b = np.array([0.3, -1.2, 2.0]), np.array([1.5, 0.5, -0.7])

    def f(x, y):
        return ad.sin(x) * y + x * 2.0

    def run(fn):
        tape = ad.Tape()
        x, y = tape.leaf(a), tape.leaf(b)
        ad.backward(ad.sum(fn(x, y)))
        return x.grad, y.grad

    (gx, gy), (cx, cy) = run(f), run(ad.checkpoint(f))
    assert np.array_equal(gx, cx) and np.array_equal(gy, cy)
    np.testing.assert_allclose(cx, np.cos(a) * b + 2.0, rtol=1e-15)
    np.testing.assert_allclose(cy, np.sin(a), rtol=1e-15)


def test_a_checkpoint_runs_its_function_once_forward_and_once_backward():
    calls = []

    def f(x):
        calls.append(type(x) is ad.Box)
        return ad.tanh(x) * x

    ad.grad(lambda x: ad.sum(ad.checkpoint(f)(x)))(np.array([0.5, 1.0]))
    assert calls == [False, True]  # untraced, then recorded on a fresh tape
    assert ad.checkpoint(f)(np.array([2.0])).tolist() == (np.tanh([2.0]) * 2.0).tolist()


def test_checkpoint_refuses_a_hidden_traced_value_and_several_outputs():
    tape = ad.Tape()
    x, w = tape.leaf([1.0, 2.0]), tape.leaf([3.0, 4.0])
    with pytest.raises(ValueError, match="read a traced value it was not given"):
        ad.checkpoint(lambda v: v * w)(x)
    with pytest.raises(ValueError, match="one array"):
        ad.checkpoint(lambda v: (v, v))(x)


# ---- ad.checkpoint_chain --------------------------------------------------------------------


@pytest.mark.parametrize(("schedule", "snapshots"), SCHEDULES)
@pytest.mark.parametrize(("name", "size"), CHAINS)
def test_every_schedule_gives_the_gradient_bit_for_bit(name, size, schedule, snapshots):
    chain = chain_of(name, size)
    counter: list[int] = []
    gradient = chain_gradient(chain, schedule, snapshots, counter)
    assert np.array_equal(gradient, chain_gradient(chain, "none"))
    assert len(counter) == parse_schedule(schedule, snapshots).forward_steps(DEPTH)


@pytest.mark.parametrize(("schedule", "snapshots"), SCHEDULES)
def test_a_step_that_ignores_its_argument_has_no_gradient(schedule, snapshots):
    g = ad.grad(lambda x: ad.sum(ad.checkpoint_chain(lambda v: np.ones(3), x, 5, schedule,
                                                     snapshots)))(np.ones(3))
    assert g.tolist() == [0.0, 0.0, 0.0]


def test_revolve_in_mpmath_numbers_is_the_plain_gradient():
    chain = chain_of("sin_tanh_chain", 3, depth=9)
    with mpmath.workdps(40):
        x0 = mpmath_ops.asarray(chain.x0)
        plain = ad.grad(lambda x: ad.sum(chain.run(x, ad)))(x0)
        revolved = ad.grad(lambda x: ad.sum(ad.checkpoint_chain(
            functools.partial(chain.step, ops=ad), x, 9, "revolve", 2)))(x0)
        assert revolved.dtype == object and all(revolved == plain)
        reference = chain.gradient(x0, mpmath_ops)
        assert max(abs(g - r) for g, r in zip(revolved, reference, strict=True)) < 1e-35


def test_segments_of_every_and_sqrt():
    assert parse_schedule("every:5").segments(23) == [5, 5, 5, 5, 3]
    assert parse_schedule("sqrt").segments(23) == [5, 5, 5, 4, 4]  # ⌈√23⌉ = 5 segments
    assert parse_schedule("sqrt").segments(256) == [16] * 16
    assert parse_schedule("sqrt").stored(23) == 5 and parse_schedule("none").stored(23) is None


@functools.cache
def fewest(length: int, snapshots: int) -> float:
    """The fewest untaped steps over every schedule that reverses ``length`` steps holding at
    most ``snapshots`` states at once, the first among them: the first state stored after
    x_0, m steps on, splits any schedule into reversing the last length − m steps with one
    state less, then the first m with all of them (Griewank 1992)."""
    if length == 1:
        return 0
    if snapshots == 0:
        return math.inf  # no state to restart from
    return min(m + fewest(length - m, snapshots - 1) + fewest(m, snapshots)
               for m in range(1, length))


def test_revolve_runs_the_fewest_steps_for_every_length_and_budget():
    """For every L <= 64 and snapshots <= 6: the steps revolve really runs are the fewest a
    dynamic programme over all schedules finds, plus each step once on a tape."""
    x0 = np.array([0.7])
    for length in range(1, 65):
        for snapshots in range(1, 7):
            counter = []

            def step(x, counter=counter):
                counter.append(1)
                return 0.9 * x

            ad.grad(lambda x, length=length, snapshots=snapshots: ad.sum(ad.checkpoint_chain(
                step, x, length, "revolve", snapshots)))(x0)
            assert revolve_advances(length, snapshots) == fewest(length, snapshots)
            assert len(counter) == fewest(length, snapshots) + length, (length, snapshots)


def traced_arrays(fn, size: int) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / (8 * size)


def test_revolve_holds_its_snapshots_and_one_steps_tape():
    """At most ``snapshots`` states, one step's tape (2 arrays) and the cotangents and
    temporaries of one step's backward; without checkpoints every step keeps 2 arrays."""
    size, depth = 20_000, 40
    chain = BUILTIN["sin_tanh_chain"].chain(size, depth)
    assert traced_arrays(lambda: chain_gradient(chain, "none"), size) >= 2 * depth
    for snapshots in (2, 5):
        held = traced_arrays(lambda s=snapshots: chain_gradient(chain, "revolve", s), size)
        assert held <= snapshots + 2 + 6


@pytest.mark.parametrize(("args", "words"), [
    ((10, "revolve"), "revolve needs snapshots"),
    ((10, "revolve", 0), "snapshots must be a whole number >= 1"),
    ((10, "sqrt", 4), "the sqrt schedule takes none"),
    ((10, "every:0"), "every:K needs K"),
    ((10, "every:x"), "every:K needs K"),
    ((10, "binomial"), "unknown schedule 'binomial'"),
    ((0, "sqrt"), "length must be a whole number >= 1, got 0"),
    ((2.5, "none"), "length must be a whole number >= 1"),
])
def test_bad_arguments_are_clear_value_errors(args, words):
    tape = ad.Tape()
    with pytest.raises(ValueError, match=words):
        ad.checkpoint_chain(ad.sin, tape.leaf([1.0]), *args)


# ---- retain_grad and detach -----------------------------------------------------------------


def test_retain_grad_keeps_an_intermediate_cotangent():
    values = np.array([0.3, -1.1, 2.0])
    tape = ad.Tape()
    x = tape.leaf(values)
    y = ad.sin(x)
    z = ad.tanh(y)
    y.retain_grad()
    out = ad.sum(z * z)
    out.retain_grad()
    ad.backward(out)
    t = np.tanh(np.sin(values))
    np.testing.assert_allclose(y.grad, 2 * t * (1 - t * t), rtol=1e-14)
    np.testing.assert_allclose(x.grad, 2 * t * (1 - t * t) * np.cos(values), rtol=1e-14)
    assert z.grad is None and out.grad == 1.0


def test_a_retained_cotangent_is_a_copy_the_sweep_does_not_add_into():
    """``y = x + 1`` hands y's cotangent to x as it is; x's later contribution (from ``a``,
    recorded earlier) is added into that buffer: y.grad must stay y's own."""
    c, d = np.array([1.0, 2.0]), np.array([10.0, 20.0])
    tape = ad.Tape()
    x = tape.leaf([0.5, 0.25])
    a = x * d
    y = x + 1.0
    y.retain_grad()
    ad.backward(ad.sum(a) + ad.sum(y * c))
    assert y.grad.tolist() == c.tolist() and x.grad.tolist() == (c + d).tolist()


def test_retaining_changes_no_gradient_and_needs_the_records():
    chain = chain_of("sin_tanh_chain", 4, depth=5)
    tape = ad.Tape()
    x = tape.leaf(chain.x0)
    y = chain.step(x, ad)
    y.retain_grad()
    y.retain_grad()  # once is enough
    ad.backward(ad.sum(chain.run(y, ad)))
    assert np.array_equal(x.grad, ad.grad(lambda v: ad.sum(chain.run(chain.step(v, ad), ad)))(
        chain.x0))
    with pytest.raises(RuntimeError, match="released"):
        y.retain_grad()


def test_detach_and_stop_gradient_cut_the_graph():
    values = np.array([0.5, -2.0, 3.0])
    assert ad.stop_gradient is ad.detach
    g = ad.grad(lambda x: ad.sum(x * ad.detach(x)))(values)
    assert g.tolist() == values.tolist()  # d/dx x·c = c, not 2x
    assert ad.grad(lambda x: ad.sum(ad.sin(ad.stop_gradient(x))))(values).tolist() == [0.0] * 3
    tape = ad.Tape()
    view = ad.detach(tape.leaf(values))
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 1.0
    assert ad.detach(2.5) == 2.5
