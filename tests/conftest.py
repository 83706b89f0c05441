import pytest


@pytest.fixture(autouse=True)
def _reference_cache(tmp_path_factory, monkeypatch):
    """Every test session gets its own reference cache, so no test reads a stale one."""
    monkeypatch.setenv("DIFFBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
