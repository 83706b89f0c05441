"""The tape and the backward sweep of diffbench's reverse-mode engine.

Invariants:

* The tape records every op in execution order, so walking it backwards is a topological order
  of the computation: the sweep is one loop, with no recursion and no depth limit.
* Record ``i`` produces the value with index ``i``; inputs (leaves) are records without parents.
  Only traced arguments become parents, so constants get no cotangents.
* A record keeps what its rules need (see :mod:`diffbench.ad.rules`), nothing else; the backward
  sweep drops it once it has run, unless ``retain_graph`` is set.
* A value's cotangent is complete when the sweep reaches its producer, and is released as soon
  as the producer has run.  Cotangents reaching a value along several paths are summed.
* Shapes are un-broadcast in one place: where a cotangent is accumulated.  Accumulation is in
  place whenever the engine owns the buffer; the first cotangent reaching a value is taken over
  as that buffer when nobody else holds it.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from diffbench.ad.numeric import FLOAT64, MPMATH, namespace_of
from diffbench.ad.rules import ELEMENTWISE, RULES, Indexed


class Box:
    """A traced value: the array ``value`` produced by record ``index`` of ``tape``.

    Supports the ops contract's operators; comparisons return plain boolean arrays (for
    ``where``).  An input's ``grad`` is set by :meth:`Tape.backward`.
    """

    __slots__ = ("value", "tape", "index", "grad", "__weakref__")
    __array_ufunc__ = None  # numpy defers to the reflected operators below

    def __init__(self, value: object, tape: Tape, index: int) -> None:
        self.value = value
        self.tape = tape
        self.index = index

    shape = property(lambda self: np.shape(self.value))
    ndim = property(lambda self: np.ndim(self.value))
    size = property(lambda self: np.size(self.value))
    dtype = property(lambda self: np.asarray(self.value).dtype)

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"Box({self.value!r}, index={self.index})"

    def __getitem__(self, index):
        return self.tape.unary("getitem", self, index)

    def __neg__(self):
        return self.tape.unary("negative", self)

    def __abs__(self):
        return self.tape.unary("abs", self)

    def __add__(self, other):
        return self.tape.binary("add", self, other)

    def __radd__(self, other):
        return self.tape.binary("add", other, self)

    def __sub__(self, other):
        return self.tape.binary("subtract", self, other)

    def __rsub__(self, other):
        return self.tape.binary("subtract", other, self)

    def __mul__(self, other):
        return self.tape.binary("multiply", self, other)

    def __rmul__(self, other):
        return self.tape.binary("multiply", other, self)

    def __truediv__(self, other):
        return self.tape.binary("divide", self, other)

    def __rtruediv__(self, other):
        return self.tape.binary("divide", other, self)

    def __pow__(self, other):
        """``x ** 2`` is recorded as ``square``, whose rule needs one product less."""
        if type(other) in (int, float) and other == 2:
            return self.tape.unary("square", self)
        return self.tape.binary("power", self, other)

    def __rpow__(self, other):
        return self.tape.binary("power", other, self)

    def __matmul__(self, other):
        return self.tape.binary("matmul", self, other)

    def __rmatmul__(self, other):
        return self.tape.binary("matmul", other, self)

    def __lt__(self, other):
        return self.value < _untraced(other)

    def __le__(self, other):
        return self.value <= _untraced(other)

    def __gt__(self, other):
        return self.value > _untraced(other)

    def __ge__(self, other):
        return self.value >= _untraced(other)

    def __eq__(self, other):
        return self.value == _untraced(other)

    def __ne__(self, other):
        return self.value != _untraced(other)


_NONE = object()  # no parameter given to Tape.unary
_FIRST_RULE = {op: makers[0] for op, makers in RULES.items() if makers[0] is not None}


def _untraced(value: object) -> object:
    return value.value if type(value) is Box else value


def apply(op: str, *args: object) -> object:
    """Run ``op`` on the arguments' values; record it on their tape when one is traced."""
    for arg in args:
        if type(arg) is Box:
            return arg.tape.record(op, args)
    return getattr(namespace_of(*args), op)(*args)


def apply_binary(op: str, x: object, y: object) -> object:
    """:func:`apply` for an op of two arguments, by the tape's fast path."""
    if type(x) is Box:
        return x.tape.binary(op, x, y)
    if type(y) is Box:
        return y.tape.binary(op, x, y)
    return getattr(namespace_of(x, y), op)(x, y)


