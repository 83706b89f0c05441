"""Timing, memory and error measures: behaviour, not speed."""

import time

import numpy as np
import pytest

from diffbench.measure.error import correct_digits, gradient_error, relative_errors
from diffbench.measure.memory import traced_peak
from diffbench.measure.timing import BudgetExceeded, Timing, time_call


def test_calibration_makes_samples_long_enough():
    calls = []
    timing = time_call(lambda: calls.append(1), min_sample_s=0.005, repeats=4)
    assert len(timing.samples) == 4
    assert timing.loops > 100
    assert timing.loops * timing.median >= 0.004
    assert len(calls) >= 4 * timing.loops


def test_budget_exceeded_on_one_slow_call():
    with pytest.raises(BudgetExceeded, match="budget"):
        time_call(lambda: time.sleep(0.05), budget_s=0.01)


def test_budget_limits_samples():
    timing = time_call(lambda: time.sleep(0.02), min_sample_s=0.001, repeats=50, budget_s=0.1)
    assert 1 <= len(timing.samples) < 10


def test_timing_statistics_and_warnings():
    timing = Timing((1.0, 2.0, 3.0, 4.0, 100.0), loops=1)
    assert timing.median == 3.0 and timing.min == 1.0 and timing.iqr == 2.0
    assert timing.unstable and timing.outliers == 1
    assert "spread (IQR) 67% of the median" in timing.warnings()
    assert "1 outlier sample(s) by median/MAD" in timing.warnings()
    steady = Timing((1.0, 1.01, 1.02, 1.0, 1.01), 1)
    assert not steady.unstable and steady.warnings() == []
    assert Timing((1.0, 1.0, 1.0, 1.0, 1.3), 1).outliers == 0  # MAD 0: nothing to measure by
    short = Timing((1e-9, 1e-9), loops=1)
    assert any("resolution" in note for note in short.warnings())


def test_traced_peak_sees_numpy_buffers():
    peak = traced_peak(lambda: np.ones(1_000_000).sum())
    assert 8_000_000 <= peak < 9_000_000


def test_relative_error_and_digits():
    errors = relative_errors(np.array([1.0 + 1e-10, 0.0]), np.array([1.0, 0.0]))
    assert errors[0] == pytest.approx(1e-10, rel=1e-5) and errors[1] == 0.0
    assert correct_digits(1e-10) == pytest.approx(10.0)
    assert correct_digits(0.0) == 16.0 and correct_digits(10.0) == 0.0
    error = gradient_error(np.array([1.0, 0.5, 2.0]), np.array([1.0, 0.0, 2.0]), skip=[1])
    assert error.max == 0.0 and error.digits == 16.0
