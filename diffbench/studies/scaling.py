"""The scaling study: gradient rows over geometric sizes, then a fitted cost exponent per
family × backend × metric (``measure.scaling_fit``), written to ``scaling_fit.csv``.

Sizes run in increasing order for each family and backend; once a size ends in ``timeout``
or ``out-of-memory``, the larger ones are ``skipped`` rows, not attempted.
"""

from __future__ import annotations

from dataclasses import replace

from ..measure.scaling_fit import FIT_COLUMNS, fit_all
from .base import Case
from .gradient import COLUMNS, GradientStudy


class ScalingStudy(GradientStudy):
    """``verdict = true`` asks the report for the textbook table beside the fits."""

    kind = "scaling"
    files = {"scaling.csv": COLUMNS}
    csv_name = "scaling.csv"
    summaries = {"scaling_fit.csv": (FIT_COLUMNS, fit_all)}
    settings = {"verdict": False}

    series_columns = ("backend", "variant")

    def cases(self) -> list[Case]:
        """The gradient study's cases, sizes ascending within each family and backend, each
        isolated, so that the size where a method runs out of time or memory is cut at the
        budget or the cap."""
        return [replace(case, isolate=True) for case in self.by_size(super().cases())]
