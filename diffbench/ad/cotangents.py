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
* ``live`` is the total size in bytes of the owned buffers and ``peak`` its largest value (kept
  where ``live`` falls, which is where it may have peaked);
  cotangents that are not owned (scalars, views, the seed) are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np

from diffbench.ad.numeric import FLOAT64
from diffbench.ad.rules import Indexed

_NDARRAY = np.ndarray
_NOBODY = -1  # no slot has received the cotangent being handed on
_SEVERAL = -2  # more than one slot has


class Cotangents:
    """The cotangent of each value of one sweep, by value index; see the module's invariants."""

    __slots__ = ("ns", "shapes", "slots", "owned", "live", "_peak", "_handed", "_receiver")

    def __init__(self, ns: SimpleNamespace, shapes: Sequence[tuple[int, ...]]) -> None:
        self.ns = ns
        self.shapes = shapes
        count = len(shapes)
        self.slots: list[object] = [None] * count
        self.owned = [False] * count
        self.live = 0
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
        slots = self.slots
        old = slots[i]
        if old is None:  # the first contribution: kept as it is
            slots[i] = c
            if c is self._handed:
                self._receiver = i if self._receiver == _NOBODY else _SEVERAL
            elif c_shape == shape and kind is _NDARRAY and c.base is None:
                self.owned[i] = True
                self.live += c.nbytes
            return
        if self.owned[i]:
            old += c
            return
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

    def result(self, i: int) -> np.ndarray:
        """Value ``i``'s cotangent as an array of its shape for the caller to keep (zeros if
        nothing reached it); the store gives the slot up."""
        g = self.slots[i]
        shape = self.shapes[i]
        self.slots[i] = None
        if g is None:
            return self.ns.zeros(shape)
        if self.owned[i]:
            self.owned[i] = False
            return g
        return np.array(np.broadcast_to(g, shape))

    def _add_at(self, i: int, index: object, value: object) -> None:
        """Add ``value`` into ``slots[i][index]``, in place in a buffer the store owns."""
        old = self.slots[i]
        shape = self.shapes[i]
        basic = type(index) is slice or is_basic(index)  # a slice without a call
        if old is None and basic:
            self.slots[i] = buffer = _scattered(self.ns, shape, index, value)
            self.owned[i] = True
            self.live += buffer.nbytes
            return
        if not self.owned[i]:
            buffer = self.ns.zeros(shape) if old is None else np.array(np.broadcast_to(old, shape))
            self.slots[i] = buffer
            self.owned[i] = True
            self.live += buffer.nbytes
            old = buffer
        if not basic:
            np.add.at(old, index, value)  # repeated positions add up
            return
        view = old[index]
        if type(view) is np.ndarray:
            view += value  # through the view: no copy back
        else:
            old[index] += value


def unbroadcast(c: object, shape: tuple[int, ...]) -> object:
    """Sum ``c`` over the axes that broadcasting added to or stretched in ``shape``.

    A ``c`` that merely broadcasts to ``shape`` (fewer or size-1 axes) is returned as is.
    """
    extra = np.ndim(c) - len(shape)
    if extra > 0:
        c = np.sum(c, axis=tuple(range(extra)))
    offset = len(shape) - np.ndim(c)
    stretched = tuple(k for k, n in enumerate(np.shape(c)) if n != 1 and shape[offset + k] == 1)
    if stretched:
        c = np.sum(c, axis=stretched, keepdims=True)
    return c


def is_basic(index: object) -> bool:
    """Whether ``index`` is a basic index (ints, slices, None, ...): no repeated positions."""
    if type(index) is slice:
        return True
    for part in index if type(index) is tuple else (index,):
        if not (part is None or part is Ellipsis or isinstance(part, (int, np.integer, slice))):
            return False
    return True


def _scattered(ns: SimpleNamespace, shape: tuple[int, ...], index: object,
               value: object) -> np.ndarray:
    """A new buffer holding ``value`` at the basic ``index`` and zeros elsewhere.

    For a unit-step slice of the first axis of a large buffer, only the entries outside the
    slice are zeroed.
    """
    if ns is FLOAT64 and type(index) is slice and index.step in (None, 1) and _large(shape):
        start, stop, _ = index.indices(shape[0])
        buffer = np.empty(shape)
        buffer[:start] = 0.0
        buffer[max(start, stop):] = 0.0
    else:
        buffer = ns.zeros(shape)
    buffer[index] = value
    return buffer


def _large(shape: tuple[int, ...]) -> bool:
    """Whether a float64 buffer of ``shape`` is big enough that a pass over it costs more than
    a few numpy calls (64 KiB and up)."""
    return len(shape) > 0 and math.prod(shape) >= 8192
