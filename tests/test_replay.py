"""Replay (``ad.compile``): bitwise the recording engine, allocation-free after warm-up, and
refusing what it cannot replay."""

from __future__ import annotations

import tracemalloc
import weakref

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_ad import FAMILY_CASES, INPUT_SHAPES, STEPS, programs

import diffbench.ad as ad
from diffbench.families import BUILTIN
from diffbench.families.vector import rosenbrock


def same_bits(a: object, b: object) -> bool:
    """Equal bit for bit: the same shape, and the same float64 patterns (signs of zero too)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_replay_is_recording(f, points, replay=None, **options):
    replay = replay or ad.compile(f, points[0], value=True, **options)
    recording = ad.value_and_grad(f)
    for x in points:
        value, gradient = replay(x)
        expected_value, expected = recording(x)
        assert same_bits(gradient, expected)
        assert same_bits(value, expected_value)


# ---- bitwise the recording engine ---------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), FAMILY_CASES)
def test_replay_is_the_recording_engine_on_every_family(name, size):
    problem = BUILTIN[name].make(size)
    x0 = problem.x0
    rng = np.random.default_rng(0)
    points = [x0, x0 * rng.uniform(0.9, 1.1, x0.shape), x0]
    assert_replay_is_recording(lambda x: problem.fn(x, ad), points)


def _flat_program(program, seed: int):
    """A function of one flat array: its pieces are the inputs of the random program, and a
    non-scalar result is weighted by constants and summed."""
    sizes = [int(np.prod(shape)) for shape in INPUT_SHAPES]
    offsets = np.cumsum([0, *sizes])
    weights = np.random.default_rng(seed)

    def f(x):
        values = [ad.reshape(x[offsets[k]:offsets[k + 1]], shape)
                  for k, shape in enumerate(INPUT_SHAPES)]
        count = len(values)
        for name, first, second, choice in program:
            a, b = values[-1 - first % len(values)], values[second % len(values)]
            values.append(STEPS[name](ad, a, b, choice))
        out = values[count:][-1] if len(values) > count else values[-1]
        if out.shape == ():
            return out
        return ad.sum(out * weights_for(out.shape))

    cache: dict = {}

    def weights_for(shape):
        if shape not in cache:
            cache[shape] = weights.normal(size=shape)
        return cache[shape]

    return f, int(offsets[-1])


@settings(max_examples=200, deadline=None)
@given(program=programs, seed=st.integers(0, 2**32 - 1))
def test_replay_is_the_recording_engine_on_random_programs(program, seed):
    f, n = _flat_program(program, seed)
    rng = np.random.default_rng(seed)
    points = [rng.uniform(-1.5, 1.5, n) for _ in range(3)]
    with np.errstate(all="ignore"):
        try:
            replay = ad.compile(f, points[0], value=True)
        except ad.ReplayError as error:
            assume("control flow" not in str(error))  # only what differs at another point
            raise
        assert_replay_is_recording(f, points, replay)


def test_masks_are_recomputed_not_frozen():
    def f(x):
        relu = ad.where(x > 0.0, x, 0.1 * x)
        return ad.sum(ad.maximum(relu, 0.05 * x * x) + (x < 0.5) * x)

    rng = np.random.default_rng(1)
    assert_replay_is_recording(f, [rng.normal(size=50) for _ in range(4)])


def test_detached_values_are_recomputed():
    def f(x):
        scale = ad.detach(ad.sum(x * x))
        return ad.sum(ad.sin(x) * scale)

    rng = np.random.default_rng(2)
    assert_replay_is_recording(f, [rng.normal(size=7) for _ in range(3)])


# ---- buffers -------------------------------------------------------------------------------


SCRATCH = 256 * 1024
"""What numpy may allocate inside one call whatever the sizes (its iterator's fixed scratch
buffers, used when it broadcasts a stride-0 operand)."""


@pytest.mark.parametrize(("name", "size"), [("rosenbrock", 100_000), ("mlp", 256),
                                            ("product", 100_000), ("sin_tanh_chain", 100_000)])
def test_no_new_arrays_after_warm_up(name, size):
    problem = BUILTIN[name].make(size)
    replay = ad.compile(lambda x: problem.fn(x, ad), problem.x0)
    x = problem.x0 * 1.01
    assert x.nbytes >= 2 * SCRATCH
    replay(x)
    out = np.empty_like(x)
    tracemalloc.start()
    try:
        for _ in range(3):
            replay(x, out=out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < SCRATCH, peak
    assert same_bits(out, ad.grad(lambda x: problem.fn(x, ad))(x))
    tracemalloc.start()
    try:
        gradient = replay(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < gradient.nbytes + SCRATCH  # the gradient handed back, nothing else


def test_the_gradient_belongs_to_the_caller():
    f = lambda x: rosenbrock(x, ad)  # noqa: E731
    replay = ad.compile(f, np.linspace(-1.0, 1.0, 20))
    first = replay(np.linspace(-1.0, 1.0, 20))
    kept = first.copy()
    replay(np.linspace(0.0, 2.0, 20))
    assert same_bits(first, kept)
    assert same_bits(first, ad.grad(f)(np.linspace(-1.0, 1.0, 20)))


# ---- what replay refuses --------------------------------------------------------------------


def test_another_shape_is_refused_or_retraced():
    f = lambda x: rosenbrock(x, ad)  # noqa: E731
    replay = ad.compile(f, np.ones(5))
    with pytest.raises(ad.ReplayError, match=r"shape \(5,\); got shape \(6,\)"):
        replay(np.ones(6))
    retracing = ad.compile(f, np.ones(5), retrace=True)
    x = np.linspace(-1.0, 1.0, 6)
    assert same_bits(retracing(x), ad.grad(f)(x))
    assert same_bits(retracing(np.ones(5)), ad.grad(f)(np.ones(5)))


def test_another_dtype_is_refused():
    replay = ad.compile(lambda x: ad.sum(x * x), np.ones(3))
    with pytest.raises(ad.ReplayError, match="float64 inputs of shape"):
        replay(np.ones(3, dtype=np.float32))
    with pytest.raises(ad.ReplayError, match="float64 only"):
        ad.compile(lambda x: ad.sum(x * x), np.ones(3, dtype=object))


def test_value_dependent_control_flow_is_refused():
    def f(x):
        if x[0] > 0:
            return ad.sum(ad.sin(x))
        return ad.sum(ad.cos(x))

    with pytest.raises(ad.ReplayError, match="control flow"):
        ad.compile(f, np.array([0.05, 1.0]), check_at=np.array([-0.05, 1.0]))
    with pytest.raises(ad.ReplayError, match="control flow"):  # the default points find it
        ad.compile(f, np.array([3.0, 1.0]))


def test_a_value_read_into_python_is_refused():
    with pytest.raises(ad.ReplayError, match="control flow or its constants"):
        ad.compile(lambda x: ad.sum(x * float(x.value[0])), np.array([1.0, 2.0]))


@pytest.mark.parametrize(("f", "message"), [
    (lambda x: ad.sum(x[x > 0.0]), "shape would depend on the values"),
    (lambda x: ad.sum(ad.checkpoint(ad.sin)(x)), "checkpoint"),
    (lambda x: ad.sum(np.asarray(x.value) * x), "converted to a plain array"),
])
def test_what_replay_cannot_do_is_refused(f, message):
    with pytest.raises(ad.ReplayError, match=message):
        ad.compile(f, np.array([1.0, -2.0, 3.0]))


def test_retain_grad_is_refused():
    def f(x):
        y = ad.sin(x)
        y.retain_grad()
        return ad.sum(y)

    with pytest.raises(ad.ReplayError, match="retain_grad"):
        ad.compile(f, np.ones(2))


def test_a_large_input_is_read_in_place_and_left_as_it_was():
    problem = BUILTIN["mlp"].make(128)  # 16,512 inputs: read in place, gradient handed over
    f = lambda x: problem.fn(x, ad)  # noqa: E731
    replay = ad.compile(f, problem.x0, value=True)
    assert replay.program.rebind_x and replay.program.handover
    x = problem.x0 * 0.9
    kept = x.copy()
    value, first = replay(x)
    assert same_bits(x, kept)
    expected_value, expected = ad.value_and_grad(f)(x)
    assert same_bits(first, expected) and same_bits(value, expected_value)
    second = replay(x)[1]
    assert second is not first and same_bits(first, expected)
    wide = np.empty(2 * x.size)
    strided = wide[::2]
    strided[:] = x
    readonly = x.copy()
    readonly.flags.writeable = False
    for point in (strided, readonly):
        assert same_bits(replay(point)[1], expected)


def test_a_replay_keeps_no_view_of_the_callers_input_or_gradient():
    problem = BUILTIN["mlp"].make(128)  # read in place, gradient handed over
    replay = ad.compile(lambda x: problem.fn(x, ad), problem.x0)
    x = problem.x0 * 0.9
    gradient = replay(x)
    seen_x, seen_gradient = weakref.ref(x), weakref.ref(gradient)
    del x, gradient
    assert seen_x() is None and seen_gradient() is None


def test_a_cotangent_of_constants_alone_is_never_a_buffer_of_the_replay():
    """The LSTM's output layer: ``sum(d * (y - log(sum(exp(y)) + 2)))``.  y's first cotangent,
    d (the subtraction hands it on), is made of constants only; the exp path's, added later,
    depends on x.  Adding it into d in place would freeze its values into the program."""
    rng = np.random.default_rng(3)
    c, d = rng.uniform(0.5, 1.5, 5), rng.uniform(-1.0, 1.0, 5)

    def f(x):
        y = x * c + 0.5
        return ad.sum(d * (y - ad.log(ad.sum(ad.exp(y)) + 2.0)))

    x0 = rng.uniform(-1.0, 1.0, 5)
    assert_replay_is_recording(f, [x0, 1.1 * x0, -x0])

