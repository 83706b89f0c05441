"""The finite-difference peers (numdifftools, scipy.differentiate): registered as plugins,
against the 50-digit reference where installed, their evaluations of f counted, and
``unsupported`` rows where not installed."""

import dataclasses
import importlib.util
import tomllib
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from diffbench.config import ConfigError, builtin_config_path
from diffbench.families import BUILTIN
from diffbench.measure.error import gradient_error, relative_errors
from diffbench.peers.numdifftools_backend import Numdifftools
from diffbench.peers.scipy_backend import Scipy
from diffbench.reference import reference_gradient
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run
from diffbench.studies import load_config

PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"
PEERS = {"numdifftools": Numdifftools, "scipy": Scipy}
SMOOTH = [("exp", None), ("sin", None), ("quadratic", None), ("log_sin", None),
          ("affine_square", None), ("dot", 20), ("product", 20), ("rosenbrock", 20),
          ("nested", 4), ("logistic", 4)]
"""The built-in families without kinks, at sizes where the peers' defaults suit them
(``cancel`` loses digits to its own noise: see the test of it below)."""


@pytest.fixture
def fd_peers_missing(monkeypatch):
    """numdifftools and scipy look uninstalled, whether or not they are."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name in PEERS else find_spec(name, *args))


def needs(*names):
    """Skip unless every named peer can run here (installed, and recent enough)."""
    for name in names:
        reason = PEERS[name]().unavailable()
        if reason:
            pytest.skip(reason)


def counted(problem):
    """The problem with an f that counts its own calls, apart from any backend's count."""
    calls = []

    def fn(x, ops):
        calls.append(1)
        return problem.fn(x, ops)

    return dataclasses.replace(problem, fn=fn), calls


def test_entry_points_name_the_peer_classes(checkout_plugins):
    for name, cls in PEERS.items():
        assert type(checkout_plugins[name]) is cls


def test_the_peers_extra_pins_them_and_the_core_does_not_need_them():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    peers = project["optional-dependencies"]["peers"]
    assert {"numdifftools==0.11.2", "scipy==1.17.1"} <= set(peers)
    assert not any(dep.startswith(("numdifftools", "scipy")) for dep in project["dependencies"])


@pytest.mark.parametrize("name", sorted(PEERS))
def test_unavailable_says_how_to_install(name, fd_peers_missing):
    assert PEERS[name]().unavailable() == f"{name} is not installed: pip install -e '.[peers]'"


@pytest.mark.parametrize("peer", sorted(PEERS))
@pytest.mark.parametrize("name,size", SMOOTH)
def test_peer_matches_the_reference(peer, name, size):
    needs(peer)
    problem = BUILTIN[name].make(size)
    x = problem.x0.copy()
    prepared = PEERS[peer]().prepare(problem)
    gradient = prepared.gradient(x)
    assert np.array_equal(x, problem.x0)  # the point is not written
    assert gradient.shape == x.shape and gradient.dtype == np.float64
    reference = reference_gradient(problem).as_float()
    assert gradient_error(gradient, reference).digits >= 10
    estimates = prepared.error_estimates()
    assert estimates.shape == x.shape and np.all(estimates >= 0.0)


def test_on_cancel_the_peers_lose_digits_to_the_noise_of_f():
    """sqrt(x² + 1) − x at 1e4 has noise eps·|x|: numdifftools keeps about 4 digits; SciPy's
    absolute first step 0.5 is tiny beside x, so its estimate is mostly noise, and its note
    says it stopped when its error estimate grew."""
    needs("numdifftools", "scipy")
    problem = BUILTIN["cancel"].make(None)
    reference = reference_gradient(problem).as_float()
    errors = {}
    for name, cls in PEERS.items():
        prepared = cls().prepare(problem)
        errors[name] = relative_errors(prepared.gradient(problem.x0.copy()), reference)[0]
        errors[name + " note"] = prepared.note()
    assert 1e-6 < errors["numdifftools"] < 1e-3 and errors["numdifftools note"] == ""
    assert errors["scipy"] > 1e-3
    assert errors["scipy note"] == ("scipy: status -1 at x[0]: the error estimate increased, "
                                    "so SciPy stopped")


@pytest.mark.parametrize("options,per_input", [({}, 30), ({"method": "forward"}, 15),
                                               ({"num_steps": 5}, 10)])
