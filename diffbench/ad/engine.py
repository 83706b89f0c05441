"""The tape and the backward sweep of diffbench's reverse-mode engine.

Invariants:

* The tape records every op in execution order, so walking it backwards is a topological order
  of the computation: the sweep is one loop, with no recursion and no depth limit.
* Record ``i`` produces the value with index ``i``; inputs (leaves) are records without parents.
  Only traced arguments become parents, so constants get no cotangents.
* A record keeps what its rules need (see :mod:`diffbench.ad.rules`), nothing else; the backward
  sweep drops it once it has run, unless ``retain_graph`` is set.
* A value's cotangent is complete when the sweep reaches its producer, and is released as soon
  as the producer has run (a box that asked to :meth:`~Box.retain_grad` keeps a copy).
  Cotangents reaching a value along several paths are summed.
* Shapes are un-broadcast in one place: where a cotangent is accumulated, in the cotangent
  store (:mod:`diffbench.ad.cotangents`), which also owns the buffers and counts their bytes.
"""

from __future__ import annotations

import math
import operator
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from diffbench.ad.cotangents import Cotangents
from diffbench.ad.numeric import FLOAT64, FLOATS, MPMATH, namespace_of
from diffbench.ad.rules import DEFERRING, ELEMENTWISE, RULES, Deferred


class Record(NamedTuple):
    """One recorded op: ``op`` produced a value of ``shape`` from the values ``parents`` (its
    traced arguments, by index), and ``vjps[k]`` carries that value's cotangent back to
    ``parents[k]``."""

    op: str
    parents: tuple[int, ...]
    vjps: tuple[Callable[[object], object], ...]
    shape: tuple[int, ...]


FIRST, SECOND, BOTH = (0,), (1,), (0, 1)
"""The positions of the traced arguments in the usual calls of :meth:`Tape.record`."""
_POSITIONS = {FIRST: FIRST, SECOND: SECOND, BOTH: BOTH}  # equal tuples to these very ones

_new_box = object.__new__
_FLOAT64 = np.dtype(np.float64)
_SHAPE = operator.itemgetter(2)  # of a stored record
_OPS = {ns.name: {op: (getattr(ns, op), makers) for op, makers in RULES.items()}
        for ns in (FLOAT64, MPMATH)}
"""Each op's function in each namespace, with its rules: one lookup per recorded op."""


class Box:
    """A traced value: the array ``value`` produced by record ``index`` of ``tape`` (which
    makes every box).

    Supports the ops contract's operators; comparisons return plain boolean arrays (for
    ``where``).  An input's ``grad`` is set by :meth:`Tape.backward`; another value's only
    after :meth:`retain_grad`.
    """

    __slots__ = ("value", "tape", "index", "_grad", "__weakref__")
    __array_ufunc__ = None  # numpy defers to the reflected operators below

    @property
    def grad(self) -> object:
        """The cotangent the last backward left here (an array of the value's shape), or None:
        set on inputs, and on other values only after :meth:`retain_grad`."""
        return getattr(self, "_grad", None)

    @grad.setter
    def grad(self, value: object) -> None:
        self._grad = value

    def retain_grad(self) -> None:
        """Keep this value's cotangent: every later backward through it sets ``grad`` to a copy
        (intermediate cotangents are otherwise released once their producer has run)."""
        self.tape.retain(self)

    shape = property(lambda self: np.shape(self.value))
    ndim = property(lambda self: np.ndim(self.value))
    size = property(lambda self: np.size(self.value))
    dtype = property(lambda self: _dtype(self.value))

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"Box({self.value!r}, index={self.index})"

    def __getitem__(self, index):
        return self.tape.record("getitem", FIRST, self, index)

    def __neg__(self):
        return self.tape.record("negative", FIRST, self)

    def __abs__(self):
        return self.tape.record("abs", FIRST, self)

    def __add__(self, other):
        return self.tape.record("add", BOTH if type(other) is Box else FIRST, self, other)

    def __radd__(self, other):
        return self.tape.record("add", SECOND, other, self)

    def __sub__(self, other):
        return self.tape.record("subtract", BOTH if type(other) is Box else FIRST, self, other)

    def __rsub__(self, other):
        return self.tape.record("subtract", SECOND, other, self)

    def __mul__(self, other):
        return self.tape.record("multiply", BOTH if type(other) is Box else FIRST, self, other)

    def __rmul__(self, other):
        return self.tape.record("multiply", SECOND, other, self)

    def __truediv__(self, other):
        return self.tape.record("divide", BOTH if type(other) is Box else FIRST, self, other)

    def __rtruediv__(self, other):
        return self.tape.record("divide", SECOND, other, self)

    def __pow__(self, other):
        """``x ** 2`` is recorded as ``square``, whose rule needs one product less."""
        if type(other) in (int, float) and other == 2:
            return self.tape.record("square", FIRST, self)
        return self.tape.record("power", BOTH if type(other) is Box else FIRST, self, other)

    def __rpow__(self, other):
        return self.tape.record("power", SECOND, other, self)

    def __matmul__(self, other):
        return self.tape.record("matmul", BOTH if type(other) is Box else FIRST, self, other)

    def __rmatmul__(self, other):
        return self.tape.record("matmul", SECOND, other, self)

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


