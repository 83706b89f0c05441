"""The reverse-mode engine, checked against references that do not use its rules.

References: mpmath at 50 digits (``mpmath.diff`` of a function evaluated in mpmath), the
families' closed-form gradients evaluated in mpmath, and ``jax.grad``.  The optimised backward
sweep (buffer ownership, release, un-spread cotangents) is checked against a plain sweep over the
same records, and the op list against every namespace and the rule table.
"""

from __future__ import annotations

import itertools
import math
import tracemalloc
import zlib

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffbench.ad as ad
import diffbench.ops as op_list
from diffbench.ad.cotangents import unbroadcast
from diffbench.ad.numeric import FLOAT64, MPMATH
from diffbench.ad.rules import ELEMENTWISE, RULES, Deferred, Indexed
from diffbench.families import BUILTIN
from diffbench.ops import missing_names, mpmath_ops, sympy_ops

# ---- references --------------------------------------------------------------------------


def mp_adjoint(fn, arrays, u, v, dps: int = 50, direction: int = 0):
    """<u, J v> at ``arrays``: mpmath.diff of t -> <u, fn(arrays + t v)>, in mpmath at ``dps``.

    ``direction`` 1 or -1 takes a one-sided derivative (they differ at a kink).
    """
    with mpmath.workdps(dps):
        xs = [mpmath_ops.asarray(a) for a in arrays]
        ds = [mpmath_ops.asarray(d) for d in v]
        weights = mpmath_ops.asarray(u)

        def phi(t):
            out = fn(mpmath_ops, *[x + t * d for x, d in zip(xs, ds, strict=True)])
            return mpmath.fsum(np.ravel(np.asarray(out, dtype=object) * weights))

        return mpmath.diff(phi, 0, direction=direction)


def mp_gradient(fn, x: np.ndarray, dps: int = 50, direction: int = 0) -> np.ndarray:
    """The gradient of a scalar ``fn(ops, x)`` by mpmath.diff along each coordinate."""
    basis = np.eye(x.size).reshape(x.size, *x.shape)
    return np.array([mp_adjoint(fn, [x], 1.0, [e], dps, direction) for e in basis], dtype=object)


def engine_adjoint(fn, arrays, u, v, number_type: str):
    """<J^T u, v> by the engine, and the scale sum |J^T u| |v| that bounds its rounding."""
    convert = mpmath_ops.asarray if number_type == "mpmath" else np.asarray
    tape = ad.Tape()
    boxes = [tape.leaf(convert(a)) for a in arrays]
    out = fn(ad, *boxes)
    ad.backward(out, seed=convert(u))
    total = sum(np.sum(b.grad * convert(d)) for b, d in zip(boxes, v, strict=True))
    scale = sum(np.sum(np.abs(b.grad * convert(d))) for b, d in zip(boxes, v, strict=True))
    return total, scale


def inputs(rng: np.random.Generator, shapes, positive: bool) -> list[np.ndarray]:
    draw = (lambda s: rng.uniform(0.5, 2.0, s)) if positive else (lambda s: rng.normal(size=s))
    return [draw(shape) for shape in shapes]


# ---- worked examples ---------------------------------------------------------------------


def test_product_rule_on_two_inputs():
    tape = ad.Tape()
    w, x = tape.leaf(3.0), tape.leaf(2.0)
    ad.backward(w * x)
    assert (w.grad, x.grad) == (2.0, 3.0)


def test_affine_square():
    g = ad.grad(lambda x: (x[0] * x[1] + 1.0) ** 2)(np.array([2.0, 3.0]))
    assert g.tolist() == [42.0, 28.0]


@pytest.mark.parametrize("theta", [-1.5, 0.0, 2.5])
def test_two_paths_are_summed(theta):
    g = ad.grad(lambda t: t**2 + 2.0 * t)(np.array(theta))
    assert g == 2.0 * theta + 2.0


def test_log_of_cube_times_sine():
    theta = 1.3
    g = ad.grad(lambda t: ad.log(t**3 * ad.sin(t)))(np.array(theta))
    expected = (3 * theta**2 * math.sin(theta) + theta**3 * math.cos(theta)) / (
        theta**3 * math.sin(theta)
    )
    assert g == pytest.approx(expected, rel=1e-15)


def test_relu_seeded_with_ones():
    tape = ad.Tape()
    x = tape.leaf([-1.0, 0.0, 2.0])
    ad.backward(ad.maximum(x, 0.0), seed=np.ones(3))
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


def test_seeded_backward_of_a_vector_output():
    tape = ad.Tape()
    x = tape.leaf([1.0, 5.0])
    ad.backward(2.0 * x, seed=[0.1, 0.2])
    assert x.grad.tolist() == [0.2, 0.4]


