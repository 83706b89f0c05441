"""Config validation: each bad input names the file and the key."""

import shutil
from pathlib import Path

import pytest

from diffbench.config import ConfigError, builtin_config_names, builtin_config_path
from diffbench.studies import load_config

DATA = Path(__file__).parent / "data"

GOOD = """
[[study]]
kind = "gradient"
families = ["rosenbrock"]
sizes = [4]
backends = ["central"]
"""


def write(tmp_path: Path, text: str) -> Path:
    shutil.copy(DATA / "my_cases.py", tmp_path / "my_cases.py")
    path = tmp_path / "bench.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_good_config(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.name == "bench"
    (study,) = config.studies
    assert study.families == ("rosenbrock",) and study.sizes == (4,)


@pytest.mark.parametrize("name", builtin_config_names())
def test_shipped_configs_are_valid(name, checkout_plugins):
    load_config(builtin_config_path(name))


def test_default_config_covers_every_family_and_backend():
    from diffbench.families import BUILTIN

    config = load_config(builtin_config_path("default"))
    families = {config.families[f].name for study in config.studies for f in study.families}
    backends = {b.name for study in config.studies for b in study.backends}
    assert families == set(BUILTIN)
    assert {"central", "jax"} <= backends


@pytest.mark.parametrize("text,key,words", [
    ("[[study]\nkind = 1", "", "not valid TOML"),
    (GOOD.replace('"rosenbrock"', '"rosenbrok"'), "study[0].families[0]", "rosenbrock"),
    (GOOD.replace('"central"', '"centrl"'), "study[0].backends[0]", "valid: central"),
    (GOOD.replace("[4]", "[0]"), "study[0].sizes[0]", "positive"),
    (GOOD.replace("[4]", "[-3]"), "study[0].sizes[0]", "positive"),
    (GOOD.replace("[4]", "[2.5]"), "study[0].sizes[0]", "expected int"),
    (GOOD.replace("[4]", "[1]"), "study[0].sizes[0]", "n >= 2"),
    (GOOD.replace("[4]", '"4"'), "study[0].sizes", "expected list"),
    (GOOD.replace('["rosenbrock"]', "[]"), "study[0].families", "must not be empty"),
    (GOOD.replace('kind = "gradient"', 'kind = "gradiant"'), "study[0].kind", "gradient"),
    (GOOD + 'familes = ["sin"]\n', "study[0].familes", "did you mean 'families'"),
    ("[timing]\nrepeats = 0\n" + GOOD, "timing.repeats", "> 0"),
    ("[timing]\nbudget_s = nan\n" + GOOD, "timing.budget_s", "finite"),
    ("[reference]\ndigits = 100000\n" + GOOD, "reference.digits", "<= 1000"),
    ("[timing]\nrepeat = 3\n" + GOOD, "timing.repeat", "did you mean 'repeats'"),
    (GOOD.replace('"central"', '{ name = "jax", jitt = false }'), "study[0].backends[0].jitt",
     "no option"),
    (GOOD.replace('"central"', '{ name = "jax", jit = "no" }'), "study[0].backends[0].jit",
     "expected bool"),
    ("name = 'x'\n", "study", "missing"),
])
def test_bad_configs_name_the_key(tmp_path, text, key, words):
    message = error_of(tmp_path, text)
    if key:
        assert f": {key}:" in message
    assert words in message


CUSTOM = GOOD.replace('["rosenbrock"]', '["wiggle"]') + """
[families.wiggle]
function = "{function}"
point = {point}
"""


@pytest.mark.parametrize("function,point,words", [
    ("missing.py:wiggle", "[1.0, 2.0]", "does not exist"),
    ("my_cases.py:nothing", "[1.0, 2.0]", "has no function 'nothing'"),
    ("no_such_module_x:f", "[1.0, 2.0]", "cannot import module"),
    ("my_cases.py", "[1.0, 2.0]", "not of the form"),
    ("my_cases.py:broken", "[1.0, 2.0]", "RuntimeError"),
    ("my_cases.py:wiggle", "[1.0]", "IndexError"),
    ("my_cases.py:vector_valued", "[1.0, 2.0]", "must return a scalar"),
])
def test_bad_custom_families(tmp_path, function, point, words):
    message = error_of(tmp_path, CUSTOM.format(function=function, point=point))
    assert "families.wiggle" in message and words in message


def test_a_point_outside_the_domain_names_the_point(tmp_path):
    message = error_of(tmp_path, CUSTOM.format(function="my_cases.py:wiggle",
                                               point="[0.3, 2366.0, 2.0]"))
    assert "families.wiggle.point: " in message and "returned inf at its point" in message


def test_custom_family_loads(tmp_path):
    config = load_config(write(tmp_path, CUSTOM.format(function="my_cases.py:wiggle",
                                                       point="[0.3, -1.2, 2.0]")))
    problem = config.families["wiggle"].build(None)
    assert problem.n == 3 and problem.gradient is None


OPTIONS = """
[[study]]
kind = "gradient"
families = [{{ name = "sin_tanh_chain", {options} }}]
sizes = [3]
backends = ["central"]
"""


def test_a_chain_family_at_the_depth_its_option_sets(tmp_path):
    from diffbench.families import BUILTIN

    config = load_config(write(tmp_path, OPTIONS.format(options="depth = 32")))
    problem = config.families["sin_tanh_chain(depth=32)"].make(3)
    assert (problem.family, problem.variant) == ("sin_tanh_chain", "depth=32")
    x = problem.x0
    deeper = BUILTIN["sin_tanh_chain"].chain(3, 32).problem()
    assert problem.f(x) == deeper.f(x) != BUILTIN["sin_tanh_chain"].make(3).f(x)


@pytest.mark.parametrize("options,words", [
    ("depth = 0", "depth: family 'sin_tanh_chain' option 'depth' must be in [1, 100000]"),
    ("depth = 2.5", "option 'depth' must be an integer, got float 2.5"),
    ("width = 3", "width: family 'sin_tanh_chain' has no option 'width' (valid: depth)"),
])
def test_bad_chain_options_name_the_key(tmp_path, options, words):
    message = error_of(tmp_path, OPTIONS.format(options=options))
    assert "study[0].families[0]." in message and words in message, message
