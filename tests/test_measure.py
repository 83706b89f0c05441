"""Timing, memory and error measures: behaviour, not speed."""

import time

import numpy as np
import pytest

from diffbench.measure import threads
from diffbench.measure.error import EPS, correct_digits, gradient_error, relative_errors
from diffbench.measure.memory import rss_peak, traced_peak
from diffbench.measure.timing import BudgetExceeded, Timing, time_call, time_calls


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
    short = Timing((1e-9, 1e-9, 1e-9), loops=1)
    assert any("resolution" in note for note in short.warnings())


def test_too_few_or_too_short_samples_are_flagged():
    few = Timing((1.0, 1.0), loops=1)
    assert few.unstable and "only 2 sample(s)" in few.warnings()[0]
    cut = Timing((1.0,), loops=1, cut=True)
    assert "the time budget ended the timing" in cut.warnings()[0]
    brief = Timing((0.001, 0.001, 0.001), loops=2, min_sample_s=0.01)
    assert any("shorter than min_sample_s" in note for note in brief.warnings())
    assert not Timing((0.01, 0.01, 0.01), loops=2, min_sample_s=0.01).unstable


def test_interleaved_timings_sample_every_function_in_turn():
    order = []
    timings = time_calls({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                         min_sample_s=0.002, repeats=3)
    assert {name: len(t.samples) for name, t in timings.items()} == {"a": 3, "b": 3}
    loops = timings["a"].loops
    calibration = order.index("b")  # a is calibrated first, then b, then the rounds
    rounds = order[calibration + order[calibration:].index("a"):]
    assert rounds[:loops] == ["a"] * loops and rounds[loops] == "b"


def test_a_slow_first_call_does_not_leave_samples_short():
    calls = []

    def warming():
        calls.append(1)
        time.sleep(0.02 if len(calls) == 1 else 0.0001)

    timing = time_call(warming, min_sample_s=0.01, repeats=3)
    assert timing.loops > 1 and timing.loops * timing.min >= 0.01


def test_traced_peak_sees_numpy_buffers():
    peak = traced_peak(lambda: np.ones(1_000_000).sum())
    assert 8_000_000 <= peak < 9_000_000


def test_rss_peak_sees_the_pages_a_call_touches():
    peak = rss_peak(lambda: np.ones(5_000_000).sum())
    if peak is None:
        pytest.skip("this system cannot reset the resident-set high-water mark")
    assert 40_000_000 * 0.9 <= peak < 40_000_000 * 1.5
    assert rss_peak(lambda: None) < 5_000_000


def test_limited_threads_pins_blas_and_cpus_and_restores_them():
    import os

    import threadpoolctl

    before = os.sched_getaffinity(0)
    with threads.limited_threads(1) as settings:
        assert threads.current() == 1 and len(os.sched_getaffinity(0)) == 1
        assert all(info["num_threads"] == 1 for info in threadpoolctl.threadpool_info())
        assert settings["threads"] == 1 and len(settings["cpus"]) == 1
    assert threads.current() is None and os.sched_getaffinity(0) == before


def test_normwise_error_is_the_headline_and_componentwise_sits_beside_it():
    """One small component decides the componentwise figure, not the normwise one."""
    reference = np.array([1.0, -3.5e-4, 2.0])
    gradient = reference * (1.0 + np.array([0.0, 1e-13, 0.0]))
    error = gradient_error(gradient, reference)
    assert error.norm == pytest.approx(3.5e-17 / 2.0, rel=0.01)
    assert error.max == pytest.approx(1e-13, rel=0.01)
    assert error.digits > 15.5 and 12.9 < error.digits_component < 13.1
    assert error.abs == pytest.approx(3.5e-17, rel=0.01) and not error.absolute


def test_conditioning_bounds_the_attainable_digits():
    error = gradient_error(np.array([1.0]), np.array([1.0]), sensitivity=1e6)
    assert error.kappa == 1e6
    assert error.digits_attainable == pytest.approx(-np.log10(EPS * 1e6))
    assert gradient_error(np.array([1.0]), np.array([1.0])).digits_attainable is None


def test_a_zero_gradient_is_measured_against_its_sensitivity():
    """At a stationary point relative errors are undefined: digits come from the absolute
    error against S, and the note says so."""
    reference = np.array([0.0, 0.0])
    error = gradient_error(np.array([1e-15, 0.0]), reference, sensitivity=4.0)
    assert error.absolute and error.scale == 4.0 and error.norm == pytest.approx(2.5e-16)
    assert error.digits > 15 and error.kappa == 1.0
    assert "zero to working precision" in error.note()
    exact = gradient_error(np.zeros(2), reference, sensitivity=4.0)
    assert exact.digits == 16.0 and exact.max == 0.0
    tiny = gradient_error(np.array([1e-30]), np.array([1e-31]), sensitivity=1.0)
    assert tiny.absolute  # below eps·S: zero to working precision
    unknown = gradient_error(np.array([1e-12]), np.array([0.0]))
    assert unknown.absolute and unknown.norm == 1e-12 and "absolute error" in unknown.note()


def test_relative_error_and_digits():
    errors = relative_errors(np.array([1.0 + 1e-10, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]))
    assert errors[0] == pytest.approx(1e-10, rel=1e-5) and errors[1] == 0.0
    assert errors[2] == np.inf
    assert correct_digits(1e-10) == pytest.approx(10.0)
    assert correct_digits(0.0) == 16.0 and correct_digits(10.0) == 0.0
    error = gradient_error(np.array([1.0, 0.5, 2.0]), np.array([1.0, 0.0, 2.0]), skip=[1])
    assert error.max == 0.0 and error.digits == 16.0