def test_vector_output_without_seed_raises():
    tape = ad.Tape()
    x = tape.leaf([1.0, 5.0])
    with pytest.raises(ValueError, match=r"shape \(2,\) needs a seed"):
        ad.backward(2.0 * x)
    with pytest.raises(ValueError, match="scalar-valued"):
        ad.grad(lambda x: 2.0 * x)(np.ones(2))


def test_gradient_called_twice_gives_the_same_result():
    x = np.array([0.3, -1.2, 2.0])
    gradient = ad.grad(lambda x: ad.sum(ad.sin(x) * x[::-1]))
    first = gradient(x)
    assert np.array_equal(first, gradient(x))


def test_value_and_grad():
    value, g = ad.value_and_grad(lambda x: ad.sum(x**3))(np.array([1.0, 2.0]))
    assert value == 9.0
    assert g.tolist() == [3.0, 12.0]


def test_gradient_of_a_function_that_ignores_its_input():
    assert ad.grad(lambda x: 3.0)(np.ones(2)).tolist() == [0.0, 0.0]


def test_conventions_at_kinks():
    def grad_at(f, x):
        return ad.grad(f)(np.array(x)).tolist()

    assert grad_at(lambda x: ad.sum(ad.abs(x)), [0.0, -2.0]) == [0.0, -1.0]
    assert grad_at(lambda x: ad.sum(ad.maximum(x, 0.0)), [0.0]) == [0.0]
    assert grad_at(lambda x: ad.sum(ad.minimum(x, 0.0)), [0.0]) == [0.0]
    assert grad_at(lambda x: ad.sum(ad.maximum(x, x)), [1.0]) == [1.0]
    assert grad_at(lambda x: ad.sum(ad.maximum(0.0, x)), [0.0]) == [1.0]  # ties go to y


# ---- the tape: retain_graph, errors, depth, release ----------------------------------------


def test_second_backward_needs_retain_graph():
    tape = ad.Tape()
    x = tape.leaf([1.0, 2.0])
    y = ad.sum(ad.exp(x))
    ad.backward(y, retain_graph=True)
    first = x.grad.copy()
    ad.backward(y)
    assert np.array_equal(first, x.grad)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        ad.backward(y)


def test_missing_rule_names_op_argument_shapes_and_dtypes():
    tape = ad.Tape()
    x = tape.leaf([1.0, 2.0, 3.0])
    with pytest.raises(NotImplementedError) as error:
        ad.where(x, 1.0, 0.0)
    message = str(error.value)
    for part in ("'where'", "argument 0", "(3,)", "float64"):
        assert part in message


def test_inputs_of_two_number_types_are_refused():
    tape = ad.Tape()
    tape.leaf([1.0])
    with pytest.raises(ValueError, match="mpmath input on a float64 tape"):
        tape.leaf(mpmath_ops.asarray([1.0]))


def test_chain_of_100000_ops_needs_no_recursion():
    steps = 100_000

    def chain(x):
        for _ in range(steps):
            x = x * 1.00001
        return x

    gradient = ad.grad(chain)
    assert gradient(np.array(0.5)) == pytest.approx(1.00001**steps, rel=1e-10)
    assert gradient.stats().length == steps


def _sine_chain(x, ops, steps=50):
    y = x
    for _ in range(steps):
        y = ops.sin(y) * 1.01 + 0.1 * y
    return ops.sum(y)


def test_release_bounds_cotangent_and_saved_memory():
    x = np.linspace(-1.0, 1.0, 20_000)
    peaks = {}
    for release in (True, False):
        gradient = ad.grad(lambda x: _sine_chain(x, ad), release=release)
        tracemalloc.start()
        g = gradient(x)
        peaks[release] = tracemalloc.get_traced_memory()[1] / x.nbytes
        tracemalloc.stop()
        assert gradient.stats().length == 201
        assert np.array_equal(g, ad.grad(lambda x: _sine_chain(x, ad))(x))
        peaks[release, "cotangents"] = gradient.stats().peak_cotangent_bytes / x.nbytes
    assert peaks[True, "cotangents"] <= 3
    assert peaks[False, "cotangents"] >= 50
    assert peaks[True] <= 49 + 6  # sin keeps its argument at the 49 steps after the input
    assert peaks[False] >= 2 * peaks[True]


# ---- every rule against mpmath at 50 digits ----------------------------------------------

