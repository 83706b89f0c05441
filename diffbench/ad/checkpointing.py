"""Gradient checkpointing: values recomputed by the backward sweep instead of kept.

``checkpoint(fn)`` makes ``fn`` one op of the tape whose only saved values are its traced
arguments: the forward runs ``fn`` untraced, the VJP re-runs it on a fresh tape from those
arguments and pulls the cotangent through it.  ``checkpoint_chain(step, x, length, schedule)``
runs the chain x_{k+1} = step(x_k) under a :class:`Schedule`: ``none`` (every step's tape
kept), ``every:K`` and ``sqrt`` (segments, each a checkpoint) or ``revolve`` (binomial
checkpointing, Griewank & Walther, ACM TOMS 26(1), 2000, "Algorithm 799: Revolve").

Invariants:

* A recomputation runs the same float operations in the same order as the first run, and the
  backward sweep of a re-run tape applies the same VJPs in the same order as the whole tape
  would.  So a checkpointed gradient is bitwise the one without checkpoints wherever nothing
  recorded after the checkpointed call reads its arguments, as in a chain (a later reader's
  contribution would otherwise be added before, not after, the checkpoint's sum).
* ``revolve`` holds at most ``snapshots`` states of the chain at once (x_0 among them), besides
  the state being advanced and one step's tape, and runs the fewest steps any schedule with
  that many states can: :func:`revolve_advances` untaped steps and each step once on a tape.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from diffbench.ad.engine import Box, Tape

KINDS = ("none", "every:K", "sqrt", "revolve")
"""The schedules, as a config or a call names them."""


@dataclass(frozen=True)
class Schedule:
    """How a chain of steps is checkpointed: ``kind`` is ``none``, ``every``, ``sqrt`` or
    ``revolve``; ``every`` is K of ``every:K`` (steps per segment), ``snapshots`` revolve's
    budget of stored states."""

    kind: str
    every: int | None = None
    snapshots: int | None = None

    def __str__(self) -> str:
        return f"every:{self.every}" if self.kind == "every" else self.kind

    def segments(self, length: int) -> list[int]:
        """The steps of each checkpointed segment (``every:K``: K each, the last what is left;
        ``sqrt``: ⌈√length⌉ segments as equal as whole steps allow)."""
        if self.kind == "every":
            whole, rest = divmod(length, self.every)
            return [self.every] * whole + ([rest] if rest else [])
        if self.kind == "sqrt":
            count = math.isqrt(length - 1) + 1
            return [length // count + (j < length % count) for j in range(count)]
        raise ValueError(f"the {self.kind} schedule has no segments")

    def forward_steps(self, length: int) -> int:
        """Evaluations of the step in one gradient of a chain of ``length`` steps: once each
        (``none``), twice each (segments: untaped, then taped again by the backward sweep), or
        :func:`revolve_advances` untaped and once each taped (``revolve``)."""
        if self.kind == "none":
            return length
        if self.kind == "revolve":
            return revolve_advances(length, self.snapshots) + length
        return 2 * length

    def stored(self, length: int) -> int | None:
        """The states of the chain the schedule stores at most: one per segment, revolve's
        budget; None for ``none``, which keeps every step's tape instead."""
        if self.kind == "none":
            return None
        if self.kind == "revolve":
            return self.snapshots
        return len(self.segments(length))


def parse_schedule(spec: str, snapshots: int | None = None) -> Schedule:
    """The schedule ``spec`` names (one of :data:`KINDS`); ``snapshots`` is for ``revolve``
    only, and it needs them.  Raises ValueError saying what is wrong."""
    if not isinstance(spec, str):
        raise ValueError(f"a schedule is a string, one of {', '.join(KINDS)}; got {spec!r}")
    if snapshots is not None:
        if isinstance(snapshots, bool) or not isinstance(snapshots, int) or snapshots < 1:
            raise ValueError(f"snapshots must be a whole number >= 1, got {snapshots!r}")
        if spec != "revolve":
            raise ValueError(f"snapshots are revolve's budget of stored states; the {spec} "
                             "schedule takes none")
    if spec in ("none", "sqrt"):
        return Schedule(spec)
    if spec == "revolve":
        if snapshots is None:
            raise ValueError("revolve needs snapshots >= 1: the states it may store at once")
        return Schedule(spec, snapshots=snapshots)
    if spec.startswith("every:"):
        steps = spec[len("every:"):]
        if not steps.isdigit() or int(steps) < 1:
            raise ValueError(f"every:K needs K, the steps per segment, a whole number >= 1; "
                             f"got {spec!r}")
        return Schedule("every", every=int(steps))
    raise ValueError(f"unknown schedule {spec!r}: one of none, every:K (K steps per "
                     "checkpointed segment), sqrt (⌈√L⌉ segments), revolve (with snapshots)")


