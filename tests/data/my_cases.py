def wiggle(x, ops):
    return ops.sum(ops.sin(3.0 * x) * x**2) + ops.exp(x[0] * x[1])


def vector_valued(x, ops):
    return x * 2.0


def broken(x, ops):
    raise RuntimeError("boom")


def goes_nan(x, ops):
    return ops.log(x[0])


def kinky(x, ops):
    """Σ max(x_i, 0) + |x_1 − 1|: at [0, 1] both components are kinks."""
    return ops.sum(ops.maximum(x, 0.0)) + ops.abs(x[1] - 1.0)
