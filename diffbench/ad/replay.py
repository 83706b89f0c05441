"""Trace once, replay many times: ``compile(f, example_x)``.

The recording engine builds a tape on every call: a box per value, a closure per VJP, fresh
arrays for every value and cotangent.  :func:`compile` runs that engine once, on *symbols*:
the tape, the rule table and the cotangent store do exactly what they do on arrays, but every
numpy call they make on a symbol is written down, with the array it produced as its output
buffer.  The program written down (the forward pass, the masks of comparisons, the backward
sweep with its un-broadcasting and accumulation) is then replayed on each new input: the same
numpy calls, in the same order, on the same buffers (``out=``), with no boxes, no closures and
no allocation besides the gradient handed back.  Before that the program is cleaned up: calls
whose results nothing needs are dropped, a result that is copied into place is written there
directly, a buffer whose last use has passed is given to a later value of its shape, and a large
input is read in place and a large gradient written straight into the array handed back (the
calls that reach them get views made anew for each call).

Invariants:

* A replay runs the float operations of the recording engine in the same order on operands of
  the same shapes and layouts, so its gradient and value are bitwise the recording engine's.
* Every buffer is written by the replayed steps before it is read in a call: buffers made by
  a step are that step's output, and a constant that a step writes into is first restored.
* Comparisons of traced values (``x > 0`` for ``where``, ``maximum``'s mask) are steps like any
  other: replayed, never frozen.  A value read into Python (``if x[0] > 0``, ``float(x[0])``)
  is frozen into the program; :func:`compile` traces ``f`` at two more points and refuses a
  function whose program differs there.
* The gradient belongs to the caller: each call returns a new array (or fills ``out``).

When replay is valid: ``f`` runs the same numpy operations whatever the values of ``x`` (the
same ops, shapes and constants; masks may differ: they are computed by the program), it is
written over the ops namespace (``diffbench.ad``), and it does not use ``checkpoint``,
``checkpoint_chain`` or ``retain_grad`` (refused).  Inputs must have the example's shape and
dtype (float64), or pass ``retrace=True`` to compile once more for each new shape.  Boolean
indexing by a mask computed from ``x`` is refused (its output shape depends on the values).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from diffbench.ad.cotangents import Cotangents, is_basic
from diffbench.ad.engine import _OPS, Box, Tape, TapeStats
from diffbench.ad.numeric import FLOAT64
from diffbench.ad.rules import Deferred

_NDARRAY = np.ndarray


class ReplayError(ValueError):
    """``f`` cannot be compiled for replay, or an input does not fit the compiled program."""


# ---- symbols: arrays whose numpy calls are written down ------------------------------------


class Sym(NDArrayOperatorsMixin):
    """A value of the program being written: the buffer ``a`` (or a view of one) that the
    program's steps write, whose numpy calls become steps of ``program``."""

    __slots__ = ("a", "program")

    def __init__(self, a: np.ndarray, program: _Program):
        self.a = a
        self.program = program

    shape = property(lambda self: self.a.shape)
    ndim = property(lambda self: self.a.ndim)
    size = property(lambda self: self.a.size)
    dtype = property(lambda self: self.a.dtype)
    nbytes = property(lambda self: self.a.nbytes)
    flags = property(lambda self: self.a.flags)
    T = property(lambda self: np.swapaxes(self, -1, -2))

    def __len__(self) -> int:
        return len(self.a)

    def __repr__(self) -> str:
        return f"Sym(shape={self.a.shape}, dtype={self.a.dtype})"

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(type(v) is Box for v in inputs):
            return NotImplemented
        return self.program.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return self.program.function(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        raise ReplayError(
            "a traced value was converted to a plain array while tracing for replay (its "
            "values would be frozen): write f over the ops namespace it is given"
        )

    def __pow__(self, other):
        if type(other) is Box:
            return NotImplemented
        return self.program.power(self, other)

    def __getitem__(self, index):
        return self.program.getitem(self, index)

    def __setitem__(self, index, value):
        np.copyto(self.program.getitem(self, index), value)

    def reshape(self, *shape):
        return np.reshape(self, shape[0] if len(shape) == 1 else shape)

    def __bool__(self) -> bool:
        return bool(self.a)

    def __float__(self) -> float:
        return float(self.a)

    def __int__(self) -> int:
        return int(self.a)

    __index__ = __int__


class _Probe(np.ndarray):
    """A view that reports the ufunc numpy's operators pick (``a ** 2`` is ``square``)."""

    picked: tuple = ()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _Probe.picked = (ufunc, method, inputs, kwargs)
        return NotImplemented


def _concrete(v: object) -> object:
    if type(v) is Sym:
        return v.a
    if type(v) in (list, tuple):
        return type(v)(_concrete(item) for item in v)
    return v


def _root(a: np.ndarray) -> np.ndarray:
    while a.base is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _arrays(values) -> list[np.ndarray]:
    """The arrays among ``values`` (and in lists or tuples of them)."""
    found = []
    for v in values:
        if isinstance(v, np.ndarray):
            found.append(v)
        elif type(v) in (list, tuple):
            found.extend(_arrays(v))
    return found


_METADATA = {np.ndim, np.shape, np.size, np.result_type}
_VIEWS = {np.broadcast_to, np.expand_dims, np.swapaxes, np.moveaxis, np.squeeze, np.transpose}
_WITH_OUT = {np.sum, np.mean, np.prod, np.cumprod, np.concatenate, np.dot, np.einsum}
_CONSTANT = {np.ones_like, np.zeros_like}


@dataclass
class _Step:
    """One numpy call of the program: ``fn(*args, **kwargs)``, writing ``writes``."""

    fn: Callable
    args: tuple
    kwargs: dict
    writes: tuple[np.ndarray, ...]
    what: tuple


class _Program:
    """The numpy calls made on symbols, in order, each with its output buffer."""

    def __init__(self) -> None:
        self.steps: list[_Step] = []
        self.buffers: dict[int, np.ndarray] = {}  # by id of the root array: the program's own
        self.order: dict[int, int] = {}  # each buffer's place among them, by id
        self.restored: set[int] = set()

    # ---- making buffers and steps -----------------------------------------------------------

    def sym(self, a: np.ndarray) -> Sym:
        self._own(_root(a))
        return Sym(a, self)

    def _own(self, root: np.ndarray) -> None:
        if id(root) not in self.buffers:
            self.buffers[id(root)] = root
            self.order[id(root)] = len(self.order)

    def zeros(self, shape: tuple[int, ...]) -> Sym:
        """A new buffer of zeros, zeroed again on every replay."""
        buffer = self.sym(np.zeros(shape))
        np.copyto(buffer, 0.0)
        return buffer

    def _target(self, out: object) -> np.ndarray:
        """The array a step writes: a buffer, or a constant that the program takes over (the
        step first restores its value, so each replay starts from it)."""
        a = _concrete(out)
        root = _root(a)
        if id(root) not in self.buffers and id(root) not in self.restored:
            self.restored.add(id(root))
            saved = root.copy()
            self._append(np.copyto, (root, saved), {}, (root,))
        return a

    def _append(self, fn, args, kwargs, writes) -> None:
        for w in writes:
            self._own(_root(w))
        self.steps.append(_Step(fn, args, kwargs, writes, self._describe(fn, args, kwargs)))

    def _describe(self, fn, args, kwargs) -> tuple:
        """What a step does, for comparing two traces: the call, and each argument by kind (a
        buffer by its place among the buffers, a constant by its value)."""
        order = self.order

        def one(v):
            if isinstance(v, _NDARRAY):
                root = _root(v)
                if id(root) in order:
                    offset = v.__array_interface__["data"][0] - \
                        root.__array_interface__["data"][0]
                    return ("buffer", order[id(root)], offset, v.shape, v.strides)
                return ("array", v.shape, v.dtype.str, v.strides,
                        v.tobytes() if v.size <= 4096 else hash(v.tobytes()))
            if type(v) in (list, tuple):
                return tuple(one(item) for item in v)
            if isinstance(v, slice):
                return ("slice", v.start, v.stop, v.step)
            return (type(v).__name__, repr(v))

        name = getattr(fn, "__qualname__", None) or repr(fn)
        return (name, tuple(one(v) for v in args),
                tuple((key, one(v)) for key, v in sorted(kwargs.items())))

    # ---- what symbols dispatch to -----------------------------------------------------------

    def ufunc(self, ufunc, method, inputs, kwargs):
        fn = ufunc if method == "__call__" else getattr(ufunc, method)
        args = tuple(_concrete(v) for v in inputs)
        out = kwargs.pop("out", None)
        if method == "at":
            target = self._target(inputs[0])
            fn(*args, **kwargs)
            self._append(fn, args, kwargs, (target,))
            return None
        if out is not None:
            out = out[0] if type(out) is tuple else out
            target = self._target(out)
            fn(*args, out=target, **kwargs)
            self._append(fn, args, {**kwargs, "out": target}, (target,))
            return out if type(out) is Sym else self.sym(target)
        result = np.asarray(fn(*args, **kwargs))
        self._append(fn, args, {**kwargs, "out": result}, (result,))
        return self.sym(result)

    def power(self, x: Sym, y: object):
        """``x ** y`` by the ufunc numpy's ``**`` would pick (``square`` for ``** 2``)."""
        _Probe.picked = ()
        try:
            x.a.view(_Probe) ** _concrete(y)
        except TypeError:
            pass
        if not _Probe.picked:
            raise ReplayError(f"** of a traced value by {type(y).__name__} has no replay")
        ufunc, method, inputs, kwargs = _Probe.picked
        _Probe.picked = ()
        inputs = tuple(x if v is not None and type(v) is _Probe else v for v in inputs)
        return self.ufunc(ufunc, method, inputs, dict(kwargs))

    def getitem(self, x: Sym, index: object):
        if any(type(part) is Sym for part in (index if type(index) is tuple else (index,))):
            raise ReplayError(
                "indexing by a mask or indices computed from x: the result's shape would "
                "depend on the values (use where)"
            )
        a = x.a
        if type(index) is slice or is_basic(index):
            view = a[index]
            if not isinstance(view, _NDARRAY):  # one entry: a 0-d view instead
                view = a[(*index, Ellipsis) if type(index) is tuple else (index, Ellipsis)]
            return Sym(view, self)
        result = np.array(a[index])
        self._append(_take, (a, index, result), {}, (result,))
        return self.sym(result)

    def function(self, func, args, kwargs):
        concrete = tuple(_concrete(v) for v in args)
        kwargs = {key: _concrete(v) for key, v in kwargs.items()}
        if func in _METADATA:
            return func(*concrete, **kwargs)
        if func in _CONSTANT:
            return func(*concrete, **kwargs)
        if func in _VIEWS or func is np.reshape:
            result = func(*concrete, **kwargs)
            source = concrete[0]
            if isinstance(source, _NDARRAY) and np.shares_memory(result, source):
                return Sym(result, self)
            if func is not np.reshape:
                raise ReplayError(f"numpy.{func.__name__} copied a traced value")
            result = np.array(result)  # a copy: the entries in C order
            self._append(np.copyto, (result.reshape(source.shape), source), {}, (result,))
            return self.sym(result)
        if func is np.copyto:
            target = self._target(args[0])
            func(target, *concrete[1:], **kwargs)
            self._append(np.copyto, (target, *concrete[1:]), kwargs, (target,))
            return None
        if func is np.where:
            condition, a, b = concrete
            result = np.asarray(np.where(condition, a, b))
            self._append(_where, (condition, a, b, result), {}, (result,))
            return self.sym(result)
        if func is np.astype:
            if np.dtype(concrete[1]) != concrete[0].dtype:
                raise ReplayError(f"ad.compile replays float64 only: astype to "
                                  f"{np.dtype(concrete[1])}")
            return args[0]
        if func in _WITH_OUT:
            out = kwargs.pop("out", None)
            if out is not None:
                target = self._target(out)
                func(*concrete, out=target, **kwargs)
                self._append(func, concrete, {**kwargs, "out": target}, (target,))
                return self.sym(target)
            result = np.asarray(func(*concrete, **kwargs))
            self._append(func, concrete, {**kwargs, "out": result}, (result,))
            return self.sym(result)
        raise ReplayError(f"numpy.{getattr(func, '__name__', func)} of a traced value has no "
                          "replay in ad.compile")


def _take(a: np.ndarray, index: object, out: np.ndarray) -> None:
    np.copyto(out, a[index])


def _where(condition, a, b, out: np.ndarray) -> None:
    """``np.where(condition, a, b)`` into ``out``: the same entries, selected."""
    np.copyto(out, b)
    np.copyto(out, a, where=condition)


# ---- the tape and the cotangent store on symbols -------------------------------------------


class _SymbolTape(Tape):
    """A tape whose values are symbols: recording on it writes the program of a replay."""

    __slots__ = ("program",)

    def __init__(self, program: _Program) -> None:
        super().__init__()
        self.program = program

    def input(self, value: Sym) -> Box:
        self.ns, self._ops = FLOAT64, _OPS[FLOAT64.name]
        box = Tape.push(self, "input", (), value)
        box._grad = None
        self.leaves.append(weakref.ref(box))
        return box

    def leaf(self, value: object) -> Box:
        raise ReplayError("ad.compile traces a function of one array")

    def push(self, op, links, ans):
        raise ReplayError(f"ad.compile does not replay {op!r} (checkpointing): use ad.grad")

    def retain(self, box: Box) -> None:
        raise ReplayError("ad.compile does not replay retain_grad: use ad.grad")

    def _cotangents(self, shapes):
        return _SymbolCotangents(self.ns, shapes, self.program)


class _SymbolCotangents(Cotangents):
    """The cotangent store on symbols: the same decisions, with buffers of the program where
    the store makes new arrays."""

    __slots__ = ("program",)

    def __init__(self, ns, shapes, program: _Program) -> None:
        super().__init__(ns, shapes)
        self.program = program

    def add(self, i: int, c: object) -> None:
        """As the store adds, except that a plain array (a cotangent made of the trace's
        constants alone) is never taken for a fresh buffer: adding a symbol into it in place
        would leave the slot holding the array, whose values then depend on x, as a constant
        of the program."""
        super().add(i, c.view() if type(c) is _NDARRAY else c)

    def result(self, i: int, dtype: object = np.float64) -> object:
        if self.pending and i in self.pending:
            self._settle(i)
        g = self.slots[i]
        self.slots[i] = None
        if g is None:
            return self.ns.zeros(self.shapes[i])
        if type(g) is Deferred:
            return g.value()
        if np.shape(g) == self.shapes[i]:
            return g
        return np.broadcast_to(g, self.shapes[i])

    def _zeros(self, shape, dtype):
        return self.program.zeros(shape)

    def _empty(self, shape, dtype):
        return self.program.sym(np.zeros(shape))  # every entry is written before it is read

    def _copy(self, g, shape):
        buffer = self.program.sym(np.zeros(shape))
        np.copyto(buffer, np.broadcast_to(g, shape))
        return buffer


# ---- the compiled gradient ------------------------------------------------------------------


@dataclass
class _Compiled:
    """The replayable program for one input shape.

    ``calls`` are the steps as calls.  For a large input or gradient, the calls that read the
    input buffer ``x`` or write the gradient's buffer are in ``rebound``: each call takes views
    of the caller's array and of a new gradient array instead (no copy in, no copy out), and
    drops them when it returns (the caller's arrays are not kept alive, and a gradient the
    caller has dropped is freed before the next call allocates one)."""

    shape: tuple[int, ...]
    x: np.ndarray  # the input buffer
    calls: list[tuple[Callable, tuple, dict]]
    gradient: object  # an array of the program (or a constant)
    value: object
    stats: TapeStats
    buffer_bytes: int
    signature: tuple
    rebound: tuple = ()  # (call index, fn, args, kwargs, where each rebound array is)
    rebind_x: bool = False
    handover: bool = False  # the gradient is a buffer made anew for each call


def _trace(f: Callable, x: np.ndarray, with_value: bool) -> _Compiled:
    program = _Program()
    tape = _SymbolTape(program)
    leaf = tape.input(program.sym(x))
    with np.errstate(all="ignore"):
        out = f(leaf)
        if type(out) is Box:
            if out.size != 1:
                raise ReplayError(f"grad needs a scalar-valued function; f returned shape "
                                  f"{out.shape}")
            tape.backward(out)
            gradient, value = leaf._grad, out.value
        else:
            gradient, value = np.zeros(x.shape), out
    gradient, value = _concrete(gradient), _concrete(value)
    outputs = [gradient] + ([value] if with_value else [])
    steps = _live(program.steps, outputs)
    protected = {id(_root(a)) for a in (x, *_arrays(outputs))}
    steps = _without_copies(steps, protected)
    _share_buffers(steps, protected | program.restored)
    calls = [_call(step) for step in steps]
    buffers = {id(_root(w)): _root(w) for step in steps for w in step.writes}
    compiled = _Compiled(
        x.shape, x, calls, gradient, value, tape.stats(),
        sum(b.nbytes for b in buffers.values()), tuple(step.what for step in program.steps),
    )
    _plan_rebinding(compiled, with_value)
    return compiled


def _plan_rebinding(compiled: _Compiled, with_value: bool) -> None:
    """Read a large input in place and hand a large gradient buffer over, where the calls
    reach them only as arguments (views made again for each call from their places)."""
    x, g = compiled.x, compiled.gradient
    roots = {}
    if _large(x):
        roots[id(x)] = "x"
    if (_large(g) and isinstance(g, _NDARRAY) and g.base is None and g.shape == x.shape
            and g.flags.c_contiguous and g is not x
            and not (with_value and isinstance(compiled.value, _NDARRAY)
                     and _root(compiled.value) is g)):
        roots[id(g)] = "g"
    if not roots:
        return
    rebound = []
    for k, (fn, args, kwargs) in enumerate(compiled.calls):
        nested = _arrays([v for v in (*args, *kwargs.values()) if type(v) in (list, tuple)])
        for a in nested:
            roots.pop(id(_root(a)), None)  # reached inside a list: copy instead
        places = tuple(_place(v, roots) for v in args)
        kw_places = {key: _place(v, roots) for key, v in kwargs.items()}
        if any(places) or any(kw_places.values()):
            rebound.append((k, fn, args, kwargs, places, kw_places))
    rebound = [(k, fn, args, kwargs, tuple(p if p and p[0] in roots.values() else None
                                           for p in places),
                {key: p if p and p[0] in roots.values() else None
                 for key, p in kw_places.items()})
               for k, fn, args, kwargs, places, kw_places in rebound]
    compiled.rebound = tuple(r for r in rebound if any(r[4]) or any(r[5].values()))
    compiled.rebind_x = "x" in roots.values()
    compiled.handover = "g" in roots.values()


def _large(a: object) -> bool:
    """Big enough (64 KiB) that a pass over it costs more than making a few views."""
    return isinstance(a, _NDARRAY) and a.nbytes >= 65536


def _place(v: object, roots: dict[int, str]) -> tuple | None:
    """Where the array ``v`` lies in one of ``roots``: (name, byte offset, shape, strides)."""
    if not isinstance(v, _NDARRAY):
        return None
    root = _root(v)
    name = roots.get(id(root))
    if name is None:
        return None
    offset = v.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return (name, offset, v.shape, v.strides, v.dtype)


def _at(place: tuple, arrays: dict[str, np.ndarray]) -> np.ndarray:
    name, offset, shape, strides, dtype = place
    return np.ndarray(shape, dtype, arrays[name], offset, strides)


def _share_buffers(steps: list[_Step], protected: set[int]) -> None:
    """Give a buffer whose last use has passed to a later buffer of the same shape and dtype,
    so that a replay holds about as many arrays at once as the recording engine does: every
    buffer is written before it is read within a call, so what a buffer held before its first
    write does not matter.  The steps' arrays are re-made as views of the buffers they now
    lie in (the same shapes, strides and offsets)."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    roots: dict[int, np.ndarray] = {}
    for k, step in enumerate(steps):
        for a in (*step.writes, *_arrays(step.args), *_arrays(step.kwargs.values())):
            root = _root(a)
            roots[id(root)] = root
            first.setdefault(id(root), k)
            last[id(root)] = k
    written = {id(_root(w)) for step in steps for w in step.writes}
    shareable = {key for key, root in roots.items()
                 if key in written and key not in protected and root.flags.c_contiguous
                 and root.base is None and steps[first[key]].writes
                 and any(_root(w) is root for w in steps[first[key]].writes)}
    free: dict[tuple, list[np.ndarray]] = {}
    moved: dict[int, np.ndarray] = {}
    ending: dict[int, list[int]] = {}
    for key in shareable:
        ending.setdefault(last[key], []).append(key)
    starting: dict[int, list[int]] = {}
    for key in shareable:
        starting.setdefault(first[key], []).append(key)
    for k in range(len(steps)):
        for key in starting.get(k, ()):
            root = roots[key]
            pool = free.get((root.shape, root.dtype.str))
            if pool:
                moved[key] = pool.pop()
        for key in ending.get(k, ()):
            root = roots[key]
            free.setdefault((root.shape, root.dtype.str), []).append(moved.get(key, root))
    if not moved:
        return

    def remade(v):
        if isinstance(v, _NDARRAY):
            root = _root(v)
            target = moved.get(id(root))
            if target is None:
                return v
            offset = v.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            return np.ndarray(v.shape, v.dtype, target, offset, v.strides)
        if type(v) in (list, tuple):
            return type(v)(remade(item) for item in v)
        return v

    for step in steps:
        step.args = remade(step.args)
        step.kwargs = {key: remade(v) for key, v in step.kwargs.items()}
        step.writes = remade(step.writes)


def _without_copies(steps: list[_Step], protected: set[int]) -> list[_Step]:
    """Let a step write straight into the place its result is then copied to: for a
    ``copyto(dst, src)`` whose ``src`` is a whole buffer written by one earlier step and read by
    nothing else, with nothing in between touching ``dst``'s buffer, that step writes ``dst``
    (viewed in ``src``'s shape) and the copy goes."""
    touches: dict[int, list[int]] = {}
    for k, step in enumerate(steps):
        for a in (*step.writes, *_arrays(step.args), *_arrays(step.kwargs.values())):
            touches.setdefault(id(_root(a)), []).append(k)
    dropped = set()
    for k, step in enumerate(steps):
        if step.fn is not np.copyto or step.kwargs or len(step.args) != 2:
            continue
        dst, src = step.args
        if not (isinstance(src, _NDARRAY) and isinstance(dst, _NDARRAY)):
            continue
        root = _root(src)
        users = sorted(set(touches.get(id(root), ())))
        if (id(root) in protected or len(users) != 2 or users[1] != k or src.size != root.size
                or not (root.flags.c_contiguous and src.flags.c_contiguous
                        and dst.flags.c_contiguous) or dst.size != root.size
                or dst.dtype != root.dtype):
            continue
        writer = steps[users[0]]
        if writer.kwargs.get("out") is not root or any(a is root or _root(a) is root
                                                      for a in _arrays(writer.args)):
            continue
        if any(users[0] < j < k for j in touches.get(id(_root(dst)), ())):
            continue
        target = dst.reshape(root.shape)
        writer.kwargs = {**writer.kwargs, "out": target}
        writer.writes = (target,)
        dropped.add(k)
    return [step for k, step in enumerate(steps) if k not in dropped]


def _live(steps: list[_Step], outputs: list[object]) -> list[_Step]:
    """The steps whose results the outputs need (a step writing only buffers nothing later
    reads is dropped: the forward sum of a gradient without its value)."""
    needed = {id(_root(a)) for a in _arrays(outputs)}
    kept = []
    for step in reversed(steps):
        if any(id(_root(w)) in needed for w in step.writes):
            kept.append(step)
            needed.update(id(_root(a)) for a in _arrays(step.args))
            needed.update(id(_root(a)) for a in _arrays(step.kwargs.values()))
    return kept[::-1]


_OUT_BY_NAME = (np.maximum, np.minimum)  # a third positional argument is deprecated there


def _call(step: _Step) -> tuple[Callable, tuple, dict]:
    """The step as a call: ``out`` passed by position to a ufunc, the cheapest way."""
    kwargs = dict(step.kwargs)
    if type(step.fn) is np.ufunc and set(kwargs) == {"out"} and step.fn not in _OUT_BY_NAME:
        return step.fn, (*step.args, kwargs["out"]), {}
    return step.fn, step.args, kwargs


def _check_points(example: np.ndarray) -> list[np.ndarray]:
    """Other points of the example's shape to trace again: each entry scaled by a seeded
    factor in [0.5, 1.5] and moved by a seeded amount in [-0.1, 0.1]; and that point negated
    (so a branch on a sign is taken the other way)."""
    rng = np.random.default_rng(20240518)
    moved = example * rng.uniform(0.5, 1.5, example.shape) + rng.uniform(-0.1, 0.1,
                                                                           example.shape)
    return [moved, -moved]


class Replay:
    """The gradient of ``f`` (and its value), replayed from a program traced once per input
    shape; see :func:`compile`."""

    def __init__(self, f: Callable, example_x: object, with_value: bool, retrace: bool,
                 check_at: object = None) -> None:
        self.f = f
        self.with_value = with_value
        self.retrace = retrace
        self._programs: dict[tuple[int, ...], _Compiled] = {}
        self.program = self._compile(example_x, check_at)

    def _compile(self, example: object, check_at: object = None) -> _Compiled:
        x = np.array(example, dtype=np.float64)
        if np.asarray(example).dtype == object:
            raise ReplayError("ad.compile replays float64 only: use ad.grad for mpmath")
        program = _trace(self.f, x, self.with_value)
        given = check_at is not None
        others = [np.array(check_at, dtype=np.float64)] if given else _check_points(x)
        for k, other in enumerate(others):
            if other.shape != x.shape:
                raise ReplayError(f"check_at has shape {other.shape}, the example {x.shape}")
            try:
                second = _trace(self.f, other, self.with_value)
            except ReplayError:
                raise
            except Exception:
                if given or k == 0:
                    raise
                continue  # f is not defined at the negated point: that check is skipped
            if second.signature != program.signature:
                raise ReplayError(_differs(program.signature, second.signature))
        self._programs[x.shape] = program
        return program

    def __call__(self, x: object, out: np.ndarray | None = None):
        program = self.program
        if type(x) is not _NDARRAY or x.dtype != np.float64:
            x = np.asarray(x)
            if x.dtype != np.float64:
                raise ReplayError(f"compiled for float64 inputs of shape {program.shape}; got "
                                  f"{x.dtype} (convert it, or compile for it)")
        if x.shape != program.shape:
            program = self._programs.get(x.shape)
            if program is None:
                if not self.retrace:
                    raise ReplayError(
                        f"compiled for inputs of shape {self.program.shape}; got shape "
                        f"{x.shape} (compile again, or pass retrace=True)"
                    )
                program = self._compile(x)
        gradient = out
        if program.handover:
            if (gradient is None or type(gradient) is not _NDARRAY or gradient.shape != x.shape
                    or gradient.dtype != np.float64 or not gradient.flags.c_contiguous):
                gradient = np.empty(x.shape)
            arrays = {"x": x, "g": gradient}
        else:
            arrays = {"x": x}
        calls = program.calls
        if program.rebind_x and not x.flags.c_contiguous:
            arrays["x"] = x = np.ascontiguousarray(x)
        if not program.rebind_x:
            np.copyto(program.x, x)
        for k, fn, args, kwargs, places, kw_places in program.rebound:
            calls[k] = (fn, tuple(v if p is None else _at(p, arrays)
                                  for v, p in zip(args, places, strict=True)),
                        {key: v if kw_places[key] is None else _at(kw_places[key], arrays)
                         for key, v in kwargs.items()} if kwargs else kwargs)
        for fn, args, kwargs in calls:
            fn(*args, **kwargs)
        for k, fn, args, kwargs, _, _ in program.rebound:  # hold no view of x or the gradient
            calls[k] = (fn, args, kwargs)
        if not program.handover:
            if out is None:
                gradient = np.array(program.gradient)
            else:
                np.copyto(out, program.gradient)
        elif gradient is not out and out is not None:
            np.copyto(out, gradient)
            gradient = out
        if not self.with_value:
            return gradient
        value = program.value
        if isinstance(value, _NDARRAY):
            value = value[()] if value.ndim == 0 else value.copy()
        return value, gradient

    def stats(self) -> TapeStats:
        """The traced tape's length and the peak cotangent bytes of its sweep."""
        return self.program.stats

    @property
    def buffer_bytes(self) -> int:
        """The bytes of the buffers the replay writes (allocated once, reused every call)."""
        return self.program.buffer_bytes

    @property
    def steps(self) -> int:
        """The numpy calls of one replay."""
        return len(self.program.calls)


def _differs(first: tuple, second: tuple) -> str:
    for k, (a, b) in enumerate(itertools.zip_longest(first, second)):
        if a != b:
            what = f"step {k}: {a[0] if a else 'nothing'} against {b[0] if b else 'nothing'}"
            break
    else:  # pragma: no cover - signatures differ somewhere
        what = "?"
    return ("f runs different numpy operations at another point of the same shape (" + what +
            "): its Python control flow or its constants depend on the values of x, so a "
            "traced program cannot be replayed; use ad.grad (or write the branch with where)")


def compile(f: Callable, example_x: object, *, value: bool = False,  # noqa: A001
            retrace: bool = False, check_at: object = None) -> Replay:
    """``f``'s gradient (``value=True``: ``(f(x), gradient)``), like :func:`~.grad`, traced
    once at ``example_x`` and replayed on each input of its shape and dtype with buffers
    allocated once.

    ``f`` is traced again at ``check_at`` (default: the example moved entrywise by seeded
    amounts, and that point negated) and refused if its program differs there.  An input of
    another shape is refused, or traced again when ``retrace=True``; an input of another dtype
    is refused.  See the module docstring for when replay is valid.
    """
    return Replay(f, example_x, value, retrace, check_at)


__all__ = ["Replay", "ReplayError", "Sym", "compile"]
