"""Wall-clock caps (``diffbench.deadline``) where Python cannot raise at once."""

import gc
import sys
import time

import pytest

from diffbench.deadline import Deadline, TimeUp


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
