"""Family options: given in a config as backends' are, checked by key, carried into the rows
(``family_variant``), the case keys and the reference cache, shown by ``diffbench list``."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from diffbench.config import ConfigError
from diffbench.families import BUILTIN, Family, FamilyOptionError, Problem, make
from diffbench.studies import load_config

DATA = Path(__file__).parent / "data"


def _toy(size, scale, offset):
    """Σ scale·x² + offset·x over `size` inputs."""
    def fn(x, ops):
        return ops.sum(scale * x ** 2 + offset * x)

    return Problem("toy", size, fn, np.linspace(0.5, 1.5, size),
                   gradient=lambda x, ops: 2.0 * scale * x + offset)


TOY = Family("toy", "Σ scale x² + offset x", _toy, "n", (3, 5),
             options={"n": 3, "scale": 1.0, "offset": 0.0}, limits={"scale": (0.0, 10.0)})


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(BUILTIN, "toy", TOY)
    return TOY


def _config(tmp_path: Path, families: str, sizes: str = "[3]") -> Path:
    shutil.copy(DATA / "my_cases.py", tmp_path / "my_cases.py")
    path = tmp_path / "bench.toml"
    path.write_text(f'[timing]\nmin_sample_s = 0.0005\nrepeats = 2\n[[study]]\n'
                    f'kind = "gradient"\nfamilies = {families}\nsizes = {sizes}\n'
                    'backends = ["reverse"]\n')
    return path


def test_options_bind_and_label(toy):
    bound = toy.with_options(scale=2, offset=0.5)
    assert bound.variant == "offset=0.5,scale=2.0" and bound.key == "toy(offset=0.5,scale=2.0)"
    problem = bound.make(4)
    assert problem.variant == bound.variant and problem.key == bound.key
    assert problem.f(np.ones(4)) == pytest.approx(4 * 2.5)
    assert toy.make(4).variant == "default" and toy.make(4).key == "toy"


def test_size_option_pins_the_size(toy):
    assert toy.make().size == 3
    pinned = toy.with_options(n=7)
    assert pinned.pinned_size == 7 and pinned.make().size == 7
    with pytest.raises(FamilyOptionError, match="differs"):
        pinned.make(5)


@pytest.mark.parametrize("options,key,words", [
    ({"width": 2}, "width", "no option 'width'"),
    ({"scale": 11.0}, "scale", "in [0, 10]"),
    ({"scale": "big"}, "scale", "must be float"),
    ({"n": 2.5}, "n", "an integer"),
    ({"n": True}, "n", "an integer"),
    ({"n": 0}, "n", "n >= 1"),
])
def test_bad_options_name_the_key(toy, options, key, words):
    with pytest.raises(FamilyOptionError) as caught:
        toy.with_options(**options)
    assert caught.value.key == key and words in str(caught.value)


def test_make_returns_the_problem(toy):
    problem = make("toy", 4, scale=3.0)
    assert isinstance(problem, Problem) and problem.n == 4 and problem.variant == "scale=3.0"
    with pytest.raises(KeyError, match="unknown family"):
        make("no_such_family")


def test_config_families_with_options(toy, tmp_path):
    config = load_config(_config(tmp_path, '["toy", { name = "toy", scale = 2.0 }]'))
    (study,) = config.studies
    assert study.families == ("toy", "toy(scale=2.0)")
    assert config.families["toy(scale=2.0)"].chosen == {"scale": 2.0}


@pytest.mark.parametrize("families,key,words", [
    ('[{ name = "toy", width = 2 }]', "families[0].width", "no option 'width'"),
    ('[{ name = "toy", n = 0 }]', "families[0].n", ">= 1"),
    ('[{ name = "toy", n = 2.5 }]', "families[0].n", "an integer"),
    ('[{ name = "toy", scale = -1.0 }]', "families[0].scale", "in [0, 10]"),
    ('[{ scale = 1.0 }]', "families[0].name", "missing"),
    ('["toy", { name = "toy", scale = 1.0 }]', "families[1]", "appears twice with the same"),
    ('[{ name = "rosenbrock", n = 3 }]', "families[0].n", "has no option 'n' (valid: none)"),
    ('[3]', "families[0]", "expected a family name or a table"),
])
def test_bad_family_options_are_config_errors(toy, tmp_path, families, key, words):
    path = _config(tmp_path, families)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"{path}: study[0].{key}:" in message and words in message


def test_rows_carry_the_family_variant(toy, tmp_path):
    from rich.console import Console

    from diffbench.results import read_rows
    from diffbench.runner import RunOptions, run

    path = _config(tmp_path, '["toy", { name = "toy", scale = 2.0 }, { name = "toy", n = 4 }]')
    run_dir = tmp_path / "run"
    run(load_config(path), run_dir, Console(quiet=True), RunOptions(quiet=True))
    rows = read_rows(run_dir / "gradient.csv")
    got = {(r["family"], r["family_variant"], r["size"]): r for r in rows}
    assert set(got) == {("toy", "default", "3"), ("toy", "scale=2.0", "3"),
                        ("toy", "n=4", "4")}
    assert all(r["status"] == "ok" and float(r["digits"]) >= 14 for r in rows)


def test_reference_cache_key_holds_the_options(toy):
    from diffbench.reference import _key

    plain, scaled = toy.make(3), toy.with_options(scale=2.0).make(3)
    assert _key(plain, 50, "closed-form", []) != _key(scaled, 50, "closed-form", [])


def test_list_shows_the_options_with_defaults():
    from typer.testing import CliRunner

    from diffbench.cli import app

    result = CliRunner().invoke(app, ["list"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    options = [family for family in BUILTIN.values() if family.options]
    for family in options:
        for key, value in family.options.items():
            assert f"{key} = {value}" in result.output
