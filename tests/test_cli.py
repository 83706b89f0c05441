"""The command line end to end, on tiny configs, in a CliRunner; what a command imports, in a
fresh interpreter."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffbench.cli import app
from diffbench.results import read_rows
from diffbench.studies.gradient import COLUMNS

DATA = Path(__file__).parent / "data"
runner = CliRunner()

TINY = """
name = "tiny"
[timing]
min_sample_s = 0.0005
repeats = 2

[families.wiggle]
function = "my_cases.py:wiggle"
point = [0.3, -1.2, 2.0]

[families.goes_nan]
function = "my_cases.py:goes_nan"
point = [0.0]

[[study]]
kind = "gradient"
families = ["sin", "relu", "rosenbrock", "wiggle", "goes_nan"]
sizes = [3]
backends = ["central", { name = "jax", jit = false }]
"""


@pytest.fixture
def tiny_config(tmp_path):
    shutil.copy(DATA / "my_cases.py", tmp_path / "my_cases.py")
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_run_writes_csv_manifest_and_table(tiny_config, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(tiny_config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_rows(out / "gradient.csv")
    assert tuple(rows[0]) == (*COLUMNS, "case", "shard")
    assert len(rows) == 10
    by_case = {(r["family"], r["backend"]): r for r in rows}
    assert by_case[("sin", "central")]["status"] == "ok"
    assert float(by_case[("sin", "jax")]["digits"]) >= 13
    assert by_case[("sin", "jax")]["variant"] == "jit=false"
    assert by_case[("wiggle", "central")]["reference_method"] == "mpmath-diff"
    assert float(by_case[("wiggle", "jax")]["digits"]) >= 13
    assert by_case[("goes_nan", "central")]["status"] == "nan"
    assert "kink x[1]: gives 0.5" in by_case[("relu", "central")]["message"]
    assert by_case[("rosenbrock", "central")]["f_evals"] == "6"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["name"] == "tiny"
    assert manifest["versions"]["numpy"] and manifest["machine"]["cores"]
    samples = [json.loads(line) for line in (out / "gradient_samples.jsonl").open()]
    assert len(samples) == sum(r["status"] == "ok" for r in rows)
    assert all(len(s["gradient_s"]) == int(by_case_row["samples"])
               for s, by_case_row in zip(samples, [r for r in rows if r["status"] == "ok"],
                                         strict=True))
    assert "gradient study" in result.output and "rosenbrock" in result.output


def test_bad_config_exits_2_without_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[study]]\nkind = "gradient"\nfamilies = ["nope"]\nbackends = ["jax"]\n')
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "study[0].families[0]" in result.output and "Traceback" not in result.output


def test_missing_config_file(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_list_and_version():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for name in ("rosenbrock", "logistic", "central", "jax"):
        assert name in result.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and "diffbench" in version.output


@pytest.mark.parametrize("command", [[], ["run"], ["list"]])
def test_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_bad_shard_exits_2(tiny_config):
    result = runner.invoke(app, ["run", str(tiny_config), "--shard", "3/2"])
    assert result.exit_code == 2 and "K must be between 1 and N" in result.output


def test_an_internal_error_outside_a_case_is_a_traceback_and_exit_1(tiny_config, tmp_path):
    code = ("import diffbench.runner\n"
            "def broken(*args, **kwargs):\n"
            "    raise ValueError('a bug, not bad input')\n"
            "diffbench.runner.run = broken\n"
            "from diffbench.cli import app\n"
            f"app(['run', {str(tiny_config)!r}, '--out', {str(tmp_path / 'run')!r}])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ValueError: a bug, not bad input" in done.stderr
    assert "error:" not in done.stderr


def test_explain_help_states_the_default_cap():
    from diffbench.explain import DEFAULT_MAX_PATHS

    result = runner.invoke(app, ["explain", "--help"])
    assert f"(default {DEFAULT_MAX_PATHS};" in re.sub(r"[│\s]+", " ", result.output)


HEAVY = {"numpy", "sympy", "mpmath", "jax", "matplotlib", "torch", "autograd"}


def loaded(code: str) -> set[str]:
    """The modules a fresh interpreter has imported once it has run ``code``."""
    probe = (f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\n"
             "print(' '.join(sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    return set(done.stderr.split())


def test_help_imports_no_numerical_library():
    modules = loaded("from diffbench.cli import app; app(['--help'])")
    assert not modules & {*HEAVY, "diffbench.backends", "diffbench.report", "diffbench.studies"}


def test_list_imports_no_jax_plots_or_studies():
    modules = loaded("from diffbench.cli import app; app(['list'])")
    assert not modules & {"jax", "matplotlib", "torch", "diffbench.report", "diffbench.studies"}


def test_runner_and_its_worker_load_no_report():
    modules = loaded("import diffbench.runner, diffbench.isolation; "
                     "from diffbench.studies import load_config, make_studies")
    assert not modules & {"matplotlib", "diffbench.report"}


def test_run_without_plots_never_imports_matplotlib(tmp_path):
    (tmp_path / "c.toml").write_text('[timing]\nmin_sample_s = 0.0005\nrepeats = 2\n'
                                     '[[study]]\nkind = "gradient"\nfamilies = ["sin"]\n'
                                     'backends = ["central"]\n')
    out = tmp_path / "run"
    modules = loaded(f"from diffbench.cli import app; app(['run', {str(tmp_path / 'c.toml')!r}, "
                     f"'--out', {str(out)!r}, '-q', '--no-plots'])")
    assert "matplotlib" not in modules and (out / "report.md").exists()


def test_overrides_and_dry_run(tiny_config, tmp_path):
    result = runner.invoke(app, ["run", str(tiny_config), "--families", "rosenbrock,sin",
                                 "--sizes", "4,8", "--backends", "reverse", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "3 cases" in result.output and "rosenbrock[8] · reverse" in result.output
    assert "central" not in result.output and "estimated time: at least" in result.output
    assert not (tmp_path / "results").exists()
    bad = runner.invoke(app, ["run", str(tiny_config), "--sizes", "4,x", "--dry-run"])
    assert bad.exit_code == 2 and "--sizes '4,x': expected integers" in bad.output


def test_overrides_are_kept_by_resume(tiny_config, tmp_path):
    out = tmp_path / "run"
    args = ["--families", "sin", "--backends", "central", "--no-plots", "-q"]
    assert runner.invoke(app, ["run", str(tiny_config), "--out", str(out), *args]
                         ).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["overrides"] == {"families": ["sin"], "backends": ["central"]}
    manifest["done"], manifest["finished"] = [], False
    (out / "manifest.json").write_text(json.dumps(manifest))
    resumed = runner.invoke(app, ["run", "--resume", str(out), "-q", "--no-plots"])
    assert resumed.exit_code == 0, resumed.output
    assert [(r["family"], r["backend"]) for r in read_rows(out / "gradient.csv")] == [
        ("sin", "central")]


def test_save_gradients_and_no_cache(tiny_config, tmp_path, monkeypatch):
    import numpy as np

    cache = tmp_path / "cache"
    monkeypatch.setenv("DIFFBENCH_CACHE", str(cache))
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(tiny_config), "--out", str(out), "--families",
                                 "rosenbrock", "--backends", "central", "--save-gradients",
                                 "--no-cache", "-q", "--no-plots"])
    assert result.exit_code == 0, result.output
    (saved,) = (out / "gradients").glob("*.npz")
    arrays = np.load(saved)
    assert arrays["x"].shape == arrays["gradient"].shape == arrays["reference"].shape == (3,)
    assert np.allclose(arrays["gradient"], arrays["reference"], rtol=1e-6)
    assert not (cache / "references").exists() or not any((cache / "references").iterdir())
    info = runner.invoke(app, ["cache", "info"])
    assert info.exit_code == 0 and "0 references" in info.output
    runner.invoke(app, ["run", str(tiny_config), "--out", str(tmp_path / "cached"),
                        "--families", "wiggle", "--backends", "central", "-q", "--no-plots"])
    assert "1 reference," in runner.invoke(app, ["cache", "info"]).output
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0 and "removed 1 reference from" in cleared.output


def test_list_says_whether_symengine_is_there():
    result = runner.invoke(app, ["list"])
    assert 'engine = "symengine":' in re.sub(r"[│\s]+", " ", result.output)
