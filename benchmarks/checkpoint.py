"""Checkpointing in the native engine: memory and time ratios against no checkpoints, in one run.

    PYTHONPATH=. python benchmarks/checkpoint.py [--quick]

The chain is ``sin_tanh_chain`` (x ← (sin x + tanh x) / 2) of L = 256 steps on n = 10^5 values.
Targets, as ratios to the same engine without checkpoints, measured in this process:

* ``sqrt`` (⌈√L⌉ = 16 checkpointed segments): peak memory <= 15 % at <= 2.0 × the time;
* ``revolve`` with 8 snapshots: peak memory <= 6 % at <= 3.5 × the time;

and each schedule's counted forward steps equal to its count (revolve's the fewest for 8
snapshots).  Times are medians of samples of the three gradients interleaved
(``diffbench.measure.timing.time_calls``); memory is the tracemalloc peak of one gradient,
result included (``diffbench.measure.memory.traced_peak``), the figure the checkpoint study
reports for this engine.
"""

from __future__ import annotations

import argparse

from diffbench.ad.checkpointing import parse_schedule
from diffbench.backends import registry
from diffbench.families import BUILTIN
from diffbench.measure.memory import traced_peak
from diffbench.measure.timing import time_calls

DEPTH, SIZE = 256, 100_000
TARGETS = {  # schedule: (its snapshots, most memory, most time), as ratios to none's
    "sqrt": (None, 0.15, 2.0),
    "revolve": (8, 0.06, 3.5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    chain = BUILTIN["sin_tanh_chain"].chain(SIZE, DEPTH)
    engine = registry()["reverse"]
    plans = {"none": parse_schedule("none")}
    plans.update({name: parse_schedule(name, snapshots)
                  for name, (snapshots, _, _) in TARGETS.items()})
    prepared = {name: engine.prepare_chain(chain, plan) for name, plan in plans.items()}
    x = chain.x0.copy()
    times = time_calls({name: p.timed_gradient(x) for name, p in prepared.items()},
                       min_sample_s=0.0, repeats=3 if args.quick else 7)
    peaks = {name: traced_peak(lambda p=p: p.gradient(x)) for name, p in prepared.items()}
    print(f"sin_tanh_chain, L = {DEPTH}, n = {SIZE:,} (one state: {x.nbytes / 2**20:.2f} MiB); "
          "ratios to no checkpoints")
    print(f"  none     {times['none'].median:6.2f} s   peak {peaks['none'] / 2**20:7.1f} MiB   "
          f"{prepared['none'].forward_steps} forward steps")
    for name, (_, memory_target, time_target) in TARGETS.items():
        memory = peaks[name] / peaks["none"]
        time = times[name].median / times["none"].median
        steps, expected = prepared[name].forward_steps, plans[name].forward_steps(DEPTH)
        held = f"{plans[name].stored(DEPTH)} states"
        verdict = "met" if memory <= memory_target and time <= time_target else "MISSED"
        print(f"  {name:<8} {times[name].median:6.2f} s   peak {peaks[name] / 2**20:7.1f} MiB   "
              f"{steps} forward steps (count {expected}), {held}")
        print(f"           memory {memory:6.1%} (target <= {memory_target:.0%}), time "
              f"{time:4.2f}x (target <= {time_target:.1f}x): {verdict}")
    spread = max(t.iqr / t.median for t in times.values())
    print(f"  largest timing spread (IQR / median): {spread:.0%}")


if __name__ == "__main__":
    main()
