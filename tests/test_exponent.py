"""Cost exponents with a fixed overhead modelled: the estimate, and intervals that hold their
95 % coverage in simulation where a log-log line's do not."""

import numpy as np
import pytest

from diffbench.measure.exponent import cost_exponent, overhead_fit
from diffbench.measure.fit import loglog_fit

SIZES = np.array([10, 100, 1000, 3000, 1e4, 3e4, 1e5, 3e5, 1e6])
SIMULATIONS = 200


def _costs(rng, exponent, overhead, coefficient, noise):
    return (overhead + coefficient * SIZES**exponent) * np.exp(rng.normal(0, noise, SIZES.size))


def test_exact_costs_give_the_exponent_and_the_overhead():
    fit = overhead_fit(SIZES, 2e-5 + 3e-8 * SIZES**1.5)
    assert fit.exponent == pytest.approx(1.5, abs=0.002)
    assert fit.overhead == pytest.approx(2e-5, rel=1e-3)
    assert fit.ci[0] <= 1.5 <= fit.ci[1]
    assert fit.overhead_share == pytest.approx(2e-5 / (2e-5 + 3e-8 * 10**1.5), rel=1e-3)


@pytest.mark.parametrize("exponent,overhead,coefficient,noise", [
    (1.0, 1e-5, 1e-8, 0.05),   # overhead 99 % of the cost at n = 10, 10 % at 10^4
    (1.0, 1e-3, 1e-8, 0.05),   # overhead still half the cost at 10^5
    (2.0, 1e-4, 1e-8, 0.10),
    (0.3, 1e-5, 1e-7, 0.05),   # slow growth, visible above the overhead only at the end
])
def test_intervals_hold_their_coverage_with_a_fixed_overhead(exponent, overhead, coefficient,
                                                            noise):
    rng = np.random.default_rng(12)
    covered = line_covered = 0
    for _ in range(SIMULATIONS):
        costs = _costs(rng, exponent, overhead, coefficient, noise)
        fit = cost_exponent(SIZES, costs)
        covered += fit.ci[0] <= exponent <= fit.ci[1]
        line = loglog_fit(SIZES, costs)
        line_covered += line.ci[0] <= exponent <= line.ci[1]
    assert covered / SIMULATIONS >= 0.9
    if overhead >= 1e-5 and exponent >= 1.0:
        assert line_covered / SIMULATIONS < 0.5  # what the overhead does to a plain line


def test_a_cost_that_does_not_grow_has_exponent_zero():
    flat = cost_exponent(SIZES, np.full(SIZES.size, 1024.0))
    assert flat.method == "line" and flat.value == pytest.approx(0.0, abs=1e-12)
    assert flat.ci[1] < 0.01
    rng = np.random.default_rng(3)
    covered = sum(cost_exponent(SIZES, 1e-5 * np.exp(rng.normal(0, 0.05, SIZES.size)))
                  .ci[1] < 0.3 for _ in range(SIMULATIONS))
    assert covered / SIMULATIONS >= 0.9


def test_few_sizes_fall_back_to_a_line_and_one_size_to_nothing():
    few = cost_exponent(SIZES[:3], 1e-8 * SIZES[:3])
    assert few.method == "line-few" and few.value == pytest.approx(1.0)
    assert cost_exponent(SIZES[:1], [1.0]) is None
    assert overhead_fit(SIZES[:3], [1.0, 2.0, 3.0]) is None
