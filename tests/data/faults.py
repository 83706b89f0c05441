"""Custom functions that misbehave away from their point (config validation runs at it)."""

import time

import numpy as np


def _moved(x) -> bool:
    """x is a float64 array away from the point [1.0] (a traced or mpmath x never is)."""
    return isinstance(x, np.ndarray) and x.dtype == np.float64 and x[0] != 1.0


def slow(x, ops):
    if _moved(x):
        time.sleep(30)
    return x[0] * 2.0


def hog(x, ops):
    if _moved(x):
        hoard = [np.ones(2**24) for _ in range(400)]  # 400 × 128 MiB, touched
        return x[0] * len(hoard)
    return x[0] * 2.0


def square(x, ops):
    return ops.sum(x * x)
