"""The cotangents of one backward sweep: which buffers the sweep owns, and the bytes they hold.

The sweep asks for a value's cotangent (:meth:`Cotangents.take`), adds the contributions of its
vector-Jacobian products to other values' (:meth:`~Cotangents.add`) and releases it
(:meth:`~Cotangents.release`); this store decides when a contribution is kept as it is, added
in place or copied.

Invariants:

* Slot ``i`` holds ``None`` (no contribution has reached value ``i``) or a cotangent that
  broadcasts to ``shapes[i]``: contributions are un-broadcast to ``shapes[i]`` as they are added,
  the one place where shapes are un-broadcast.
* An *owned* slot holds an ndarray of exactly ``shapes[i]`` that nothing outside the store
  references.  Only owned slots are added into in place, so the seed, the inputs and the values
  the rules saved are never written to.  A contribution becomes a slot's buffer, uncopied, when
  it is fresh: a new array (``base is None``) that is not the cotangent being handed on.
* Releasing a cotangent whose buffer went, unchanged, into exactly one other slot passes the
  buffer's ownership to that slot (so ``y = x + 1.0`` hands ``y``'s cotangent to ``x`` as it is).
  This relies on the rules handing on, to several parents, only the cotangent itself or new
  arrays: views of it come only from ops of one traced argument (``reshape``, ``sum``).
* A slot may hold a :class:`~diffbench.ad.rules.Deferred` cotangent, not yet computed: only as
  its first and only contribution (a later one makes it first), never owned.  Where it lands
  on rows of a buffer that the store has just made, or that a bordering slice is filling, it
  is computed there, so an outer product as large as a weight matrix is written once.
* A slot in ``pending`` owns a buffer of which only the rows ``[start, stop)`` of the first
  axis hold its cotangent (a large slice's first contribution); the other rows are zeroed before
  anything else reads or adds to the buffer, unless a bordering slice writes them first.
* ``live`` is the total size in bytes of the owned buffers and ``peak`` its largest value (kept
  where ``live`` falls, which is where it may have peaked);
  cotangents that are not owned (scalars, views, the seed) are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np

from diffbench.ad.numeric import FLOAT64, unbroadcast
from diffbench.ad.rules import Deferred, Indexed

_NDARRAY = np.ndarray
_NOBODY = -1  # no slot has received the cotangent being handed on
_SEVERAL = -2  # more than one slot has


class Cotangents:
    """The cotangent of each value of one sweep, by value index; see the module's invariants."""

    __slots__ = ("ns", "shapes", "slots", "owned", "live", "pending", "_peak", "_handed",
                 "_receiver")

    def __init__(self, ns: SimpleNamespace, shapes: Sequence[tuple[int, ...]]) -> None:
        self.ns = ns
        self.shapes = shapes
        count = len(shapes)
        self.slots: list[object] = [None] * count
        self.owned = [False] * count
        self.live = 0
        self.pending: dict[int, tuple[int, int]] = {}  # written rows of partly unzeroed buffers
        self._peak = 0
        self._handed: object = None  # the cotangent last taken, which the sweep hands on
        self._receiver = _NOBODY  # the slot it went into unchanged

    def seed(self, i: int, value: object) -> None:
        """Start the sweep at value ``i`` with cotangent ``value``, which is never written to."""
        self.slots[i] = value

    def take(self, i: int) -> object:
        """Value ``i``'s cotangent, to be handed on through its producer's VJPs (``None`` if
        nothing reached it); the sweep takes it after every consumer of ``i`` has run, so it is
        complete."""
        if self.pending and i in self.pending:
            self._settle(i)
        g = self._handed = self.slots[i]
        self._receiver = _NOBODY
        return g

    def add(self, i: int, c: object) -> None:
        """Add the contribution ``c`` to value ``i``'s cotangent, un-broadcast to its shape."""
        kind = type(c)
        if kind is Indexed:
            self._add_at(i, c.index, c.value)
            return
        shape = self.shapes[i]
        c_shape = getattr(c, "shape", ())
        if c_shape != shape and c_shape:
            c = unbroadcast(c, shape)
            c_shape, kind = np.shape(c), type(c)
        if self.pending and i in self.pending:
            self._settle(i)
        slots = self.slots
        old = slots[i]
        if old is None:  # the first contribution: kept as it is (a Deferred one too)
            slots[i] = c
            if c is self._handed:
                self._receiver = i if self._receiver == _NOBODY else _SEVERAL
            elif c_shape == shape and kind is _NDARRAY and c.base is None:
                self.owned[i] = True
                self.live += c.nbytes
            return
        if kind is Deferred:
            c = c.value()
            c_shape, kind = c.shape, type(c)
        if self.owned[i]:
            old += c
            return
        if type(old) is Deferred:
            old = old.value()
        if c is not self._handed and c_shape == shape and kind is _NDARRAY and c.base is None:
            c += old  # a fresh contribution becomes the buffer
        else:
            c = old + c
        slots[i] = c
        if type(c) is _NDARRAY and c.shape == shape:
            self.owned[i] = True
            self.live += c.nbytes

    def release(self, i: int) -> None:
        """Drop value ``i``'s cotangent: its producer has run.  Its buffer passes to the one slot
        that received it unchanged, if there is one."""
        g = self.slots[i]
        self.slots[i] = None
        if not self.owned[i]:
            return
        self.owned[i] = False
        receiver = self._receiver
        if g is self._handed and receiver >= 0 and self.slots[receiver] is g \
                and self.shapes[receiver] == g.shape:
            self.owned[receiver] = True  # the bytes stay live, under another value
        else:
            if self.live > self._peak:
                self._peak = self.live
            self.live -= g.nbytes

    @property
    def peak(self) -> int:
        """The largest total of owned bytes so far."""
        return max(self._peak, self.live)

    def result(self, i: int, dtype: object = np.float64) -> np.ndarray:
        """Value ``i``'s cotangent as an array of its shape for the caller to keep (zeros of
        ``dtype`` if nothing reached it); the store gives the slot up."""
        if self.pending and i in self.pending:
            self._settle(i)
        g = self.slots[i]
        shape = self.shapes[i]
        self.slots[i] = None
        if g is None:
            return self._zeros(shape, dtype)
        if self.owned[i]:
            self.owned[i] = False
            return g
        if type(g) is Deferred:
            return g.value()
        return np.array(np.broadcast_to(g, shape))

    def _add_at(self, i: int, index: object, value: object) -> None:
        """Add ``value`` into ``slots[i][index]``, in place in a buffer the store owns.

        The first contribution of a unit-step slice of the first axis of a large buffer is
        written into a new, unzeroed buffer; the rows it leaves are zeroed when the buffer is
        next read, or instead written by a later slice that borders it (``x[:k]`` and
        ``x[k:]``: each row written once, never zeroed).  A deferred ``value`` written to such
        rows is computed there; added to entries, or to other places, it is made first."""
        old = self.slots[i]
        shape = self.shapes[i]
        dtype = getattr(value, "dtype", np.float64)
        rows = _rows(index, shape)
        if rows is None and type(value) is Deferred:
            value = value.value()  # rows are C-contiguous in the buffer, other places may not be
        pending = self.pending.get(i) if self.pending else None
        if pending is not None:
            start, stop = pending
            if rows is not None and (rows[1] == start or rows[0] == stop):
                _put(old, index, value)
                start, stop = min(start, rows[0]), max(stop, rows[1])
                if (start, stop) == (0, shape[0]):
                    del self.pending[i]
                else:
                    self.pending[i] = (start, stop)
                return
            self._settle(i)
        basic = rows is not None or is_basic(index)
        if old is None and basic:
            if rows is not None and self.ns is FLOAT64 and _large(shape):
                buffer = self._empty(shape, dtype)
                if rows != (0, shape[0]):
                    self.pending[i] = rows
            else:
                buffer = self._zeros(shape, dtype)
            _put(buffer, index, value)
            self.slots[i] = buffer
            self.owned[i] = True
            self.live += buffer.nbytes
            return
        if type(value) is Deferred:
            value = value.value()
        if not self.owned[i]:
            buffer = self._zeros(shape, dtype) if old is None else self._copy(old, shape)
            self.slots[i] = buffer
            self.owned[i] = True
            self.live += buffer.nbytes
            old = buffer
        if not basic:
            np.add.at(old, index, value)  # repeated positions add up
            return
        view = _entries(old, index)
        view += value  # through a view (0-d for one entry): no copy back

    def _settle(self, i: int) -> None:
        """Zero the rows of slot ``i``'s buffer that no slice has written yet."""
        start, stop = self.pending.pop(i)
        buffer = self.slots[i]
        buffer[:start] = 0.0
        buffer[stop:] = 0.0

    # ---- the buffers the store makes (a replay makes them in its program) ------------------

    def _zeros(self, shape: tuple[int, ...], dtype: object) -> object:
        return self.ns.zeros(shape) if self.ns is not FLOAT64 else np.zeros(shape, dtype)

    def _empty(self, shape: tuple[int, ...], dtype: object) -> object:
        return np.empty(shape, dtype)

    def _copy(self, g: object, shape: tuple[int, ...]) -> object:
        """A new buffer holding ``g`` spread to ``shape``."""
        return np.array(np.broadcast_to(g, shape))


