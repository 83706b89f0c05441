"""Speed and memory of diffbench's reverse-mode engine, as ratios measured in one run.

    PYTHONPATH=. python benchmarks/ad_speed.py [--quick] [--baseline REF]

* omega = T(gradient) / T(numpy f) for Rosenbrock at n = 1,000,000, and the time per gradient
  at n = 10 against HIPS autograd's, for the recording engine (``ad.grad``) and the replay
  (``ad.compile``: traced once, replayed on buffers allocated once);
* omega for the mlp family at widths 256 (65,792 inputs) and 1024 (1,049,600 inputs);
* the tracemalloc peak of one gradient of a 50-step chain y <- sin(y) 1.01 + 0.1 y on 10^6
  values, with the engine's release of cotangents and saved values on and off, and replayed.

Everything runs on one thread (the BLAS behind numpy's matmul too, set before numpy is
imported): on a shared machine a second BLAS thread makes f's time, and ω with it, a matter of
what else runs.  HIPS autograd and PyTorch (eager, one thread) are timed on Rosenbrock in the
same run when they can be imported.  ``--baseline REF`` also times the recording engine of the
git revision REF (``diffbench/ad`` as it was there, imported beside this one), to show whether
it got slower.
Times are medians of calibrated samples (each at least ~10 ms, taken with perf_counter_ns), the
samples of f and of every gradient interleaved so that they see the same machine.  The targets
are printed at the end with the ratios measured.

Before timing, the allocator is settled as in every diffbench timing
(``diffbench.measure.timing.settle_allocator``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy is imported

import numpy as np  # noqa: E402

import diffbench.ad as ad  # noqa: E402
from diffbench.families import BUILTIN  # noqa: E402
from diffbench.families.vector import rosenbrock  # noqa: E402
from diffbench.measure.timing import settle_allocator  # noqa: E402

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
    """Median seconds per call of each function, over interleaved calibrated samples; the order
    within a round is reversed every other round, so that no function always follows the same
    one (a fixed order read the same engine 2 % slower than its copy at n = 10)."""
    loops = {name: calibrate(fn) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for k in range(samples):
        for name, fn in (list(fns.items()) if k % 2 == 0 else list(fns.items())[::-1]):
            start = time.perf_counter_ns()
            for _ in range(loops[name]):
                fn()
            times[name].append((time.perf_counter_ns() - start) / loops[name])
    return {name: statistics.median(values) / 1e9 for name, values in times.items()}


def baseline_engine(ref: str) -> ModuleType:
    """``diffbench.ad`` as it was at the git revision ``ref``, imported as another package (the
    rest of diffbench, which it imports, is this checkout's)."""
    root = Path(__file__).resolve().parent.parent
    names = subprocess.run(["git", "ls-tree", "--name-only", ref, "diffbench/ad/"], cwd=root,
                           check=True, capture_output=True, text=True).stdout.split()
    name = "baseline_ad"
    folder = Path(tempfile.mkdtemp()) / name
    folder.mkdir()
    for path in names:
        text = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=root, check=True,
                              capture_output=True, text=True).stdout
        (folder / Path(path).name).write_text(text.replace("diffbench.ad", name))
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module(name)


def other_gradients(x: np.ndarray) -> dict[str, Callable[[], object]]:
    """Rosenbrock gradients by HIPS autograd and PyTorch eager (one thread), where importable."""
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

        torch.set_num_threads(1)

        def torch_grad() -> object:
            leaf = torch.tensor(x, requires_grad=True)
            rosenbrock(leaf, torch).backward()
            return leaf.grad

        found["PyTorch eager"] = torch_grad
    except ImportError:
        pass
    return found


def engine_gradients(fn: Callable, x: np.ndarray,
                     baseline: ModuleType | None) -> dict[str, Callable[[], object]]:
    """The recording engine, the replay and, with a baseline, the baseline's recording engine."""
    recording = ad.grad(lambda x: fn(x, ad))
    replay = ad.compile(lambda x: fn(x, ad), x)
    found = {"recording": lambda: recording(x), "replay": lambda: replay(x)}
    if baseline is not None:
        old = baseline.grad(lambda x: fn(x, baseline))
        found["baseline rec."] = lambda: old(x)
    return found


