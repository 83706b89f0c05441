"""Wall-clock caps: a loop is stopped at its deadline, nested deadlines tell their expiries
apart, swallowing the exception does not escape the cap, and an expiry that lands in a
destructor is neither reported as "Exception ignored" nor lost."""

import gc
import signal
import sys
import time

import pytest

from diffbench.deadline import Deadline, TimeUp


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_loop_stops_at_its_deadline():
    started = time.monotonic()
    with pytest.raises(TimeUp) as raised:
        with Deadline(0.2, "the loop's cap"):
            spin(10)
    assert str(raised.value) == "the loop's cap"
    assert 0.2 <= time.monotonic() - started < 1.5


def test_nested_deadlines_raise_their_own_expiry():
    with Deadline(5.0, "outer") as outer:
        with pytest.raises(TimeUp) as raised:
            with Deadline(0.1, "inner") as inner:
                spin(10)
        assert inner.owns(raised.value) and not outer.owns(raised.value)


def test_code_that_swallows_the_expiry_is_interrupted_again():
    started = time.monotonic()
    swallowed = 0
    with pytest.raises(TimeUp):
        with Deadline(0.1, "cap"):
            while True:
                try:
                    spin(10)
                except TimeUp:
                    swallowed += 1
                    if swallowed > 1:
                        raise
    assert swallowed == 2 and time.monotonic() - started < 2.0


class SlowToDelete:
    def __del__(self):
        spin(0.3)


def test_an_expiry_in_a_destructor_is_dropped_quietly_and_comes_back(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    started = time.monotonic()
    with pytest.raises(TimeUp):
        with Deadline(0.1, "cap"):
            SlowToDelete()  # the expiry lands in __del__, where no exception propagates
            spin(10)  # the repeat raises it here
    assert time.monotonic() - started < 2.0
    assert reported == []  # what Python would print as "Exception ignored in: ..."


def test_leaving_the_last_deadline_restores_the_handlers():
    handler, hook = signal.getsignal(signal.SIGALRM), sys.unraisablehook
    with Deadline(5.0, "cap"):
        assert signal.getsignal(signal.SIGALRM) is not handler
    assert signal.getsignal(signal.SIGALRM) is handler and sys.unraisablehook is hook
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_expiry_in_a_garbage_collector_callback_is_raised_again_not_printed(monkeypatch):
    unraised = []
    monkeypatch.setattr(sys, "unraisablehook", unraised.append)

    def slow_callback(phase, info):
        if phase == "start":
            time.sleep(0.3)  # the expiry lands here, where it cannot propagate

    gc.callbacks.append(slow_callback)
    started = time.monotonic()
    try:
        with pytest.raises(TimeUp), Deadline(0.1, "") as deadline:
            gc.collect()
            while True:
                time.sleep(0.01)
    finally:
        gc.callbacks.remove(slow_callback)
    assert not unraised
    assert deadline.remaining() < 0 and time.monotonic() - started < 2
    assert sys.unraisablehook == unraised.append  # restored once no deadline is left
