"""Study kinds, by the name a config gives in ``kind``; configs read with them; a run's studies."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..config import Config, read_config
from .base import Case, Study, StudyOptions, Workspace, measure_case
from .checkpoint import CheckpointStudy
from .gradient import GradientStudy
from .scaling import ScalingStudy
from .step_sweep import StepSweepStudy
from .swell import SwellStudy

STUDIES: dict[str, type[Study]] = {
    study.kind: study for study in (GradientStudy, ScalingStudy, StepSweepStudy, SwellStudy,
                                    CheckpointStudy)
}


def load_config(path: Path | str, overrides: Mapping[str, list] | None = None) -> Config:
    """Read and validate a config file, every study kind's own settings included, with the
    study keys in ``overrides`` replaced; raises ``ConfigError`` naming the file and key."""
    return read_config(path, STUDIES, overrides)


def make_studies(config: Config, run_dir: Path,
                 options: StudyOptions | None = None) -> list[Study]:
    """The config's studies, in its order, sharing one workspace, writing into ``run_dir``."""
    workspace = Workspace(config, options)
    return [STUDIES[spec.kind](i, spec, workspace, run_dir)
            for i, spec in enumerate(config.studies)]


__all__ = ["STUDIES", "Case", "Study", "StudyOptions", "Workspace", "load_config",
           "make_studies", "measure_case"]