def gradient_timings(title: str, fn: Callable, x: np.ndarray, samples: int,
                     gradients: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Print T(numpy f), and T(gradient) and omega for each gradient; return the omegas."""
    times = median_times({"numpy f": lambda: fn(x, np), **gradients}, samples)
    t_f = times.pop("numpy f")
    print(f"\n{title}: numpy f {t_f * 1e6:,.1f} us")
    for name, t_g in times.items():
        print(f"  {name:<14} gradient {t_g * 1e6:>10,.1f} us   omega = T(grad) / T(f) = "
              f"{t_g / t_f:5.2f}")
    return {name: t_g / t_f for name, t_g in times.items()}


def rosenbrock_timings(n: int, samples: int, baseline: ModuleType | None) -> dict[str, float]:
    x = np.random.default_rng(0).uniform(-2.0, 2.0, n)
    omegas = gradient_timings(f"Rosenbrock, n = {n:,}", rosenbrock, x, samples,
                              {**engine_gradients(rosenbrock, x, baseline),
                               **other_gradients(x)})
    if "HIPS autograd" in omegas:
        against = omegas["HIPS autograd"]
        print("  time per gradient / HIPS autograd's: " + ", ".join(
            f"{name} {omegas[name] / against:.3f}" for name in omegas
            if name != "HIPS autograd"))
    return omegas


def mlp_timings(width: int, samples: int, baseline: ModuleType | None) -> dict[str, float]:
    problem = BUILTIN["mlp"].make(width)
    return gradient_timings(f"mlp, width {width} ({problem.n:,} inputs)", problem.fn,
                            problem.x0, samples,
                            engine_gradients(problem.fn, problem.x0, baseline))


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
    replay = ad.compile(lambda x: chain(x, ad), x)
    replay(x)
    tracemalloc.start()
    replay(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  replay     : peak {peak / size:6.1f}   (the gradient handed back; the buffers, "
          f"allocated once, hold {replay.buffer_bytes / size:.1f})")


def verdict(text: str, value: float | None, limit: float) -> None:
    if value is None:
        print(f"  {text}: not measured")
        return
    print(f"  {text}: {value:.3f} (target <= {limit}: {'holds' if value <= limit else 'misses'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--baseline", metavar="REF", help="also time the recording engine of "
                        "this git revision (e.g. main)")
    parser.add_argument("--mlp-width", type=int, default=1024, help="the wide mlp's width")
    args = parser.parse_args()
    samples = 5 if args.quick else 15
    baseline = baseline_engine(args.baseline) if args.baseline else None
    settle_allocator()
    large = rosenbrock_timings(1_000_000, samples, baseline)
    small = rosenbrock_timings(10, samples, baseline)
    mlp_timings(256, samples, baseline)
    wide = mlp_timings(args.mlp_width, samples, baseline)
    chain_memory(1_000_000)
    print("\ntargets (ratios of this run):")
    verdict("Rosenbrock n = 10^6, replay omega", large["replay"], 2.5)
    autograd = small.get("HIPS autograd")
    verdict("Rosenbrock n = 10, replay time / HIPS autograd's",
            small["replay"] / autograd if autograd else None, 0.08)
    verdict(f"mlp width {args.mlp_width}, recording omega", wide["recording"], 6)
    verdict(f"mlp width {args.mlp_width}, replay omega", wide["replay"], 6)
    if baseline is not None:
        for title, omegas in (("Rosenbrock n = 10^6", large), ("Rosenbrock n = 10", small),
                              (f"mlp width {args.mlp_width}", wide)):
            verdict(f"{title}, recording time / baseline's ({args.baseline})",
                    omegas["recording"] / omegas["baseline rec."], 1.0)


if __name__ == "__main__":
    main()
