"""Speed and memory of diffbench's reverse-mode engine, as ratios measured in one run.

    PYTHONPATH=. python benchmarks/ad_speed.py [--quick]

* omega = T(gradient) / T(numpy f) for Rosenbrock at n = 1,000,000 (the cheap-gradient
  principle: a small constant; target <= 4) and the time per gradient at n = 10 (target
  <= 30 us), and omega for the mlp family at width 256 (65,792 inputs);
* the tracemalloc peak of one gradient of a 50-step chain y <- sin(y) 1.01 + 0.1 y on 10^6
  values, with the engine's release of cotangents and saved values on and off.

HIPS autograd and PyTorch are timed on Rosenbrock in the same run when they can be imported.
Times are medians of calibrated samples (each at least ~10 ms, taken with perf_counter_ns), the
samples of f and of every gradient interleaved so that they see the same machine.

Before timing, the allocator is settled as in every diffbench timing
(``diffbench.measure.timing.settle_allocator``).
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

import diffbench.ad as ad
from diffbench.families import BUILTIN
from diffbench.families.vector import rosenbrock
from diffbench.measure.timing import settle_allocator

MIN_SAMPLE_NS = 10_000_000


def calibrate(fn: Callable[[], object]) -> int:
    """The number of calls that makes one sample last at least MIN_SAMPLE_NS."""
    fn()
    loops = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        if time.perf_counter_ns() - start >= MIN_SAMPLE_NS:
            return loops
        loops *= 2


def median_times(fns: dict[str, Callable[[], object]], samples: int) -> dict[str, float]:
    """Median seconds per call of each function, over interleaved calibrated samples."""
    loops = {name: calibrate(fn) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(samples):
        for name, fn in fns.items():
            start = time.perf_counter_ns()
            for _ in range(loops[name]):
                fn()
            times[name].append((time.perf_counter_ns() - start) / loops[name])
    return {name: statistics.median(values) / 1e9 for name, values in times.items()}


def other_gradients(x: np.ndarray) -> dict[str, Callable[[], object]]:
    """Rosenbrock gradients by HIPS autograd and PyTorch eager, where importable."""
    found: dict[str, Callable[[], object]] = {}
    try:
        import autograd
        import autograd.numpy as anp

        autograd_grad = autograd.grad(lambda x: rosenbrock(x, anp))
        found["HIPS autograd"] = lambda: autograd_grad(x)
    except ImportError:
        pass
    try:
        import torch

        def torch_grad() -> object:
            leaf = torch.tensor(x, requires_grad=True)
            rosenbrock(leaf, torch).backward()
            return leaf.grad

        found["PyTorch eager"] = torch_grad
    except ImportError:
        pass
    return found


def gradient_timings(title: str, fn: Callable, x: np.ndarray, samples: int,
                     peers: dict[str, Callable[[], object]]) -> None:
    """Print T(numpy f), and T(gradient) and omega for the engine and the given peers."""
    gradient = ad.grad(lambda x: fn(x, ad))
    fns = {"numpy f": lambda: fn(x, np), "diffbench.ad": lambda: gradient(x)}
    times = median_times({**fns, **peers}, samples)
    t_f = times.pop("numpy f")
    print(f"\n{title}: numpy f {t_f * 1e6:,.1f} us")
    for name, t_g in times.items():
        print(f"  {name:<14} gradient {t_g * 1e6:>10,.1f} us   omega = T(grad) / T(f) = "
              f"{t_g / t_f:5.2f}")


def rosenbrock_timings(n: int, samples: int) -> None:
    x = np.random.default_rng(0).uniform(-2.0, 2.0, n)
    gradient_timings(f"Rosenbrock, n = {n:,}", rosenbrock, x, samples, other_gradients(x))


def mlp_timings(width: int, samples: int) -> None:
    problem = BUILTIN["mlp"].build(width)
    gradient_timings(f"mlp, width {width} ({problem.n:,} inputs)", problem.fn, problem.x0,
                     samples, {})


def chain(x, ops, steps: int = 50):
    y = x
    for _ in range(steps):
        y = ops.sin(y) * 1.01 + 0.1 * y
    return ops.sum(y)


def chain_memory(n: int) -> None:
    x = np.random.default_rng(1).uniform(-1.0, 1.0, n)
    size = x.nbytes
    print(f"\n50-step chain y <- sin(y) 1.01 + 0.1 y, n = {n:,} (one array: "
          f"{size / 2**20:.1f} MiB); tracemalloc peak of one gradient, in arrays:")
    print("  the rules must keep 49 forward arrays (sin's argument at each step after the input)")
    for release in (True, False):
        gradient = ad.grad(lambda x: chain(x, ad), release=release)
        gradient(x)
        tracemalloc.start()
        gradient(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        stats = gradient.stats()
        print(f"  release {'on ' if release else 'off'}: peak {peak / size:6.1f}   of which "
              f"cotangents {stats.peak_cotangent_bytes / size:5.1f}   (tape length "
              f"{stats.length})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    samples = 5 if args.quick else 15
    settle_allocator()
    rosenbrock_timings(1_000_000, samples)
    rosenbrock_timings(10, samples)
    mlp_timings(256, samples)
    chain_memory(1_000_000)


if __name__ == "__main__":
    main()
