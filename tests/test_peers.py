"""The peer backends (autograd, torch): registered as plugins, against the reference where
installed, and ``unsupported`` rows where not."""

import importlib.util
import tomllib
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from diffbench.config import builtin_config_path
from diffbench.families import BUILTIN
from diffbench.measure.error import gradient_error
from diffbench.ops import missing_names
from diffbench.peers.autograd_backend import Autograd
from diffbench.peers.torch_backend import Torch, peak_allocated
from diffbench.reference import reference_gradient
from diffbench.results import read_rows
from diffbench.runner import RunOptions, run
from diffbench.studies import load_config

PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"
CASES = [("exp", None), ("sin", None), ("quadratic", None), ("log_sin", None),
         ("affine_square", None), ("relu", None), ("dot", 20), ("product", 20),
         ("rosenbrock", 20), ("mlp", 4), ("nested", 4), ("logistic", 4)]
PEERS = {"autograd": Autograd, "torch": Torch}


@pytest.fixture
def peers_missing(monkeypatch):
    """autograd and torch look uninstalled, whether or not they are."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name in PEERS else find_spec(name, *args))


def test_entry_points_name_the_peer_classes(checkout_plugins):
    for name, cls in PEERS.items():
        assert type(checkout_plugins[name]) is cls


def test_torch_is_pinned_in_the_extra_and_kept_out_of_the_core():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert "torch==2.13.0" in project["optional-dependencies"]["peers"]
    assert not any(dep.startswith(("torch", "autograd")) for dep in project["dependencies"])


@pytest.mark.parametrize("name", sorted(PEERS))
def test_unavailable_says_how_to_install(name, peers_missing):
    reason = PEERS[name]().unavailable()
    assert reason == f"{name} is not installed: pip install -e '.[peers]'"


def test_a_config_naming_missing_peers_gives_unsupported_rows(
        checkout_plugins, peers_missing, tmp_path):
    config = tmp_path / "peers.toml"
    config.write_text('[timing]\nmin_sample_s = 0.0005\nrepeats = 2\n\n[[study]]\n'
                      'kind = "gradient"\nfamilies = ["rosenbrock"]\nsizes = [4]\n'
                      'backends = ["reverse", "autograd", "torch"]\n')
    run(load_config(config), tmp_path / "run", Console(quiet=True),
        RunOptions(quiet=True))
    rows = {row["backend"]: row for row in read_rows(tmp_path / "run" / "gradient.csv")}
    assert rows["reverse"]["status"] == "ok"
    for name in PEERS:
        assert rows[name]["status"] == "unsupported"
        assert rows[name]["message"] == f"{name} is not installed: pip install -e '.[peers]'"


def test_the_peers_config_compares_four_methods_up_to_a_million_inputs(checkout_plugins):
    config = load_config(builtin_config_path("peers"))
    scaling = [study for study in config.studies if study.kind == "scaling"]
    for study in scaling:
        assert [spec.name for spec in study.backends] == ["reverse", "reverse", "jax", "jax",
                                                          "autograd", "torch"]
        assert dict(study.backends[1].options) == {"replay": True}
        assert dict(study.backends[3].options) == {"value": True}
    largest = {study.families[0]: BUILTIN[study.families[0]].make(max(study.sizes)).n
               for study in scaling}
    assert largest["rosenbrock"] == 10**6
    assert largest["mlp"] >= 10**6


@pytest.mark.parametrize("name,size", CASES)
def test_autograd_matches_the_reference(name, size):
    pytest.importorskip("autograd")
    problem = BUILTIN[name].make(size)
    gradient = Autograd().prepare(problem).gradient(problem.x0.copy())
    reference = reference_gradient(problem).as_float()
    assert gradient_error(gradient, reference, skip=problem.kinks).digits >= 13


@pytest.mark.parametrize("name,size", CASES)
def test_torch_matches_the_reference(name, size):
    pytest.importorskip("torch")
    problem = BUILTIN[name].make(size)
    gradient = Torch().prepare(problem).gradient(problem.x0.copy())
    assert gradient.dtype == np.float64
    reference = reference_gradient(problem).as_float()
    assert gradient_error(gradient, reference, skip=problem.kinks).digits >= 13


def test_torch_runs_on_one_thread_and_measures_its_tensors():
    torch = pytest.importorskip("torch")
    problem = BUILTIN["rosenbrock"].make(1000)
    backend = Torch()
    prepared = backend.prepare(problem)
    assert torch.get_num_threads() == 1
    peak = backend.measure_memory(prepared, problem.x0.copy())
    assert 8 * 1000 <= peak < 100 * 8 * 1000


@pytest.mark.parametrize("peer,method", [("autograd", "autograd.numpy"),
                                         ("torch", "torch-eager")])
def test_peers_time_f_the_way_they_run_it(peer, method):
    pytest.importorskip(peer)
    problem = BUILTIN["rosenbrock"].make(50)
    backend = PEERS[peer]()
    prepared = backend.prepare(problem)
    assert prepared.function_method == method
    value = prepared.timed_function(problem.x0.copy())()
    value = value.item() if hasattr(value, "item") else value
    assert float(value) == pytest.approx(float(problem.f(problem.x0)), rel=1e-14)
    if peer == "torch":
        assert 0 < backend.measure_function_memory(prepared, problem.x0.copy()) < 100 * 8 * 50


def test_torch_namespace_provides_the_contract():
    pytest.importorskip("torch")
    from diffbench.peers import torch_ops

    assert missing_names(torch_ops) == []


def test_torch_namespace_takes_numpy_operands_on_either_side():
    torch = pytest.importorskip("torch")
    from diffbench.peers import torch_ops as ops

    leaf = torch.arange(1.0, 5.0, dtype=torch.float64, requires_grad=True)
    x = ops.TorchArray(leaf)
    u = np.array([1.0, -2.0])
    w = ops.reshape(x, (2, 2))
    out = ops.sum((np.ones(2) - w @ u) ** 2) + ops.prod(ops.maximum(x, 0.0), axis=0)
    expected_w = np.arange(1.0, 5.0).reshape(2, 2)
    expected = np.sum((1.0 - expected_w @ u) ** 2) + np.prod(np.arange(1.0, 5.0))
    assert out.t.detach().item() == pytest.approx(expected)
    assert ops.where(x > 2.0, x, 0.0).t.dtype == torch.float64


def test_peak_allocated_reads_the_running_total():
    events = [{"name": "[memory]", "ts": 2, "args": {"Total Allocated": 150, "Bytes": 50}},
              {"name": "[memory]", "ts": 1, "args": {"Total Allocated": 100, "Bytes": 100}},
              {"name": "aten::mul", "ts": 3, "args": {}},
              {"name": "[memory]", "ts": 4, "args": {"Total Allocated": 120, "Bytes": -30}}]
    assert peak_allocated(events) == 150
    assert peak_allocated([]) == 0