@pytest.mark.parametrize("name,size", [("exp", None), ("affine_square", None),
                                       ("rosenbrock", 7)])
def test_numdifftools_counts_every_evaluation(name, size, options, per_input):
    """Two evaluations per step and input (one for forward differences), plus f(x)."""
    needs("numdifftools")
    problem, calls = counted(BUILTIN[name].make(size))
    prepared = Numdifftools().prepare(problem, **options)
    for _ in range(2):  # the count is the last gradient's, not a running total
        calls.clear()
        prepared.gradient(problem.x0.copy())
        assert prepared.stats() == {"f_evals": len(calls)}
    assert len(calls) == per_input * problem.n + 1


@pytest.mark.parametrize("name,size", [("exp", None), ("cancel", None), ("affine_square", None),
                                       ("rosenbrock", 7)])
def test_scipy_counts_every_point_it_evaluates(name, size):
    needs("scipy")
    problem, calls = counted(BUILTIN[name].make(size))
    prepared = Scipy().prepare(problem)
    for _ in range(2):
        calls.clear()
        prepared.gradient(problem.x0.copy())
        assert prepared.stats() == {"f_evals": len(calls)}
    assert 9 * problem.n <= len(calls) <= 9 * problem.n + 2 * 10 * problem.n  # order 8, maxiter


def test_scipy_takes_its_options():
    needs("scipy")
    problem, calls = counted(BUILTIN["sin"].make(None))
    prepared = Scipy().prepare(problem, order=2, maxiter=1)
    prepared.gradient(problem.x0.copy())
    assert len(calls) == 3  # x and x ± 0.5: one iteration of order 2
    assert "status -2" in prepared.note()


def test_peer_options_are_validated(tmp_path, checkout_plugins):
    path = tmp_path / "bad.toml"
    path.write_text('[[study]]\nkind = "gradient"\nfamilies = ["exp"]\n'
                    'backends = [{ name = "numdifftools", method = "complex" }]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "study[0].backends[0].method:" in str(caught.value)
    assert "'central', 'forward', 'backward'" in str(caught.value)


def test_the_gradient_study_reports_their_evaluations_and_estimates(tmp_path, checkout_plugins):
    needs("numdifftools", "scipy")
    config = tmp_path / "fd.toml"
    config.write_text('[timing]\nmin_sample_s = 0.0005\nrepeats = 2\n\n[[study]]\n'
                      'kind = "gradient"\nfamilies = ["log_sin"]\n'
                      'backends = ["numdifftools", { name = "numdifftools", order = 4 }, '
                      '"scipy"]\n')
    run(load_config(config), tmp_path / "run", Console(quiet=True), RunOptions(quiet=True))
    rows = {(row["backend"], row["variant"]): row
            for row in read_rows(tmp_path / "run" / "gradient.csv")}
    for key, evals in ((("numdifftools", "default"), 31), (("numdifftools", "order=4"), 31),
                       (("scipy", "default"), None)):
        row = rows[key]
        assert row["status"] == "ok" and row["f_method"] == "numpy"
        assert float(row["digits"]) >= 11
        assert evals is None or int(row["f_evals"]) == evals
        assert float(row["err_estimate"]) > 0.0


def test_a_config_naming_missing_peers_gives_unsupported_rows(
        checkout_plugins, fd_peers_missing, tmp_path):
    config = tmp_path / "fd.toml"
    config.write_text('[timing]\nmin_sample_s = 0.0005\nrepeats = 2\n\n[[study]]\n'
                      'kind = "gradient"\nfamilies = ["exp"]\n'
                      'backends = ["central", "numdifftools", "scipy"]\n')
    run(load_config(config), tmp_path / "run", Console(quiet=True), RunOptions(quiet=True))
    rows = {row["backend"]: row for row in read_rows(tmp_path / "run" / "gradient.csv")}
    assert rows["central"]["status"] == "ok"
    for name in PEERS:
        assert rows[name]["status"] == "unsupported"
        assert rows[name]["message"] == f"{name} is not installed: pip install -e '.[peers]'"


def test_the_peers_config_compares_the_differences_at_small_sizes(checkout_plugins):
    config = load_config(builtin_config_path("peers"))
    (study,) = [study for study in config.studies if study.kind == "gradient"]
    assert {"central", "numdifftools", "scipy"} == {spec.name for spec in study.backends}
    assert max(study.sizes) <= 10
