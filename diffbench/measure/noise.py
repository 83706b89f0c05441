"""The noise level of f, from a table of differences at tiny spacing (Moré and Wild, ECnoise).

The k-th difference of m equally spaced values kills a smooth f (about δ^k f^(k)) but keeps the
noise, with variance C(2k, k)·σ²; so σ_k = sqrt(γ_k · mean(Δ^k f²)), γ_k = (k!)² / (2k)!, is a
noise estimate once the differences change sign and three consecutive levels agree within 4×.
Moré & Wild, "Estimating computational noise", SIAM J. Sci. Comput. 33 (2011).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

POINTS = 8
"""Values per difference table (levels 1 … 7)."""


@dataclass(frozen=True)
class Noise:
    """``sigma``: the noise's standard deviation (absolute), at ``spacing``, from ``level``."""

    sigma: float
    spacing: float
    level: int
    evals: int


def noise_from_table(values: np.ndarray) -> tuple[float | None, str]:
    """σ from equally spaced values, or None with ``"too-small"`` / ``"too-large"`` spacing."""
    values = np.asarray(values, dtype=float)
    scale = np.max(np.abs(values))
    if scale > 0 and np.ptp(values) / scale > 0.1:
        return None, "too-large"
    levels, sign_change = [], []
    diffs, gamma = values, 1.0
    for k in range(1, values.size):
        diffs = np.diff(diffs)
        if k == 1 and np.count_nonzero(diffs == 0.0) >= values.size / 2:
            return None, "too-small"
        gamma *= 0.5 * k / (2 * k - 1)
        levels.append(np.sqrt(gamma * np.mean(diffs**2)))
        sign_change.append(diffs.min() * diffs.max() < 0.0)
    for k in range(len(levels) - 2):
        window = levels[k:k + 3]
        if max(window) <= 4.0 * min(window) and sign_change[k]:
            return float(levels[k]), f"level {k + 1}"
    return None, "too-large"


def estimate_noise(g: Callable[[float], float], x: float, *, tries: int = 6,
                   snap: Callable[[float], float] = float) -> Noise | None:
    """σ of ``g`` near ``x``; the spacing starts at 1e-6·max(1, |x|), × or ÷ 100 on failure.

    The sample points x + kδ are exact (δ is rounded so that x + δ − x == δ, x + δ rounded by
    ``snap`` to the numbers g is evaluated at: float64, or a lower dtype), so σ is the noise
    of evaluating g, not of rounding its argument.
    """
    spacing = 1e-6 * max(1.0, abs(x))
    evals = 0
    for _ in range(tries):
        delta = snap(x + spacing) - x
        offsets = (np.arange(POINTS) - POINTS // 2) * delta
        values = np.array([g(x + offset) for offset in offsets])
        evals += POINTS
        sigma, verdict = noise_from_table(values)
        if sigma is not None:
            return Noise(sigma, delta, int(verdict.split()[1]), evals)
        spacing *= 100.0 if verdict == "too-small" else 0.01
    return None