RULE_CASES = {
    # name: (fn(ops, *inputs), input shapes, positive inputs only)
    "sin": (lambda ops, x: ops.sin(x), [(3,)], False),
    "cos": (lambda ops, x: ops.cos(x), [(3,)], False),
    "tan": (lambda ops, x: ops.tan(x), [(3,)], True),
    "exp": (lambda ops, x: ops.exp(x), [(3,)], False),
    "log": (lambda ops, x: ops.log(x), [(3,)], True),
    "log1p": (lambda ops, x: ops.log1p(x), [(3,)], True),
    "expm1": (lambda ops, x: ops.expm1(x), [(3,)], False),
    "sqrt": (lambda ops, x: ops.sqrt(x), [(3,)], True),
    "tanh": (lambda ops, x: ops.tanh(x), [(3,)], False),
    "arctan": (lambda ops, x: ops.arctan(x), [(3,)], False),
    "abs": (lambda ops, x: ops.abs(x), [(4,)], False),
    "negative": (lambda ops, x: -x, [(3,)], False),
    "square": (lambda ops, x: x**2, [(3,)], False),
    "integer power": (lambda ops, x: x**3, [(3,)], False),
    "negative power": (lambda ops, x: x**-1, [(3,)], True),
    "real power": (lambda ops, x: x**2.5, [(3,)], True),
    "array power": (lambda ops, x, y: x**y, [(3,), (3,)], True),
    "constant base": (lambda ops, x: 2.0**x, [(3,)], False),
    "add broadcast": (lambda ops, x, y: x + y, [(3, 1), (4,)], False),
    "subtract broadcast": (lambda ops, x, y: x - y, [(2, 3), (1, 3)], False),
    "constant minus": (lambda ops, x: 1.0 - x, [(3,)], False),
    "multiply scalar input": (lambda ops, x, y: x * y, [(), (2, 3)], False),
    "multiply constant": (lambda ops, x: np.arange(3.0) * x, [(3,)], False),
    "divide broadcast": (lambda ops, x, y: x / y, [(2, 3), (3,)], True),
    "constant over": (lambda ops, x: 1.0 / x, [(3,)], True),
    "same input twice": (lambda ops, x: x * x + x / x, [(3,)], True),
    "maximum": (lambda ops, x, y: ops.maximum(x, y), [(4,), (4,)], False),
    "minimum broadcast": (lambda ops, x, y: ops.minimum(x, y), [(2, 3), (3,)], False),
    "maximum constant": (lambda ops, x: ops.maximum(x, 0.1), [(5,)], False),
    "where": (lambda ops, x, y: ops.where(x > y, x * y, y), [(4,), (4,)], False),
    "where broadcast": (lambda ops, x, y: ops.where(x > 0, x, y), [(2, 3), ()], False),
    "sum": (lambda ops, x: ops.sum(x), [(2, 3)], False),
    "astype": (lambda ops, x: ops.sin(ops.astype(x, np.float64)), [(3,)], False),
    "sum axis 0": (lambda ops, x: ops.sum(x, axis=0), [(2, 3)], False),
    "sum axis -1": (lambda ops, x: ops.sum(x, axis=-1), [(2, 3, 2)], False),
    "sum axes": (lambda ops, x: ops.sum(x, axis=(0, 2)), [(2, 3, 2)], False),
    "mean": (lambda ops, x: ops.mean(x), [(2, 3)], False),
    "mean axis": (lambda ops, x: ops.mean(x, axis=1), [(2, 3)], False),
    "prod": (lambda ops, x: ops.prod(x), [(4,)], False),
    "prod axis": (lambda ops, x: ops.prod(x, axis=0), [(3, 2)], False),
    "prod with a zero": (lambda ops, x: ops.prod(x * np.array([1.0, 0.0, 1.0])), [(3,)], False),
    "matmul matrices": (lambda ops, a, b: a @ b, [(2, 3), (3, 4)], False),
    "matmul matrix vector": (lambda ops, a, b: ops.matmul(a, b), [(2, 3), (3,)], False),
    "matmul vector matrix": (lambda ops, a, b: a @ b, [(3,), (3, 2)], False),
    "matmul vectors": (lambda ops, a, b: a @ b, [(3,), (3,)], False),
    "matmul batched": (lambda ops, a, b: a @ b, [(2, 2, 3), (3, 2)], False),
    "matmul constant left": (lambda ops, b: np.ones((2, 3)) @ b, [(3, 2)], False),
    "dot vectors": (lambda ops, a, b: ops.dot(a, b), [(3,), (3,)], False),
    "dot matrix vector": (lambda ops, a, b: ops.dot(a, b), [(2, 3), (3,)], False),
    "dot scalar": (lambda ops, a, b: ops.dot(a, b), [(), (3,)], False),
    "slices": (lambda ops, x: x[1:] * x[:-1] + x[::-1][1:], [(5,)], False),
    "integer index": (lambda ops, x: x[1] * x[-1], [(4,)], False),
    "index of a matrix": (lambda ops, x: x[1, :] + x[:, 0] + x[0, 1], [(2, 2)], False),
    "repeated fancy index": (lambda ops, x: x[[0, 0, 2]], [(3,)], False),
    "boolean mask": (lambda ops, x: x[np.array([True, False, True])], [(3,)], False),
    "new axis": (lambda ops, x: x[:, None] * x[None, :], [(3,)], False),
    "reshape": (lambda ops, x: ops.reshape(x, (3, 2)) @ np.ones(2), [(6,)], False),
}