def is_basic(index: object) -> bool:
    """Whether ``index`` is a basic index (ints, slices, None, ...): no repeated positions."""
    if type(index) is slice:
        return True
    for part in index if type(index) is tuple else (index,):
        if not (part is None or part is Ellipsis or isinstance(part, (int, np.integer, slice))):
            return False
    return True


def _rows(index: object, shape: tuple[int, ...]) -> tuple[int, int] | None:
    """The rows ``[start, stop)`` that ``index`` selects when it is a non-empty unit-step slice
    of the first axis, else None."""
    if type(index) is not slice or index.step not in (None, 1) or not shape:
        return None
    start, stop, _ = index.indices(shape[0])
    return (start, stop) if start < stop else None


def _put(buffer: object, index: object, value: object) -> None:
    """``buffer[index] = value``; a deferred ``value`` is computed straight into those entries."""
    if type(value) is Deferred:
        value.into(buffer[index])
    else:
        buffer[index] = value


def _entries(buffer: object, index: object) -> object:
    """``buffer[index]`` for a basic index, as a view even for a single entry (0-d)."""
    if type(index) is tuple:
        return buffer[index if Ellipsis in index else (*index, Ellipsis)]
    return buffer[index, ...]


def _large(shape: tuple[int, ...]) -> bool:
    """Whether a float64 buffer of ``shape`` is big enough that a pass over it costs more than
    a few numpy calls (64 KiB and up)."""
    return len(shape) > 0 and math.prod(shape) >= 8192