@dataclass(frozen=True)
class TapeStats:
    """The size of one recorded computation and the memory its backward sweep used.

    ``length`` counts recorded ops (inputs excluded); ``shared_values`` counts the values read
    by more than one op (their cotangents are sums); ``peak_cotangent_bytes`` is the largest
    total of cotangent buffers the engine held at once (object arrays count their pointers).
    """

    length: int
    inputs: int
    shared_values: int
    peak_cotangent_bytes: int


Record = tuple[str, tuple[int, ...], tuple[Callable, ...], tuple[int, ...]]


class Tape:
    """Records ops in execution order and runs the backward sweep over them.

    ``records[i]`` is ``(op, parents, vjps, shape)``: the op that produced value ``i``, the
    indices of its traced arguments, one vector-Jacobian product for each, and the value's
    shape.  ``consumers[i]`` counts the records that read value ``i``.  Inputs are held by
    weak reference, so a tape and its values form no cycle.  The namespace (float64 or mpmath)
    is chosen from the first input's dtype.
    """

    __slots__ = ("ns", "records", "consumers", "leaves", "released", "peak_bytes")

    def __init__(self) -> None:
        self.ns: SimpleNamespace | None = None
        self.records: list[Record | None] = []
        self.consumers: list[int] = []
        self.leaves: list[weakref.ref[Box]] = []
        self.released = False
        self.peak_bytes = 0

    def leaf(self, value: object) -> Box:
        """A new input: float64 values, or an object array of ``mpf`` (the mpmath namespace)."""
        ns = namespace_of(value)
        if self.ns is None:
            self.ns = ns
        elif ns is not self.ns:
            raise ValueError(f"a {ns.name} input on a {self.ns.name} tape: use one number type")
        value = np.asarray(value, dtype=object if ns is MPMATH else np.float64)
        box = self._push("input", (), (), value)
        box.grad = None
        self.leaves.append(weakref.ref(box))
        return box

    def unary(self, op: str, x: Box, param: object = _NONE) -> Box:
        """Record ``op(x)``, or ``op(x, param)`` with a constant ``param``, for a traced ``x``."""
        ns = self.ns
        value = x.value
        maker = _FIRST_RULE.get(op)
        if maker is None:
            raise NotImplementedError(_missing_rule(op, 0, (value,)))
        if param is _NONE:
            ans = getattr(ns, op)(value)
            vjp = maker(ns, ans, value)
        else:
            ans = getattr(ns, op)(value, param)
            vjp = maker(ns, ans, value, param)
        consumers = self.consumers
        self.records.append((op, (x.index,), (vjp,), getattr(ans, "shape", ())))
        consumers[x.index] += 1
        consumers.append(0)
        return Box(ans, self, len(consumers) - 1)

    def binary(self, op: str, x: object, y: object) -> Box:
        """Record ``op(x, y)`` where at least one of ``x`` and ``y`` is traced."""
        x_traced = type(x) is Box
        y_traced = type(y) is Box
        if x_traced and y_traced and x.tape is not y.tape:
            raise ValueError(f"the arguments of {op} belong to two different tapes")
        ns = self.ns
        xv = x.value if x_traced else x
        yv = y.value if y_traced else y
        ans = getattr(ns, op)(xv, yv)
        first, second = RULES[op]
        if not y_traced:
            parents, vjps = (x.index,), (first(ns, ans, xv, yv),)
        elif not x_traced:
            parents, vjps = (y.index,), (second(ns, ans, xv, yv),)
        else:
            parents, vjps = (x.index, y.index), (first(ns, ans, xv, yv), second(ns, ans, xv, yv))
        consumers = self.consumers
        for parent in parents:
            consumers[parent] += 1
        self.records.append((op, parents, vjps, getattr(ans, "shape", ())))
        consumers.append(0)
        return Box(ans, self, len(consumers) - 1)

    def record(self, op: str, args: Sequence[object]) -> Box:
        """Record ``op(*args)``: one VJP for each traced argument, none for constants."""
        ns = self.ns
        values = [arg.value if type(arg) is Box else arg for arg in args]
        ans = getattr(ns, op)(*values)
        makers = RULES.get(op, ())
        parents = []
        vjps = []
        for position, arg in enumerate(args):
            if type(arg) is Box:
                if arg.tape is not self:
                    raise ValueError(f"argument {position} of {op} belongs to another tape")
                maker = makers[position] if position < len(makers) else None
                if maker is None:
                    raise NotImplementedError(_missing_rule(op, position, values))
                parents.append(arg.index)
                vjps.append(maker(ns, ans, *values))
                self.consumers[arg.index] += 1
        return self._push(op, tuple(parents), tuple(vjps), ans)

    def _push(self, op: str, parents: tuple[int, ...], vjps: tuple[Callable, ...], ans) -> Box:
        index = len(self.records)
        self.records.append((op, parents, vjps, getattr(ans, "shape", ())))
        self.consumers.append(0)
        return Box(ans, self, index)

    def stats(self) -> TapeStats:
        """Tape length, shared values and the peak cotangent bytes of the last backward."""
        inputs = len(self.leaves)
        shared = sum(1 for count in self.consumers if count > 1)
        return TapeStats(len(self.records) - inputs, inputs, shared, self.peak_bytes)

    def backward(
        self, output: Box, seed: object = None, retain_graph: bool = False, release: bool = True
    ) -> None:
        """Set ``grad`` on every input: the seeded vector-Jacobian product of ``output``.

        ``seed`` (the output's cotangent) may be left out for a single-element output.
        Without ``retain_graph`` the records are released as the sweep runs them, and a second
        backward raises.  ``release=False`` keeps every cotangent and record alive (to measure
        what release saves).
        """
        if output.tape is not self:
            raise ValueError("backward of a value recorded on another tape")
        if self.released:
            raise RuntimeError(
                "this tape was released by an earlier backward; "
                "pass retain_graph=True to the first backward to run it again"
            )
        ns = self.ns
        records = self.records
        top = output.index
        slots: list[object] = [None] * (top + 1)
        owned = [False] * (top + 1)
        slots[top] = _seed(ns, seed, records[top][3])
        live = peak = 0
        drop_records = release and not retain_graph
        ndarray = np.ndarray
        for i in range(top, -1, -1):
            g = slots[i]
            if g is None:
                continue
            op, parents, vjps, shape = records[i]
            if not parents:
                continue
            if getattr(g, "shape", ()) != shape and _needs_full(op, parents, shape, records):
                g = np.broadcast_to(g, shape)
            handover = release and owned[i] and len(parents) == 1
            for parent, vjp in zip(parents, vjps):  # noqa: B905 - same length by construction
                c = vjp(g)
                parent_shape = records[parent][3]
                if type(c) is Indexed:
                    live += _accumulate_at(ns, slots, owned, parent, parent_shape, c)
                else:
                    c_shape = getattr(c, "shape", None)
                    fresh = handover if c is g else type(c) is ndarray and c.base is None
                    if slots[parent] is None and (c_shape == parent_shape or c_shape == ()):
                        slots[parent] = c  # the first cotangent: taken over, not copied
                        if fresh and c_shape == parent_shape:
                            owned[parent] = True
                            live += c.nbytes
                    else:
                        live += _accumulate(slots, owned, parent, parent_shape, c, fresh)
                if live > peak:
                    peak = live
            if release:
                if owned[i]:
                    live -= g.nbytes
                slots[i] = None
                if drop_records:
                    records[i] = None
        self.released = release and not retain_graph
        if self.released:
            self.records = [None] * len(records)  # records the sweep skipped hold values too
        self.peak_bytes = peak
        for reference in self.leaves:
            leaf = reference()
            if leaf is None:
                continue
            g = slots[leaf.index] if leaf.index <= top else None
            shape = leaf.value.shape
            if g is None:
                leaf.grad = ns.zeros(shape)
            elif owned[leaf.index]:
                leaf.grad = g
            else:
                leaf.grad = np.array(np.broadcast_to(g, shape))


