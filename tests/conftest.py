import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import diffbench.backends as backends

PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"


@pytest.fixture(autouse=True)
def _reference_cache(tmp_path_factory, monkeypatch):
    """Every test session gets its own reference cache, so no test reads a stale one."""
    monkeypatch.setenv("DIFFBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def checkout_plugins(monkeypatch):
    """The registry as installing this checkout builds it, from pyproject.toml's entry points,
    even where an older install's metadata lacks them."""
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]
    points = [EntryPoint(name, value, backends.ENTRY_POINT_GROUP)
              for name, value in declared[backends.ENTRY_POINT_GROUP].items()]
    monkeypatch.setattr(backends, "entry_points", lambda group: points)
    backends.registry.cache_clear()
    yield backends.registry()
    backends.registry.cache_clear()