def _dtype(value: object) -> np.dtype:
    dtype = getattr(value, "dtype", None)
    return np.asarray(value).dtype if dtype is None else dtype


def _untraced(value: object) -> object:
    return value.value if type(value) is Box else value


def apply(op: str, *args: object) -> object:
    """Run ``op`` on the arguments' values; record it on their tape when one is traced."""
    makers = RULES.get(op, ())
    traced = ()
    for k, arg in enumerate(args):
        if type(arg) is Box:
            if k >= len(makers) or makers[k] is None:
                raise NotImplementedError(_missing_rule(op, k, [_untraced(a) for a in args]))
            traced += (k,)
    if not traced:
        return getattr(namespace_of(*args), op)(*args)
    return args[traced[0]].tape.record(op, _POSITIONS.get(traced, traced), *args)


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


class Tape:
    """Records ops in execution order and runs the backward sweep over them.

    Iterating over a tape gives its :class:`Record` s in order: record ``i`` produced value
    ``i``.  ``consumers[i]`` counts the records that read value ``i``.  Inputs are held by weak
    reference, so a tape and its values form no cycle.  The namespace (float64 or mpmath) is
    chosen from the first input's dtype.

    The records are kept as plain tuples ``(op, links, shape)``, where ``links`` pairs each
    parent with its VJP: building and unpacking a NamedTuple costs about a sixth of a small
    gradient's time, and a loop over pairs a third of one over ``zip(parents, vjps)``.
    """

    __slots__ = ("ns", "_ops", "_records", "consumers", "leaves", "released", "peak_bytes")

    def __init__(self) -> None:
        self.ns: SimpleNamespace | None = None
        self._ops: dict[str, tuple[Callable, tuple]] | None = None  # set with ns
        self._records: list[tuple | None] = []
        self.consumers: list[int] = []
        self.leaves: list[weakref.ref[Box]] = []
        self.released = False
        self.peak_bytes = 0

    def __iter__(self) -> Iterator[Record]:
        """The records in execution order (a topological order)."""
        if self.released:
            raise RuntimeError("the records of this tape were released by its backward sweep")
        return (Record(op, tuple(parent for parent, _ in links), tuple(vjp for _, vjp in links),
                       shape) for op, links, shape in self._records)

    def leaf(self, value: object) -> Box:
        """A new input: an array of a float dtype (float64, float32, float16, bfloat16; any
        other is made float64), or an object array of ``mpf`` (the mpmath namespace)."""
        ns = namespace_of(value)
        if self.ns is None:
            self.ns, self._ops = ns, _OPS[ns.name]
        elif ns is not self.ns:
            raise ValueError(f"a {ns.name} input on a {self.ns.name} tape: use one number type")
        if ns is MPMATH:
            value = np.asarray(value, dtype=object)
        else:
            value = np.asarray(value)
            if value.dtype not in FLOATS:
                value = value.astype(np.float64)
        box = self.push("input", (), value)
        box._grad = None
        self.leaves.append(weakref.ref(box))
        return box

    def record(self, op: str, traced: tuple[int, ...], *args: object) -> Box:
        """Record ``op(*args)`` whose traced arguments are ``args[k]`` for ``k`` in ``traced``:
        its value, and one VJP for each traced argument (constants get none, so their
        cotangents are never computed).  ``self`` is the tape of ``args[traced[0]]``.

        Ops of one argument, or of two with ``traced`` one of :data:`FIRST`, :data:`SECOND` and
        :data:`BOTH` themselves (nearly all), are run by positional calls: unpacking argument
        lists costs a sixth of a small op.  The loops below take any other call.
        """
        ns = self.ns
        fn, makers = self._ops[op]
        consumers = self.consumers
        count = len(args)
        if count == 1:  # x alone
            x = args[0]
            value = x.value
            ans = fn(value)
            links = ((x.index, makers[0](ns, ans, value)),)
            consumers[x.index] += 1
        elif count == 2 and traced is FIRST:  # x with a constant
            x, c = args
            value = x.value
            ans = fn(value, c)
            links = ((x.index, makers[0](ns, ans, value, c)),)
            consumers[x.index] += 1
        elif count == 2 and traced is SECOND:  # a constant with y
            c, y = args
            value = y.value
            ans = fn(c, value)
            links = ((y.index, makers[1](ns, ans, c, value)),)
            consumers[y.index] += 1
        elif count == 2 and traced is BOTH:
            x, y = args
            if y.tape is not self:
                raise ValueError(f"argument 1 of {op} belongs to another tape")
            xv, yv = x.value, y.value
            ans = fn(xv, yv)
            links = ((x.index, makers[0](ns, ans, xv, yv)), (y.index, makers[1](ns, ans, xv, yv)))
            consumers[x.index] += 1
            consumers[y.index] += 1
        else:
            values = [*args]
            for k in traced:
                values[k] = args[k].value
            ans = fn(*values)
            links = ()
            for k in traced:
                arg = args[k]
                if arg.tape is not self:
                    raise ValueError(f"argument {k} of {op} belongs to another tape")
                links += ((arg.index, makers[k](ns, ans, *values)),)
                consumers[arg.index] += 1
        box = _new_box(Box)  # the rest of push, inlined (a call costs 3 % of a small op)
        box.value = ans
        box.tape = self
        box.index = len(consumers)
        self._records.append((op, links, getattr(ans, "shape", ())))
        consumers.append(0)
        return box

    def push(self, op: str, links: tuple[tuple[int, Callable], ...], ans: object) -> Box:
        """Append the record of ``ans``, made by ``op`` from the parents in ``links`` (pairs of a
        parent's index and the VJP that carries ``ans``'s cotangent to it), count its reads of
        its parents, and trace ``ans``: for records not made from the rule table (an input, a
        checkpoint)."""
        consumers = self.consumers
        for parent, _ in links:
            consumers[parent] += 1
        box = _new_box(Box)  # 30 % cheaper than calling Box: no __init__ frame
        box.value = ans
        box.tape = self
        box.index = len(consumers)
        self._records.append((op, links, getattr(ans, "shape", ())))
        consumers.append(0)
        return box

    def retain(self, box: Box) -> None:
        """Have every later backward through ``box`` set ``box.grad`` (see
        :meth:`Box.retain_grad`): its producer's first VJP keeps a copy of the cotangent it
        carries.  An input's ``grad`` is set anyway."""
        if self.released:
            raise RuntimeError("retain_grad on a tape whose backward released its records")
        op, links, shape = self._records[box.index]
        if links and type(links[0][1]) is not _Retained:
            (parent, vjp), *others = links
            self._records[box.index] = (op, ((parent, _Retained(vjp, box, shape)), *others),
                                        shape)

    def stats(self) -> TapeStats:
        """Tape length, shared values and the peak cotangent bytes of the last backward."""
        inputs = len(self.leaves)
        shared = sum(1 for count in self.consumers if count > 1)
        return TapeStats(len(self.consumers) - inputs, inputs, shared, self.peak_bytes)

    def _cotangents(self, shapes: list[tuple[int, ...]]) -> Cotangents:
        """The store of one sweep's cotangents."""
        return Cotangents(self.ns, shapes)

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
        records = self._records
        shapes = list(map(_SHAPE, records))
        cotangents = self._cotangents(shapes)
        cotangents.seed(output.index, _seed(self.ns, seed, shapes[output.index],
                                            getattr(output.value, "dtype", None)))
        drop_records = release and not retain_graph
        for i in range(output.index, -1, -1):  # newest first
            g = cotangents.take(i)
            if g is None:  # no path to the output
                continue
            op, links, shape = records[i]
            if not links:  # an input
                continue
            if getattr(g, "shape", ()) != shape:
                g = _spread(op, links, g, shape, shapes)
            for parent, vjp in links:
                cotangents.add(parent, vjp(g))
            if release:
                cotangents.release(i)
                if drop_records:
                    records[i] = None
        if drop_records:
            records.clear()  # the records the sweep skipped hold values too
            self.released = True
        self.peak_bytes = cotangents.peak
        for reference in self.leaves:
            leaf = reference()
            if leaf is not None:
                leaf._grad = cotangents.result(leaf.index, leaf.value.dtype)