def _seed(ns: SimpleNamespace, seed: object, shape: tuple[int, ...]) -> object:
    if seed is None:
        if math.prod(shape) != 1:
            raise ValueError(
                f"backward of an output of shape {shape} needs a seed of that shape "
                "(the output's cotangent), as in PyTorch"
            )
        return ns.one if shape == () else ns.zeros(shape) + ns.one
    seed = np.asarray(seed, dtype=object if ns is MPMATH else np.float64)
    if seed.shape != shape:
        raise ValueError(f"seed of shape {seed.shape} for an output of shape {shape}")
    return seed


def _needs_full(op: str, parents: tuple[int, ...], shape, records: list) -> bool:
    """Whether the rules of ``op`` need its cotangent spread to the output's full ``shape``.

    Elementwise rules take a cotangent that merely broadcasts, unless the op broadcast one of
    its arguments (whose cotangent must then be summed over the stretched axes); ``getitem``
    adds any such cotangent into its slice.
    """
    if op == "getitem":
        return False
    if op not in ELEMENTWISE:
        return True
    for parent in parents:
        if records[parent][3] != shape:
            return True
    return False


def _accumulate(slots: list, owned: list, i: int, shape, c, fresh: bool) -> int:
    """Add cotangent ``c`` into ``slots[i]``, un-broadcast to ``shape``; the new bytes held.

    ``fresh`` says nobody else holds ``c``, so it may become the slot's buffer.  An owned slot
    has the value's full shape and is added into in place.
    """
    c_shape = getattr(c, "shape", ())
    if c_shape and c_shape != shape:
        c = _unbroadcast(c, shape)
        c_shape = getattr(c, "shape", ())
        fresh = type(c) is np.ndarray and c.base is None
    fresh = fresh and c_shape == shape
    old = slots[i]
    if old is None:
        slots[i] = c
        owned[i] = fresh
        return c.nbytes if fresh else 0
    if owned[i]:
        old += c
        return 0
    if fresh:
        c += old
        slots[i] = c
        owned[i] = True
        return c.nbytes
    slots[i] = total = old + c
    owned[i] = type(total) is np.ndarray and total.shape == shape
    return total.nbytes if owned[i] else 0


