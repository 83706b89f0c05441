"""Ctrl-C to the whole process group (what a terminal sends) and SIGTERM at random moments of
a scaling run, each resumed: the same keys and statuses as the run never interrupted."""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from diffbench.results import read_rows
from diffbench.runstate import read_manifest

CONFIG = Path(__file__).parent / "data" / "hostile" / "interrupted_scaling.toml"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "diffbench", *args]


def outcome(run_dir: Path) -> Counter:
    return Counter((row["case"], row["status"]) for row in read_rows(run_dir / "scaling.csv"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The run uninterrupted: its keys and statuses, and how long its cases took."""
    out = tmp_path_factory.mktemp("clean") / "run"
    process = subprocess.Popen(_cli("run", str(CONFIG), "--out", str(out), "-q", "--no-plots"))
    while not (out / "manifest.json").exists() and process.poll() is None:
        time.sleep(0.01)
    started = time.monotonic()
    assert process.wait() == 0
    expected = outcome(out)
    assert set(status for _, status in expected) == {"ok", "timeout", "skipped"}
    return expected, time.monotonic() - started


def interrupt_then_resume(tmp_path: Path, moment: float, signum: int) -> Counter:
    """Run, send ``signum`` to the run's whole process group ``moment`` seconds after its
    manifest appears, check it stopped cleanly and soon, resume it; the rows' outcome."""
    out = tmp_path / "run"
    process = subprocess.Popen(_cli("run", str(CONFIG), "--out", str(out), "-q", "--no-plots"),
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    while not (out / "manifest.json").exists() and process.poll() is None:
        time.sleep(0.005)
    time.sleep(moment)
    sent = time.monotonic()
    if process.poll() is None:
        os.killpg(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 5, "the run did not stop within seconds of the signal"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    if process.returncode == 128 + signum:
        assert f"diffbench run --resume {out}" in stderr
        assert not read_manifest(out)["finished"]
    else:
        assert process.returncode == 0, stderr  # the run was already over
    resumed = subprocess.run(_cli("run", "--resume", str(out), "-q", "--no-plots"),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert read_manifest(out)["finished"]
    return outcome(out)


def moments(count: int, duration: float, seed: int) -> list[float]:
    generator = random.Random(seed)
    return sorted(generator.uniform(0.0, 0.9 * duration) for _ in range(count))


@pytest.mark.parametrize("index", range(2))
def test_ctrl_c_to_the_group_then_resume_gives_the_clean_run(tmp_path, clean, index):
    expected, duration = clean
    moment = moments(2, duration, seed=19)[index]
    assert interrupt_then_resume(tmp_path, moment, signal.SIGINT) == expected


def test_sigterm_to_the_group_then_resume_gives_the_clean_run(tmp_path, clean):
    expected, duration = clean
    assert interrupt_then_resume(tmp_path, 0.5 * duration, signal.SIGTERM) == expected


@pytest.mark.slow
@pytest.mark.parametrize("index", range(10))
def test_ctrl_c_at_ten_random_moments(tmp_path, clean, index):
    expected, duration = clean
    moment = moments(10, duration, seed=1919)[index]
    assert interrupt_then_resume(tmp_path, moment, signal.SIGINT) == expected