# ---- revolve's counts: binomial checkpointing ------------------------------------------------


def binomial_length(snapshots: int, repetitions: int) -> int:
    """β(s, r) = C(s + r, s): the longest chain that s stored states reverse with no step
    advanced more than r times (0 for r < 0)."""
    return math.comb(snapshots + repetitions, snapshots) if repetitions >= 0 else 0


def _repetitions(length: int, snapshots: int) -> int:
    """The least r with β(s, r) >= length."""
    r = 0
    while binomial_length(snapshots, r) < length:
        r += 1
    return r


def revolve_advances(length: int, snapshots: int) -> int:
    """The fewest untaped steps that reverse a chain of ``length`` steps with at most
    ``snapshots`` stored states, the first state among them: t = r·l − β(s + 1, r − 1), r the
    least with β(s, r) >= l (Griewank & Walther, *Evaluating Derivatives*, 2008, §12.3)."""
    r = _repetitions(length, snapshots)
    return r * length - binomial_length(snapshots + 1, r - 1)


def revolve_split(length: int, snapshots: int) -> int:
    """Where revolve stores its next state, m steps on (0 < m < length): any m with
    β(s, r − 2) <= m <= β(s, r − 1) and β(s − 1, r − 1) <= length − m <= β(s − 1, r) reverses
    the first m steps with s states and r − 1 repetitions and the rest with s − 1 states and r
    (the counts then add up to :func:`revolve_advances`); the largest such m."""
    r = _repetitions(length, snapshots)
    return min(binomial_length(snapshots, r - 1),
               length - binomial_length(snapshots - 1, r - 1))


# ---- the ops ---------------------------------------------------------------------------------


def checkpoint(fn: Callable[..., object]) -> Callable[..., object]:
    """``fn`` as one recorded op whose only saved values are its traced arguments.

    The forward runs ``fn`` on their values without recording its internals; the op's VJPs
    re-run ``fn`` on a fresh tape from them (once per backward) and pull the cotangent through.
    Checkpoints inside ``fn`` are recorded when it re-runs, so they nest.  ``fn`` returns one
    array and may read traced values only through its arguments.
    """

    def checkpointed(*args: object) -> object:
        traced = tuple(k for k, arg in enumerate(args) if type(arg) is Box)
        if not traced:
            return fn(*args)
        tape = args[traced[0]].tape
        if any(args[k].tape is not tape for k in traced):
            raise ValueError("checkpoint: the arguments belong to different tapes")
        values = [arg.value if type(arg) is Box else arg for arg in args]
        out = fn(*values)
        if type(out) is Box:
            raise ValueError("checkpoint: the function read a traced value it was not given; "
                             "pass that value as an argument")
        if isinstance(out, (tuple, list, dict)):
            raise ValueError("checkpoint: the function must return one array")
        rerun = _Rerun(fn, values, traced, np.shape(out))
        links = tuple((args[k].index, rerun.vjp(position)) for position, k in enumerate(traced))
        return tape.push("checkpoint", links, out)

    return functools.wraps(fn)(checkpointed)


class _Rerun:
    """``fn`` re-run on a fresh tape from the saved ``values``: the cotangents of its traced
    arguments (positions ``traced``), computed once for each cotangent of its output and handed
    out, one to each VJP, in the order the sweep calls them."""

    def __init__(self, fn: Callable[..., object], values: list, traced: tuple[int, ...],
                 shape: tuple[int, ...]):
        self.fn, self.values, self.traced, self.shape = fn, values, traced, shape
        self._for: object = None  # the output cotangent the held results are for
        self._results: list = []

    def vjp(self, position: int) -> Callable[[object], object]:
        return lambda g: self.cotangent(position, g)

    def cotangent(self, position: int, g: object) -> object:
        if g is not self._for:
            tape = Tape()
            args = list(self.values)
            leaves = []
            for k in self.traced:
                args[k] = leaf = tape.leaf(self.values[k])
                leaves.append(leaf)
            _pull(tape, self.fn(*args), g, self.shape)
            self._for, self._results = g, [leaf.grad for leaf in leaves]
        result = self._results[position]
        if position == len(self.traced) - 1:
            self._for, self._results = None, []
        return result


