"""Error of a gradient against its reference, per component and in correct digits."""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np

TINY = np.finfo(float).tiny
MAX_DIGITS = 16.0
"""float64 carries about 15.95 significant digits; an exact match counts as 16."""


@dataclass(frozen=True)
class GradientError:
    max: float
    median: float

    @property
    def digits(self) -> float:
        return correct_digits(self.max)


def correct_digits(relative_error: float, max_digits: float = MAX_DIGITS) -> float:
    """−log10 of a relative error, clipped to [0, max_digits]; NaN stays NaN."""
    if np.isnan(relative_error):
        return float("nan")
    if relative_error <= 0.0:
        return float(max_digits)
    return float(np.clip(-np.log10(relative_error), 0.0, max_digits))


def relative_errors(gradient: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|g − r| / max(|r|, tiny), per component."""
    gradient = np.asarray(gradient, dtype=float).ravel()
    reference = np.asarray(reference, dtype=float).ravel()
    return np.abs(gradient - reference) / np.maximum(np.abs(reference), TINY)


def gradient_error(gradient: np.ndarray, reference: np.ndarray, skip=()) -> GradientError:
    """Max and median relative error over the components not in ``skip`` (kinks)."""
    errors = relative_errors(gradient, reference)
    keep = np.ones(errors.size, dtype=bool)
    keep[list(skip)] = False
    errors = errors[keep]
    if errors.size == 0:
        return GradientError(float("nan"), float("nan"))
    return GradientError(float(np.max(errors)), float(np.median(errors)))


def mp_max_relative_error(gradient, reference, skip=()) -> float:
    """Max over components not in ``skip`` of |g − r| / max(|r|, tiny), computed in mpmath
    at the working precision (call inside ``mpmath.workdps``), returned as a float."""
    errors = [abs(g - r) / max(abs(r), mpmath.mpf(TINY))
              for i, (g, r) in enumerate(zip(gradient, reference, strict=True)) if i not in skip]
    return float(max(errors)) if errors else float("nan")
