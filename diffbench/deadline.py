"""Wall-clock caps on code running in the main thread, enforced by an interval timer.

``with Deadline(seconds, message) as deadline:`` arms ``SIGALRM`` (``signal.setitimer``) so
that, once the time is up, :class:`TimeUp` is raised inside whatever Python code is running
then: a user's function that loops, a sleep, an mpmath computation.  It cannot interrupt a
single call into C code (a numpy operation, an XLA compile) until that call returns, and
outside the main thread it does not arm at all (the block then runs uncapped).

Deadlines nest: the timer is armed for the earliest one, and each fires its own
:class:`TimeUp`, so a cap inside a case (its reference) tells its own expiry from the case's.
Code that swallows the exception is interrupted again every ``REPEAT_S`` until the block ends.
The handler never raises inside this module's own code, and forgets a deadline whose block
is no longer on the stack, so that no expiry can escape the block it caps.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from types import FrameType

REPEAT_S = 0.5
"""After expiry, the exception is raised again this often until the block is left."""


class TimeUp(BaseException):
    """The time of ``deadline`` is up.  A ``BaseException``, so that the ``except Exception``
    with which a case turns its own failures into rows does not take it for one of them."""

    def __init__(self, deadline: Deadline):
        super().__init__(deadline.message)
        self.deadline = deadline


_active: list[Deadline] = []
_previous_handler: object = None
"""``SIGALRM``'s handler before the first active deadline (restored when none is left)."""
_previous_unraisable: object = None
"""``sys.unraisablehook`` before the first active deadline (restored when none is left)."""


def remaining() -> float:
    """Seconds left before the earliest active deadline (infinite when there is none)."""
    return min((d.remaining() for d in _active), default=math.inf)


def _arm() -> None:
    """Arm the timer for the earliest active deadline; with none, disarm it and restore the
    previous handler."""
    global _previous_handler, _previous_unraisable
    if not _active:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        if _previous_handler is not None:
            signal.signal(signal.SIGALRM, _previous_handler)
            _previous_handler = None
        if _previous_unraisable is not None:
            sys.unraisablehook, _previous_unraisable = _previous_unraisable, None
        return
    delay = max(min(d.expires for d in _active) - time.monotonic(), 1e-3)
    signal.setitimer(signal.ITIMER_REAL, delay, REPEAT_S)


def _unraisable(unraisable) -> None:
    """An expiry raised where Python cannot pass it on (a garbage collector's callback, a
    ``__del__``) is dropped, not printed: the timer raises it again ``REPEAT_S`` later."""
    if not isinstance(unraisable.exc_value, TimeUp):
        (_previous_unraisable or sys.__unraisablehook__)(unraisable)


def _stack(frame: FrameType | None) -> list[FrameType]:
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames


def _expired(signum: int, frame: FrameType | None) -> None:
    stack = _stack(frame)
    for deadline in list(_active):
        if not any(f is deadline.owner for f in stack):
            _active.remove(deadline)  # its block was left by an exception before __exit__
    if frame is not None and frame.f_code in _MACHINERY:
        return  # entering or leaving a deadline: the repeat comes back later
    now = time.monotonic()
    due = [d for d in _active if d.expires <= now]
    if due:
        raise TimeUp(min(due, key=lambda d: d.expires))
    _arm()  # no deadline is due: wait for the next one (or disarm)


class Deadline:
    """``seconds`` of wall time for the block (infinite: no cap); ``message`` says what ran
    out, for the :class:`TimeUp` raised at expiry.  Invariant: while any deadline is active
    in the main thread, ``SIGALRM`` is ours and the timer is armed for the earliest one."""

    def __init__(self, seconds: float, message: str):
        self.seconds, self.message = seconds, message
        self.started = self.expires = math.inf
        self.owner: FrameType | None = None

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def owns(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this deadline's expiry (not an outer one's)."""
        return isinstance(exc, TimeUp) and exc.deadline is self

    def __enter__(self) -> Deadline:
        global _previous_handler, _previous_unraisable
        self.started = time.monotonic()
        self.expires = self.started + self.seconds
        if math.isinf(self.seconds) or threading.current_thread() is not threading.main_thread():
            return self
        if _previous_handler is None:
            _previous_handler = signal.signal(signal.SIGALRM, _expired) or signal.SIG_DFL
        if _previous_unraisable is None:
            _previous_unraisable, sys.unraisablehook = sys.unraisablehook, _unraisable
        self.owner = sys._getframe(1)
        _active.append(self)
        _arm()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.owner is None:
            return
        self.owner = None
        if self in _active:
            _active.remove(self)
        _arm()


_MACHINERY = {Deadline.__enter__.__code__, Deadline.__exit__.__code__, _arm.__code__,
              _expired.__code__}