def _pull(tape: Tape, out: object, g: object, shape: tuple[int, ...]) -> None:
    """Set the inputs' ``grad`` on ``tape``: the backward of ``out`` seeded with ``g`` spread to
    ``shape``, or zeros where ``out`` is untraced (computed without the inputs)."""
    if type(out) is not Box:
        for reference in tape.leaves:
            leaf = reference()
            if leaf is not None:
                leaf.grad = tape.ns.zeros(leaf.value.shape)
        return
    tape.backward(out, seed=np.broadcast_to(g, shape))


def _run(step: Callable[[object], object], x: object, steps: int) -> object:
    for _ in range(steps):
        x = step(x)
    return x


def checkpoint_chain(step: Callable[[object], object], x: object, length: int,
                     schedule: str, snapshots: int | None = None) -> object:
    """x_length of the chain x_{k+1} = step(x_k) from x_0 = ``x``, checkpointed by
    ``schedule`` (see :func:`parse_schedule`; ``snapshots`` for ``revolve``).  The gradient is
    bitwise the same under every schedule; how many times ``step`` runs is
    :meth:`Schedule.forward_steps`.  Raises ValueError on a bad schedule or length."""
    plan = parse_schedule(schedule, snapshots)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"a chain's length must be a whole number >= 1, got {length!r}")
    if plan.kind == "none" or type(x) is not Box:
        return _run(step, x, length)
    if plan.kind == "revolve":
        return _revolve(step, x, length, plan.snapshots)
    for steps in plan.segments(length):
        x = checkpoint(lambda x, steps=steps: _run(step, x, steps))(x)
    return x


class _TapedStep:
    """One step taped on its own from the state ``x``: its output's ``value``, and ``pull`` for
    the cotangent of ``x``."""

    def __init__(self, step: Callable[[object], object], x: object):
        self.tape = Tape()
        self.leaf = self.tape.leaf(x)
        self.out = step(self.leaf)
        self.value = self.out.value if type(self.out) is Box else self.out

    def pull(self, g: object) -> object:
        _pull(self.tape, self.out, g, np.shape(self.value))
        return self.leaf.grad


def _revolve(step: Callable[[object], object], x: Box, length: int, snapshots: int) -> Box:
    """The chain as one op of ``x``'s tape, reversed by binomial checkpointing.

    The forward advances untaped from x_0 storing the states revolve will restore first, down
    to the last step, which it tapes (its output is the op's value); the VJP reverses that
    tape, then the rest of the chain by :func:`revolve_split`, restoring, advancing and taping
    one step at a time, each stored state dropped once the steps after it are reversed.
    """
    states = {0: x.value}
    a, budget = 0, snapshots
    while length - a > 1:
        m = revolve_split(length - a, budget)
        states[a + m] = _run(step, states[a], m)
        a, budget = a + m, budget - 1
    last = [_TapedStep(step, states[length - 1])]

    def pull(k: int, g: object) -> object:
        """The cotangent of x_k from that of x_{k+1}: step k taped from states[k]."""
        taped = last.pop() if k == length - 1 and last else _TapedStep(step, states[k])
        return taped.pull(g)

    def reverse(a: int, b: int, budget: int, g: object) -> object:
        """The cotangent of x_a from g, that of x_b: steps a … b − 1 reversed with at most
        ``budget`` stored states, x_a's (in ``states``) among them."""
        while b - a > 1:
            m = revolve_split(b - a, budget)
            if a + m not in states:
                states[a + m] = _run(step, states[a], m)
            g = reverse(a + m, b, budget - 1, g)
            del states[a + m]
            b = a + m
        return pull(a, g)

    return x.tape.push("revolve", ((x.index, lambda g: reverse(0, length, snapshots, g)),),
                       last[0].value)
