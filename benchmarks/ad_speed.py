"""Speed and memory of diffbench's reverse-mode engine, as ratios measured in one run.

    PYTHONPATH=. python benchmarks/ad_speed.py [--quick]

* omega = T(gradient) / T(numpy f) for Rosenbrock at n = 1,000,000 (cheap-gradient principle:
  a small constant; target <= 4) and the time per gradient at n = 10 (target <= 30 us);
* the tracemalloc peak of one gradient of a 50-step chain y <- sin(y) 1.01 + 0.1 y on 10^6
  values, with the engine's release of cotangents and saved values on and off.

HIPS autograd and PyTorch are timed in the same run when they can be imported.
Times are medians of calibrated samples (each at least ~10 ms), taken with perf_counter_ns.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

import diffbench.ad as ad
from diffbench.families.vector import rosenbrock

MIN_SAMPLE_NS = 10_000_000


def median_time(fn: Callable[[], object], samples: int) -> float:
    """Median seconds per call of ``fn``, over ``samples`` calibrated samples."""
    fn()
    loops = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter_ns() - start
        if elapsed >= MIN_SAMPLE_NS:
            break
        loops *= 2
    times = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        times.append((time.perf_counter_ns() - start) / loops)
    return statistics.median(times) / 1e9


def other_gradients(n_x: np.ndarray) -> dict[str, Callable[[], object]]:
    """Rosenbrock gradients by HIPS autograd and PyTorch eager, where importable."""
    found: dict[str, Callable[[], object]] = {}
    try:
        import autograd
        import autograd.numpy as anp

        autograd_grad = autograd.grad(lambda x: rosenbrock(x, anp))
        found["HIPS autograd"] = lambda: autograd_grad(n_x)
    except ImportError:
        pass
    try:
        import torch

        def torch_grad() -> object:
            x = torch.tensor(n_x, requires_grad=True)
            rosenbrock(x, torch).backward()
            return x.grad

        found["PyTorch eager"] = torch_grad
    except ImportError:
        pass
    return found


def rosenbrock_timings(n: int, samples: int) -> None:
    x = np.random.default_rng(0).uniform(-2.0, 2.0, n)
    gradient = ad.grad(lambda x: rosenbrock(x, ad))
    t_f = median_time(lambda: rosenbrock(x, np), samples)
    print(f"\nRosenbrock, n = {n:,}: numpy f {t_f * 1e6:,.1f} us")
    rows = {"diffbench.ad": lambda: gradient(x), **other_gradients(x)}
    for name, fn in rows.items():
        t_g = median_time(fn, samples)
        print(f"  {name:<14} gradient {t_g * 1e6:>10,.1f} us   omega = T(grad)/T(f) = "
              f"{t_g / t_f:6.2f}")


def chain(x, ops, steps: int = 50):
    y = x
    for _ in range(steps):
        y = ops.sin(y) * 1.01 + 0.1 * y
    return ops.sum(y)


def chain_memory(n: int) -> None:
    x = np.random.default_rng(1).uniform(-1.0, 1.0, n)
    array_bytes = x.nbytes
    print(f"\n50-step chain y <- sin(y) 1.01 + 0.1 y, n = {n:,} (one array = "
          f"{array_bytes / 2**20:.1f} MiB); tracemalloc peak of one gradient:")
    print("  the rules must keep 49 forward arrays (sin's argument at every step but the "
          "input's)")
    for release in (True, False):
        gradient = ad.grad(lambda x: chain(x, ad), release=release)
        gradient(x)
        tracemalloc.start()
        tracemalloc.reset_peak()
        gradient(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        stats = gradient.stats()
        print(f"  release {'on ' if release else 'off'}: peak {peak / 2**20:8.1f} MiB = "
              f"{peak / array_bytes:6.1f} arrays; peak cotangents "
              f"{stats.peak_cotangent_bytes / array_bytes:5.1f} arrays; "
              f"tape length {stats.length}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    samples = 5 if args.quick else 11
    rosenbrock_timings(1_000_000, samples)
    rosenbrock_timings(10, samples)
    chain_memory(1_000_000)


if __name__ == "__main__":
    main()
