def wiggle(x, ops):
    return ops.sum(ops.sin(3.0 * x) * x**2) + ops.exp(x[0] * x[1])


def vector_valued(x, ops):
    return x * 2.0


def broken(x, ops):
    raise RuntimeError("boom")


def goes_nan(x, ops):
    """sqrt: finite at 0, where its derivative is not."""
    return ops.sqrt(x[0])


def kinky(x, ops):
    """Σ max(x_i, 0) + |x_1 − 1|: at [0, 1] both components are kinks."""
    return ops.sum(ops.maximum(x, 0.0)) + ops.abs(x[1] - 1.0)


def quadratic_bowl(x, ops):
    """Σ (x_i − 1)² + Σ x_i x_{i+1}/4 − Σ x_i·5/4 + 1: stationary at x = 1 (see the tests)."""
    return (ops.sum((x - 1.0) ** 2) + 0.25 * ops.sum(x[1:] * x[:-1])
            - 0.25 * ops.sum(x[1:]) - 0.25 * ops.sum(x[:-1]))


def scaled_cubes(x, ops):
    return ops.sum(SCALE * x**3)


SCALE = 2.0


def mpmath_in_the_parent_only(x, ops):
    """Σ x_i²; in mpmath numbers only in the process that started the run: a worker that
    recomputed the reference would fail."""
    import multiprocessing

    if multiprocessing.parent_process() is not None and type(x[0]).__name__ == "mpf":
        raise RuntimeError("the reference was computed in the worker")
    return ops.sum(x * x)
