"""Families: closed forms against mpmath's own differentiation, the ops contract, and custom
families' declared kinks."""

import shutil
from pathlib import Path

import mpmath
import numpy as np
import pytest

import diffbench.ops.mpmath_ops as mp_ops
from diffbench.config import ConfigError
from diffbench.families import BUILTIN
from diffbench.ops import UNARY, missing_names
from diffbench.reference import closed_form, mpmath_diff
from diffbench.studies import load_config

DATA = Path(__file__).parent / "data"
CASES = [(name, size) for name, family in BUILTIN.items()
         for size in (family.example_sizes[:1] or (None,))]


@pytest.mark.parametrize("name,size", CASES)
def test_closed_form_matches_mpmath_diff(name, size):
    problem = BUILTIN[name].make(size)
    if problem.gradient is None:
        pytest.skip(f"{name} has no closed form (tests/test_workloads.py checks it)")
    with mpmath.workdps(40):
        closed = closed_form(problem, 40)
        numeric = mpmath_diff(problem, 40)
        for i, (c, d) in enumerate(zip(closed, numeric, strict=True)):
            if i in problem.kinks:
                continue
            assert abs(c - d) <= mpmath.mpf(10) ** -30 * max(abs(c), 1), (name, i, c, d)


@pytest.mark.parametrize("name,size", CASES)
def test_function_agrees_in_float64_and_mpmath(name, size):
    problem = BUILTIN[name].make(size)
    with mpmath.workdps(30):
        high = float(problem.f(mp_ops.asarray(problem.x0), mp_ops))
    assert problem.f(problem.x0) == pytest.approx(high, rel=1e-9)


def test_points_are_deterministic():
    first = BUILTIN["rosenbrock"].make(50).x0
    again = BUILTIN["rosenbrock"].make(50).x0
    assert np.array_equal(first, again)
    assert not np.array_equal(BUILTIN["rosenbrock"].make(51).x0[:50], first)


def test_documented_points():
    assert BUILTIN["affine_square"].make(None).x0.tolist() == [2.0, 3.0]
    assert BUILTIN["relu"].make(None).x0.tolist() == [-1.0, 0.0, 2.0]
    assert BUILTIN["exp"].make(None).x0.tolist() == [20.0]
    assert BUILTIN["cancel"].make(None).x0.tolist() == [1e4]
    assert BUILTIN["mlp"].make(3).n == 12
    product = BUILTIN["product"].make(200).x0
    assert product.min() >= 0.5 and product.max() <= 1.5


@pytest.mark.parametrize("namespace", [np, mp_ops], ids=["numpy", "mpmath"])
def test_namespaces_provide_the_contract(namespace):
    assert missing_names(namespace) == []


@pytest.mark.parametrize("name", UNARY)
def test_mpmath_elementwise_matches_numpy(name):
    x = np.array([0.3, 0.7, 1.9])
    with mpmath.workdps(30):
        high = mp_ops.tofloat(getattr(mp_ops, name)(mp_ops.asarray(x)))
    np.testing.assert_allclose(high, getattr(np, name)(x), rtol=1e-15)


def test_mpmath_maximum_and_where_keep_mpf():
    with mpmath.workdps(30):
        x = mp_ops.asarray([-1.0, 0.0, 2.0])
        for result in (mp_ops.maximum(x, 0.0), mp_ops.minimum(x, 0.0),
                       mp_ops.where(x > 0, x, 0.0)):
            assert all(isinstance(v, mpmath.mpf) for v in result)
        assert mp_ops.tofloat(mp_ops.maximum(x, 0.0)).tolist() == [0.0, 0.0, 2.0]


KINKY = """
[families.kinky]
function = "my_cases.py:kinky"
point = [0.0, 1.0]
{kinks}

[[study]]
kind = "gradient"
families = ["kinky"]
backends = ["central"]
"""


def _config(tmp_path: Path, kinks: str) -> Path:
    shutil.copy(DATA / "my_cases.py", tmp_path / "my_cases.py")
    path = tmp_path / "bench.toml"
    path.write_text(KINKY.format(kinks=kinks))
    return path


def test_custom_families_declare_kinks(tmp_path):
    config = load_config(_config(tmp_path, "kinks = [1, 0, 1]"))
    assert config.families["kinky"].build(None).kinks == (0, 1)
    assert load_config(_config(tmp_path, "")).families["kinky"].build(None).kinks == ()


@pytest.mark.parametrize("kinks,key,words", [
    ("kinks = [2]", "kinks[0]", "kink index 2 is out of range of point (indices 0 to 1)"),
    ("kinks = [0, -1]", "kinks[1]", "kink index -1 is out of range"),
    ("kinks = [0.5]", "kinks[0]", "expected int, got float 0.5"),
    ("kinks = [true]", "kinks[0]", "expected int, got bool True"),
    ("kinks = 1", "kinks", "expected list, got int 1"),
])
def test_bad_kinks_name_the_file_and_key(tmp_path, kinks, key, words):
    path = _config(tmp_path, kinks)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"{path}: families.kinky.{key}: " in message and words in message