class _Retained:
    """A VJP that first sets ``box.grad`` to a copy of the cotangent it carries, spread to the
    value's ``shape`` (the buffer itself may be handed on and added into; a deferred one is
    made first)."""

    __slots__ = ("vjp", "box", "shape")

    def __init__(self, vjp: Callable[[object], object], box: Box, shape: tuple[int, ...]):
        self.vjp, self.box, self.shape = vjp, weakref.ref(box), shape

    def __call__(self, g: object) -> object:
        box = self.box()
        if type(g) is Deferred:
            g = g.value()
        if box is not None:
            box._grad = np.array(np.broadcast_to(g, self.shape))
        return self.vjp(g)


def _seed(ns: SimpleNamespace, seed: object, shape: tuple[int, ...], dtype: object) -> object:
    """The output's cotangent, in the output's dtype (float64 where it has none)."""
    if ns is MPMATH:
        dtype = object
    elif dtype not in FLOATS:
        dtype = np.float64
    if seed is None:
        if math.prod(shape) != 1:
            raise ValueError(
                f"backward of an output of shape {shape} needs a seed of that shape "
                "(the output's cotangent), as in PyTorch"
            )
        if ns is MPMATH or dtype == _FLOAT64:
            return ns.one if shape == () else ns.zeros(shape) + ns.one
        return np.ones(shape, dtype)[()]
    seed = np.asarray(seed, dtype=dtype)
    if seed.shape != shape:
        raise ValueError(f"seed of shape {seed.shape} for an output of shape {shape}")
    return seed


