"""How fast the command line starts, against importing numpy, measured in one run.

    python benchmarks/startup.py [--runs 15]

Times the wall clock of fresh processes of ``python -c "import numpy"``, ``diffbench --help``
and ``diffbench list`` (each as ``python -m diffbench``, the same interpreter as this script),
the three taken in turn, round after round, so that they see the same machine.  Prints each
median (and min) and the ratios of the two commands' medians to numpy's; the target is a
ratio of at most 3.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET = 3.0
COMMANDS = {
    "import numpy": [sys.executable, "-c", "import numpy"],
    "diffbench --help": [sys.executable, "-m", "diffbench", "--help"],
    "diffbench list": [sys.executable, "-m", "diffbench", "list"],
}


def wall_time(command: list[str]) -> float:
    """Seconds from starting ``command`` to its exit (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, list[float]]:
    """``runs`` wall times of every command, interleaved, after one warm-up round (which
    fills the file cache and writes the bytecode)."""
    for command in COMMANDS.values():
        wall_time(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            times[name].append(wall_time(command))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per command")
    args = parser.parse_args()
    times = measure(args.runs)
    baseline = statistics.median(times["import numpy"])
    print(f"{'command':<18} {'median':>9} {'min':>9} {'× numpy':>8}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<18} {median * 1e3:7.0f} ms {min(samples) * 1e3:6.0f} ms "
              f"{median / baseline:8.2f}")
    worst = max(statistics.median(times[name]) / baseline for name in COMMANDS
                if name != "import numpy")
    print(f"worst ratio {worst:.2f} (target <= {TARGET:g}): "
          f"{'met' if worst <= TARGET else 'not met'}")


if __name__ == "__main__":
    main()
