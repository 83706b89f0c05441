"""Study kinds, by the name a config gives in ``kind``."""

from __future__ import annotations

from .base import Case, Study, Workspace
from .gradient import GradientStudy
from .scaling import ScalingStudy
from .step_sweep import StepSweepStudy
from .swell import SwellStudy

STUDIES: dict[str, type[Study]] = {
    study.kind: study for study in (GradientStudy, ScalingStudy, StepSweepStudy, SwellStudy)
}

__all__ = ["STUDIES", "Case", "Study", "Workspace"]
