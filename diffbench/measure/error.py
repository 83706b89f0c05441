"""Error of a gradient against its reference: normwise (the headline), componentwise and
absolute, and what the problem's own conditioning allows.

Every figure is taken over the same components: all but the kinks.  With r the reference and
g the gradient over those components:

* ``err_abs`` = ‖g − r‖∞;
* ``err_norm`` = ‖g − r‖∞ / ‖r‖∞ (Higham's normwise relative error), whose digits are the
  headline ``digits``.  Where r is zero to working precision (‖r‖∞ ≤ eps · S, S the
  gradient's sensitivity below) a relative error means nothing: ``err_norm`` is then
  ‖g − r‖∞ / S (or the absolute error where S is 0 too), and ``absolute`` says so;
* ``err_max`` and ``err_median``: componentwise relative errors |g_i − r_i| / |r_i|; a
  component whose reference is exactly 0 counts |g_i| against the same scale as ``err_norm``;
* ``kappa`` = S / scale, the gradient's condition number under relative rounding of x, with
  S ≈ ‖ |H| |x| ‖∞ the change of the gradient when every x_i moves by eps·|x_i|, divided by
  eps; ``digits_attainable`` = −log10(eps · max(kappa, 1)) is what any method in the working
  precision (eps: float64's, or a lower dtype's) can hope for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import mpmath
import numpy as np

EPS = float(np.finfo(float).eps)
MAX_DIGITS = 16.0
"""float64 carries about 15.95 significant digits; an exact match counts as 16."""


@dataclass(frozen=True)
class GradientError:
    """The error figures of one gradient (see the module docstring); NaN where no component
    is left to measure."""

    norm: float
    abs: float
    max: float
    median: float
    scale: float
    reference_norm: float
    absolute: bool = False
    kappa: float | None = None
    eps: float = EPS
    """The working precision's eps, for ``digits_attainable``."""

    @property
    def digits(self) -> float:
        return correct_digits(self.norm)

    @property
    def digits_component(self) -> float:
        return correct_digits(self.max)

    @property
    def digits_attainable(self) -> float | None:
        if self.kappa is None:
            return None
        return correct_digits(self.eps * max(self.kappa, 1.0))

    def note(self) -> str:
        """What a reader must know to read the digits, or empty."""
        if not self.absolute:
            return ""
        if self.kappa:
            return (f"the gradient is zero to working precision here (‖r‖∞ = "
                    f"{self.reference_norm:.2g} ≤ eps·S): digits from ‖g − r‖∞ / S, "
                    f"S = ‖|H||x|‖∞ = {self.scale:.3g}")
        sensitivity = " and so is its sensitivity S" if self.kappa == 0.0 else ""
        return f"the gradient is zero here{sensitivity}: digits from the absolute error ‖g − r‖∞"


def correct_digits(relative_error: float, max_digits: float = MAX_DIGITS) -> float:
    """−log10 of a relative error, clipped to [0, max_digits]; NaN stays NaN."""
    if np.isnan(relative_error):
        return float("nan")
    if relative_error <= 0.0:
        return float(max_digits)
    return float(np.clip(-np.log10(relative_error), 0.0, max_digits))


def relative_errors(gradient: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|g − r| / |r| per component (inf where r = 0 and g is not, 0 where both are)."""
    gradient = np.asarray(gradient, dtype=float).ravel()
    reference = np.asarray(reference, dtype=float).ravel()
    difference = np.abs(gradient - reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        errors = difference / np.abs(reference)
    return np.where(difference == 0.0, 0.0, errors)


def kept(size: int, skip: Iterable[int]) -> np.ndarray:
    """A mask of the components measured: all but ``skip``."""
    keep = np.ones(size, dtype=bool)
    keep[list(skip)] = False
    return keep


def gradient_error(gradient: np.ndarray, reference: np.ndarray, skip: Iterable[int] = (),
                   sensitivity: float | None = None, eps: float = EPS) -> GradientError:
    """The error figures of ``gradient`` against ``reference`` over the components not in
    ``skip`` (kinks); ``sensitivity`` is S (see the module docstring), None where unknown;
    ``eps`` that of the precision the gradient was computed in."""
    gradient = np.asarray(gradient, dtype=float).ravel()
    reference = np.asarray(reference, dtype=float).ravel()
    keep = kept(reference.size, skip)
    g, r = gradient[keep], reference[keep]
    if r.size == 0:
        nan = float("nan")
        return GradientError(nan, nan, nan, nan, nan, nan)
    difference = np.abs(g - r)
    err_abs = float(np.max(difference))
    r_norm = float(np.max(np.abs(r)))
    s = sensitivity if sensitivity is not None and np.isfinite(sensitivity) else None
    absolute = r_norm == 0.0 or (s is not None and r_norm <= eps * s)
    scale = (s if s else 1.0) if absolute else r_norm
    component = np.where(r != 0.0, relative_errors(g, r), difference / scale)
    return GradientError(
        norm=err_abs / scale, abs=err_abs, max=float(np.max(component)),
        median=float(np.median(component)), scale=scale, reference_norm=r_norm,
        absolute=absolute,
        kappa=None if s is None else s / scale, eps=eps,
    )


def mp_normwise_error(gradient, reference, scale: float, skip: Iterable[int] = ()) -> float:
    """‖g − r‖∞ / ``scale`` over the components not in ``skip``, computed in mpmath at the
    working precision (call inside ``mpmath.workdps``), returned as a float."""
    skipped = set(skip)
    errors = [abs(g - r) for i, (g, r) in enumerate(zip(gradient, reference, strict=True))
              if i not in skipped]
    return float(max(errors) / mpmath.mpf(scale)) if errors else float("nan")