def _accumulate_at(ns, slots: list, owned: list, i: int, shape, c: Indexed) -> int:
    """Add ``c.value`` into ``slots[i][c.index]``, in place in a buffer the engine owns."""
    old = slots[i]
    basic = type(c.index) is slice or _basic(c.index)
    added = 0
    if old is None and basic:
        slots[i] = buffer = _scattered(ns, shape, c.index, c.value)
        owned[i] = True
        return buffer.nbytes
    if old is None or not owned[i]:
        buffer = ns.zeros(shape) if old is None else np.array(np.broadcast_to(old, shape))
        slots[i] = buffer
        owned[i] = True
        added = buffer.nbytes
        old = buffer
    if basic:
        view = old[c.index]
        if type(view) is np.ndarray:
            view += c.value  # through the view: no copy back
        else:
            old[c.index] += c.value
    else:
        np.add.at(old, c.index, c.value)
    return added


def _scattered(ns, shape: tuple[int, ...], index: object, value: object) -> np.ndarray:
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


def _basic(index: object) -> bool:
    """Whether ``index`` is a basic index (ints, slices, None, ...): no repeated positions."""
    parts = index if type(index) is tuple else (index,)
    return all(
        part is None or part is Ellipsis or isinstance(part, (int, np.integer, slice))
        for part in parts
    )


def _unbroadcast(c, shape: tuple[int, ...]):
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


def _missing_rule(op: str, position: int, values: Sequence[object]) -> str:
    shapes = ", ".join(str(np.shape(v)) for v in values)
    dtypes = ", ".join(str(np.asarray(v).dtype) for v in values)
    return (
        f"no vector-Jacobian rule for argument {position} of {op!r} "
        f"(argument shapes {shapes}; dtypes {dtypes})"
    )


def backward(output: Box, seed: object = None, retain_graph: bool = False) -> None:
    """Set ``grad`` on the inputs of ``output``'s tape; see :meth:`Tape.backward`."""
    output.tape.backward(output, seed, retain_graph)


class GradientFunction:
    """``f``'s gradient (and value) at an array ``x``; :meth:`stats` describes the last call."""

    def __init__(self, f: Callable[[Box], object], with_value: bool, release: bool) -> None:
        self.f = f
        self.with_value = with_value
        self.release = release
        self.last_tape: Tape | None = None

    def __call__(self, x: object):
        tape = Tape()
        box = tape.leaf(x)
        out = self.f(box)
        self.last_tape = tape
        if type(out) is not Box:
            gradient = tape.ns.zeros(box.value.shape)
            return (out, gradient) if self.with_value else gradient
        if getattr(out.value, "size", 1) != 1:
            raise ValueError(
                f"grad needs a scalar-valued function; f returned shape {out.shape}: "
                "use ad.backward with a seed"
            )
        tape.backward(out, None, False, self.release)
        return (out.value, box.grad) if self.with_value else box.grad

    def stats(self) -> TapeStats:
        """Tape length and peak cotangent bytes of the last call."""
        if self.last_tape is None:
            raise RuntimeError("stats() of a gradient that has not been called yet")
        return self.last_tape.stats()


def grad(f: Callable[[Box], object], *, release: bool = True) -> GradientFunction:
    """The gradient of a scalar-valued ``f`` of one array, as a function of that array."""
    return GradientFunction(f, with_value=False, release=release)


def value_and_grad(f: Callable[[Box], object], *, release: bool = True) -> GradientFunction:
    """Like :func:`grad`, but the function returns ``(f(x), gradient)``."""
    return GradientFunction(f, with_value=True, release=release)


__all__ = [
    "Box", "GradientFunction", "Tape", "TapeStats", "apply", "apply_binary", "backward", "grad",
    "value_and_grad",
]