def _spread(op: str, links: tuple[tuple[int, Callable], ...], g: object,
            shape: tuple[int, ...], shapes: list[tuple[int, ...]]) -> object:
    """A cotangent ``g`` held in a shape that merely broadcasts to ``shape``, the output's, or
    deferred, as the rules of ``op`` take it: spread to ``shape``, made, or as it is.

    Elementwise rules take it as it is, unless the op broadcast one of its arguments (whose
    cotangent must then be summed over the stretched axes); ``getitem`` adds it into its slice.
    A deferred one is made, except for the ops that hand it on (``DEFERRING``).
    """
    if type(g) is Deferred:
        return g if op in DEFERRING else g.value()
    if op == "getitem":
        return g
    if op in ELEMENTWISE:
        for parent, _ in links:
            if shapes[parent] != shape:
                return np.broadcast_to(g, shape)
        return g
    return np.broadcast_to(g, shape)


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
            gradient = (tape.ns.zeros(box.value.shape) if tape.ns is MPMATH
                        else np.zeros(box.value.shape, box.value.dtype))
            return (out, gradient) if self.with_value else gradient
        if getattr(out.value, "size", 1) != 1:
            raise ValueError(
                f"grad needs a scalar-valued function; f returned shape {out.shape}: "
                "use ad.backward with a seed"
            )
        tape.backward(out, None, False, self.release)
        return (out.value, box._grad) if self.with_value else box._grad

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
    "Box", "GradientFunction", "Record", "Tape", "TapeStats", "apply", "backward", "grad",
    "value_and_grad",
]
