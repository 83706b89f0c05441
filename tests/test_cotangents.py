"""The cotangent store of the backward sweep: what it copies, what it adds in place, what it
never writes to, and the bytes it counts."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from diffbench.ad.cotangents import Cotangents, is_basic
from diffbench.ad.numeric import FLOAT64, MPMATH, ROW_MAX, add_reduce, unbroadcast
from diffbench.ad.rules import EINSUM_MIN, Deferred, Indexed
from diffbench.ad.rules import outer as outer_product

SHAPES = [(3,), (3,), (2, 3), ()]


def store(shapes=SHAPES) -> Cotangents:
    return Cotangents(FLOAT64, shapes)


def fresh(*values: float) -> np.ndarray:
    return np.array(values)


# ---- un-broadcasting and indices ---------------------------------------------------------


@pytest.mark.parametrize(("c_shape", "shape"), [
    ((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 3), (2, 1)), ((2, 3), ()), ((4, 2, 3), (2, 1)),
])
def test_unbroadcast_sums_the_axes_broadcasting_added_or_stretched(c_shape, shape):
    c = np.arange(1.0, 1.0 + np.prod(c_shape)).reshape(c_shape)
    expected = np.zeros(shape)
    for position in np.ndindex(c_shape):  # each entry of c lands where broadcasting read it
        target = position[len(c_shape) - len(shape):]
        target = tuple(0 if n == 1 else k for k, n in zip(target, shape, strict=True))
        expected[target] += c[position]
    assert np.array_equal(np.broadcast_to(unbroadcast(c, shape), shape), expected)


def test_unbroadcast_keeps_a_cotangent_that_merely_broadcasts():
    c = np.ones((1, 3))
    assert unbroadcast(c, (2, 3)) is c
    assert unbroadcast(c, (1, 3)) is c


@pytest.mark.parametrize("shape", [(7, 2), (3, 5, 10), (4, ROW_MAX)])
@pytest.mark.parametrize("axis", [-1, "last", (-1,)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_row_sums_of_a_short_last_axis_are_the_rows_sums(shape, axis, keepdims):
    x = np.random.default_rng(5).standard_normal(shape)
    axis = len(shape) - 1 if axis == "last" else axis
    total = add_reduce(x, axis, keepdims)
    exact = np.array([math.fsum(row) for row in x.reshape(-1, shape[-1])])
    assert total.shape == np.sum(x, axis=-1, keepdims=keepdims).shape
    scale = np.abs(x).reshape(-1, shape[-1]).sum(axis=1)
    assert np.all(np.abs(total.ravel() - exact) <= 4 * shape[-1] * 2.0 ** -53 * scale)


@pytest.mark.parametrize("x", [
    np.arange(12.0).reshape(3, 4).T,  # not C-contiguous
    np.ones((2, ROW_MAX + 1)),  # longer than ROW_MAX: numpy's pairwise sum
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.array([[mpmath.mpf(1), mpmath.mpf(2)]] * 3, dtype=object),
], ids=["transposed", "long", "float32", "mpmath"])
def test_other_row_sums_are_numpys_own(x):
    assert np.array_equal(add_reduce(x, -1), np.add.reduce(x, -1))
    assert np.array_equal(add_reduce(x, 0), np.add.reduce(x, 0))


@pytest.mark.parametrize(("index", "basic"), [
    (slice(1, None), True), (0, True), ((0, slice(None)), True), ((None, Ellipsis, 1), True),
    (np.int64(2), True), ([0, 0, 2], False), (np.array([True, False, True]), False),
    ((slice(None), [1, 1]), False),
])
def test_basic_indices_are_told_from_fancy_ones(index, basic):
    assert is_basic(index) is basic


# ---- ownership -----------------------------------------------------------------------------


def test_a_fresh_contribution_becomes_the_buffer_and_later_ones_add_into_it():
    s = store()
    c = fresh(1.0, 2.0, 3.0)
    s.add(0, c)
    assert s.slots[0] is c and s.owned[0]
    s.add(0, fresh(10.0, 10.0, 10.0))
    assert s.slots[0] is c and c.tolist() == [11.0, 12.0, 13.0]
    assert (s.live, s.peak) == (c.nbytes, c.nbytes)


def test_the_seed_and_views_are_never_written_to():
    s = store()
    seed = fresh(1.0, 2.0, 3.0)
    s.seed(1, seed)
    g = s.take(1)
    s.add(0, g)  # handed on unchanged
    base = fresh(5.0, 6.0, 7.0)
    s.add(0, base[::-1])  # a view
    s.add(0, fresh(1.0, 1.0, 1.0))
    assert s.slots[0].tolist() == [9.0, 9.0, 9.0]
    assert seed.tolist() == [1.0, 2.0, 3.0] and base.tolist() == [5.0, 6.0, 7.0]
    s.release(1)  # the seed was never the store's: it is not passed on as a buffer
    assert s.slots[0] is not seed and seed.tolist() == [1.0, 2.0, 3.0]


def test_a_scalar_is_held_as_it_is_and_copied_when_it_meets_an_array():
    s = store()
    s.add(0, np.float64(2.0))
    assert s.slots[0] == 2.0 and not s.owned[0] and s.live == 0
    c = fresh(1.0, 2.0, 3.0)
    s.add(0, c)  # fresh: 2.0 is added into it
    assert s.slots[0] is c and c.tolist() == [3.0, 4.0, 5.0] and s.owned[0]


def test_an_owned_cotangent_handed_to_one_value_passes_its_buffer_on():
    s = store()
    g = fresh(1.0, 2.0, 3.0)
    s.add(1, g)
    assert s.take(1) is g
    s.add(0, g)  # y = x + 1: the cotangent goes on unchanged
    s.release(1)
    assert s.slots[0] is g and s.owned[0] and s.slots[1] is None
    assert s.live == g.nbytes
    s.add(0, fresh(1.0, 1.0, 1.0))
    assert s.slots[0] is g and g.tolist() == [2.0, 3.0, 4.0]


def test_an_owned_cotangent_held_by_two_values_is_owned_by_neither():
    s = store([(3,), (3,), (3,)])
    g = fresh(1.0, 2.0, 3.0)
    s.add(2, g)
    s.take(2)
    s.add(0, g)  # y = a + b: both hold the cotangent as it is
    s.add(1, g)
    s.release(2)
    assert not s.owned[0] and not s.owned[1] and s.live == 0
    s.add(0, fresh(1.0, 1.0, 1.0))
    assert g.tolist() == [1.0, 2.0, 3.0] and s.slots[1] is g
    assert s.slots[0].tolist() == [2.0, 3.0, 4.0] and s.owned[0]


def test_a_value_that_only_adds_the_cotangent_in_does_not_hold_it():
    s = store()
    g = fresh(1.0, 2.0, 3.0)
    s.add(2, np.ones((2, 3)))
    s.add(1, g)
    s.take(1)
    s.add(0, g)
    s.add(2, g)  # added into 2's own buffer: 0 is the one holder
    s.release(1)
    assert s.slots[0] is g and s.owned[0]
    assert s.slots[2].tolist() == [[2.0, 3.0, 4.0]] * 2


def test_a_cotangent_handed_twice_to_one_value_is_doubled_in_a_new_buffer():
    s = store()
    g = fresh(1.0, 2.0, 3.0)
    s.add(1, g)
    s.take(1)
    s.add(0, g)
    s.add(0, g)  # y = x + x
    s.release(1)
    assert s.slots[0].tolist() == [2.0, 4.0, 6.0] and s.slots[0] is not g
    assert g.tolist() == [1.0, 2.0, 3.0]


def test_contributions_are_unbroadcast_where_they_are_added():
    s = store()
    s.add(0, np.ones((2, 3)))
    s.add(3, np.ones((2, 3)))
    assert s.slots[0].tolist() == [2.0, 2.0, 2.0] and s.slots[3] == 6.0


# ---- indexed contributions -----------------------------------------------------------------


def test_a_slice_lands_in_a_new_buffer_of_zeros_then_in_place():
    s = store()
    s.add(0, Indexed(slice(1, None), fresh(1.0, 2.0)))
    buffer = s.slots[0]
    assert buffer.tolist() == [0.0, 1.0, 2.0] and s.owned[0]
    s.add(0, Indexed(slice(None, -1), fresh(10.0, 10.0)))
    assert s.slots[0] is buffer and buffer.tolist() == [10.0, 11.0, 2.0]


def test_a_large_slice_zeroes_only_what_it_does_not_cover():
    s = Cotangents(FLOAT64, [(10_000,)])
    s.add(0, Indexed(slice(1, -1), np.ones(9_998)))
    assert s.pending == {0: (1, 9_999)}  # the two rows left are zeroed when it is read
    g = s.take(0)
    assert g[0] == 0.0 and g[-1] == 0.0 and g[1:-1].all() and not s.pending


def test_bordering_slices_write_a_large_buffer_once():
    s = Cotangents(FLOAT64, [(10_000,)])
    s.add(0, Indexed(slice(9_000, None), np.full(1_000, 2.0)))
    s.add(0, Indexed(slice(None, 9_000), np.full(9_000, -0.0)))
    assert not s.pending
    g = s.result(0)
    assert np.signbit(g[:9_000]).all() and (g[9_000:] == 2.0).all()  # written, not added


def test_repeated_fancy_positions_add_up():
    s = store()
    s.add(0, Indexed([0, 0, 2], fresh(1.0, 2.0, 4.0)))
    assert s.slots[0].tolist() == [3.0, 0.0, 4.0]
    s.add(0, Indexed(np.array([True, False, True]), fresh(1.0, 1.0)))
    assert s.slots[0].tolist() == [4.0, 0.0, 5.0]


def test_an_index_into_a_held_cotangent_copies_it_first():
    s = store()
    held = fresh(1.0, 1.0, 1.0)
    s.seed(0, held)
    s.add(0, Indexed(1, np.float64(5.0)))
    assert s.slots[0].tolist() == [1.0, 6.0, 1.0] and held.tolist() == [1.0, 1.0, 1.0]
    s.add(0, Indexed((Ellipsis, [1, 1]), fresh(1.0, 1.0)))
    assert s.slots[0].tolist() == [1.0, 8.0, 1.0]


def outer(g: np.ndarray, u: np.ndarray, outs: list) -> Deferred:
    """The deferred outer product g uᵀ, noting the ``out`` each computation of it is given."""

    def multiply(*args, out=None):
        outs.append(out)
        return np.multiply(*args, out=out)

    return Deferred(multiply, (g[:, None], u), (len(g), len(u)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, object])
@pytest.mark.parametrize(("shape", "width"), [((5,), 4), ((2, 3), 4), ((3, 60), 60)])
def test_the_outer_product_is_the_rounded_products(dtype, shape, width):
    a = np.linspace(-2.0, 2.0, int(np.prod(shape))).reshape(shape).astype(dtype)
    b = np.linspace(-3.0, 7.0, width).astype(dtype)
    assert (a.size * b.size >= EINSUM_MIN) == (shape == (3, 60))  # both ways are tried
    expected = np.multiply(a[..., None], b)
    assert np.array_equal(outer_product(a, b), expected)
    assert outer_product(a, b).dtype == expected.dtype
    out = np.empty(expected.shape, expected.dtype)
    outer_product(a, b, out=out)
    assert np.array_equal(out, expected)


def test_a_deferred_slice_is_computed_into_the_rows_it_lands_on():
    n = 100  # x = [W.ravel(), b]: a large buffer, whose rows for b are written first
    g, u, outs = np.linspace(-1.0, 1.0, n), np.linspace(2.0, 3.0, n), []
    s = Cotangents(FLOAT64, [(n * n + n,)])
    s.add(0, Indexed(slice(n * n, None), np.arange(float(n))))
    s.add(0, Indexed(slice(None, n * n), outer(g, u, outs).reshape((n * n,))))
    assert not s.pending
    result = s.result(0)
    assert np.array_equal(result, np.concatenate([np.outer(g, u).ravel(), np.arange(n)]))
    assert len(outs) == 1 and np.shares_memory(outs[0], result)


def test_a_deferred_slice_first_in_a_new_buffer_is_computed_there():
    n = 100
    g, u, outs = np.linspace(-1.0, 1.0, n), np.linspace(2.0, 3.0, n), []
    s = Cotangents(FLOAT64, [(n * n + n,)])
    s.add(0, Indexed(slice(None, n * n), outer(g, u, outs).reshape((n * n,))))
    assert s.pending == {0: (0, n * n)} and np.shares_memory(outs[0], s.slots[0])
    result = s.result(0)
    assert np.array_equal(result[: n * n], np.outer(g, u).ravel()) and not result[n * n:].any()


def test_a_deferred_contribution_is_kept_until_it_lands_or_meets_another():
    g, u, outs = fresh(1.0, 2.0), fresh(1.0, 10.0, 100.0), []
    s = store()
    s.add(2, outer(g, u, outs))
    assert type(s.slots[2]) is Deferred and not s.owned[2] and s.live == 0 and not outs
    s.add(2, np.ones((2, 3)))
    assert s.slots[2].tolist() == [[2.0, 11.0, 101.0], [3.0, 21.0, 201.0]] and outs == [None]
    s.add(2, outer(g, u, outs))  # into the buffer it now owns: made, then added
    assert s.slots[2].tolist() == [[3.0, 21.0, 201.0], [5.0, 41.0, 401.0]]
    assert s.result(2).tolist() == [[3.0, 21.0, 201.0], [5.0, 41.0, 401.0]]


def test_a_deferred_contribution_on_entries_that_are_not_rows_is_made_first():
    s = Cotangents(FLOAT64, [(2, 3)])
    outs = []
    s.add(0, Indexed((slice(None), slice(1, None)), outer(fresh(1.0, 2.0), fresh(1.0, 3.0), outs)))
    assert s.result(0).tolist() == [[0.0, 1.0, 3.0], [0.0, 2.0, 6.0]] and outs == [None]
    s = Cotangents(FLOAT64, [(2, 3)])
    s.add(0, outer(fresh(1.0, 2.0), fresh(1.0, 2.0, 3.0), outs))
    assert s.result(0).tolist() == [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]


# ---- accounting and results ----------------------------------------------------------------


def test_live_and_peak_count_owned_buffers_until_release():
    s = store()
    a, b = fresh(1.0, 2.0, 3.0), np.ones((2, 3))
    s.add(1, a)
    s.add(2, b)
    assert s.live == s.peak == a.nbytes + b.nbytes
    s.take(2)
    s.release(2)
    assert (s.live, s.peak) == (a.nbytes, a.nbytes + b.nbytes)
    s.add(0, np.float64(1.0))  # a scalar is not counted
    assert s.live == a.nbytes


def test_result_is_an_array_of_the_values_shape_the_caller_may_keep():
    s = store()
    s.add(0, np.float64(2.0))
    c = np.ones((2, 3))
    s.add(2, c)
    assert s.result(0).tolist() == [2.0, 2.0, 2.0]
    assert s.result(2) is c
    assert s.result(1).tolist() == [0.0, 0.0, 0.0]


def test_the_store_works_on_mpmath_object_arrays():
    with mpmath.workdps(30):
        s = Cotangents(MPMATH, [(3,), ()])
        third = mpmath.mpf(1) / 3
        s.add(0, np.array([third] * 3, dtype=object))
        s.add(0, Indexed([0, 0], np.array([third, third], dtype=object)))
        s.add(1, np.array([third] * 3, dtype=object))
        first, total = s.result(0)[0], s.result(1)
        assert first == 3 * third and isinstance(first, mpmath.mpf)
        assert total == 3 * third
        assert s.result(0).dtype == object
