"""Study kinds, by the name a config gives in ``kind``."""

from __future__ import annotations

from .base import Case, Study, Workspace
from .gradient import GradientStudy
from .swell import SwellStudy

STUDIES: dict[str, type[Study]] = {study.kind: study for study in (GradientStudy, SwellStudy)}

__all__ = ["STUDIES", "Case", "Study", "Workspace"]