@pytest.mark.parametrize("number_type", ["float64", "mpmath"])
@pytest.mark.parametrize("name", list(RULE_CASES))
def test_rule_against_mpmath(name, number_type):
    fn, shapes, positive = RULE_CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # the same in every process
    arrays = inputs(rng, shapes, positive)
    out_shape = np.shape(fn(np, *arrays))
    u = rng.normal(size=out_shape)
    v = [rng.normal(size=shape) for shape in shapes]
    reference = mp_adjoint(fn, arrays, u, v)
    with mpmath.workdps(50):
        total, scale = engine_adjoint(fn, arrays, u, v, number_type)
        tolerance = scale * (1e-14 if number_type == "float64" else mpmath.mpf(10) ** -40)
        assert abs(total - reference) <= tolerance, (total, reference)


# ---- random compositions ------------------------------------------------------------------

UNARY = {
    "sin": lambda ops, y: ops.sin(y),
    "cos": lambda ops, y: ops.cos(y),
    "tanh": lambda ops, y: ops.tanh(y),
    "arctan": lambda ops, y: ops.arctan(y),
    "exp": lambda ops, y: ops.exp(0.5 * ops.tanh(y)),
    "log1p": lambda ops, y: ops.log1p(y * y),
    "sqrt": lambda ops, y: ops.sqrt(1.0 + y * y),
    "expm1": lambda ops, y: ops.expm1(0.5 * ops.sin(y)),
    "log": lambda ops, y: ops.log(2.0 + ops.cos(y)),
    "tan": lambda ops, y: ops.tan(0.5 * ops.tanh(y)),
    "square": lambda ops, y: 0.5 * y**2,
    "cube": lambda ops, y: 0.2 * y**3,
    "flip": lambda ops, y: y[::-1],
    "roll": lambda ops, y: ops.reshape(ops.reshape(y, (-1, 1)) @ np.ones((1, 1)), (-1,)),
}
BINARY = {
    "add": lambda ops, a, b: a + b,
    "subtract": lambda ops, a, b: a - b,
    "multiply": lambda ops, a, b: a * b,
    "divide": lambda ops, a, b: a / (1.5 + ops.sin(b)),
    "power": lambda ops, a, b: (1.5 + ops.sin(a)) ** ops.cos(b),
    "maximum": lambda ops, a, b: ops.maximum(a, b),
    "minimum": lambda ops, a, b: ops.minimum(a, b),
    "where": lambda ops, a, b: ops.where(a > b, a * b, a - b),
    "scalar": lambda ops, a, b: a * ops.sum(b) / 3.0,
}
REDUCE = {
    "sum": lambda ops, y: ops.sum(y),
    "mean": lambda ops, y: ops.mean(y),
    "prod": lambda ops, y: ops.prod(1.0 + 0.5 * ops.tanh(y)),
    "dot": lambda ops, y: ops.dot(y, np.array([0.3, -1.1, 0.7])),
    "norm": lambda ops, y: ops.sqrt(ops.sum(y * y) + 1.0),
}

