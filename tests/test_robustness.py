"""Faults mid-run: isolation, kill and resume, Ctrl-C, shards and merge."""

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffbench.cli import app
from diffbench.results import read_rows
from diffbench.runstate import read_manifest, trim_csv, trim_jsonl
from diffbench.shards import ShardError, assign, parse_shard

DATA = Path(__file__).parent / "data"
runner = CliRunner()

FAULTS = """
name = "faults"
[timing]
min_sample_s = 0.001
repeats = 2
budget_s = 2.0
[run]
memory_mb = 300

[families.slow]
function = "faults.py:slow"
point = [1.0]

[families.hog]
function = "faults.py:hog"
point = [1.0]

[[study]]
kind = "gradient"
families = ["slow", "hog", "sin"]
backends = ["central"]
"""

SMALL = """
name = "small"
[timing]
min_sample_s = 0.02
repeats = 3

[[study]]
kind = "gradient"
families = ["sin", "exp", "quadratic", "log_sin", "affine_square", "relu"]
backends = ["central", { name = "jax", jit = false }]
"""


def write_config(tmp_path: Path, text: str, name: str = "bench.toml") -> Path:
    for source in DATA.glob("*.py"):
        shutil.copy(source, tmp_path / source.name)
    path = tmp_path / name
    path.write_text(text)
    return path


def test_isolation_turns_hangs_and_hogs_into_rows(tmp_path):
    config = write_config(tmp_path, FAULTS)
    out = tmp_path / "run"
    started = time.perf_counter()
    result = runner.invoke(app, ["run", str(config), "--out", str(out), "--isolate", "-q"])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    rows = {r["family"]: r for r in read_rows(out / "gradient.csv")}
    assert rows["slow"]["status"] == "timeout" and "2 s" in rows["slow"]["message"]
    assert rows["hog"]["status"] == "out-of-memory" and "300 MiB" in rows["hog"]["message"]
    assert rows["sin"]["status"] == "ok"
    assert elapsed < 30  # the slow case's 30 s sleep was cut at its 2 s budget


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "diffbench", *args]


def _row_keys(run_dir: Path) -> Counter:
    return Counter((r["case"], r["status"]) for r in read_rows(run_dir / "gradient.csv"))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    config = write_config(tmp, SMALL)
    subprocess.run(_cli("run", str(config), "--out", str(tmp / "run"), "-q"), check=True)
    return config, _row_keys(tmp / "run")


def _rows_written(path: Path) -> int:
    """Complete data rows in a CSV being written (header and a torn last line not counted)."""
    if not path.exists():
        return 0
    return max(path.read_text(encoding="utf-8").count("\n") - 1, 0)


@pytest.mark.parametrize("rows_before_kill", [1, 4, 8])
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path, reference_run,
                                                       rows_before_kill):
    """Killed mid-run, once ``rows_before_kill`` rows are on disk, then resumed; a run that
    finishes before the kill tests no resume, so it fails the test."""
    config, expected = reference_run
    assert rows_before_kill < sum(expected.values())
    out = tmp_path / "run"
    process = subprocess.Popen(_cli("run", str(config), "--out", str(out), "-q"))
    deadline = time.monotonic() + 120
    while _rows_written(out / "gradient.csv") < rows_before_kill and process.poll() is None:
        assert time.monotonic() < deadline, "the run wrote no row in 120 s"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not read_manifest(out)["finished"]
    subprocess.run(_cli("run", "--resume", str(out), "-q"), check=True)
    assert _row_keys(out) == expected
    manifest = read_manifest(out)
    assert manifest["finished"] and len(manifest["done"]) == sum(expected.values())
    samples = [line for line in (out / "gradient_samples.jsonl").read_text().splitlines()]
    assert len(samples) == len({line.split('"case": ')[1].split(",")[0] for line in samples})


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, reference_run):
    config, expected = reference_run
    out = tmp_path / "run"
    process = subprocess.Popen(_cli("run", str(config), "--out", str(out), "-q"),
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not (out / "gradient.csv").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and f"diffbench run --resume {out}" in stderr
    subprocess.run(_cli("run", "--resume", str(out), "-q"), check=True)
    assert _row_keys(out) == expected


def test_trim_drops_torn_lines_and_unfinished_cases(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,case\n1,k1\n2,k2\n3,k3\n4,k")
    assert trim_csv(path, {"k1", "k3"}) == 1
    assert path.read_text().splitlines() == ["a,case", "1,k1", "3,k3"]
    lines = tmp_path / "x.jsonl"
    lines.write_text('{"case": "k1"}\n{"case": "k2"}\n{"case": "k3"')
    assert trim_jsonl(lines, {"k1", "k3"}) == 1
    assert lines.read_text() == '{"case": "k1"}\n'


def test_shards_then_merge_equal_an_unsharded_run(tmp_path, reference_run):
    config, expected = reference_run
    shards = [tmp_path / f"shard{k}" for k in (1, 2, 3)]
    for k, out in enumerate(shards, start=1):
        result = runner.invoke(app, ["run", str(config), "--shard", f"{k}/3", "--out",
                                     str(out), "-q"])
        assert result.exit_code == 0, result.output
    assert all(read_rows(out / "gradient.csv") for out in shards)
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["merge", *map(str, shards), "--out", str(merged)])
    assert result.exit_code == 0, result.output
    assert _row_keys(merged) == expected
    assert {r["shard"] for r in read_rows(merged / "gradient.csv")} == {"1/3", "2/3", "3/3"}
    assert len(read_manifest(merged)["merged_from"]) == 3


def test_merge_refuses_different_configs(tmp_path):
    first = write_config(tmp_path, SMALL)
    other = write_config(tmp_path, SMALL.replace('"relu"', '"cancel"'), "other.toml")
    for config, out in ((first, "a"), (other, "b")):
        runner.invoke(app, ["run", str(config), "--shard", "1/2", "--out",
                            str(tmp_path / out), "-q"])
    result = runner.invoke(app, ["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                                 str(tmp_path / "m")])
    assert result.exit_code == 2 and "different config" in result.output


def test_shard_assignment_is_balanced_and_deterministic():
    costs = [(f"case{i}", float(c)) for i, c in enumerate([100, 1, 1, 1, 50, 50, 2, 3])]
    owner = assign(costs, 2)
    assert owner == assign(list(reversed(costs)), 2)
    loads = Counter()
    for key, cost in costs:
        loads[owner[key]] += cost
    assert abs(loads[1] - loads[2]) <= 10
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "x", "1/0"):
        with pytest.raises(ShardError):
            parse_shard(bad)


def test_resume_of_a_finished_run_does_nothing(tmp_path, reference_run):
    config, expected = reference_run
    out = tmp_path / "run"
    subprocess.run(_cli("run", str(config), "--out", str(out), "-q"), check=True)
    before = (out / "gradient.csv").read_text()
    result = runner.invoke(app, ["run", "--resume", str(out), "-q"])
    assert result.exit_code == 0 and (out / "gradient.csv").read_text() == before


def test_resume_refuses_an_edited_config(tmp_path):
    config = write_config(tmp_path, SMALL)
    out = tmp_path / "run"
    runner.invoke(app, ["run", str(config), "--shard", "1/4", "--out", str(out), "-q"])
    config.write_text(SMALL.replace('"relu"', '"cancel"'))
    result = runner.invoke(app, ["run", "--resume", str(out)])
    assert result.exit_code == 2 and "has changed" in result.output


def test_resume_of_a_missing_directory(tmp_path):
    result = runner.invoke(app, ["run", "--resume", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a diffbench run directory" in result.output

