"""What the README's commands install: CI runs the README's test command, whose test extra
brings what the optional tests need, so that they run instead of skipping."""

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^python3 -m venv .* pytest$", readme, re.MULTILINE)
    assert command is not None
    assert command.group(0) in (ROOT / ".ci" / "run").read_text().splitlines()
    assert 'pip install -e ".[test]"' in command.group(0)


@pytest.mark.parametrize("module", ["symengine", "autograd"])
def test_the_test_extra_brings_what_the_optional_tests_need(module):
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    assert any(requirement.startswith(module) for requirement in test_extra)
    assert importlib.util.find_spec(module) is not None, (
        f"{module} is missing: install the test extra, pip install -e '.[test]'")