steps = st.lists(
    st.one_of(
        st.tuples(st.just("unary"), st.sampled_from(sorted(UNARY)), st.integers(0, 9)),
        st.tuples(st.just("binary"), st.sampled_from(sorted(BINARY)), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=6,
)


def composition(program, reduction):
    """A function of x built from ``program``: each step reads the latest and an earlier value."""

    def fn(ops, x):
        values = [x]
        for kind, name, back in program:
            a, b = values[-1], values[back % len(values)]
            values.append(UNARY[name](ops, a) if kind == "unary" else BINARY[name](ops, a, b))
        return REDUCE[reduction](ops, values[-1])

    return fn


@settings(max_examples=40, deadline=None)
@given(
    program=steps,
    reduction=st.sampled_from(sorted(REDUCE)),
    x=st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3),
)
def test_random_compositions_against_mpmath(program, reduction, x):
    x = np.array(x)
    fn = composition(program, reduction)
    reference = mp_gradient(fn, x, dps=30).astype(float)
    scale = np.max(np.abs(reference))
    assume(scale > 1e-6)
    left, right = (mp_gradient(fn, x, dps=20, direction=d).astype(float) for d in (-1, 1))
    # no kink or jump at x: the one-sided derivatives agree, measured against the smaller of
    # them (a jump makes one side, and the central reference with it, huge)
    sides = min(np.max(np.abs(left)), np.max(np.abs(right)))
    assume(np.max(np.abs(left - right)) <= 1e-8 * sides)
    # well-conditioned at x: moving x by a relative 1e-15 moves the gradient by < 1e-14 of it
    nudged = x * (1.0 + 1e-15 * np.array([1.0, -1.0, 1.0]))
    shift = mp_gradient(fn, nudged, dps=30).astype(float) - reference
    assume(np.max(np.abs(shift)) <= 1e-14 * scale)
    g = ad.grad(lambda x: fn(ad, x))(x)
    assert np.max(np.abs(g - reference)) <= 1e-12 * scale


# ---- the optimised sweep against a plain one ------------------------------------------------


def reference_sweep(records, output: int, seed) -> dict[int, np.ndarray]:
    """The backward sweep with no ownership, no release and no broadcast policy: every
    cotangent a full array of its value's shape, into which each contribution is added."""
    cotangents = {output: np.array(np.broadcast_to(seed, records[output].shape))}
    for i in range(output, -1, -1):
        record = records[i]
        if i not in cotangents or not record.parents:
            continue
        g = cotangents[i]
        for parent, vjp in zip(record.parents, record.vjps, strict=True):
            c = vjp(g)
            total = cotangents.setdefault(parent, np.zeros(records[parent].shape))
            if type(c) is Deferred:
                c = c.value()
            if type(c) is Indexed:
                np.add.at(total, c.index, c.value)
            else:
                total += unbroadcast(c, records[parent].shape)
    return cotangents


def _positive(ops, a):
    return 1.5 + ops.sin(a)


def _broadcastable(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` made to broadcast with every value of a program, which are all (2, 3) or
    broadcast to it: a lone axis of 2 becomes (2, 1)."""
    return (2, 1) if shape == (2,) else shape


def _index(a, choice: int):
    """``a`` indexed basically or fancily (repeated positions, a mask, ints mixed with lists),
    keeping a broadcastable shape."""
    shape = a.shape
    options = [] if shape else [None]
    if shape:
        n = shape[-1]
        options += [(Ellipsis, slice(None, None, -1)), (Ellipsis, [0, 0, n - 1]), 0, -1,
                    (Ellipsis, np.arange(n) == n // 2)]
    if len(shape) == 1:
        options += [None, [n - 1, 0, n - 1] if n == 3 else [0]]
    if len(shape) == 2:
        options += [(0, [0, 0, n - 1]), [shape[0] - 1] * 2]
        if shape[0] == 2:
            options.append(slice(1, None))
    return a[options[choice % len(options)]]


def _reduce(name: str):
    def step(ops, a, b, choice):
        axes = [None, *range(a.ndim), *(((0, 1), -1) if a.ndim == 2 else ())]
        reduced = getattr(ops, name)(a, axis=axes[choice % len(axes)])
        if reduced.shape == (2,):
            reduced = ops.reshape(reduced, (2, 1))
        return reduced

    return step


def _matmul(ops, a, b, choice):
    """``a @ b`` where the shapes allow, else ``a`` against a constant matrix on either side."""
    if a.ndim == 0:
        product = ops.dot(a, b)
    elif a.shape[-1] == 3 and b.shape == (3,) and choice % 2:
        product = a @ b
    elif choice % 3 == 0:
        product = a @ np.linspace(-1.0, 1.0, 3 * a.shape[-1]).reshape(a.shape[-1], 3)
    else:
        rows = 2 if a.ndim == 2 else 3
        product = ops.matmul(np.linspace(0.5, -1.0, rows * a.shape[0]).reshape(rows, -1), a)
    return ops.reshape(product, _broadcastable(product.shape))


def _reshape(ops, a, b, choice):
    squeezed = _broadcastable(tuple(n for n in a.shape if n != 1))
    target = (1, *squeezed) if choice % 2 and len(squeezed) <= 1 else squeezed
    return ops.reshape(a, target)


STEPS = {
    # one traced argument
    "sin": lambda ops, a, b, k: ops.sin(a),
    "cos": lambda ops, a, b, k: ops.cos(a),
    "tanh": lambda ops, a, b, k: ops.tanh(a),
    "arctan": lambda ops, a, b, k: ops.arctan(a),
    "abs": lambda ops, a, b, k: ops.abs(a),
    "negative": lambda ops, a, b, k: -a,
    "square": lambda ops, a, b, k: a**2,
    "cube": lambda ops, a, b, k: a**3,
    "exp": lambda ops, a, b, k: ops.exp(ops.tanh(a)),
    "expm1": lambda ops, a, b, k: ops.expm1(ops.tanh(a)),
    "log": lambda ops, a, b, k: ops.log(_positive(ops, a)),
    "log1p": lambda ops, a, b, k: ops.log1p(a * a),
    "sqrt": lambda ops, a, b, k: ops.sqrt(_positive(ops, a)),
    "tan": lambda ops, a, b, k: ops.tan(0.5 * ops.tanh(a)),
    "constant minus": lambda ops, a, b, k: 1.0 - a,
    "minus constant": lambda ops, a, b, k: a - 0.25,
    "constant over": lambda ops, a, b, k: 1.0 / _positive(ops, a),
    "over constant": lambda ops, a, b, k: a / 3.0,
    "constant power": lambda ops, a, b, k: 2.0 ** ops.tanh(a),
    "power constant": lambda ops, a, b, k: _positive(ops, a) ** 0.5,
    "clip": lambda ops, a, b, k: ops.maximum(a, 0.1),
    "floor": lambda ops, a, b, k: ops.minimum(0.2, a),
    "index": lambda ops, a, b, k: _index(a, k),
    "sum": _reduce("sum"),
    "mean": _reduce("mean"),
    "prod": _reduce("prod"),
    "reshape": _reshape,
    "astype": lambda ops, a, b, k: ops.astype(a, np.float64),
    # two traced arguments, which may be one value read twice
    "add": lambda ops, a, b, k: a + b,
    "subtract": lambda ops, a, b, k: a - b,
    "multiply": lambda ops, a, b, k: a * b,
    "divide": lambda ops, a, b, k: a / _positive(ops, b),
    "power": lambda ops, a, b, k: _positive(ops, a) ** ops.tanh(b),
    "maximum": lambda ops, a, b, k: ops.maximum(a, b),
    "minimum": lambda ops, a, b, k: ops.minimum(a, b),
    "where": lambda ops, a, b, k: ops.where(a > b, a, 0.5 * b),
    "matmul": _matmul,
}
"""Steps of a random program: each reads the value ``a`` and maybe ``b`` (earlier values, so
values are shared) and records one or a few ops of the rule table."""

INPUT_SHAPES = [(2, 3), (3,), (2, 1), ()]

programs = st.lists(
    st.tuples(st.sampled_from(sorted(STEPS)), st.integers(0, 30), st.integers(0, 30),
              st.integers(0, 30)),
    min_size=1, max_size=12,
)


def run_program(program, inputs):
    """A tape with the program recorded on it, its inputs and its last value."""
    tape = ad.Tape()
    values = [tape.leaf(x) for x in inputs]
    for name, first, second, choice in program:
        a, b = values[-1 - first % len(values)], values[second % len(values)]
        values.append(STEPS[name](ad, a, b, choice))
    return tape, values[: len(inputs)], values[-1]


def assert_equals_plain_sweep(fn, inputs, seed=None):
    tape = ad.Tape()
    leaves = [tape.leaf(x) for x in inputs]
    out = fn(*leaves)
    expected = reference_sweep(list(tape), out.index, np.float64(1.0) if seed is None else seed)
    tape.backward(out, seed)
    for leaf in leaves:
        assert np.array_equal(leaf.grad, expected[leaf.index])


def test_a_cotangent_two_values_hold_is_the_buffer_of_neither():
    """``a + b`` hands its cotangent to ``a`` and ``b`` as it is; the contribution of ``c``
    reaches ``b`` after that and must not land in ``a``'s cotangent."""

    def fn(x):
        a, b = ad.sin(x), ad.cos(x)
        c = b / 3.0
        return (a + b) * c

    assert_equals_plain_sweep(fn, [np.linspace(-1.0, 1.0, 6).reshape(2, 3)], np.ones((2, 3)))


def test_a_scalar_cotangent_handed_to_an_array_is_not_its_buffer():
    """``sum(w)`` hands its 0-d cotangent to ``w`` as it is; ``w * y`` then adds an array."""

    def fn(y):
        w = ad.sin(y)
        t = w * y
        return ad.maximum(ad.sum(w), 0.1) + ad.sum(t)

    assert_equals_plain_sweep(fn, [np.array([0.5, 1.0, 1.5])])


def _layer(x, n: int):
    """½‖W u‖² with W the first n² entries of x, the rest of x added to the product: the
    outer product of W's cotangent lands on the rows x[:n²] of x's."""
    u = np.linspace(-1.0, 1.0, n)
    w = ad.reshape(x[: n * n], (n, n))
    return 0.5 * ad.sum((w @ u + x[n * n:]) ** 2)


@pytest.mark.parametrize("n", [3, 100])  # 100: x's buffer is large, its rows left unzeroed
def test_an_outer_product_written_where_it_lands_equals_the_plain_sweep(n):
    x = np.linspace(-1.0, 1.0, n * n + n)
    assert_equals_plain_sweep(lambda x: _layer(x, n), [x])


@pytest.mark.parametrize("bias_first", [False, True])  # made anew, or computed in place
def test_a_matrix_times_a_list_has_the_outer_product_gradient(bias_first):
    def f(x):
        product = ad.sum(ad.reshape(x[:6], (2, 3)) @ [1.0, 2.0, 3.0])
        return ad.sum(x[6:]) + product if bias_first else product + ad.sum(x[6:])

    assert np.array_equal(ad.grad(f)(np.arange(8.0)), [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 1.0])


def test_a_retained_deferred_cotangent_is_made_and_kept():
    n = 100
    tape = ad.Tape()
    x = tape.leaf(np.linspace(-1.0, 1.0, n * n + n))
    w = ad.reshape(x[: n * n], (n, n))
    w.retain_grad()
    u = np.linspace(-1.0, 1.0, n)
    ad.backward(0.5 * ad.sum((w @ u + x[n * n:]) ** 2))
    residual = w.value @ u + x.value[n * n:]
    assert np.array_equal(w.grad, residual[:, None] * u)
    assert np.array_equal(x.grad, np.concatenate([(residual[:, None] * u).ravel(), residual]))


def test_a_weight_matrix_gradient_is_written_once():
    """The outer product is computed into the gradient handed back, not made and copied there:
    one gradient's bytes at the peak, besides a few vectors and numpy's scratch buffers."""
    n = 256
    x = np.linspace(-1.0, 1.0, n * n + n)
    gradient = ad.grad(lambda x: _layer(x, n))
    gradient(x)
    tracemalloc.start()
    try:
        gradient(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes + 256 * 1024, peak / x.nbytes


def test_the_random_programs_use_every_rule():
    recorded = set()
    inputs = [np.ones(shape) for shape in INPUT_SHAPES]
    for name in STEPS:
        for first, choice in itertools.product(range(len(inputs)), range(6)):
            tape, _, _ = run_program([(name, first, 1, choice)], inputs)
            recorded |= {record.op for record in tape}
    assert recorded - {"input"} == set(RULES)


@settings(max_examples=300, deadline=None)
@given(program=programs, seed=st.integers(0, 2**32 - 1), scalar_output=st.booleans())
def test_the_sweep_equals_a_plain_sweep_on_random_programs(program, seed, scalar_output):
    """Bit for bit (up to the sign of zero: the plain sweep starts from +0.0): both sweeps add
    the same contributions in the same order, and a + b == b + a in IEEE arithmetic, so it does
    not matter which of two terms is added into the other.  A cotangent held as a scalar or
    un-spread gives the elementwise rules the same numbers as a full one, and a spread one (a
    broadcast view) gives matmul the same products in the same order as a full array."""
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(-1.5, 1.5, shape) for shape in INPUT_SHAPES]
    with np.errstate(all="ignore"):
        tape, _, out = run_program(program, inputs)
        if scalar_output:
            out, output_seed = ad.sum(out), np.float64(1.0)
        else:
            output_seed = rng.normal(size=out.shape)
        expected = reference_sweep(list(tape), out.index, output_seed)
    assume(all(np.isfinite(g).all() for g in expected.values()))
    runs = {"release": {}, "keep": {"release": False}, "retain": {"retain_graph": True}}
    for how, options in runs.items():
        with np.errstate(all="ignore"):
            tape, leaves, out = run_program(program, inputs)
            if scalar_output:
                out = ad.sum(out)
            given = np.copy(output_seed)
            tape.backward(out, None if scalar_output else output_seed, **options)
            assert np.array_equal(output_seed, given)  # the seed is never written to
            if how == "retain":
                first = [leaf.grad for leaf in leaves]
                tape.backward(out, None if scalar_output else output_seed)
                assert all(np.array_equal(a, leaf.grad) for a, leaf in zip(first, leaves,
                                                                         strict=True))
        for leaf in leaves:
            reference = expected.get(leaf.index, np.zeros(leaf.shape))
            assert np.array_equal(leaf.grad, reference), (how, leaf.index)


# ---- the op list: every namespace and the rule table ---------------------------------------


def _torch_ops():
    pytest.importorskip("torch")
    from diffbench.peers import torch_ops

    return torch_ops


NAMESPACES = {
    "numpy": lambda: np, "mpmath": lambda: mpmath_ops, "sympy": lambda: sympy_ops,
    "ad": lambda: ad, "engine float64": lambda: FLOAT64, "engine mpmath": lambda: MPMATH,
    "torch": _torch_ops,
}


@pytest.mark.parametrize("name", list(NAMESPACES))
def test_every_namespace_provides_the_op_list(name):
    assert missing_names(NAMESPACES[name]()) == []


def test_the_rule_table_is_the_op_list():
    """One rule for every differentiable op and operator of the list, and none besides;
    ``dot`` is recorded as ``matmul`` or ``multiply``, ``x ** 2`` as ``square``."""
    assert set(RULES) == (set(op_list.CONTRACT) - {"dot"}) | set(op_list.OPERATORS) | {"square"}
    elementwise = (*op_list.UNARY, *op_list.BINARY, *op_list.SELECTION, *op_list.ARITHMETIC)
    assert ELEMENTWISE == {*elementwise, "square"}
    for namespace in (FLOAT64, MPMATH):
        assert all(callable(getattr(namespace, op, None)) for op in RULES)


def test_every_rule_is_checked_against_mpmath():
    recorded = set()
    rng = np.random.default_rng(0)
    for fn, shapes, positive in RULE_CASES.values():
        tape = ad.Tape()
        fn(ad, *[tape.leaf(a) for a in inputs(rng, shapes, positive)])
        recorded |= {record.op for record in tape}
    assert recorded - {"input"} == set(RULES)


# ---- every built-in family against its closed form and against jax ------------------------

FAMILY_CASES = [
    (name, size) for name, family in BUILTIN.items() for size in family.example_sizes or (None,)
]
ILL_CONDITIONED = {"cancel"}
"""Families whose gradient no float64 method gets to 13 digits (f cancels catastrophically)."""
SHIFTED_BY_THEIR_MAXIMUM = {"lse"}
"""Families whose log-sum-exp subtracts the maximum m: m's cotangent, 1 − Σ softmax, is zero
only to the rounding of a sum of n terms and lands on the largest entry, an absolute error of
about eps on entries of about 1/n (normwise about n·eps/10)."""


def closed_form(problem, dps: int) -> np.ndarray:
    if problem.gradient is None:
        pytest.skip(f"{problem.family} has no closed form (tests/test_workloads.py checks it)")
    with mpmath.workdps(dps):
        return np.ravel(problem.gradient(mpmath_ops.asarray(problem.x0), mpmath_ops))


def smooth(problem) -> np.ndarray:
    keep = np.ones(problem.n, dtype=bool)
    keep[list(problem.kinks)] = False
    return keep


def relative_error(g, reference, keep) -> float:
    g, reference = np.asarray(g)[keep], np.asarray(reference)[keep]
    return float(np.max(np.abs(g - reference)) / np.max(np.abs(reference)))


@pytest.mark.parametrize(("name", "size"), FAMILY_CASES)
def test_family_against_closed_form_and_jax(name, size):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    problem = BUILTIN[name].make(size)
    g = ad.grad(lambda x: problem.fn(x, ad))(problem.x0)
    assert g.shape == problem.x0.shape and g.dtype == np.float64
    keep = smooth(problem)
    reference = mpmath_ops.tofloat(closed_form(problem, 30))
    by_jax = np.asarray(jax.grad(lambda x: problem.fn(x, jnp))(jnp.asarray(problem.x0)))
    leak = problem.n * np.finfo(float).eps if name in SHIFTED_BY_THEIR_MAXIMUM else 0.0
    assert relative_error(g, by_jax, keep) <= max(leak, 1e-13)
    limit = 1e-6 if name in ILL_CONDITIONED else max(leak, 1e-13)
    assert relative_error(g, reference, keep) <= limit


@pytest.mark.parametrize(("name", "size"), FAMILY_CASES)
def test_family_in_mpmath_to_40_digits(name, size):
    problem = BUILTIN[name].make(size)
    with mpmath.workdps(50):
        g = ad.grad(lambda x: problem.fn(x, ad))(mpmath_ops.asarray(problem.x0))
        assert g.dtype == object and g.shape == problem.x0.shape
        reference = closed_form(problem, 50)
        keep = smooth(problem)
        assert relative_error(g, reference, keep) <= mpmath.mpf(10) ** -40


def test_relu_kink_takes_subgradient_zero():
    problem = BUILTIN["relu"].make(None)
    assert ad.grad(lambda x: problem.fn(x, ad))(problem.x0).tolist() == [0.0, 0.0, 1.0]
