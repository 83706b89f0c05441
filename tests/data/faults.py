"""Custom functions that misbehave away from their point (config validation runs at it)."""

import time

import numpy as np


def slow(x, ops):
    if float(x[0]) != 1.0:
        time.sleep(30)
    return x[0] * 2.0


def hog(x, ops):
    if float(x[0]) != 1.0:
        hoard = [np.ones(2**24) for _ in range(400)]  # 400 × 128 MiB, touched
        return x[0] * len(hoard)
    return x[0] * 2.0


def square(x, ops):
    return ops.sum(x * x)
