"""Least-squares lines, with the slope's confidence interval and R²: the one fit every
study uses (cost exponents in log-log, swell growth, error slopes against the step)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
         2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
"""Student's t, two-sided 95 %, for 1 to 30 degrees of freedom; 1.96 beyond."""


@dataclass(frozen=True)
class LineFit:
    """y ≈ intercept + slope·x over ``points`` points; ``ci`` is the slope's 95 % interval
    (infinite with two points); ``rms`` the root-mean-square residual."""

    slope: float
    intercept: float
    ci: tuple[float, float]
    r2: float
    rms: float
    points: int


def t_quantile(dof: int) -> float:
    return T_975[dof - 1] if dof <= len(T_975) else 1.96


def line_fit(x, y) -> LineFit:
    """The least-squares line through at least two points with distinct x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    ss_res = float(np.sum(residual**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    dof = x.size - 2
    if dof > 0:
        stderr = math.sqrt(ss_res / dof / float(np.sum((x - x.mean()) ** 2)))
        half = t_quantile(dof) * stderr
    else:
        half = math.inf
    return LineFit(float(slope), float(intercept), (slope - half, slope + half), r2,
                   float(np.sqrt(np.mean(residual**2))), int(x.size))


def loglog_fit(x, y) -> LineFit:
    """The line through (log x, log y): its slope is the exponent p of y ∝ x^p."""
    return line_fit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)))
